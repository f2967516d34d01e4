//! `poolwatch dns` as an operator runs it: fed from a zone file or from a
//! (fake) central service's `GET /api/dns-zone`, asked with `dig`, watched
//! through `/metrics`. Needs `dig` (bind9-dnsutils; `scripts/test` installs it).

mod common;

use axum::http::{HeaderMap, StatusCode};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_poolwatch");
const ZONE: &str = "pool.example.org";

fn zone(serial: u32, uk_servers: &[&str]) -> dns::ZoneData {
    let mut servers: Vec<dns::DnsServer> = uk_servers
        .iter()
        .map(|ip| dns::DnsServer {
            ip: ip.parse().unwrap(),
            netspeed: 1000,
            zones: vec!["uk".into(), "europe".into(), "@".into()],
        })
        .collect();
    servers.push(dns::DnsServer {
        ip: "203.0.113.1".parse().unwrap(),
        netspeed: 1000,
        zones: vec!["us".into(), "north-america".into(), "@".into()],
    });
    let opts = dns::ZoneOptions {
        serial,
        ns: vec!["ns1".into()],
        ..dns::ZoneOptions::default()
    };
    dns::build_zone(ZONE, &servers, &opts, 1)
}

/// A running `poolwatch dns`; killed when dropped.
struct DnsProc {
    child: Child,
    addr: SocketAddr,
    /// The line it prints when it answers.
    banner: String,
    stderr: Arc<Mutex<String>>,
}

impl DnsProc {
    fn start(args: &[&str]) -> DnsProc {
        DnsProc::start_env(args, &[])
    }

