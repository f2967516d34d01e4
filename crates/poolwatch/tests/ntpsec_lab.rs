//! Issue 15, the announcement's case with a real daemon: ntpsec's `ntpd`
//! on loopback with `restrict default kod limited`, checked by three real
//! agents with 4 samples 2 s apart. ntpsec 1.2 has no `discard average 3
//! minimum 2`; with its `limit average 1.1 burst 1` it answers samples 1
//! and 3 of each check and sends RATE for 2 and 4 (measured on ntpsec
//! 1.2.2: the first query of a check is always answered, the limit is
//! back down within 6 s; burst 1 with average 1 or less never lets a
//! client back in, burst 2 with average 1 limits nothing). The log row
//! keeps each check's best sample, an answer; the RATEs are in the
//! samples. What the samples say (the public server page) reads
//! `rate-limited`; the service, scoring the best sample, keeps it in DNS;
//! `policy replay` keeps it in under best-of-4 and drops it under
//! all-must-answer.
//!
//! ntpsec conflicts with chrony in apt, so `scripts/test` unpacks its .deb
//! and names the binary in `POOLWATCH_TEST_NTPD`. ntpsec has no port option
//! and binds udp/123, so the test needs root (CI runs as root). Without
//! either, the test says why and passes.

mod common;

use common::Sim;
use common::e2e::{
    Proc, add_monitor_key, admin, assert_replay_split, fleet, free_tcp_port, free_udp_port_on, get,
    in_dns, lab_logs, page_verdict, serve_args_with, start_agents, stop_then_replay, wait_until,
};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// ntpsec listens on the loopback interface's address.
const NTPD_IP: &str = "127.0.0.1";
const REFERENCE: [&str; 3] = ["127.0.7.11", "127.0.7.12", "127.0.7.13"];
const AGENTS: [(&str, &str); 3] = [
    ("n1", "127.0.16.1"),
    ("n2", "127.0.32.1"),
    ("n3", "127.0.48.1"),
];

/// Orphan mode (stratum 5, no upstream, the clock left alone), listening
/// on loopback only, every client rate-limited with RATE kiss-o'-death.
const NTP_CONF: &str = "\
tos orphan 5 orphanwait 0
interface ignore wildcard
interface listen 127.0.0.1
restrict default kod limited nomodify noquery
limit average 1.1 burst 1 kod 10
disable kernel
";

fn ntpd() -> Result<PathBuf, String> {
    let bin = std::env::var_os("POOLWATCH_TEST_NTPD")
        .map(PathBuf::from)
        .ok_or("POOLWATCH_TEST_NTPD is not set (scripts/test sets it)")?;
    if !bin.exists() {
        return Err(format!("{} does not exist", bin.display()));
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        return Err("ntpsec binds udp/123, which needs root".into());
    }
    if UdpSocket::bind((NTPD_IP, 123)).is_err() {
        return Err(format!("{NTPD_IP}:123 is taken"));
    }
    Ok(bin)
}

fn start_ntpd(bin: &Path, dir: &Path) -> Proc {
    let conf = dir.join("ntp.conf");
    std::fs::write(
        &conf,
        format!("{NTP_CONF}driftfile {}\n", dir.join("drift").display()),
    )
    .unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-n")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir.join("ntpd.pid"))
        .arg("-l")
        .arg(dir.join("ntpd.log"));
    let p = Proc::spawn_cmd(&mut cmd);
    wait_until("ntpd to listen", Duration::from_secs(20), || {
        UdpSocket::bind((NTPD_IP, 123)).is_err()
    });
    p
}

#[test]
fn ntpsec_limited_reads_rate_limited() {
    let bin = match ntpd() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let _ntpd = start_ntpd(&bin, dir);
    let ref_port = free_udp_port_on(&REFERENCE);
    let _sim = Sim::start(&fleet(&REFERENCE, ref_port, "\n"));
    let reference: Vec<String> = REFERENCE
        .iter()
        .map(|ip| format!("{ip}:{ref_port}"))
        .collect();

    admin(
        dir,
        &["server", "add", NTPD_IP, "--zone", "se", "--allow-private"],
    );
    let keys: Vec<String> = AGENTS
        .iter()
        .map(|(name, ip)| add_monitor_key(dir, name, ip))
        .collect();
    let http = free_tcp_port();
    let started = SystemTime::now();
    let mut serve = Proc::spawn(&serve_args_with(
        &[
            "--interval-active",
            "10s",
            "--interval-testing",
            "10s",
            "--interval-candidate",
            "10s",
            "--samples",
            "4",
            "--sample-interval",
            "2s",
            "--timeout",
            "1s",
            "--rate-limit",
            "0",
        ],
        &format!("127.0.0.1:{http}"),
        dir,
        &reference,
    ));
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });
    let mut agents = start_agents(dir, http, 123, &AGENTS, &keys);
    let logs = || {
        format!(
            "ntpd:\n{}\n{}",
            std::fs::read_to_string(dir.join("ntpd.log")).unwrap_or_default(),
            lab_logs(&serve, &agents, &AGENTS)
        )
    };
    // The verdict needs 8 checks at a monitor; 3 monitors every 10 s.
    let verdict = || page_verdict(http, NTPD_IP).0;
    let limit = Duration::from_secs(240);
    let start = std::time::Instant::now();
    while start.elapsed() < limit && verdict().as_deref() == Some("not-enough-data") {
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(verdict().as_deref(), Some("rate-limited"), "{}", logs());
    // The best of 4 is an answered sample: the service keeps it in DNS.
    wait_until("ntpsec in DNS", Duration::from_secs(240), || {
        in_dns(http, NTPD_IP)
    });
    // The replay counts membership every minute: let a mark or two pass.
    std::thread::sleep(Duration::from_secs(65));

    let r = stop_then_replay(&mut serve, &mut agents, dir, started);
    assert_replay_split(&r, NTPD_IP, &[]);
}
