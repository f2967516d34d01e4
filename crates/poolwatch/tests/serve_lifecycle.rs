//! `serve`'s life as an operator and a load balancer see it (issue 16),
//! with the real binary: /healthz and /readyz; SIGTERM turns readiness
//! off first, keeps serving through the drain delay, then exits 0; a
//! second SQLite serve on one data directory is refused, naming the
//! first, while `admin` still works; two serve on one PostgreSQL run each
//! singleton job once, the other takes the jobs of one hung (SIGSTOP),
//! which stops them when resumed, and of one stopped.

mod common;

use common::e2e::{Proc, admin, free_tcp_port, get, wait_until};
use common::pg::TestPg;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn serve_args(dir: &Path, port: u16, name: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
        dir.to_str().unwrap(),
        "--instance-name",
        name,
        "--rate-limit",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn status(port: u16, path: &str) -> Option<u16> {
    get(port, path).map(|(s, _)| s)
}

/// The value of `poolwatch_job_lease_held{job="JOB"}` on the instance.
fn lease_held(port: u16, job: &str) -> Option<u8> {
    let (_, text) = get(port, "/metrics")?;
    let want = format!("poolwatch_job_lease_held{{job=\"{job}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn sqlite_serve_probes_drains_on_sigterm_and_keeps_a_second_one_out() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let mut one = Proc::spawn(&serve_args(
        dir.path(),
        port,
        "life-1",
        &["--drain-delay", "4s", "--shutdown-grace", "9s"],
    ));
    wait_until("/healthz", Duration::from_secs(30), || {
        status(port, "/healthz") == Some(200)
    });
    assert_eq!(get(port, "/readyz"), Some((200, "ready\n".into())));
    // One process runs every job on SQLite.
    assert_eq!(lease_held(port, "selector"), Some(1));

    let second = Command::new(common::BIN)
        .args(serve_args(dir.path(), free_tcp_port(), "life-2", &[]))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{err}");
    assert!(
        err.contains("another poolwatch serve already runs"),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", one.pid())), "{err}");
    assert!(err.contains("instance life-1"), "{err}");
    // admin is not kept out.
    assert!(admin(dir.path(), &["zone", "list"]).contains("ZONE"));

    one.signal("TERM");
    // Not ready at once, still answering meanwhile.
    wait_until("/readyz 503", Duration::from_secs(3), || {
        get(port, "/readyz").is_some_and(|(s, b)| s == 503 && b.contains("draining"))
    });
    assert_eq!(status(port, "/healthz"), Some(200));
    assert_eq!(one.wait(Duration::from_secs(20)), Some(0), "{}", one.log());
    let log = one.log();
    assert!(log.contains("draining"), "{log}");

    // The lock went with the process: a new serve starts.
    let mut again = Proc::spawn(&serve_args(dir.path(), port, "life-3", &[]));
    wait_until("the next serve", Duration::from_secs(30), || {
        status(port, "/readyz") == Some(200)
    });
    again.signal("TERM");
    assert_eq!(
        again.wait(Duration::from_secs(20)),
        Some(0),
        "{}",
        again.log()
    );
}

#[test]
fn two_serve_on_postgresql_run_each_singleton_job_once() {
    let Some(db) = TestPg::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (free_tcp_port(), free_tcp_port());
    let pg = ["--database-url", db.url.as_str(), "--drain-delay", "1s"];
    // Separate data directories: nothing but the database is shared.
    let (da, dbd) = (dir.path().join("a"), dir.path().join("b"));
    let a = Proc::spawn(&serve_args(&da, pa, "web-a", &pg));
    let b = Proc::spawn(&serve_args(&dbd, pb, "web-b", &pg));
    wait_until("both ready", Duration::from_secs(60), || {
        status(pa, "/readyz") == Some(200) && status(pb, "/readyz") == Some(200)
    });
    let jobs = ["selector", "housekeeping", "zone_counts", "zone_guard"];
    let holds = |port| jobs.map(|j| lease_held(port, j).unwrap_or(9));
    // Each job on exactly one instance (the leases settle within a recheck).
    wait_until("every job held once", Duration::from_secs(30), || {
        let (x, y) = (holds(pa), holds(pb));
        x.iter().zip(y).all(|(x, y)| x + y == 1)
    });
    // The shared ticket secret lives in the database, not in either data dir.
    assert!(!da.join("ticket-secret").exists());
    // The holder of the selector hangs (SIGSTOP): the other takes its jobs
    // once the leases expire. Resumed, the hung one finds its leases ran out
    // and stops those jobs at once instead of running them beside the other.
    let (mut first, mut second, p1, p2) = if lease_held(pa, "selector") == Some(1) {
        (a, b, pa, pb)
    } else {
        (b, a, pb, pa)
    };
    first.signal("STOP");
    wait_until("the other takes every job", Duration::from_secs(40), || {
        holds(p2) == [1; 4]
    });
    first.signal("CONT");
    wait_until("the resumed one runs none", Duration::from_secs(20), || {
        holds(p1) == [0; 4]
    });
    let log = first.log();
    assert!(
        log.contains("ran out before it was renewed")
            || log.contains("another instance holds the job's lease"),
        "{log}"
    );
    // The holder now stops cleanly: it gives the leases back and the first
    // takes every job again.
    second.signal("TERM");
    assert_eq!(
        second.wait(Duration::from_secs(20)),
        Some(0),
        "{}",
        second.log()
    );
    wait_until(
        "the first holds every job again",
        Duration::from_secs(30),
        || holds(p1) == [1; 4],
    );
    first.signal("TERM");
    assert_eq!(
        first.wait(Duration::from_secs(20)),
        Some(0),
        "{}",
        first.log()
    );
}
