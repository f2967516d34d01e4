//! A fake monitor API on 127.0.0.1 for running the real agent against:
//! every answer chosen by the test, including oversized ones, and every
//! call recorded with its time. Plus the agent's side: start it in lab
//! mode, read its peak memory and its metrics.

use super::e2e::{Proc, get};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the fake service answers one request.
#[derive(Clone)]
pub enum Reply {
    Json(String),
    /// 503 with a short JSON error.
    Unavailable,
    /// 503 with a short JSON error and `Retry-After: <seconds>`.
    Busy(u64),
    /// 200 with `Content-Length: 300000000`, and the 300 MB sent.
    HugeLength,
    /// 200, chunked, until the client hangs up.
    EndlessChunks,
    /// 500, chunked, 300 MB.
    HugeError,
}

pub const HUGE: u64 = 300_000_000;

/// A fake monitor API: every request but the token route is answered by `route(path, n)`, `n`
/// counting that path's calls from 0. Records each call's path and time,
/// and the body bytes it managed to push.
pub struct FakeApi {
    pub port: u16,
    calls: Arc<Mutex<Vec<(String, Instant)>>>,
    /// Body bytes the service pushed for oversized answers.
    pub sent: Arc<AtomicU64>,
}

impl FakeApi {
    pub fn start(route: fn(&str, usize) -> Reply) -> FakeApi {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let calls: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let sent: Arc<AtomicU64> = Arc::default();
        let (c, s) = (calls.clone(), sent.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().map_while(Result::ok) {
                let (c, s) = (c.clone(), s.clone());
                std::thread::spawn(move || answer(conn, route, &c, &s));
            }
        });
        FakeApi { port, calls, sent }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// When each call to a path ending in `path` came.
    pub fn times(&self, path: &str) -> Vec<Instant> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(p, _)| p.ends_with(path))
            .map(|c| c.1)
            .collect()
    }
}

fn answer(
    mut s: TcpStream,
    route: fn(&str, usize) -> Reply,
    calls: &Mutex<Vec<(String, Instant)>>,
    sent: &AtomicU64,
) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while raw.len() < head_end + length {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let n = {
        let mut c = calls.lock().unwrap();
        let n = c.iter().filter(|(p, _)| *p == path).count();
        c.push((path.clone(), Instant::now()));
        n
    };
    // Every fake service hands out access tokens (it checks no bearer),
    // so the tests' routes need not know about them.
    let reply = if path.ends_with("/monitor/token") {
        Reply::Json(r#"{"token":"pwa_1_1_fake","expires_in":3600}"#.into())
    } else {
        route(&path, n)
    };
    let (status, framing, limit) = match reply {
        Reply::Json(body) => {
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            return;
        }
        reply @ (Reply::Unavailable | Reply::Busy(_)) => {
            let body = r#"{"error":"unavailable","detail":"try later"}"#;
            let retry = match reply {
                Reply::Busy(s) => format!("Retry-After: {s}\r\n"),
                _ => String::new(),
            };
            let _ = write!(
                s,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{retry}Connection: close\r\n\r\n{body}",
                body.len()
            );
            return;
        }
        Reply::HugeLength => ("200 OK", format!("Content-Length: {HUGE}"), HUGE),
        Reply::EndlessChunks => ("200 OK", "Transfer-Encoding: chunked".into(), u64::MAX),
        Reply::HugeError => (
            "500 Internal Server Error",
            "Transfer-Encoding: chunked".into(),
            HUGE,
        ),
    };
    let chunked = framing.starts_with("Transfer");
    if write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return;
    }
    let block = vec![b' '; 64 * 1024];
    let mut total = 0u64;
    while total < limit {
        let r = if chunked {
            write!(s, "{:x}\r\n", block.len())
                .and_then(|()| s.write_all(&block))
                .and_then(|()| s.write_all(b"\r\n"))
        } else {
            s.write_all(&block)
        };
        if r.is_err() {
            break; // the agent hung up
        }
        total += block.len() as u64;
        sent.fetch_add(block.len() as u64, Ordering::Relaxed);
    }
    if chunked && total >= limit {
        let _ = s.write_all(b"0\r\n\r\n");
    }
}

pub fn config(reference_servers: &[&str], samples: u32) -> Reply {
    Reply::Json(
        serde_json::json!({
            "name": "fake", "ip": "127.0.0.1", "samples": samples,
            "sample_interval_ms": 100, "timeout_ms": 100,
            "reference_servers": reference_servers, "batch_size": 10
        })
        .to_string(),
    )
}

pub fn idle() -> Reply {
    Reply::Json(r#"{"batch_id":"","servers":[],"retry_after_s":1}"#.into())
}

/// `poolwatch agent --lab` against `api` with a 1 s minimum back-off.
pub fn agent(api: &FakeApi, dir: &std::path::Path, metrics: u16) -> Proc {
    agent_with_backoff(api, dir, metrics, "1s", "2s")
}

/// `poolwatch agent --lab` against `api` backing off from `min` to `max`.
pub fn agent_with_backoff(
    api: &FakeApi,
    dir: &std::path::Path,
    metrics: u16,
    min: &str,
    max: &str,
) -> Proc {
    let args: Vec<String> = [
        "agent",
        "--api",
        &api.url(),
        "--key",
        "pwk_test",
        "--state-dir",
        &dir.display().to_string(),
        "--lab",
        "--traceroute",
        "off",
        "--backoff-min",
        min,
        "--backoff-max",
        max,
        "--clock-retry",
        "1s",
        "--metrics-listen",
        &format!("127.0.0.1:{metrics}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Proc::spawn(&args)
}

/// The peak resident memory of `pid` in bytes (VmHWM).
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb * 1024
}

pub fn metric(port: u16, series: &str) -> Option<f64> {
    let (_, text) = get(port, "/metrics")?;
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
}
