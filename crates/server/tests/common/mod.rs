//! Test harness for the HTTP API: an app over a throw-away store (a SQLite
//! file in a temporary directory, or a fresh PostgreSQL database on the
//! server named by `POOLWATCH_TEST_PG_URL`, dropped afterwards), and helpers
//! that send requests through the router as a given client address.

#![allow(dead_code)]

use api::{Submission, Work};
use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::Value;
use server::admin::{AddMonitor, AddServer};
use server::{AppState, Clock, ServerConfig};
use std::net::{IpAddr, SocketAddr};
use store::{GlobalStatus, MonitorRow, ServerRow, Store};
use tempfile::TempDir;
use tower::ServiceExt;

pub const PG_ENV: &str = "POOLWATCH_TEST_PG_URL";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A throw-away store.
pub struct TestDb {
    pub store: Store,
    pub backend: Backend,
    pub dir: TempDir,
    /// The PostgreSQL URL of this test's own database.
    pub pg_url: Option<String>,
    _drop: Option<PgDropGuard>,
}

impl TestDb {
    /// Runs raw SQL (one or more statements) on the test database behind
    /// the store's back: scores or rows set by hand instead of through
    /// hundreds of results.
    pub async fn exec(&self, sql: &str) {
        let q = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()));
        match &self.pg_url {
            Some(url) => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                    .await
                    .unwrap();
                q.execute(&mut c).await.unwrap();
            }
            None => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.dir.path().join("poolwatch.db"))
                    .busy_timeout(std::time::Duration::from_secs(10));
                let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&opts)
                    .await
                    .unwrap();
                q.execute(&mut c).await.unwrap();
            }
        }
    }

    pub async fn open(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => {
                let store = Store::open(None, dir.path()).await.expect("open sqlite");
                Some(TestDb {
                    store,
                    backend,
                    dir,
                    pg_url: None,
                    _drop: None,
                })
            }
            Backend::Postgres => {
                let admin = match std::env::var(PG_ENV) {
                    Ok(u) if !u.is_empty() => u,
                    _ => {
                        if std::env::var_os("CI").is_some() {
                            panic!(
                                "{PG_ENV} must be set under CI: PostgreSQL tests may not be skipped"
                            );
                        }
                        eprintln!("skipped: {PG_ENV} is not set");
                        return None;
                    }
                };
                let name = format!("pw_srv_{:016x}", rand::random::<u64>());
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("connect to POOLWATCH_TEST_PG_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create the test database");
                let _ = sqlx::Connection::close(conn).await;
                let url = replace_database(&admin, &name);
                let guard = PgDropGuard { admin, name };
                let store = Store::open(Some(&url), dir.path())
                    .await
                    .expect("open postgres");
                Some(TestDb {
                    store,
                    backend,
                    dir,
                    pg_url: Some(url),
                    _drop: Some(guard),
                })
            }
        }
    }
}

/// `postgres://u:p@host:port/db?x` with `db` replaced.
fn replace_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{db}{q}", &base[..host_end])
}

/// Drops the database when the test ends, also after a panic.
struct PgDropGuard {
    admin: String,
    name: String,
}

impl Drop for PgDropGuard {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Own thread and runtime: the test's runtime may be gone already.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A response, read whole.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    /// The JSON error's `detail`, checking the error shape on the way.
    pub fn error_detail(&self) -> String {
        let v = self.json();
        assert!(v["error"].is_string(), "no error field: {v}");
        v["detail"].as_str().expect("detail").to_string()
    }
}

/// An app over a test store.
pub struct TestApp {
    pub db: TestDb,
    pub state: AppState,
    pub app: Router,
}

pub const CLIENT: &str = "198.51.100.7:40000";

/// The token `poolwatch dns` presents in [`with_dns_zone`]'s service.
pub const DNS_TOKEN: &str = "dns-token-0123456789abcdef";

/// A service publishing `pool.example.org` (name server `ns1`), with
/// [`DNS_TOKEN`] when `token`, else the zone route closed.
pub fn with_dns_zone(token: bool) -> ServerConfig {
    ServerConfig {
        dns_zone: Some(server::DnsZoneConfig {
            origin: "pool.example.org".into(),
            ns: vec!["ns1".into()],
            ipv6_everywhere: false,
            token_hash: token.then(|| server::keys::hash_key(DNS_TOKEN)),
        }),
        ..ServerConfig::default()
    }
}

