//! What every monitor-API body shares, on SQLite and PostgreSQL: no string
//! anywhere in it may carry a control character (400 naming the field,
//! nothing stored), unknown fields are ignored, the body limit holds for
//! every route (also `/work`, also before a declared length is read), and
//! a 405 is the JSON error like every other.

mod common;

use axum::http::{Method, StatusCode};
use common::{Backend, TestApp, good_results, now};
use serde_json::{Value, json};
use server::ServerConfig;
use std::net::SocketAddr;
use std::time::Duration;
use store::GlobalStatus;
use store::testing::StoreTesting as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_backends!(
    control_characters_refused,
    method_not_allowed_is_json,
    unknown_fields_are_ignored_in_every_body,
    work_body_is_limited,
    declared_length_over_limit_refused_before_reading,
);

const WORK: &str = "/api/v1/monitor/work";
const RESULTS: &str = "/api/v1/monitor/results";
const CLOCK: &str = "/api/v1/monitor/clock";
const TRACE: &str = "/api/v1/monitor/traceroute";

/// NUL (PostgreSQL refuses it in text), CR and LF (forged lines), ESC
/// (terminal control) and RIGHT-TO-LEFT OVERRIDE (reorders a page).
const BAD: [(char, &str); 5] = [
    ('\0', "U+0000"),
    ('\r', "U+000D"),
    ('\n', "U+000A"),
    ('\u{1b}', "U+001B"),
    ('\u{202e}', "U+202E"),
];

/// Sets the field at JSON pointer `at` (created if absent) to `s`.
fn set(v: &mut Value, at: &str, s: String) {
    let (parent, name) = at.rsplit_once('/').unwrap();
    v.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .insert(name.into(), Value::String(s));
}

/// Everything a monitor call could write, as text to compare.
async fn stored(t: &TestApp, server_id: i64) -> String {
    let s = t.store();
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}",
        s.counts().await.unwrap(),
        s.monitor_clocks().await.unwrap(),
        s.latest_traceroutes(server_id).await.unwrap(),
        s.server_monitors(server_id).await.unwrap(),
    )
}

fn traceroute() -> Value {
    json!({"ip": "192.0.2.1", "ts": now() - 2, "tool": "mtr",
           "hops": [{"ttl": 1, "ip": "10.0.0.1", "rtt_ms": [0.3], "sent": 1}], "error": null})
}

async fn control_characters_refused(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    let (m, key) = t.add_monitor("zrh", GlobalStatus::Active).await;
    let srv = t.add_server("192.0.2.1").await;
    let work = t.work(&key).await;
    assert_eq!(work.servers.len(), 1, "{work:?}");
    let results = serde_json::to_value(good_results(&work)).unwrap();
    t.store()
        .request_traceroute(srv.id, m.id, "test", now())
        .await
        .unwrap();
    let clock = json!({"ok": true, "detail": "clock agrees with 3 reference server(s)"});
    let before = stored(&t, srv.id).await;

    // (route, a good body, the JSON pointer spoiled, the field named)
    let cases = [
        (RESULTS, &results, "/results/0/refid", "results[0].refid"),
        (RESULTS, &results, "/results/0/error", "results[0].error"),
        (RESULTS, &results, "/batch_id", "batch_id"),
        (RESULTS, &results, "/results/0/ip", "results[0].ip"),
        (RESULTS, &results, "/results/0/ticket", "results[0].ticket"),
        (CLOCK, &clock, "/detail", "detail"),
        (TRACE, &traceroute(), "/ip", "ip"),
        (TRACE, &traceroute(), "/tool", "tool"),
        (TRACE, &traceroute(), "/error", "error"),
        (TRACE, &traceroute(), "/hops/0/ip", "hops[0].ip"),
        // A field this service does not know is ignored, but not as a
        // way around the rule.
        (WORK, &json!({}), "/note", "note"),
        (RESULTS, &results, "/results/0/note", "results[0].note"),
    ];
    for (path, good, at, field) in cases {
        for (c, code) in BAD {
            let mut body = good.clone();
            set(&mut body, at, format!("GPS{c}x"));
            let r = t
                .monitor_call(Method::POST, path, Some(&key), Some(&body))
                .await;
            let want = format!("{field}: control character {code} not allowed");
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{path} {want}: {}",
                r.text()
            );
            assert!(r.error_detail().starts_with(&want), "{path}: {}", r.text());
        }
    }
    assert_eq!(
        stored(&t, srv.id).await,
        before,
        "a refused body stored something"
    );

    // The same bodies, clean, are taken whole: nothing was used up.
    let r = t
        .monitor_call(Method::POST, RESULTS, Some(&key), Some(&results))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["accepted"], 1);
    let r = t
        .monitor_call(Method::POST, CLOCK, Some(&key), Some(&clock))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = t
        .monitor_call(Method::POST, TRACE, Some(&key), Some(&traceroute()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// Sends `head` and then `body` on a fresh connection (the body from its
/// own task, so a server that answers early is heard while it is still
/// being written) and returns what came back within 10 s: empty when the
/// server never answered.
async fn raw(addr: SocketAddr, head: String, body: Vec<u8>) -> String {
    let (mut rd, mut wr) = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap()
        .into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
        // Keep the connection open: the server, not EOF, must end it.
        std::future::pending::<()>().await;
        drop(wr);
    });
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 8192];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    writer.abort();
    String::from_utf8_lossy(&got).into_owned()
}

