//! A 503 with `Retry-After` from `/results` (the service's database is
//! full): the agent keeps the batch in its spool, replays it no sooner than
//! the service asked, and the batch is then accepted once; nothing dropped.
//! The service here is a small fake on a loopback port; the one server to
//! check is a silent loopback UDP socket (the check times out, which is a
//! result like any other).

use agent::{Agent, AgentConfig};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const RETRY_AFTER_S: u64 = 1;
/// `/results` answers 503 this many times, then 200.
const FAILURES: usize = 2;
const BATCH: &str = "00000000000000000007";

#[derive(Default)]
struct Seen {
    /// When each `/results` request arrived, and its body.
    results: Vec<(Instant, serde_json::Value)>,
    work_calls: usize,
}

/// Reads one request (head and `Content-Length` body): (path, body).
async fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head.split_whitespace().nth(1)?.to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((path, buf[head_end..head_end + len].to_vec()))
}

async fn respond(s: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(msg.as_bytes()).await;
    let _ = s.shutdown().await;
}

async fn fake_service(listener: TcpListener, silent_port: u16, seen: Arc<Mutex<Seen>>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let Some((path, body)) = read_request(&mut s).await else {
                return;
            };
            match path.as_str() {
                "/api/v1/monitor/config" => {
                    let cfg = serde_json::json!({
                        "name": "lab1", "ip": "127.0.0.1", "samples": 1,
                        "sample_interval_ms": 0, "timeout_ms": 100,
                        "reference_servers": [], "batch_size": 10,
                    });
                    respond(&mut s, "200 OK", "", &cfg.to_string()).await
                }
                "/api/v1/monitor/clock" => respond(&mut s, "204 No Content", "", "").await,
                "/api/v1/monitor/work" => {
                    let first = {
                        let mut g = seen.lock().unwrap();
                        g.work_calls += 1;
                        g.work_calls == 1
                    };
                    let work = if first {
                        serde_json::json!({
                            "batch_id": BATCH, "retry_after_s": 0,
                            "servers": [{"ip": "127.0.0.1", "ticket": "t1"}],
                        })
                    } else {
                        serde_json::json!({"batch_id": "", "servers": [], "retry_after_s": 1})
                    };
                    let _ = silent_port;
                    respond(&mut s, "200 OK", "", &work.to_string()).await
                }
                "/api/v1/monitor/results" => {
                    let n = {
                        let mut g = seen.lock().unwrap();
                        let v = serde_json::from_slice(&body).unwrap_or_default();
                        g.results.push((Instant::now(), v));
                        g.results.len()
                    };
                    if n <= FAILURES {
                        respond(
                            &mut s,
                            "503 Service Unavailable",
                            &format!("Retry-After: {RETRY_AFTER_S}\r\n"),
                            r#"{"error":"unavailable","detail":"the database is temporarily unavailable"}"#,
                        )
                        .await
                    } else {
                        respond(&mut s, "200 OK", "", r#"{"accepted":1,"duplicate":false}"#).await
                    }
                }
                _ => respond(&mut s, "404 Not Found", "", r#"{"error":"not_found"}"#).await,
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_503_is_spooled_and_replayed_after_retry_after() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let service = tokio::spawn(fake_service(listener, silent_port, seen.clone()));

    let dir = tempfile::tempdir().unwrap();
    let cfg = AgentConfig {
        api: format!("http://{addr}"),
        key: "pwk_test".into(),
        state_dir: dir.path().join("agent"),
        policy: ntp::TargetPolicy::Lab,
        ntp_port: silent_port,
        source: None,
        ipv4: true,
        ipv6: true,
        once: false,
        concurrency: 1,
        pipeline: 1,
        clock_retry: Duration::from_secs(1),
        // Far below Retry-After: only honouring it explains the waits.
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_secs(10),
    };
    let stop = CancellationToken::new();
    let agent = tokio::spawn(Agent::new(cfg, stop.clone()).unwrap().run());

    let start = Instant::now();
    while seen.lock().unwrap().results.len() <= FAILURES {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the batch was not submitted {} times",
            FAILURES + 1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let tally = tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .expect("agent stops")
        .unwrap()
        .expect("agent ran");
    service.abort();

    let seen = seen.lock().unwrap();
    // The same batch every time, with its one result.
    for (_, body) in &seen.results {
        assert_eq!(body["batch_id"], BATCH, "{body}");
        assert_eq!(body["results"].as_array().map(Vec::len), Some(1), "{body}");
        assert_eq!(body["results"][0]["ticket"], "t1", "{body}");
    }
    // Each retry came no sooner than the Retry-After of the answer before.
    for pair in seen.results.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_secs(RETRY_AFTER_S),
            "retried after {gap:?}, the service asked for {RETRY_AFTER_S} s"
        );
    }
    assert_eq!(tally.checks, 1, "{tally:?}");
    assert_eq!(tally.spooled, 1, "spooled at the first 503: {tally:?}");
    assert_eq!(tally.accepted, 1, "{tally:?}");
    assert_eq!(tally.dropped, 0, "{tally:?}");
    assert_eq!(
        agent::spool::Spool::open(&dir.path().join("agent"))
            .unwrap()
            .depth(),
        0,
        "the spool is empty once the batch is accepted"
    );
}
