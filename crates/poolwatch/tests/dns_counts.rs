//! `poolwatch dns` reports its answer counts (issue 17 item 3): real `dig`
//! queries as clients in the UK, Sweden, the US and nowhere, over UDP and
//! TCP; the addresses dig received, counted here, must equal what reaches
//! a receiver standing in for the service's `POST /api/dns-counts`, also
//! when the receiver fails for a while, and at SIGTERM.

mod common;

use axum::http::{HeaderMap, StatusCode};
use common::e2e::Proc;
use dns::{CountReport, CountsStored};
use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ZONE: &str = "pool.example.org";
/// The reporting interval, seconds.
const EVERY: i64 = 2;

/// Per server address, per country: addresses answered.
type Tally = BTreeMap<String, BTreeMap<String, u64>>;

/// What the receiver saw.
#[derive(Default)]
struct Received {
    /// Reports accepted, in order.
    stored: Vec<CountReport>,
    /// Every POST's report id, accepted or not.
    attempts: Vec<String>,
    /// POSTs still to fail with 500.
    fail: usize,
}

fn receiver(state: Arc<Mutex<Received>>) -> SocketAddr {
    let app = axum::Router::new().route(
        dns::COUNTS_PATH,
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                if auth != Some("Bearer secret") {
                    return (StatusCode::UNAUTHORIZED, "bad token".to_string());
                }
                let report: CountReport = match serde_json::from_str(&body) {
                    Ok(r) => r,
                    Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()),
                };
                let mut s = state.lock().unwrap();
                s.attempts.push(report.report_id.clone());
                if s.fail > 0 {
                    s.fail -= 1;
                    return (StatusCode::INTERNAL_SERVER_ERROR, "down".to_string());
                }
                let new = !s.stored.iter().any(|r| r.report_id == report.report_id);
                let stored = CountsStored {
                    new,
                    servers: report.servers.len(),
                    unknown: 0,
                };
                if new {
                    s.stored.push(report);
                }
                (StatusCode::OK, serde_json::to_string(&stored).unwrap())
            }
        }),
    );
    common::serve_router(app)
}

/// Three servers in each of the UK, Sweden and the US; one IPv6 each.
fn zone_file(dir: &std::path::Path) -> String {
    let mut servers = Vec::new();
    for (i, cc) in ["uk", "se", "us"].iter().enumerate() {
        for j in 1..=3u32 {
            servers.push(dns::DnsServer {
                ip: format!("198.51.100.{}", i * 10 + j as usize)
                    .parse()
                    .unwrap(),
                netspeed: 1000 * j,
                zones: geo::zones_for_country(cc).unwrap(),
            });
        }
        servers.push(dns::DnsServer {
            ip: format!("2001:db8:{i}::1").parse().unwrap(),
            netspeed: 1000,
            zones: geo::zones_for_country(cc).unwrap(),
        });
    }
    let path = dir.join("zone.json");
    let z = dns::build_zone(ZONE, &servers, &dns::ZoneOptions::default(), 1);
    std::fs::write(&path, z.to_json()).unwrap();
    path.to_str().unwrap().to_string()
}

/// A port free for both UDP and TCP on loopback.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+norec",
            "+time=3",
            "+tries=1",
        ])
        .args(args)
        .output()
        .expect("cannot run dig: run scripts/test (it installs bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The addresses in dig's answer section.
fn addresses(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            matches!(f.get(3), Some(&"A") | Some(&"AAAA")).then(|| f[4].to_string())
        })
        .collect()
}

/// Asks every name as every client over UDP and TCP; adds what dig got.
fn ask_all(port: u16, tally: &mut Tally) {
    let clients = [
        (Some("81.2.69.142/32"), "uk"),
        (Some("89.160.20.112/32"), "se"),
        (Some("216.160.83.56/32"), "us"),
        (None, dns::UNKNOWN_COUNTRY),
    ];
    for (subnet, country) in clients {
        for (name, qtype) in [
            (ZONE.to_string(), "A"),
            (format!("1.{ZONE}"), "A"),
            (format!("2.{ZONE}"), "AAAA"),
        ] {
            for tcp in [false, true] {
                let mut args = vec![name.as_str(), qtype];
                let sub = subnet.map(|s| format!("+subnet={s}"));
                if let Some(s) = &sub {
                    args.push(s);
                }
                if tcp {
                    args.push("+tcp");
                }
                let out = dig(port, &args);
                let got = addresses(&out);
                assert!(!got.is_empty(), "{args:?}: {out}");
                for ip in got {
                    *tally
                        .entry(ip)
                        .or_default()
                        .entry(country.to_string())
                        .or_default() += 1;
                }
            }
        }
    }
}

