//! Issue 15, the announcement's case end to end with the real binaries:
//! three agents check, with 4 samples per check, a simulated server that
//! rate-limits like ntpd (only the first query of a check answered, RATE
//! for the rest), a clean one and one behind a lossy path to one monitor.
//! What the samples say (the public server page) reads `rate-limited`,
//! `clean` and `path-loss`; the service keeps the rate-limiter in DNS (it
//! scores the best sample); `policy replay` over the stored samples keeps
//! it in under best-of-4 and drops it under all-must-answer.
//!
//! The limiter is ntpd's `discard average 3 minimum 2` scaled to the lab's
//! pace (a check every 3 s, queries 0.5 s apart): one answer per 2 s on
//! average, none within 1 s of the client's previous query. The same case
//! with a real ntpsec daemon is `ntpsec_lab.rs`.

mod common;

use common::Sim;
use common::e2e::{
    Proc, add_monitor_key, admin, assert_replay_split, fleet, free_tcp_port, free_udp_port_on, get,
    in_dns, lab_logs, page_verdict, serve_args_with, start_agents, stop_then_replay, wait_until,
};
use std::path::Path;
use std::time::{Duration, SystemTime};

const LIMITED: &str = "127.0.6.1";
const CLEAN: &str = "127.0.6.2";
const LOSSY: &str = "127.0.6.3";
/// The agents' clock references: good servers of their own.
const REFERENCE: [&str; 3] = ["127.0.6.11", "127.0.6.12", "127.0.6.13"];
/// Each agent in its own /20 (the selector's network rule); the lossy
/// path is the third one's.
const AGENTS: [(&str, &str); 3] = [
    ("m1", "127.0.16.1"),
    ("m2", "127.0.32.1"),
    ("m3", "127.0.48.1"),
];

/// The lab's service: 4 samples 0.5 s apart, every server due every 3 s,
/// all three monitors active after 6 results.
fn serve_args(dir: &Path, http: u16, ntp: u16) -> Vec<String> {
    let reference: Vec<String> = REFERENCE.iter().map(|ip| format!("{ip}:{ntp}")).collect();
    serve_args_with(
        &[
            "--interval-active",
            "3s",
            "--interval-testing",
            "3s",
            "--interval-candidate",
            "3s",
            "--samples",
            "4",
            "--sample-interval",
            "500ms",
            "--timeout",
            "400ms",
            "--rate-limit",
            "0",
            "--selector-interval",
            "2s",
            "--selector-active",
            "3",
            "--selector-testing",
            "1",
            "--selector-min-testing",
            "3",
            "--selector-min-active",
            "6",
        ],
        &format!("127.0.0.1:{http}"),
        dir,
        &reference,
    )
}

/// The verdict and the number of checks on the public server page.
fn verdict(http: u16, ip: &str) -> (String, u64) {
    let (v, checks) = page_verdict(http, ip);
    (
        v.unwrap_or_else(|| panic!("no verdict on the page of {ip}")),
        checks,
    )
}

#[test]
fn a_rate_limiter_reads_rate_limited_and_replay_splits_the_policies() {
    let all: Vec<&str> = [LIMITED, CLEAN, LOSSY]
        .into_iter()
        .chain(REFERENCE)
        .collect();
    let ntp = free_udp_port_on(&all);
    let http = free_tcp_port();
    let fleet_toml = format!(
        "{}{}{}{}",
        fleet(
            &[LIMITED],
            ntp,
            "behaviour = { rate_limit = { average = 2, minimum = 1 } }\n"
        ),
        fleet(&[CLEAN], ntp, "\n"),
        fleet(
            &[LOSSY],
            ntp,
            "behaviour = { path_loss = { \"127.0.48.1\" = 0.5 } }\n"
        ),
        fleet(&REFERENCE, ntp, "\n"),
    );
    let _sim = Sim::start(&format!("seed = 15\n{fleet_toml}"));

    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    for ip in [LIMITED, CLEAN, LOSSY] {
        admin(
            dir,
            &["server", "add", ip, "--zone", "se", "--allow-private"],
        );
    }
    let keys: Vec<String> = AGENTS
        .iter()
        .map(|(name, ip)| add_monitor_key(dir, name, ip))
        .collect();
    let started = SystemTime::now();
    let mut serve = Proc::spawn(&serve_args(dir, http, ntp));
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });
    let mut agents = start_agents(dir, http, ntp, &AGENTS, &keys);

    // About 20 checks per monitor before judging: enough for a lossy path
    // at one monitor to show against the other two.
    wait_until(
        "60 checks of every server",
        Duration::from_secs(180),
        || {
            [LIMITED, CLEAN, LOSSY]
                .iter()
                .all(|ip| verdict(http, ip).1 >= 60)
        },
    );
    let verdicts: Vec<(String, u64)> = [LIMITED, CLEAN, LOSSY]
        .iter()
        .map(|ip| verdict(http, ip))
        .collect();
    assert_eq!(
        verdicts.iter().map(|v| v.0.as_str()).collect::<Vec<_>>(),
        ["rate-limited", "clean", "path-loss"],
        "{verdicts:?}\n{}",
        lab_logs(&serve, &agents, &AGENTS)
    );
    // The service scores the best of 4 samples: the first one answers, so
    // the rate-limiter is as good as the clean server.
    wait_until("the rate-limiter in DNS", Duration::from_secs(120), || {
        in_dns(http, LIMITED) && in_dns(http, CLEAN)
    });
    // The replay counts membership every minute: let a mark or two pass.
    std::thread::sleep(Duration::from_secs(65));

    let r = stop_then_replay(&mut serve, &mut agents, dir, started);
    // Under current all three end in DNS (the lossy path is one monitor of
    // three); under all-must-answer the rate-limiter does not.
    assert_replay_split(&r, LIMITED, &[CLEAN, LOSSY]);
}
