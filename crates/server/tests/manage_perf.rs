//! Server time of the manage pages and the manage API with 10,000
//! accounts (a member, a token and five audit entries each) and 50,000
//! servers in the store. Ignored by default (it prints numbers, it asserts
//! only that every answer is right); run with
//!
//! ```text
//! cargo test -p server --test manage_perf -- --ignored --nocapture
//! ```
//!
//! (`--release` for numbers to compare; a debug build is an upper bound.)

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Backend, CLIENT, TestApp, TestDb};
use server::ServerConfig;
use std::time::Instant;

const ACCOUNTS: i64 = 10_000;
const SERVERS: i64 = 50_000;
const ROUNDS: usize = 200;

macro_rules! perf {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "benchmark; run with -- --ignored --nocapture"]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "benchmark; run with -- --ignored --nocapture"]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await;
            }
        }
    )*};
}

perf!(manage_pages_and_api);

/// Numbers 1..=n as a CTE both dialects read.
fn series(n: i64) -> String {
    format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})")
}

async fn seed(db: &TestDb) {
    let a = series(ACCOUNTS);
    let s = series(SERVERS);
    db.exec(&format!(
        "INSERT INTO accounts (name, created_on) {a} SELECT 'acct' || i, 0 FROM n;
         INSERT INTO users (email, created_on) {a} SELECT 'op' || i || '@example.org', 0 FROM n;
         INSERT INTO memberships (account_id, user_id, role, created_on)
             SELECT a.id, u.id, 'owner', 0 FROM accounts a
             JOIN users u ON u.email = 'op' || substr(a.name, 5) || '@example.org';
         INSERT INTO api_tokens (account_id, name, token_hash, created_on)
             SELECT id, 'ci', 'h' || id, 0 FROM accounts;
         INSERT INTO audit_log (account_id, ts, actor, action, subject)
             SELECT id, k.i, 'user:x', 'token.create', 'ci' FROM accounts,
             (SELECT 1 AS i UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5) k;
         INSERT INTO servers (ip, ip_version, account_id, netspeed, score, created_on)
             {s} SELECT '10.' || (i / 65536) || '.' || ((i / 256) % 256) || '.' || (i % 256),
             4, 1 + (i % {ACCOUNTS}), 1000, 15.0, 0 FROM n;"
    ))
    .await;
}

fn stats(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

async fn manage_pages_and_api(backend: Backend) {
    let Some(db) = TestDb::open(backend).await else {
        return;
    };
    let t0 = Instant::now();
    seed(&db).await;
    eprintln!("{backend:?}: seeded in {:.1} s", t0.elapsed().as_secs_f64());
    let mut cfg = ServerConfig::default();
    cfg.rate_limit.per_second = 0.0;
    let t = TestApp::new(db, cfg);
    let s = t.store();
    // A session and a token of one account in the middle.
    let acc = s.account_by_name("acct5000").await.unwrap().unwrap().id;
    let user = s
        .user_by_email("op5000@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    let now = chrono::Utc::now().timestamp();
    let sid = "pws_perf";
    s.create_session(&server::keys::hash_key(sid), "x", user, Some(acc), now)
        .await
        .unwrap();
    s.create_token(
        acc,
        "perf",
        &server::keys::hash_key("pwt_perf"),
        None,
        "user:x",
        now,
    )
    .await
    .unwrap();
    let cookie = format!("poolwatch_session={sid}");
    // One of its servers, and a live check of another address asked of a
    // monitor (one that has called), for the server pages.
    let ip = s.account_servers(acc).await.unwrap()[0].0.ip;
    let m = s
        .add_monitor(
            store::NewMonitor {
                name: "perf".into(),
                location: "Lab".into(),
                ip: "192.0.2.1".parse().unwrap(),
                account_id: None,
                status: store::GlobalStatus::Active,
                key_hash: "0".repeat(64),
            },
            now,
        )
        .await
        .unwrap();
    s.touch_monitor(m.id, now, None).await.unwrap();
    let check = s
        .create_live_check(acc, "192.0.2.77".parse().unwrap(), now)
        .await
        .unwrap();
    let (server_page, server_api, check_page) = (
        format!("/manage/servers/{ip}"),
        format!("/api/v1/manage/servers/{ip}"),
        format!("/manage/servers/check/{}", check.id),
    );
    let check_api = format!("/api/v1/manage/servers/checks/{}", check.id);
    let routes: &[(&str, &str, &str)] = &[
        ("/manage", "cookie", cookie.as_str()),
        ("/manage/members", "cookie", cookie.as_str()),
        ("/manage/tokens", "cookie", cookie.as_str()),
        ("/manage/audit", "cookie", cookie.as_str()),
        ("/manage/servers/add", "cookie", cookie.as_str()),
        (&server_page, "cookie", cookie.as_str()),
        (&check_page, "cookie", cookie.as_str()),
        ("/api/v1/manage/account", "authorization", "Bearer pwt_perf"),
        ("/api/v1/manage/members", "authorization", "Bearer pwt_perf"),
        ("/api/v1/manage/tokens", "authorization", "Bearer pwt_perf"),
        ("/api/v1/manage/audit", "authorization", "Bearer pwt_perf"),
        ("/api/v1/manage/servers", "authorization", "Bearer pwt_perf"),
        (&server_api, "authorization", "Bearer pwt_perf"),
        (&check_api, "authorization", "Bearer pwt_perf"),
    ];
    for (path, h, v) in routes {
        let mut ms = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let start = Instant::now();
            let r = t
                .send_from(CLIENT, Method::GET, path, &[(h, v)], Body::empty())
                .await;
            ms.push(start.elapsed().as_secs_f64() * 1e3);
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        }
        let (median, p99) = stats(ms);
        eprintln!("{backend:?} {path:<26} median {median:6.2} ms  p99 {p99:6.2} ms");
    }
    let home = t
        .send_from(
            CLIENT,
            Method::GET,
            "/manage",
            &[("cookie", &cookie)],
            Body::empty(),
        )
        .await
        .text();
    assert_eq!(
        home.matches("<td><a href=\"/manage/servers/").count(),
        5,
        "its 5 servers"
    );
}