/// The per-server answers of every stored report, summed.
fn summed(reports: &[CountReport]) -> Tally {
    let mut out = Tally::new();
    for r in reports {
        for s in &r.servers {
            for (country, n) in &s.answers {
                *out.entry(s.ip.to_string())
                    .or_default()
                    .entry(country.clone())
                    .or_default() += n;
            }
        }
    }
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Waits until the stored reports add up to `want`; the reports stored.
fn wait_for_sum(state: &Mutex<Received>, want: &Tally, p: &Proc) -> Vec<CountReport> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = state.lock().unwrap().stored.clone();
        if summed(&stored) == *want {
            return stored;
        }
        assert!(
            Instant::now() < deadline,
            "reports {:?}\nnot {want:?}\nlog: {}",
            summed(&stored),
            p.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn counts_reach_the_service_exactly_once_as_dig_saw_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(Mutex::new(Received::default()));
    let api = receiver(state.clone());
    let port = free_port();
    let metrics = common::e2e::free_tcp_port();
    let args: Vec<String> = [
        "dns",
        "--zone",
        ZONE,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--geoip",
        geo::fixtures::COUNTRY_MMDB,
        "--zone-file",
        &zone_file(dir.path()),
        "--api",
        &format!("http://{api}"),
        "--token",
        "secret",
        "--count-interval",
        &format!("{EVERY}s"),
        "--metrics-listen",
        &format!("127.0.0.1:{metrics}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut p = Proc::spawn(&args);
    // Up when the SOA answers (not an address answer: not counted).
    common::e2e::wait_until("dns answers", Duration::from_secs(20), || {
        dig(port, &[ZONE, "SOA", "+short"]).contains(ZONE)
    });

    // Round 1: the answers dig got reach the service within two intervals.
    let mut tally = Tally::new();
    let mut want = Tally::new();
    ask_all(port, &mut tally);
    let asked = now();
    add(&mut want, &tally);
    let stored = wait_for_sum(&state, &want, &p);
    let last = stored.last().unwrap();
    assert!(
        last.to <= asked + 2 * EVERY + 1,
        "counted at {} for answers until {asked}",
        last.to
    );
    assert!(tally.keys().any(|ip| ip.contains(':')), "AAAA answers too");
    for c in ["uk", "se", "us", dns::UNKNOWN_COUNTRY] {
        assert!(tally.values().any(|m| m.contains_key(c)), "{c}");
    }

    // Round 2: the service fails the next three POSTs; nothing is lost and
    // nothing stored twice.
    state.lock().unwrap().fail = 3;
    let mut more = Tally::new();
    ask_all(port, &mut more);
    add(&mut want, &more);
    let stored = wait_for_sum(&state, &want, &p);
    let s = state.lock().unwrap();
    let ids: HashSet<&String> = stored.iter().map(|r| &r.report_id).collect();
    assert_eq!(ids.len(), stored.len(), "a report stored twice");
    // Every id attempted was stored once in the end: the failed ones were
    // sent again as they were.
    assert!(
        s.attempts.iter().all(|id| ids.contains(id)),
        "{:?}",
        s.attempts
    );
    assert_eq!(s.attempts.len(), stored.len() + 3, "{:?}", s.attempts);
    drop(s);
    let body = common::e2e::get(metrics, "/metrics").unwrap().1;
    for want in [
        r#"poolwatch_dns_count_reports_total{result="sent"}"#,
        r#"poolwatch_dns_count_reports_total{result="failed"} 3"#,
        "poolwatch_dns_count_backlog_reports 0",
    ] {
        assert!(body.contains(want), "/metrics lacks {want}:\n{body}");
    }

    // Round 3: answers just before SIGTERM go out in the last report.
    let mut last = Tally::new();
    ask_all(port, &mut last);
    add(&mut want, &last);
    p.signal("TERM");
    assert_eq!(p.wait(Duration::from_secs(20)), Some(0), "{}", p.log());
    assert_eq!(summed(&state.lock().unwrap().stored), want);
}

fn add(to: &mut Tally, from: &Tally) {
    for (ip, m) in from {
        for (c, n) in m {
            *to.entry(ip.clone())
                .or_default()
                .entry(c.clone())
                .or_default() += n;
        }
    }
}

#[test]
fn without_api_nothing_is_reported_and_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let args: Vec<String> = [
        "dns",
        "--zone",
        ZONE,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--zone-file",
        &zone_file(dir.path()),
        "--count-interval",
        "1s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let p = Proc::spawn(&args);
    common::e2e::wait_until("dns answers", Duration::from_secs(20), || {
        !addresses(&dig(port, &[ZONE])).is_empty()
    });
    assert!(
        p.log()
            .contains("answer counts are not reported (nowhere to send them)"),
        "{}",
        p.log()
    );
}
