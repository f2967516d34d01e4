//! `poolwatch check` against real NTP daemons on loopback: chrony (plain, under
//! libfaketime, rate-limited) and ntpsec's `ntpdig` as a second opinion.
//! These need `chronyd`, libfaketime and `ntpdig`; `scripts/test` installs them.

mod common;

use common::assert_result_offset;
use serde_json::Value;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn require(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: run scripts/test (it installs chrony, faketime and ntpsec-ntpdig)"
    );
}

/// A port free on both 127.0.0.1 and ::1 (chrony uses SO_REUSEPORT, so a
/// stale daemon on a reused port would silently share our traffic).
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20000 + (std::process::id() % 2000) as u16 * 16;
    loop {
        let p = base + NEXT.fetch_add(1, Ordering::SeqCst);
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() && UdpSocket::bind(("::1", p)).is_ok() {
            return p;
        }
    }
}

/// A chronyd serving `local stratum 2` on loopback, stopped on drop.
struct Chrony {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Chrony {
    fn start(extra_conf: &str, faketime: Option<&str>) -> Chrony {
        require("/usr/sbin/chronyd");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "port {port}\nbindaddress 127.0.0.1\nbindaddress ::1\nlocal stratum 2\n\
             allow 127.0.0.1\nallow ::1\ncmdport 0\npidfile {d}/chronyd.pid\n\
             driftfile {d}/drift\n{extra_conf}\n"
        );
        let conf_path = dir.path().join("chrony.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut cmd = Command::new("/usr/sbin/chronyd");
        // -x: never touch the system clock; -n -d: stay in the foreground.
        cmd.args(["-x", "-n", "-d", "-f"]).arg(&conf_path);
        if let Some(ft) = faketime {
            require(FAKETIME_LIB);
            // Preload directly (not the `faketime` wrapper, which forks) so the
            // child we kill is the daemon itself.
            cmd.env("LD_PRELOAD", FAKETIME_LIB)
                .env("FAKETIME", ft)
                .env("FAKETIME_NO_CACHE", "1");
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chronyd");
        let c = Chrony {
            child,
            port,
            _dir: dir,
        };
        c.wait_ready();
        c
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let v = check(
                &[&format!("127.0.0.1:{}", self.port)],
                &["--samples", "1", "--timeout", "300ms"],
            );
            if v[0]["error"].is_null() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("chronyd on port {} did not answer within 10 s", self.port);
    }
}

impl Drop for Chrony {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_poolwatch"))
}

/// Run `poolwatch check --lab --format json` and parse one object per line.
fn check(targets: &[&str], extra: &[&str]) -> Vec<Value> {
    let out = Command::new(bin())
        .args(["check", "--lab", "--format", "json", "--interval", "200ms"])
        .args(extra)
        .args(targets)
        .output()
        .expect("run poolwatch check");
    assert!(
        out.status.success(),
        "check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut v: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), targets.len(), "one line per server: {text}");
    v.sort_by_key(|x| targets.iter().position(|t| x["server"] == *t));
    v
}

/// ntpdig's offset and its own worst-case error: its JSON `precision` is
/// the synchronization distance, half its round trip plus clock error.
fn ntpdig_offset(port: u16, host: &str) -> (f64, f64) {
    require("/usr/bin/ntpdig");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/ntpdig-port");
    let out = Command::new(script)
        .arg(port.to_string())
        .args(["-j", "-t", "2", host])
        .output()
        .expect("run ntpdig");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "ntpdig output {text:?}: {e}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        v["offset"].as_f64().expect("ntpdig offset"),
        v["precision"]
            .as_f64()
            .expect("ntpdig synchronization distance"),
    )
}

/// Our one-sample offset and ntpdig's, measured moments apart, agree
/// within the sum of their error bounds (our half round trip, ntpdig's
/// synchronization distance), never stricter than 1 ms. On an idle machine
/// that is 1 ms; a wrong computation (a sign, an era, a missed term) is off
/// by far more than any bound.
fn agrees_with_ntpdig(target: &str, port: u16, host: &str) {
    let r = &check(&[target], &["--samples", "1"])[0];
    assert!(r["error"].is_null(), "{r}");
    let (ours, rtt) = (r["offset"].as_f64().unwrap(), r["rtt"].as_f64().unwrap());
    let (theirs, their_bound) = ntpdig_offset(port, host);
    let slack = 0.001f64.max(rtt / 2.0 + their_bound + 0.001);
    assert!(
        (ours - theirs).abs() <= slack,
        "our offset {ours} (rtt {rtt}) and ntpdig's {theirs} (± {their_bound}) differ by more than {slack:.4}"
    );
}

#[test]
fn chrony_offset_near_zero_ipv4_and_ipv6() {
    let c = Chrony::start("", None);
    let v4 = format!("127.0.0.1:{}", c.port);
    let v6 = format!("[::1]:{}", c.port);
    let res = check(&[&v4, &v6], &["--samples", "2"]);
    for r in &res {
        assert!(r["error"].is_null(), "{r}");
        // ~0 against a daemon on our own clock, within NTP's error bound.
        assert_result_offset(r, 0.0, 0.0, 0.002);
        assert_eq!(r["stratum"], 2);
        assert_eq!(r["leap"], 0);
        assert_eq!(r["refid"], "127.127.1.1");
        assert!(r["rtt"].as_f64().unwrap() < 0.05);
        assert_eq!(r["samples"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn chrony_under_faketime_is_five_seconds_ahead_and_ntpdig_agrees() {
    let c = Chrony::start("", Some("+5s"));
    for (target, host) in [
        (format!("127.0.0.1:{}", c.port), "127.0.0.1"),
        (format!("[::1]:{}", c.port), "::1"),
    ] {
        let r = &check(&[&target], &["--samples", "2"])[0];
        assert!(r["error"].is_null(), "{r}");
        assert_result_offset(r, 5.0, 0.0, 0.010);
        agrees_with_ntpdig(&target, c.port, host);
    }
}

#[test]
fn ntpdig_agrees_on_an_honest_server() {
    let c = Chrony::start("", None);
    agrees_with_ntpdig(&format!("127.0.0.1:{}", c.port), c.port, "127.0.0.1");
}

#[test]
fn chrony_rate_limit_drops_samples_and_best_sample_is_an_answer() {
    // chrony 4.3 drops rate-limited requests (no RATE KoD): later samples of a
    // quick check time out, the first one is answered.
    let c = Chrony::start("ratelimit interval 1 burst 1 leak 4", None);
    std::thread::sleep(Duration::from_secs(3)); // let the readiness probe's credit recover
    let r = &check(
        &[&format!("127.0.0.1:{}", c.port)],
        &["--samples", "5", "--timeout", "300ms"],
    )[0];
    let samples = r["samples"].as_array().unwrap();
    let timeouts = samples
        .iter()
        .filter(|s| s["error"] == "i/o timeout")
        .count();
    let answered = samples.iter().filter(|s| s["error"].is_null()).count();
    assert!(timeouts >= 1, "rate limit should drop some samples: {r}");
    assert!(answered >= 1, "at least one sample should be answered: {r}");
    assert!(
        r["error"].is_null(),
        "best sample must be an answered one: {r}"
    );
    assert_result_offset(r, 0.0, 0.0, 0.002);
}