/// The service on a real socket over a test store, with one monitor and
/// one server.
struct Served {
    t: TestApp,
    addr: SocketAddr,
    base: String,
    key: String,
    monitor_id: i64,
    server_id: i64,
    limit: usize,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Served {
    async fn start(backend: Backend) -> Option<Served> {
        let cfg = ServerConfig {
            selector: None,
            ..ServerConfig::default()
        };
        let t = TestApp::new(common::TestDb::open(backend).await?, cfg.clone());
        t.seed_zones().await;
        let (m, key) = t.add_monitor("zrh", GlobalStatus::Active).await;
        let srv = t.add_server("192.0.2.1").await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limit = cfg.max_body_bytes;
        let serving = tokio::spawn(server::serve_on(listener, cfg, t.store().clone(), async {
            let _ = stopped.await;
        }));
        // reqwest is built without a default TLS provider (plain HTTP here).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Some(Served {
            t,
            addr,
            base: format!("http://{addr}"),
            key,
            monitor_id: m.id,
            server_id: srv.id,
            limit,
            http: reqwest::Client::new(),
            stop: Some(stop),
            serving,
        })
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A request head for `path` with the monitor's key and `length`
    /// (a `Content-Length` or `Transfer-Encoding` line).
    fn head(&self, path: &str, length: &str) -> String {
        format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\n{length}\r\n",
            self.key
        )
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.serving)
            .await
            .expect("shuts down")
            .unwrap()
            .unwrap();
    }
}

macro_rules! served_or_skip {
    ($backend:expr) => {
        match Served::start($backend).await {
            Some(s) => s,
            None => return,
        }
    };
}

/// 405 is the JSON error, and still says what is allowed.
async fn method_not_allowed_is_json(backend: Backend) {
    let s = served_or_skip!(backend);
    for (method, path) in [
        (reqwest::Method::GET, WORK),
        (reqwest::Method::PUT, RESULTS),
        (reqwest::Method::POST, "/api/v1/zones"),
    ] {
        let r = s
            .http
            .request(method.clone(), format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        let allow = r.headers()["allow"].to_str().unwrap().to_string();
        assert!(!allow.is_empty(), "{method} {path}");
        let v: Value = r.json().await.expect("a JSON body");
        assert_eq!(v["error"], "method_not_allowed", "{v}");
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
    }
    s.stop().await;
}

/// Unknown fields are ignored in every body (a newer agent talking to an
/// older service), at the top and nested.
async fn unknown_fields_are_ignored_in_every_body(backend: Backend) {
    let s = served_or_skip!(backend);
    let r = s.post(WORK, &json!({"sent_by": "agent 9.9"})).await;
    assert_eq!(r.status(), 200);
    let work: api::Work = r.json().await.unwrap();
    let mut results = serde_json::to_value(good_results(&work)).unwrap();
    results["sent_by"] = json!("agent 9.9");
    results["results"][0]["jitter"] = json!(0.0001);
    let r = s.post(RESULTS, &results).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let clock = json!({"ok": true, "detail": "fine", "checked_servers": 3});
    let r = s.post(CLOCK, &clock).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    s.t.store()
        .request_traceroute(s.server_id, s.monitor_id, "test", now())
        .await
        .unwrap();
    let mut trace = traceroute();
    trace["protocol"] = json!("udp");
    trace["hops"][0]["asn"] = json!(64496);
    let r = s.post(TRACE, &trace).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    s.stop().await;
}

/// `/work` reads its body, so the limit holds there too: 2 MiB, chunked
/// (no length to judge up front); at the limit it is read.
async fn work_body_is_limited(backend: Backend) {
    let s = served_or_skip!(backend);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    let mut chunked = Vec::new();
    for piece in big.as_bytes().chunks(64 << 10) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    // The service answers 413 and closes with the rest of the body unread,
    // so the kernel may reset the connection before this side has read
    // the answer: an empty answer is retried, any other is judged.
    let mut answers = Vec::new();
    for _ in 0..5 {
        let head = s.head(WORK, "Transfer-Encoding: chunked\r\n");
        let answer = raw(s.addr, head, chunked.clone()).await;
        let done = !answer.is_empty();
        answers.push(answer);
        if done {
            break;
        }
    }
    let answer = answers.last().unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answers:?}");
    assert_eq!(s.t.store().counts().await.unwrap().2, 0);

    let at_limit = format!("{{\"pad\":\"{}\"}}", "x".repeat(s.limit - 10));
    assert_eq!(at_limit.len(), s.limit);
    let r = s
        .http
        .post(format!("{}{WORK}", s.base))
        .bearer_auth(&s.key)
        .header("content-type", "application/json")
        .body(at_limit)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    s.stop().await;
}

/// A declared length over the limit is refused before a byte of the body
/// is read: the body is never sent here, and the answer comes anyway.
async fn declared_length_over_limit_refused_before_reading(backend: Backend) {
    let s = served_or_skip!(backend);
    for path in [WORK, RESULTS, CLOCK, TRACE] {
        let length = format!("Content-Length: {}\r\n", s.limit + 1);
        let answer = raw(s.addr, s.head(path, &length), Vec::new()).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer:?}");
    }
    s.stop().await;
}
