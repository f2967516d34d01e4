//! The HTTP listener under hostile clients, through real sockets: header
//! and idle timeouts, connection caps per client and overall, a shutdown
//! bounded by its grace, metric labels from a closed set, /metrics on its
//! own address, and the security headers on every route family.

mod common;

use common::{Backend, TestApp, TestDb};
use server::{HttpLimits, RateLimitConfig, ServerConfig};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Far longer than any limit the tests set: a connection still open after
/// this was not closed by the server.
const PATIENCE: Duration = Duration::from_secs(8);

fn cfg(http: HttpLimits) -> ServerConfig {
    ServerConfig {
        http,
        rate_limit: RateLimitConfig {
            per_second: 0.0,
            ..Default::default()
        },
        selector: None,
        ..Default::default()
    }
}

/// Long timeouts and generous caps, for a test to shorten one of them.
fn relaxed() -> HttpLimits {
    HttpLimits {
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        max_connections: 1000,
        max_connections_per_client: 1000,
        shutdown_grace: Duration::from_secs(60),
        exempt: Vec::new(),
    }
}

struct Served {
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    _db: Option<TestDb>,
}

/// Serves a fresh SQLite store on 127.0.0.1 (and /metrics apart if asked).
async fn serve(cfg: ServerConfig, metrics_apart: bool) -> Served {
    let db = TestDb::open(Backend::Sqlite).await.unwrap();
    let store = db.store.clone();
    let mut s = serve_store(cfg, store, metrics_apart).await;
    s._db = Some(db);
    s
}

async fn serve_store(cfg: ServerConfig, store: store::Store, metrics_apart: bool) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (metrics_listener, metrics) = if metrics_apart {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        (Some(l), Some(a))
    } else {
        (None, None)
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(server::serve_split(
        listener,
        metrics_listener,
        cfg,
        store,
        stop.clone().cancelled_owned(),
    ));
    Served {
        addr,
        metrics,
        stop,
        task,
        _db: None,
    }
}

/// A connection to `to` from the loopback address `from` (all of 127/8 is
/// this machine, so tests can be several clients).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// Everything the server sends until it closes the connection, or `None`
/// if it is still open after [`PATIENCE`].
async fn read_until_closed(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(PATIENCE, s.read_to_end(&mut out)).await {
        Ok(_) => Some(out), // EOF or reset: closed either way
        Err(_) => None,
    }
}

