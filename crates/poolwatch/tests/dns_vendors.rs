//! Vendor zones (issue 17) with the real binary: `admin vendor add|list|
//! remove` (bad input exits 2 and stores nothing), then `dig` against
//! `serve --dns-listen` and against `poolwatch dns --api` fed through
//! `/api/dns-zone`: an apex vendor answers as the apex for the client's
//! location, a `--zone de` vendor answers Germany's servers, `2.<vendor>`
//! has AAAA as `2.` has, and a removed vendor is NXDOMAIN after the next
//! zone refresh. Needs `dig` (bind9-dnsutils; `scripts/test` installs it).

mod common;

use common::e2e::{Proc, admin, free_tcp_port, free_udp_port_on, get, lift_scores, wait_until};
use common::{assert_usage_error, poolwatch, stderr, stdout};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const ZONE: &str = "pool.example.org";
const MMDB: &str = geo::fixtures::COUNTRY_MMDB;
/// In the GeoIP test database: a US address (ECS locates the client there).
const US_CLIENT: &str = "216.160.83.56/32";

fn admin_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["admin", "--data-dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    poolwatch(&all)
}

/// The addresses of `name`'s answer (`dig +short`), and its status.
fn dig(port: u16, name: &str, qtype: &str, extra: &[&str]) -> (String, BTreeSet<String>) {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+norec", "+time=2"])
        .args(["+tries=1", &format!("{name}.{ZONE}"), qtype])
        .args(extra)
        .output()
        .expect("cannot run dig: run scripts/test (it installs bind9-dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("no answer")
        .to_string();
    let addrs = text
        .lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    (status, addrs)
}

fn set(ips: &[&str]) -> BTreeSet<String> {
    ips.iter().map(|s| s.to_string()).collect()
}

#[test]
fn admin_vendor_refuses_bad_input_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (args, want) in [
        (
            &["vendor", "add", "Debian"][..],
            &["'Debian'", "lower case"][..],
        ),
        (&["vendor", "add", "2"], &["'2'", "number"]),
        (&["vendor", "add", "gb"], &["'gb'", "country codes"]),
        (&["vendor", "add", "europe"], &["'europe'", "own names"]),
        (&["vendor", "add", "_status"], &["'_status'", "debug"]),
        (&["vendor", "add", "www"], &["'www'", "web site"]),
        (
            &["vendor", "add", "deb.ian"],
            &["'deb.ian'", "one DNS label"],
        ),
        (
            &["vendor", "add", "debian", "--zone", "atlantis"],
            &["--zone", "'atlantis'"],
        ),
    ] {
        assert_usage_error(&admin_in(d, args), want);
    }
    let long = "x".repeat(store::VENDOR_NOTE_MAX + 1);
    assert_usage_error(
        &admin_in(d, &["vendor", "add", "debian", "--note", &long]),
        &["--note"],
    );
    let list = admin_in(d, &["vendor", "list", "--format", "json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&list)).unwrap(),
        serde_json::json!([])
    );

    // Added, listed (table and JSON), refused twice, replaced, removed.
    admin(d, &["vendor", "add", "debian", "--note", "Debian's own"]);
    admin(d, &["vendor", "add", "acme", "--zone", "GB"]);
    assert_usage_error(
        &admin_in(d, &["vendor", "add", "acme"]),
        &["already exists", "acme", "--replace"],
    );
    let table = admin(d, &["vendor", "list"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..2], ["acme", "uk"], "{table}");
    assert_eq!(rows[1][..2], ["debian", "@"], "{table}");
    assert!(rows[1].ends_with(&["Debian's", "own"]), "{table}");
    admin(
        d,
        &["vendor", "add", "acme", "--zone", "europe", "--replace"],
    );
    let json: serde_json::Value =
        serde_json::from_str(&admin(d, &["vendor", "list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["name"], "acme");
    assert_eq!(json[0]["zone"], "europe");
    assert_eq!(json[1]["note"], "Debian's own");
    admin(d, &["vendor", "remove", "acme"]);
    // An unknown name is not a usage error: exit 1, saying which.
    let gone = admin_in(d, &["vendor", "remove", "acme"]);
    assert_eq!(gone.status.code(), Some(1), "{}", stderr(&gone));
    assert!(
        stderr(&gone).contains("no vendor 'acme'"),
        "{}",
        stderr(&gone)
    );
    let json: serde_json::Value =
        serde_json::from_str(&admin(d, &["vendor", "list", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);

    // --help teaches: an example, and when a DNS server sees the change.
    let help = stdout(&poolwatch(&["admin", "vendor", "add", "--help"]));
    for want in [
        "poolwatch admin vendor add debian",
        "next zone refresh",
        "--zone",
    ] {
        assert!(help.contains(want), "{want:?} missing from {help}");
    }
}

#[test]
fn vendor_names_answer_over_dns_in_serve_and_in_poolwatch_dns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let servers = [
        ("192.0.2.10", "de"),
        ("192.0.2.11", "de"),
        ("198.51.100.10", "us"),
        ("2001:db8::10", "de"),
    ];
    for (ip, cc) in servers {
        admin(d, &["server", "add", ip, "--zone", cc, "--allow-private"]);
    }
    // In DNS without monitors: the score the in-DNS rule reads.
    lift_scores(d);
    admin(d, &["vendor", "add", "debian"]);
    admin(d, &["vendor", "add", "acme", "--zone", "de"]);

    let token = d.join("dns-token");
    std::fs::write(&token, "vendor-test-token\n").unwrap();
    let (http, dns) = (free_tcp_port(), free_udp_port_on(&["127.0.0.1"]));
    let serve: Vec<String> = [
        "serve",
        "--listen",
        &format!("127.0.0.1:{http}"),
        "--data-dir",
        d.to_str().unwrap(),
        "--rate-limit",
        "0",
        "--zone",
        ZONE,
        "--dns-listen",
        &format!("127.0.0.1:{dns}"),
        "--dns-refresh",
        "1s",
        "--dns-token-file",
        token.to_str().unwrap(),
        "--geoip",
        MMDB,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let serve = Proc::spawn(&serve);
    wait_until("serve ready", Duration::from_secs(60), || {
        get(http, "/readyz").is_some_and(|(st, _)| st == 200)
    });
    let standalone = free_udp_port_on(&["127.0.0.1"]);
    let api = format!("http://127.0.0.1:{http}");
    let dns_args: Vec<String> = [
        "dns",
        "--api",
        &api,
        "--token-file",
        token.to_str().unwrap(),
        "--zone",
        ZONE,
        "--listen",
        &format!("127.0.0.1:{standalone}"),
        "--refresh",
        "1s",
        "--geoip",
        MMDB,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let standalone_proc = Proc::spawn(&dns_args);

    let v4 = set(&["192.0.2.10", "192.0.2.11", "198.51.100.10"]);
    let de = set(&["192.0.2.10", "192.0.2.11"]);
    for port in [dns, standalone] {
        let logs = || format!("serve:\n{}\ndns:\n{}", serve.log(), standalone_proc.log());
        wait_until("the vendor names", Duration::from_secs(30), || {
            dig(port, "debian", "A", &[]).0 == "NOERROR"
        });
        // The apex vendor answers as the apex and its numbers do: every
        // IPv4 server from loopback (not located), the US one in the US.
        for name in ["debian", "0.debian", "3.DEBIAN"] {
            assert_eq!(
                dig(port, name, "A", &[]),
                ("NOERROR".into(), v4.clone()),
                "{name} {}",
                logs()
            );
            let us = dig(port, name, "A", &[&format!("+subnet={US_CLIENT}")]);
            assert_eq!(us.1, set(&["198.51.100.10"]), "{name} from the US");
        }
        // `--zone de`: Germany's servers, wherever the client is.
        for name in ["acme", "1.acme"] {
            assert_eq!(dig(port, name, "A", &[]).1, de, "{name}");
            assert_eq!(
                dig(port, name, "A", &[&format!("+subnet={US_CLIENT}")]).1,
                de,
                "{name}"
            );
        }
        // AAAA in `2.` only, as the pool's names have it.
        assert_eq!(dig(port, "2.debian", "AAAA", &[]).1, set(&["2001:db8::10"]));
        assert_eq!(dig(port, "2.acme", "AAAA", &[]).1, set(&["2001:db8::10"]));
        assert_eq!(
            dig(port, "0.debian", "AAAA", &[]),
            ("NOERROR".into(), BTreeSet::new())
        );
        // Only the five names: nothing below or beside them.
        assert_eq!(dig(port, "4.debian", "A", &[]).0, "NXDOMAIN");
        assert_eq!(dig(port, "www.debian", "A", &[]).0, "NXDOMAIN");
        // TCP answers alike.
        assert_eq!(dig(port, "acme", "A", &["+tcp"]).1, de);
    }

    // Removed: NXDOMAIN at the next refresh in both, the other stays.
    admin(d, &["vendor", "remove", "acme"]);
    for port in [dns, standalone] {
        wait_until("acme gone", Duration::from_secs(30), || {
            dig(port, "acme", "A", &[]).0 == "NXDOMAIN"
        });
        assert_eq!(dig(port, "2.acme", "AAAA", &[]).0, "NXDOMAIN");
        assert_eq!(dig(port, "debian", "A", &[]).1, v4);
    }
}
