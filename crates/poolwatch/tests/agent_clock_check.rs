//! A service that names no reference servers turns the agent's clock
//! check off; the real agent says so: a warning once per config received
//! (at start and when it changes, not on every check) and
//! `poolwatch_agent_clock_check_disabled`, against a fake service on
//! 127.0.0.1.

mod common;

use common::e2e::free_tcp_port;
use common::fake_api::{FakeApi, Reply, agent, config, idle, metric};
use std::time::{Duration, Instant};

/// The gauge follows the config the agent received: 1 with no reference
/// servers, 0 with some (and then no warning).
#[test]
fn clock_check_disabled_gauge() {
    for (refs, want) in [(&[][..], 1.0), (&["127.0.0.1:9"][..], 0.0)] {
        let api = FakeApi::start(if refs.is_empty() {
            |p, _| match p {
                p if p.ends_with("/config") => config(&[], 2),
                p if p.ends_with("/work") => idle(),
                _ => Reply::Json(String::new()),
            }
        } else {
            |p, _| match p {
                p if p.ends_with("/config") => config(&["127.0.0.1:9"], 2),
                p if p.ends_with("/work") => idle(),
                _ => Reply::Json(String::new()),
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let a = agent(&api, dir.path(), port);
        let series = "poolwatch_agent_clock_check_disabled ";
        common::e2e::wait_until("the clock gauge", Duration::from_secs(20), || {
            metric(port, series).is_some()
        });
        assert_eq!(metric(port, series), Some(want), "{refs:?}");
        assert_eq!(
            a.log().contains("clock check disabled"),
            refs.is_empty(),
            "{}",
            a.log()
        );
    }
}

/// The config is read again after every failed work call; the warning
/// comes once per config: at start, and again only when it changed.
#[test]
fn warned_once_per_config() {
    let api = FakeApi::start(|p, n| match p {
        // The config changes once, at its third read.
        p if p.ends_with("/config") => config(&[], if n < 2 { 2 } else { 3 }),
        p if p.ends_with("/work") => Reply::Unavailable,
        _ => Reply::Json(String::new()),
    });
    let dir = tempfile::tempdir().unwrap();
    let a = agent(&api, dir.path(), free_tcp_port());
    let start = Instant::now();
    while api.times("/config").len() < 5 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = a.log();
    assert!(api.times("/config").len() >= 5, "{log}");
    assert_eq!(log.matches("clock check disabled").count(), 2, "{log}");
}