/// One request on its own connection from `from`; the whole answer.
async fn request(from: &str, to: SocketAddr, method: &str, path: &str) -> String {
    let mut s = connect_from(from, to).await;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    // A refused connection may be reset before the request is written.
    let _ = s.write_all(req.as_bytes()).await;
    let out = read_until_closed(&mut s)
        .await
        .expect("answered and closed");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_sent_heads_are_cut_at_the_header_timeout() {
    let s = serve(
        cfg(HttpLimits {
            header_timeout: Duration::from_millis(300),
            ..relaxed()
        }),
        false,
    )
    .await;
    let mut silent = connect_from("127.0.0.1", s.addr).await;
    let mut half = connect_from("127.0.0.1", s.addr).await;
    half.write_all(b"GET /api/v1/zones HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut silent).await.is_some(),
        "a connection that sent nothing is still open"
    );
    let got = read_until_closed(&mut half).await;
    assert!(got.is_some(), "a half-sent head is still open");
    // A client in time is served as before.
    let ok = request("127.0.0.1", s.addr, "GET", "/api/v1/zones").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let s = serve(
        cfg(HttpLimits {
            idle_timeout: Duration::from_millis(300),
            ..relaxed()
        }),
        false,
    )
    .await;
    let mut c = connect_from("127.0.0.1", s.addr).await;
    c.write_all(b"GET /api/v1/zones HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    // Keep-alive: the answer comes, then the connection waits for another
    // request until the idle timeout closes it.
    let got = read_until_closed(&mut c)
        .await
        .expect("an idle kept-alive connection is still open");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_per_client_and_overall() {
    let s = serve(
        cfg(HttpLimits {
            max_connections: 3,
            max_connections_per_client: 2,
            ..relaxed()
        }),
        false,
    )
    .await;
    // Two held connections from 127.0.0.1: its whole share.
    let held_a = connect_from("127.0.0.1", s.addr).await;
    let _held_b = connect_from("127.0.0.1", s.addr).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let third = request("127.0.0.1", s.addr, "GET", "/api/v1/zones").await;
    assert_eq!(
        third, "",
        "the third connection of one client got an answer"
    );
    // Another client is still served, and fills the overall cap.
    let mut other = connect_from("127.0.0.2", s.addr).await;
    other
        .write_all(b"GET /api/v1/zones HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    other.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let fourth = request("127.0.0.3", s.addr, "GET", "/api/v1/zones").await;
    assert_eq!(
        fourth, "",
        "over the overall cap a connection got an answer"
    );
    // A closed connection gives its place back.
    drop(held_a);
    drop(other);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = request("127.0.0.1", s.addr, "GET", "/api/v1/zones").await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    // The operator sees both refusals, and the connections open now (the
    // held one and the scrape's own, maybe the last one still closing).
    let m = scrape(s.addr).await;
    for line in [
        r#"poolwatch_http_connections_refused_total{cap="per_client"} 1"#,
        r#"poolwatch_http_connections_refused_total{cap="overall"} 1"#,
    ] {
        assert!(m.lines().any(|l| l == line), "no '{line}' in\n{m}");
    }
    let open: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("poolwatch_http_connections_open "))
        .expect("open connections gauge")
        .parse()
        .unwrap();
    assert!((2.0..=3.0).contains(&open), "open connections: {open}");
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_within_the_grace_despite_half_sent_requests() {
    let s = serve(
        cfg(HttpLimits {
            shutdown_grace: Duration::from_millis(500),
            ..relaxed()
        }),
        false,
    )
    .await;
    let mut open = Vec::new();
    for i in 0..10 {
        let mut c = connect_from("127.0.0.1", s.addr).await;
        // Half a head, or a whole head with half its declared body.
        let part: &[u8] = if i % 2 == 0 {
            b"GET /api/v1/zones HTTP/1.1\r\nHost:"
        } else {
            b"POST /api/v1/monitor/results HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"ba"
        };
        c.write_all(part).await.unwrap();
        open.push(c);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.stop.cancel();
    let ended = tokio::time::timeout(PATIENCE, s.task).await;
    assert!(
        ended.is_ok(),
        "serve still running {PATIENCE:?} after the stop, grace 500 ms"
    );
    ended.unwrap().unwrap().unwrap();
    for mut c in open {
        assert!(read_until_closed(&mut c).await.is_some());
    }
}

/// The `poolwatch_http_request_duration_seconds` series in a scrape.
fn http_series(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("poolwatch_http_request_duration_seconds_count"))
        .collect()
}

/// A `ts`-free token that differs each call.
fn random_token(prefix: &str) -> String {
    format!("{prefix}{:016X}", rand::random::<u64>())
}

async fn scrape(to: SocketAddr) -> String {
    let r = request("127.0.0.1", to, "GET", "/metrics").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_methods_and_paths_make_no_new_series() {
    let s = serve(cfg(relaxed()), false).await;
    let addr = s.addr;
    let flood = |n: usize| async move {
        for i in 0..n {
            let path = format!("/{}", random_token("p"));
            let (method, path) = match i % 3 {
                0 => (random_token("M"), path),
                1 => ("GET".to_string(), path),
                _ => (random_token("X"), "/api/v1/zones".to_string()),
            };
            let r = request("127.0.0.1", addr, &method, &path).await;
            assert!(r.starts_with("HTTP/1.1 "), "{r}");
        }
    };
    flood(150).await;
    // The first scrape's own series shows from the second one on.
    scrape(s.addr).await;
    let first = scrape(s.addr).await;
    flood(300).await;
    let second = scrape(s.addr).await;
    let series = http_series(&second);
    assert_eq!(
        http_series(&first).len(),
        series.len(),
        "300 more random requests made new series: {series:#?}"
    );
    assert!(series.len() <= 8, "{series:#?}");
    for l in &series {
        assert!(
            l.contains(r#"method="other""#) || l.contains(r#"method="GET""#),
            "{l}"
        );
        assert!(
            l.contains(r#"route="unmatched""#)
                || l.contains(r#"route="/api/v1/zones""#)
                || l.contains(r#"route="/metrics""#),
            "{l}"
        );
    }
    // Counter values gain digits; the series do not multiply.
    assert!(
        second.len() < first.len() + 400,
        "/metrics grew from {} to {} bytes",
        first.len(),
        second.len()
    );
    s.stop.cancel();
}

/// The `poolwatch_log_rows` value in a scrape.
fn log_rows(text: &str) -> i64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("poolwatch_log_rows "))
        .unwrap_or_else(|| panic!("no poolwatch_log_rows in {text}"));
    line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as i64
}

async fn metrics_on_their_own_address(backend: Backend) {
    let app = app_or_skip!(backend, cfg(relaxed()));
    let s = serve_store(cfg(relaxed()), app.store().clone(), true).await;
    let metrics = s.metrics.unwrap();
    let public = request("127.0.0.1", s.addr, "GET", "/metrics").await;
    assert!(public.starts_with("HTTP/1.1 404"), "{public}");
    let before = scrape(metrics).await;
    assert_eq!(log_rows(&before), 0);
    // Writes show in the count.
    app.seed_zones().await;
    let (_, key) = app.add_monitor("zrh", store::GlobalStatus::Active).await;
    for ip in ["192.0.2.1", "192.0.2.2"] {
        app.add_server(ip).await;
    }
    let work = app.work(&key).await;
    assert!(!work.servers.is_empty());
    let r = app.submit(&key, &common::good_results(&work)).await;
    assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.text());
    let after = scrape(metrics).await;
    assert!(app.log_count().await > 0);
    assert_eq!(log_rows(&after), app.log_count().await);
    // Only /metrics there: the public routes are not.
    let other = request("127.0.0.1", metrics, "GET", "/api/v1/zones").await;
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
    s.stop.cancel();
    let _ = s.task.await;
}

on_both_backends!(metrics_on_their_own_address);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_family_carries_the_security_headers() {
    let app: TestApp = app_or_skip!(Backend::Sqlite, cfg(relaxed()));
    app.seed_zones().await;
    app.add_server("192.0.2.1").await;
    for uri in [
        "/",
        "/scores/192.0.2.1",
        "/zones/de",
        "/monitors",
        "/scores/192.0.2.1/log?limit=5",
        "/scores/192.0.2.1/json",
        "/api/v1/servers",
        "/api/v1/zones",
        "/api/v1/monitor/config",
        "/api/dns-zone",
        "/metrics",
        "/assets/server-page.js",
        "/no/such/route",
    ] {
        let r = app.get(uri).await;
        let csp = r.header("content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{uri}: {csp:?}");
        assert!(csp.contains("script-src 'self'"), "{uri}: {csp:?}");
        assert!(csp.contains("frame-ancestors 'none'"), "{uri}: {csp:?}");
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(r.header("x-frame-options"), "DENY", "{uri}");
        assert_eq!(r.header("referrer-policy"), "no-referrer", "{uri}");
    }
    // The pages hold no inline script, which the policy would block.
    let page = app.get("/scores/192.0.2.1").await.text();
    assert!(page.contains("<script src=\"/assets/server-page.js\"></script>"));
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    let js = app.get("/assets/server-page.js").await;
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert!(js.text().contains("data-script"));
}
