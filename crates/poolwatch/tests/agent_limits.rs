//! The real `poolwatch agent --lab` against a fake service on 127.0.0.1
//! that answers with oversized bodies (a 300 MB declared length sent for
//! real, a chunked body that never ends, a 500 with a 300 MB body): the
//! agent's memory stays bounded, it backs off between attempts (no hot
//! loop), counts each refusal and keeps running.

mod common;

use common::e2e::free_tcp_port;
use common::fake_api::{FakeApi, Reply, agent, config, idle, metric, peak_rss};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Run the agent against `route` for a while; check it stays small,
/// backs off between calls to `path` and keeps running; returns its log
/// and metrics port.
fn survives(name: &str, route: fn(&str, usize) -> Reply, path: &str, series: &str) -> String {
    let api = FakeApi::start(route);
    let dir = tempfile::tempdir().unwrap();
    let metrics = free_tcp_port();
    let mut a = agent(&api, dir.path(), metrics);
    let start = Instant::now();
    while api.times(path).len() < 4 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the last attempt finish before reading the counters.
    std::thread::sleep(Duration::from_millis(500));
    let peak = peak_rss(a.pid());
    let times = api.times(path);
    let sent = api.sent.load(Ordering::Relaxed);
    let counted = metric(metrics, series);
    let log = a.log();
    eprintln!(
        "{name}: VmHWM {:.1} MiB, {} calls to {path}, gaps {:?}, the service pushed {:.1} MiB",
        peak as f64 / 1048576.0,
        times.len(),
        times
            .windows(2)
            .map(|w| w[1] - w[0])
            .map(|d| format!("{:.2}s", d.as_secs_f64()))
            .collect::<Vec<_>>(),
        sent as f64 / 1048576.0
    );
    assert!(a.running(), "{name}: the agent exited:\n{log}");
    assert!(
        times.len() >= 4,
        "{name}: the agent stopped retrying:\n{log}"
    );
    // Back-off: at least 0.7 × the 1 s minimum (its jitter) between tries.
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(650),
            "{name}: retried after {:?} (hot loop?):\n{log}",
            w[1] - w[0]
        );
    }
    // Far below the 300 MB bodies: the agent read at most its cap.
    assert!(
        peak < 100 * 1024 * 1024,
        "{name}: the agent's peak memory was {peak} bytes"
    );
    assert!(
        counted.is_some_and(|n| n >= 3.0),
        "{name}: {series} = {counted:?}"
    );
    log
}

#[test]
fn oversized_config_answer() {
    let log = survives(
        "config, 300 MB Content-Length",
        |p, _| match p {
            p if p.ends_with("/config") => Reply::HugeLength,
            _ => idle(),
        },
        "/config",
        r#"poolwatch_agent_api_body_too_large_total{kind="config",part="answer"}"#,
    );
    assert!(
        log.contains("config answer (status 200) is larger than the 262144 bytes the agent reads"),
        "{log}"
    );
}

#[test]
fn endless_chunked_work_answer() {
    let log = survives(
        "work, endless chunks",
        |p, _| match p {
            p if p.ends_with("/config") => config(&[], 2),
            p if p.ends_with("/work") => Reply::EndlessChunks,
            _ => Reply::Json(String::new()),
        },
        "/work",
        r#"poolwatch_agent_api_body_too_large_total{kind="work",part="answer"}"#,
    );
    // 64 KiB + 10 servers × 512 B for the batch size of 10.
    assert!(
        log.contains("work answer (status 200) is larger than the 70656 bytes"),
        "{log}"
    );
}

#[test]
fn error_with_a_huge_body() {
    let log = survives(
        "work, 500 with 300 MB",
        |p, _| match p {
            p if p.ends_with("/config") => config(&[], 2),
            p if p.ends_with("/work") => Reply::HugeError,
            _ => Reply::Json(String::new()),
        },
        "/work",
        r#"poolwatch_agent_api_body_too_large_total{kind="work",part="error"}"#,
    );
    // The error is logged with the first 500 characters of its body.
    let cut = format!("service error 500: {}; retrying", " ".repeat(500));
    assert!(log.contains(&cut), "{log}");
}