    fn start_env(args: &[&str], env: &[(&str, &str)]) -> DnsProc {
        let mut child = Command::new(BIN)
            .arg("dns")
            .envs(env.iter().copied())
            .args(["--zone", ZONE, "--listen", "127.0.0.1:0"])
            .args(["--geoip", geo::fixtures::COUNTRY_MMDB])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run poolwatch dns");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no banner; stderr: {}", stderr.lock().unwrap()));
        // "dns: answering for pool.example.org on 127.0.0.1:PORT (udp+tcp)"
        let addr = line
            .split(" on ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("banner {line:?}"));
        DnsProc {
            child,
            addr,
            banner: line,
            stderr,
        }
    }

    fn dig(&self, args: &[&str]) -> String {
        let out = Command::new("dig")
            .arg("@127.0.0.1")
            .args([
                "-p",
                &self.addr.port().to_string(),
                "+norec",
                "+time=2",
                "+tries=1",
            ])
            .args(args)
            .output()
            .expect("cannot run dig: run scripts/test (it installs bind9-dnsutils)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until `f(dig output)` holds.
    fn wait_for(&self, args: &[&str], what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.dig(args);
            if f(&out) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last answer: {out}\nstderr: {}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for DnsProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn answers(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn zone_file_mode_answers_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zone.json");
    std::fs::write(&path, zone(1, &["198.51.100.1", "198.51.100.2"]).to_json()).unwrap();
    let metrics = free_port();
    let p = DnsProc::start(&[
        "--zone-file",
        path.to_str().unwrap(),
        "--metrics-listen",
        &format!("127.0.0.1:{metrics}"),
        "--refresh",
        "100ms",
    ]);
    let out = p.dig(&[ZONE, "+subnet=81.2.69.142/32"]);
    let mut got = answers(&out);
    got.sort();
    assert_eq!(got, ["198.51.100.1", "198.51.100.2"], "{out}");
    assert!(out.contains("status: NOERROR"));
    let out = p.dig(&[&format!("nosuch.{ZONE}")]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");

    // The file changes: the next refresh serves it.
    std::fs::write(&path, zone(2, &["198.51.100.3"]).to_json()).unwrap();
    p.wait_for(
        &[ZONE, "+subnet=81.2.69.142/32", "+short"],
        "the new file",
        |o| o.trim() == "198.51.100.3",
    );
    // A broken file: the last good zone stays.
    std::fs::write(&path, "{ not json").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        p.dig(&[ZONE, "+subnet=81.2.69.142/32", "+short"]).trim(),
        "198.51.100.3"
    );
    assert!(p.stderr.lock().unwrap().contains("zone refresh failed"));

    let body = metrics_text(metrics);
    for want in [
        r#"poolwatch_dns_queries_total{zone="uk",qtype="A",rcode="NOERROR"}"#,
        r#"poolwatch_dns_queries_total{zone="-",qtype="A",rcode="NXDOMAIN"}"#,
        "poolwatch_dns_answer_records_total",
        "poolwatch_dns_zone_serial 2",
        "poolwatch_dns_zone_refresh_failures_total",
    ] {
        assert!(body.contains(want), "/metrics lacks {want}:\n{body}");
    }
}

fn metrics_text(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// A fake central service: `GET /api/dns-zone` with `Bearer secret`; the
/// zone JSON is whatever `zone` holds (`None`: 503, the service is down).
fn fake_service(zone: Arc<Mutex<Option<String>>>) -> SocketAddr {
    let app = axum::Router::new().route(
        "/api/dns-zone",
        axum::routing::get(move |headers: HeaderMap| {
            let zone = zone.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                if auth != Some("Bearer secret") {
                    return (StatusCode::UNAUTHORIZED, "bad token".to_string());
                }
                match zone.lock().unwrap().clone() {
                    Some(z) => (StatusCode::OK, z),
                    None => (StatusCode::SERVICE_UNAVAILABLE, "down".to_string()),
                }
            }
        }),
    );
    common::serve_router(app)
}

#[test]
fn api_mode_keeps_the_last_good_zone_while_the_service_is_down() {
    let state = Arc::new(Mutex::new(None));
    let api = fake_service(state.clone());
    let url = format!("http://{api}");
    let p = DnsProc::start(&["--api", &url, "--token", "secret", "--refresh", "100ms"]);
    // Before the first zone: SERVFAIL, so resolvers ask another server.
    assert!(p.dig(&[ZONE]).contains("status: SERVFAIL"));
    *state.lock().unwrap() = Some(zone(10, &["198.51.100.1"]).to_json());
    p.wait_for(&[ZONE, "SOA", "+short"], "serial 10", |o| {
        o.contains(" 10 ")
    });
    assert_eq!(
        p.dig(&[ZONE, "+subnet=81.2.69.142/32", "+short"]).trim(),
        "198.51.100.1"
    );

    // The service goes down: answers continue from serial 10.
    *state.lock().unwrap() = None;
    std::thread::sleep(Duration::from_millis(500));
    assert!(p.dig(&[ZONE, "SOA", "+short"]).contains(" 10 "));
    assert_eq!(
        p.dig(&[ZONE, "+subnet=81.2.69.142/32", "+short"]).trim(),
        "198.51.100.1"
    );
    let log = p.stderr.lock().unwrap().clone();
    assert!(
        log.contains("zone refresh failed") && log.contains("503"),
        "{log}"
    );

    // It comes back with a new zone.
    *state.lock().unwrap() = Some(zone(11, &["198.51.100.2"]).to_json());
    p.wait_for(
        &[ZONE, "+subnet=81.2.69.142/32", "+short"],
        "serial 11",
        |o| o.trim() == "198.51.100.2",
    );
    drop(p);

    // A wrong token is reported.
    let bad = DnsProc::start(&["--api", &url, "--token", "wrong", "--refresh", "100ms"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bad.stderr.lock().unwrap().contains("401") {
        assert!(Instant::now() < deadline, "{}", bad.stderr.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(bad.dig(&[ZONE]).contains("status: SERVFAIL"));
}

/// `dig +short` lines, sorted.
fn short(out: &str) -> Vec<String> {
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn several_zones_each_with_its_soa_and_ns() {
    const NET: &str = "pool.example.net";
    let mut data = zone(3, &["198.51.100.1", "198.51.100.2", "2001:db8:1::1"]);
    // A zone file may name its servers relative to each name.
    data.data.get_mut("").unwrap().ns = vec!["ns1".into(), "ns.example.com.".into()];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zone.json");
    std::fs::write(&path, data.to_json()).unwrap();
    let p = DnsProc::start(&["--zone", NET, "--zone-file", path.to_str().unwrap()]);
    assert!(
        p.banner
            .starts_with(&format!("dns: answering for {ZONE}, {NET} on ")),
        "{}",
        p.banner
    );
    for origin in [ZONE, NET] {
        let uk = "+subnet=81.2.69.142/32";
        let out = p.dig(&[origin, uk]);
        assert!(
            out.contains("status: NOERROR") && out.contains("flags: qr aa;"),
            "{out}"
        );
        let mut got = answers(&out);
        got.sort();
        assert_eq!(got, ["198.51.100.1", "198.51.100.2"], "{out}");
        let out = p.dig(&[origin, "+tcp", "+subnet=216.160.83.56/29", "+short"]);
        assert_eq!(out.trim(), "203.0.113.1", "{origin} over TCP: {out}");
        let v6 = p.dig(&[&format!("2.{origin}"), "AAAA", uk, "+short"]);
        assert_eq!(v6.trim(), "2001:db8:1::1", "{origin}: {v6}");
        let soa = p.dig(&[origin, "SOA", "+short"]);
        assert!(
            soa.starts_with(&format!("ns1.{origin}. hostmaster.{origin}. 3 ")),
            "{origin}: {soa}"
        );
        let ns = p.dig(&[origin, "NS", "+short"]);
        assert_eq!(
            short(&ns),
            ["ns.example.com.".to_string(), format!("ns1.{origin}.")],
            "{origin}: {ns}"
        );
        let status = p.dig(&[&format!("_status.{origin}"), "TXT", "+short"]);
        assert!(status.contains("\"serial 3\""), "{origin}: {status}");
        // NXDOMAIN carries the SOA of the name asked under.
        let out = p.dig(&[&format!("nosuch.{origin}")]);
        assert!(out.contains("status: NXDOMAIN"), "{out}");
        let authority = out
            .lines()
            .skip_while(|l| !l.starts_with(";; AUTHORITY SECTION:"))
            .nth(1)
            .unwrap_or_default()
            .to_string();
        assert!(
            authority.starts_with(&format!("{origin}."))
                && authority.contains(&format!("ns1.{origin}.")),
            "{origin}: {out}"
        );
    }
    // A third name, and the parent of one of them, are not ours.
    for other in ["pool.example.com", "example.net"] {
        let out = p.dig(&[other]);
        assert!(out.contains("status: REFUSED"), "{other}: {out}");
    }
}

#[test]
fn a_second_server_on_the_port_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zone.json");
    std::fs::write(&path, zone(1, &["198.51.100.1"]).to_json()).unwrap();
    let path = path.to_str().unwrap();
    let p = DnsProc::start(&["--zone-file", path]);
    // UDP sockets share the port with SO_REUSEPORT; a second server must
    // not silently take a share of the queries.
    let o = Command::new(BIN)
        .args(["dns", "--zone", ZONE, "--zone-file", path])
        .args(["--listen", &p.addr.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--listen: cannot listen for DNS on"), "{err}");
    for _ in 0..20 {
        let out = p.dig(&[ZONE, "+subnet=81.2.69.142/32", "+short"]);
        assert_eq!(out.trim(), "198.51.100.1", "{out}");
    }
}

#[test]
fn usage_errors() {
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("dns")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[").unwrap();
    let bad = bad.to_str().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, zone(1, &["198.51.100.1"]).to_json()).unwrap();
    let good = good.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--zone", ZONE, "--listen", "127.0.0.1:0"], "--api"),
        (
            &[
                "--zone",
                "bad name",
                "--zone-file",
                bad,
                "--listen",
                "127.0.0.1:0",
            ],
            "bad name",
        ),
        (
            &[
                "--zone",
                ZONE,
                "--zone-file",
                bad,
                "--listen",
                "127.0.0.1:0",
            ],
            "bad.json",
        ),
        (
            &[
                "--zone",
                ZONE,
                "--zone",
                "Pool.Example.ORG.",
                "--zone-file",
                good,
                "--listen",
                "127.0.0.1:0",
            ],
            "--zone: zone name \"Pool.Example.ORG.\" is given twice",
        ),
        (
            &[
                "--zone",
                ZONE,
                "--api",
                "ftp://x",
                "--token",
                "t",
                "--listen",
                "127.0.0.1:0",
            ],
            "http",
        ),
        (
            &[
                "--zone",
                ZONE,
                "--api",
                "http://127.0.0.1:1",
                "--listen",
                "127.0.0.1:0",
            ],
            "token",
        ),
        (
            &[
                "--zone",
                ZONE,
                "--zone-file",
                good,
                "--geoip",
                "/nonexistent.mmdb",
                "--listen",
                "127.0.0.1:0",
            ],
            "nonexistent.mmdb",
        ),
        (
            &[
                "--zone",
                ZONE,
                "--zone-file",
                good,
                "--dns-rrl-ipv4-prefix",
                "33",
                "--listen",
                "127.0.0.1:0",
            ],
            "--dns-rrl-ipv4-prefix",
        ),
        (
            &[
                "--zone",
                ZONE,
                "--zone-file",
                good,
                "--dns-rrl-size",
                "10",
                "--listen",
                "127.0.0.1:0",
            ],
            "size",
        ),
    ];
    for (args, want) in cases {
        let o = run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// A bare query for `ZONE` A with id `id` (no EDNS).
fn raw_query(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ZONE.split('.') {
        q.push(label.len() as u8);
        q.extend(label.as_bytes());
    }
    q.extend([0, 0, 1, 0, 1]);
    q
}

/// Sends `n` queries back to back in bursts of 20 (each drained before
/// the next); (answered, truncated) replies.
fn flood(addr: SocketAddr, n: u16) -> (usize, usize) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let (mut answered, mut truncated) = (0, 0);
    let mut buf = [0u8; 1500];
    for id in 0..n {
        sock.send_to(&raw_query(id), addr).unwrap();
        if id % 20 == 19 || id == n - 1 {
            while let Ok((len, _)) = sock.recv_from(&mut buf) {
                // TC is bit 1 of byte 2; ANCOUNT is bytes 6-7.
                let ancount = u16::from_be_bytes([buf[6], buf[7]]);
                match (buf[2] & 0x02 != 0, ancount) {
                    (true, 0) => truncated += 1,
                    (false, 1..) => answered += 1,
                    _ => panic!("unexpected reply {:?}", &buf[..len]),
                }
            }
        }
    }
    (answered, truncated)
}

#[test]
fn rate_limiting_flags_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zone.json");
    std::fs::write(&path, zone(1, &["198.51.100.1"]).to_json()).unwrap();
    let path = path.to_str().unwrap();
    let metrics = free_port();
    let p = DnsProc::start(&[
        "--zone-file",
        path,
        "--metrics-listen",
        &format!("127.0.0.1:{metrics}"),
        "--dns-rrl-rate",
        "5",
        "--dns-rrl-slip",
        "3",
    ]);
    let (answered, truncated) = flood(p.addr, 300);
    // 5 a second (twice that in the first second), whichever seconds the
    // flood spans; every third of the others truncated.
    assert!((5..=40).contains(&answered), "{answered} answered");
    let limited = 300 - answered;
    assert!(
        truncated.abs_diff(limited / 3) <= 3,
        "{truncated} of {limited}"
    );
    // TCP is not limited.
    let out = p.dig(&[ZONE, "+tcp", "+subnet=81.2.69.142/32", "+short"]);
    assert_eq!(out.trim(), "198.51.100.1", "{out}");
    let body = metrics_text(metrics);
    for want in [
        r#"poolwatch_dns_rrl_total{action="dropped"}"#,
        r#"poolwatch_dns_rrl_total{action="slipped"}"#,
    ] {
        assert!(body.contains(want), "/metrics lacks {want}:\n{body}");
    }
    drop(p);

    // Off: every query answered (the variable form of the flag).
    let p = DnsProc::start_env(&["--zone-file", path], &[("POOLWATCH_DNS_RRL_RATE", "0")]);
    assert_eq!(flood(p.addr, 300), (300, 0));
}
