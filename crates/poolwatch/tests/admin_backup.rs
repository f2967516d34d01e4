//! `poolwatch admin backup FILE`, real binaries: a copy taken while `serve`
//! runs on the same SQLite store (and keeps writing) opens as a store of
//! its own with what was there; an existing file is never overwritten;
//! a PostgreSQL store is refused with the way to back it up.

mod common;

use common::e2e::{Proc, admin, free_tcp_port, get, serve_args_with, wait_until};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn backup(dir: &Path, extra: &[&str], out: &Path) -> Output {
    Command::new(common::BIN)
        .args(["admin", "--data-dir"])
        .arg(dir)
        .args(extra)
        .arg("backup")
        .arg(out)
        .env_remove("POOLWATCH_DATABASE_URL")
        .env_remove("POOLWATCH_CONFIG")
        .output()
        .expect("run poolwatch")
}

#[test]
fn a_backup_taken_while_serve_runs_is_a_whole_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    admin(
        &data,
        &[
            "server",
            "add",
            "192.0.2.7",
            "--zone",
            "de",
            "--allow-private",
        ],
    );
    admin(&data, &["monitor", "add", "defra1", "--ip", "192.0.2.10"]);
    let port = free_tcp_port();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = Proc::spawn(&serve_args_with(&[], &listen, &data, &[]));
    wait_until("serve answers", Duration::from_secs(30), || {
        get(port, "/api/v1/servers").is_some()
    });

    let copy = dir.path().join("backup.db");
    let out = backup(&data, &[], &copy);
    assert!(
        out.status.success(),
        "backup failed: {}\n{}",
        common::stderr(&out),
        serve.log()
    );
    assert!(common::stdout(&out).contains("quick_check: ok"));
    assert!(!dir.path().join("backup.db.partial").exists());
    // serve is unaffected and still running.
    assert!(serve.running(), "{}", serve.log());
    assert!(get(port, "/api/v1/servers").is_some());
    serve.signal("TERM");
    assert_eq!(
        serve.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        serve.log()
    );

    // Restored into an empty data dir, the copy is the store.
    let restored = dir.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    std::fs::copy(&copy, restored.join("poolwatch.db")).unwrap();
    let servers = admin(&restored, &["server", "list"]);
    assert!(servers.contains("192.0.2.7"), "{servers}");
    let monitors = admin(&restored, &["monitor", "list"]);
    assert!(monitors.contains("defra1"), "{monitors}");

    // An existing file is refused and left as it was.
    let before = std::fs::read(&copy).unwrap();
    let out = backup(&data, &[], &copy);
    common::assert_usage_error(&out, &["exists", "never overwrites"]);
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    // So is a directory that is not there.
    let out = backup(&data, &[], &dir.path().join("nowhere/b.db"));
    common::assert_usage_error(&out, &["no such directory"]);
}

#[test]
fn a_postgresql_store_is_sent_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("b.db");
    // Refused before any connection is tried: the URL need not answer.
    let out = backup(
        dir.path(),
        &["--database-url", "postgres://nobody@127.0.0.1:1/none"],
        &copy,
    );
    common::assert_usage_error(&out, &["pg_dump"]);
    assert!(!copy.exists());
}
