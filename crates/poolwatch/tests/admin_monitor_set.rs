//! `poolwatch admin monitor set NAME --samples …` and `revoke`, as the
//! real binary on a temporary --data-dir: values within serve's ranges are
//! stored as the monitor's own config (and audited), values outside exit 2
//! and store nothing.

use std::path::Path;
use std::process::{Command, Output};
use store::{GlobalStatus, Store};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_poolwatch"))
        .arg("admin")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("POOLWATCH_DATABASE_URL")
        .env_remove("POOLWATCH_CONFIG")
        .output()
        .expect("run poolwatch")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {err}");
    String::from_utf8(out.stdout).unwrap()
}

/// The monitor's row, read from the store the binary wrote.
fn row(dir: &Path, name: &str) -> store::MonitorRow {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let s = Store::open(None, dir).await.unwrap();
            let m = s.monitor_by_name(name).await.unwrap().unwrap();
            s.close().await;
            m
        })
}

#[test]
fn set_stores_settings_within_serves_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["monitor", "add", "zrh1", "--ip", "192.0.2.10"]);
    let out = ok(
        d,
        &[
            "monitor",
            "set",
            "zrh1",
            "--samples",
            "2",
            "--timeout",
            "1500ms",
        ],
    );
    assert!(out.contains("\"samples\":2"), "{out}");
    let cfg: serde_json::Value = serde_json::from_str(&row(d, "zrh1").config.unwrap()).unwrap();
    assert_eq!(cfg, serde_json::json!({"samples": 2, "timeout_ms": 1500}));
    ok(
        d,
        &[
            "monitor",
            "set",
            "zrh1",
            "--batch-size",
            "5",
            "--sample-interval",
            "1s",
        ],
    );
    let cfg: serde_json::Value = serde_json::from_str(&row(d, "zrh1").config.unwrap()).unwrap();
    assert_eq!(
        cfg,
        serde_json::json!({"samples": 2, "timeout_ms": 1500, "batch_size": 5, "sample_interval_ms": 1000})
    );
    // Each bad value: exit 2, the flag named, the stored config unchanged.
    for (args, named) in [
        (&["--samples", "0"][..], "--samples"),
        (&["--samples", "17", "--batch-size", "3"][..], "--samples"),
        (&["--timeout", "0s"][..], "--timeout"),
        (&["--timeout", "2m"][..], "--timeout"),
        (&["--sample-interval", "90s"][..], "--sample-interval"),
        (&["--batch-size", "1001"][..], "--batch-size"),
        (&["--batch-size", "ten"][..], "--batch-size"),
        (&["--sample-interval", "soon"][..], "--sample-interval"),
        (&["--clear", "--samples", "99"][..], "--samples"),
        (&[][..], "--samples"),
    ] {
        let mut all = vec!["monitor", "set", "zrh1"];
        all.extend_from_slice(args);
        let out = run(d, &all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
    }
    // Judged before the store is even opened.
    let fresh = d.join("fresh");
    let out = run(&fresh, &["monitor", "set", "zrh1", "--samples", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!fresh.exists(), "no store made for a refused command");
    let out = run(d, &["monitor", "set", "nobody", "--samples", "2"]);
    assert_eq!(out.status.code(), Some(2));
    let cfg: serde_json::Value = serde_json::from_str(&row(d, "zrh1").config.unwrap()).unwrap();
    assert_eq!(cfg["samples"], 2);
    assert_eq!(cfg["batch_size"], 5);
    // --clear: serve's values again; a status still changes alone.
    let out = ok(d, &["monitor", "set", "zrh1", "--clear"]);
    assert!(out.contains("serve's defaults"), "{out}");
    assert_eq!(row(d, "zrh1").config, None);
    ok(d, &["monitor", "set", "zrh1", "--status", "paused"]);
    assert_eq!(row(d, "zrh1").status, GlobalStatus::Paused);
    // Revoked: status deleted.
    let out = ok(d, &["monitor", "revoke", "zrh1"]);
    assert!(out.contains("revoked"), "{out}");
    assert_eq!(row(d, "zrh1").status, GlobalStatus::Deleted);
    assert_eq!(
        run(d, &["monitor", "revoke", "nobody"]).status.code(),
        Some(2)
    );
}