/// The A addresses of `label` in zone JSON from `/api/dns-zone`.
pub fn zone_a(zone: &Value, label: &str) -> Vec<String> {
    zone["data"][label]["a"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p[0].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

impl TestApp {
    /// `GET /api/dns-zone` with [`DNS_TOKEN`]: the zone JSON (asserts 200).
    pub async fn dns_zone(&self) -> Value {
        let auth = format!("Bearer {DNS_TOKEN}");
        let r = self
            .send_from(
                CLIENT,
                Method::GET,
                "/api/dns-zone",
                &[("authorization", &auth)],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()
    }

    pub fn new(db: TestDb, cfg: ServerConfig) -> TestApp {
        let state = AppState::new(cfg, db.store.clone());
        let app = server::router(state.clone());
        TestApp { db, state, app }
    }

    /// The same app reading the time from `clock`: for tests whose
    /// assertions depend on where "now" falls in the UTC day.
    pub fn with_clock(self, clock: Clock) -> TestApp {
        let state = AppState::with_clock(self.state.cfg().clone(), self.db.store.clone(), clock);
        let app = server::router(state.clone());
        TestApp {
            db: self.db,
            state,
            app,
        }
    }

    pub fn store(&self) -> &Store {
        &self.db.store
    }

    pub async fn seed_zones(&self) {
        self.store()
            .seed_zones(&server::admin::zone_seeds())
            .await
            .expect("seed zones");
    }

    pub async fn add_monitor(&self, name: &str, status: GlobalStatus) -> (MonitorRow, String) {
        server::admin::add_monitor(
            self.store(),
            AddMonitor {
                name: name.into(),
                ip: "192.0.2.200".parse().unwrap(),
                location: "Lab".into(),
                account: None,
                status,
            },
            now(),
        )
        .await
        .expect("add monitor")
    }

    pub async fn add_server(&self, ip: &str) -> ServerRow {
        server::admin::add_server(
            self.store(),
            None,
            AddServer {
                ip: ip.parse().unwrap(),
                zone: Some("de".into()),
                netspeed: 10_000,
                account: None,
                allow_private: true,
            },
            now(),
        )
        .await
        .expect("add server")
    }

    /// Send a request as the client `from`.
    pub async fn send_from(
        &self,
        from: &str,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b.body(body).expect("request");
        let peer: SocketAddr = from.parse().expect("client address");
        req.extensions_mut().insert(ConnectInfo(peer));
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.send_from(CLIENT, Method::GET, uri, &[], Body::empty())
            .await
    }

    /// A monitor API call with `key` (if any) and a JSON body (if any).
    pub async fn monitor_call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let auth = key.map(|k| format!("Bearer {k}"));
        let mut headers = vec![(header::USER_AGENT.as_str(), "poolwatch-agent/test-1.2")];
        if let Some(a) = &auth {
            headers.push((header::AUTHORIZATION.as_str(), a.as_str()));
        }
        let body = match body {
            Some(v) => {
                headers.push((header::CONTENT_TYPE.as_str(), "application/json"));
                Body::from(serde_json::to_vec(v).unwrap())
            }
            None => Body::empty(),
        };
        self.send_from(CLIENT, method, path, &headers, body).await
    }

    pub async fn work(&self, key: &str) -> Work {
        let r = self
            .monitor_call(Method::POST, "/api/v1/monitor/work", Some(key), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        serde_json::from_slice(&r.body).expect("work JSON")
    }

    pub async fn submit(&self, key: &str, sub: &Submission) -> Resp {
        let v = serde_json::to_value(sub).unwrap();
        self.monitor_call(Method::POST, "/api/v1/monitor/results", Some(key), Some(&v))
            .await
    }

    pub async fn log_count(&self) -> i64 {
        self.store().counts().await.expect("counts").2
    }
}

/// Good results (offset 1 ms, rtt 20 ms) for every server of `work`.
pub fn good_results(work: &Work) -> Submission {
    Submission {
        batch_id: work.batch_id.clone(),
        results: work
            .servers
            .iter()
            .map(|s| api::CheckResult {
                ip: s.ip.parse::<IpAddr>().unwrap(),
                ticket: s.ticket.clone(),
                ts: now() - 1,
                offset: Some(0.001),
                rtt: Some(0.020),
                stratum: Some(2),
                leap: Some(0),
                refid: Some("GPS".into()),
                error: None,
                no_response: false,
                samples: vec![],
            })
            .collect(),
    }
}

/// `hour`:00 UTC of the current UTC day: a "now" for tests that must not
/// depend on the hour they run at (day buckets, "today", 24 h windows).
pub fn today_at(hour: i64) -> i64 {
    let n = now();
    n - n.rem_euclid(86_400) + hour * 3600
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Instantiates each `async fn NAME(backend: Backend)` once per backend, as
/// `NAME::sqlite` and `NAME::postgres`.
/// Collects everything logged into a buffer: the writer of a test's
/// global tracing subscriber.
#[derive(Clone, Default)]
pub struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Forget what was logged so far.
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// `GET path` on a served app over a real socket (`Connection: close`):
/// the whole raw answer, head and body.
pub async fn raw_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            }
        )*
    };
}

/// Open a test app on `backend`, or return from the test when PostgreSQL
/// is not configured (outside CI).
#[macro_export]
macro_rules! app_or_skip {
    ($backend:expr, $cfg:expr) => {
        match $crate::common::TestDb::open($backend).await {
            Some(db) => $crate::common::TestApp::new(db, $cfg),
            None => return,
        }
    };
}
