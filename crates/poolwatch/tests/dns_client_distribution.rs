//! Client distribution end to end (issue 17 item 3): a stand-alone
//! `poolwatch dns` fed from `serve`'s `/api/dns-zone` reports what it
//! answered over `/api/dns-counts`, `serve`'s own DNS records directly, and
//! what the service shows per server (`/api/v1/servers/{ip}/dns`) is what
//! `dig` received from both, counted here on the client side, within two
//! reporting intervals. Real binaries, real dig, SQLite.
//!
//! The servers' addresses are public-looking (the GeoIP test database's
//! networks) but only stored: nothing here sends them a packet — there is
//! no agent, and DNS answers are only read.

mod common;

use common::e2e::{Proc, admin, free_tcp_port, get, json, lift_scores, wait_until};
use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

const ZONE: &str = "pool.example.org";
const TOKEN: &str = "dns-token-for-the-counts-test-0123456789";
/// The reporting interval of both DNS processes, seconds.
const EVERY: u64 = 3;

/// (address, pool zone): three in the UK, two in Sweden, one in the US.
const SERVERS: [(&str, &str); 6] = [
    ("81.2.69.160", "uk"),
    ("81.2.69.161", "uk"),
    ("81.2.69.162", "uk"),
    ("89.160.20.120", "se"),
    ("89.160.20.121", "se"),
    ("216.160.83.60", "us"),
];

/// (dig's +subnet, the country the service files it under).
const CLIENTS: [(Option<&str>, &str); 4] = [
    (Some("81.2.69.142/32"), "uk"),
    (Some("89.160.20.112/28"), "se"),
    (Some("216.160.83.56/29"), "us"),
    // Loopback, no subnet: not located.
    (None, "-"),
];

fn free_dns_port() -> u16 {
    loop {
        let p = free_tcp_port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// The addresses in dig's answer (`+short`), asked over UDP or TCP.
fn dig(port: u16, name: &str, subnet: Option<&str>, tcp: bool) -> Vec<String> {
    let mut cmd = Command::new("dig");
    cmd.arg("@127.0.0.1")
        .args(["-p", &port.to_string(), "+short", "+time=3", "+tries=1"])
        .arg(if tcp { "+tcp" } else { "+notcp" })
        .arg(name)
        .arg("A");
    if let Some(s) = subnet {
        cmd.arg(format!("+subnet={s}"));
    }
    let out = cmd
        .output()
        .expect("cannot run dig: run scripts/test (it installs bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| l.parse::<std::net::Ipv4Addr>().is_ok())
        .collect()
}

#[test]
fn answer_counts_reach_the_service_and_match_what_dig_got() {
    let dir = tempfile::tempdir().unwrap();
    for (ip, zone) in SERVERS {
        admin(
            dir.path(),
            &["server", "add", ip, "--zone", zone, "--netspeed", "1000"],
        );
    }
    lift_scores(dir.path());
    let token = dir.path().join("dns.token");
    std::fs::write(&token, TOKEN).unwrap();
    let http = free_tcp_port();
    let serve_dns = free_dns_port();
    let every = format!("{EVERY}s");
    let serve = Proc::spawn(&[
        "serve".into(),
        "--listen".into(),
        format!("127.0.0.1:{http}"),
        "--data-dir".into(),
        dir.path().display().to_string(),
        "--zone".into(),
        ZONE.into(),
        "--dns-listen".into(),
        format!("127.0.0.1:{serve_dns}"),
        "--dns-token-file".into(),
        token.display().to_string(),
        "--dns-refresh".into(),
        "1s".into(),
        "--dns-count-interval".into(),
        every.clone(),
        "--geoip".into(),
        geo::fixtures::COUNTRY_MMDB.into(),
    ]);
    wait_until("the service", Duration::from_secs(30), || {
        get(http, "/readyz").is_some_and(|(st, _)| st == 200)
    });
    let alone_dns = free_dns_port();
    let alone = Proc::spawn(&[
        "dns".into(),
        "--api".into(),
        format!("http://127.0.0.1:{http}"),
        "--token-file".into(),
        token.display().to_string(),
        "--zone".into(),
        ZONE.into(),
        "--listen".into(),
        format!("127.0.0.1:{alone_dns}"),
        "--refresh".into(),
        "1s".into(),
        "--count-interval".into(),
        every,
        "--geoip".into(),
        geo::fixtures::COUNTRY_MMDB.into(),
    ]);
    for port in [serve_dns, alone_dns] {
        wait_until("a zone with the servers", Duration::from_secs(30), || {
            dig(port, ZONE, Some("81.2.69.142/32"), false).len() == 3
        });
    }
    // The warm-up answers above are counted too: start the tally after
    // one more interval has reported them, by reading what is there.
    let before = |ip: &str| -> BTreeMap<String, u64> { countries(http, ip) };
    std::thread::sleep(Duration::from_secs(2 * EVERY + 1));
    let base: BTreeMap<&str, BTreeMap<String, u64>> =
        SERVERS.iter().map(|(ip, _)| (*ip, before(ip))).collect();

    // What dig gets, counted per server and client country.
    let mut want: BTreeMap<&str, BTreeMap<String, u64>> = base.clone();
    let names = [
        ZONE.to_string(),
        format!("0.{ZONE}"),
        format!("uk.{ZONE}"),
        format!("2.se.{ZONE}"),
    ];
    for round in 0..5 {
        for port in [serve_dns, alone_dns] {
            for name in &names {
                for (subnet, country) in CLIENTS {
                    let got = dig(port, name, subnet, round % 2 == 1);
                    assert!(!got.is_empty(), "{name} from {subnet:?}: no answer");
                    for ip in got {
                        let ip = SERVERS
                            .iter()
                            .map(|(s, _)| *s)
                            .find(|s| *s == ip)
                            .unwrap_or_else(|| panic!("{ip} is not a server"));
                        *want
                            .get_mut(ip)
                            .unwrap()
                            .entry(country.to_string())
                            .or_default() += 1;
                    }
                }
            }
        }
    }
    let sent = Instant::now();
    // Within two reporting intervals (and a little for the last POST).
    let limit = Duration::from_secs(2 * EVERY + 3);
    let mut last = BTreeMap::new();
    while sent.elapsed() < limit {
        last = SERVERS
            .iter()
            .map(|(ip, _)| (*ip, countries(http, ip)))
            .collect::<BTreeMap<_, _>>();
        if last == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        last,
        want,
        "after {:?}\nserve: {}\ndns: {}",
        sent.elapsed(),
        serve.log(),
        alone.log()
    );
    // The API's shares: answers over its zones' answers.
    let uk = json(http, "/api/v1/servers/81.2.69.160/dns");
    let share = uk["share"].as_f64().unwrap();
    assert!(share > 0.0 && share <= 1.0, "{uk}");
}

/// The service's per-country answer counts for `ip` (an empty map before
/// the first report).
fn countries(http: u16, ip: &str) -> BTreeMap<String, u64> {
    let v = json(http, &format!("/api/v1/servers/{ip}/dns?days=1"));
    v["countries"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["country"].as_str().unwrap().to_string(),
                        c["answers"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
