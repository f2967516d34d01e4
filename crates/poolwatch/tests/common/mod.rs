//! Helpers for tests that drive the real `poolwatch` binary: a simulated
//! fleet in its own process, and `poolwatch check` runs against it. Every
//! address used here is loopback.

#![allow(dead_code)] // each test file uses its own subset

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod e2e;

/// An axum router served on 127.0.0.1 from a thread of its own (fake
/// services and receivers); its address. Lives as long as the test process.
#[allow(dead_code)] // not every test binary uses it
pub fn serve_router(app: axum::Router) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}
pub mod fake_api;
pub mod pg;
pub mod webhook;

pub const BIN: &str = env!("CARGO_BIN_EXE_poolwatch");

/// Run `poolwatch ARGS…` to completion.
pub fn poolwatch(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run poolwatch")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Assert a usage failure: exit status 2 and a one-line message containing
/// every string in `want`.
pub fn assert_usage_error(o: &Output, want: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    for w in want {
        assert!(err.contains(w), "stderr {err:?} lacks {w:?}");
    }
}

/// A `poolwatch sim` process; killed when dropped.
pub struct Sim {
    child: Option<Child>,
    /// Bound addresses in fleet order (only printed for fleets of up to 50).
    pub addrs: Vec<SocketAddr>,
    /// Everything printed before `ready`.
    pub banner: Vec<String>,
    pub dir: tempfile::TempDir,
}

impl Sim {
    /// Start a fleet (TOML text) and wait until it is ready. Use port 0 in
    /// addresses: each server then gets a free port, reported back here, so
    /// tests running side by side never clash.
    pub fn start(fleet: &str) -> Sim {
        Sim::try_start(fleet, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_start(fleet: &str, extra: &[&str]) -> Result<Sim, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fleet.toml");
        std::fs::write(&path, fleet).expect("write fleet");
        let mut child = Command::new(BIN)
            .arg("sim")
            .arg("--fleet")
            .arg(&path)
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn poolwatch sim");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.starts_with("ready") => break,
                Ok(line) => banner.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let o = child.wait_with_output().expect("wait sim");
                    return Err(format!(
                        "sim did not get ready ({}): {}{}",
                        o.status,
                        banner.join("\n"),
                        stderr(&o)
                    ));
                }
            }
        }
        let addrs = banner
            .iter()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        Ok(Sim {
            child: Some(child),
            addrs,
            banner,
            dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Wait for the process to end by itself (after a signal).
    pub fn wait(mut self) -> Output {
        let child = self.child.take().expect("running");
        child.wait_with_output().expect("wait sim")
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Asserts a measured offset is `want` within NTP's own error bound: the
/// offset can be wrong by at most half the round trip the machine added
/// (the measured `rtt` less the delay the simulation adds on purpose), plus
/// 1 ms for timestamps, and never by less than `floor`. On an idle machine
/// the bound is `floor`; on a loaded CI machine a 24 ms loopback round trip
/// honestly allows 12 ms.
pub fn assert_offset_near(
    offset: f64,
    rtt: f64,
    want: f64,
    simulated_delay: f64,
    floor: f64,
    ctx: &str,
) {
    let slack = floor.max((rtt - simulated_delay).max(0.0) / 2.0 + 0.001);
    assert!(
        (offset - want).abs() <= slack,
        "offset {offset}, want {want} ± {slack:.4} (rtt {rtt}): {ctx}"
    );
}

/// [`assert_offset_near`] for a `check --format json` result.
pub fn assert_result_offset(r: &Value, want: f64, simulated_delay: f64, floor: f64) {
    let num = |k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number: {r}"))
    };
    assert_offset_near(
        num("offset"),
        num("rtt"),
        want,
        simulated_delay,
        floor,
        &r.to_string(),
    );
}

/// `poolwatch check --lab --format json --interval 200ms --timeout 500ms
/// EXTRA… ADDRS…`; asserts exit 0 and returns one object per address, in
/// the order of `addrs`.
pub fn check_json(addrs: &[SocketAddr], extra: &[&str]) -> Vec<Value> {
    let names: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let mut args = vec![
        "check",
        "--lab",
        "--format",
        "json",
        "--interval",
        "200ms",
        "--timeout",
        "500ms",
    ];
    args.extend_from_slice(extra);
    args.extend(names.iter().map(String::as_str));
    let o = poolwatch(&args);
    assert!(o.status.success(), "check failed: {}", stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect();
    names
        .iter()
        .map(|n| {
            lines
                .iter()
                .find(|v| v["server"] == n.as_str())
                .unwrap_or_else(|| panic!("no result for {n} in {lines:?}"))
                .clone()
        })
        .collect()
}
