//! Server time of "what the samples say" (issue 15): one server checked by
//! 7 monitors every 9 minutes with 4 samples, for 15 days (the default
//! sample retention: 16,800 checks, 67,200 samples); the JSON API over 24 h
//! and over the whole retention, the owner's manage page and the public
//! page (24 h each). Ignored by default (it prints numbers, it asserts only
//! that every answer is right); run with
//!
//! ```text
//! cargo test -p server --test samples_perf -- --ignored --nocapture --test-threads 1
//! ```
//!
//! (`--release` for numbers to compare; a debug build is an upper bound.)

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Backend, CLIENT, TestApp, TestDb};
use server::ServerConfig;
use std::fmt::Write as _;
use std::time::Instant;
use store::SampleRow;

const MONITORS: i64 = 7;
const INTERVAL_S: i64 = 9 * 60;
const DAYS: i64 = 15;
const ROUNDS: usize = 50;
const IP: &str = "192.0.2.10";

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

perf!(samples_api_and_pages);

/// A check of a limiter: the first sample answered, RATE at the second,
/// silence after.
fn check() -> Vec<SampleRow> {
    (0..4u8)
        .map(|p| SampleRow {
            position: p,
            send_ms: 2000 * u16::from(p),
            answered: p < 2,
            rtt_us: (p < 2).then_some(20_000 + u32::from(p)),
            offset: (p == 0).then_some(0.001),
            stratum: (p < 2).then_some(if p == 0 { 2 } else { 0 }),
            leap: (p < 2).then_some(0),
            error: match p {
                0 => None,
                1 => Some("RATE".into()),
                _ => Some("i/o timeout".into()),
            },
        })
        .collect()
}

fn stats(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

async fn samples_api_and_pages(backend: Backend) {
    let Some(db) = TestDb::open(backend).await else {
        return;
    };
    let now = chrono::Utc::now().timestamp();
    db.exec(&format!(
        "INSERT INTO accounts (name, created_on) VALUES ('perf', 0);
         INSERT INTO users (email, created_on) VALUES ('op@example.org', 0);
         INSERT INTO memberships (account_id, user_id, role, created_on)
             SELECT a.id, u.id, 'owner', 0 FROM accounts a, users u;
         INSERT INTO servers (ip, ip_version, account_id, netspeed, score, created_on)
             SELECT '{IP}', 4, id, 1000, 15.0, 0 FROM accounts;"
    ))
    .await;
    let mut cfg = ServerConfig::default();
    cfg.rate_limit.per_second = 0.0;
    let t = TestApp::new(db, cfg);
    let s = t.store();
    let acc = s.account_by_name("perf").await.unwrap().unwrap().id;
    let user = s.user_by_email("op@example.org").await.unwrap().unwrap().id;
    let server = s.server_by_ip(IP.parse().unwrap()).await.unwrap().unwrap();
    s.create_session(
        &server::keys::hash_key("pws_perf"),
        "x",
        user,
        Some(acc),
        now,
    )
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
    let mut monitors = Vec::new();
    for i in 0..MONITORS {
        let (m, _) = t
            .add_monitor(&format!("m{i}"), store::GlobalStatus::Active)
            .await;
        monitors.push(m.id);
    }
    // The checks, as SQL: the same packed rows the store writes.
    let blob: String = store::encode_samples(&check())
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let lit = match backend {
        Backend::Sqlite => format!("X'{blob}'"),
        Backend::Postgres => format!("'\\x{blob}'::bytea"),
    };
    let seed = Instant::now();
    let checks = DAYS * 86_400 / INTERVAL_S;
    let mut rows = Vec::new();
    for k in 0..checks {
        for (j, m) in monitors.iter().enumerate() {
            rows.push(format!(
                "({}, {}, {m}, {lit})",
                server.id,
                now - 10 - k * INTERVAL_S - j as i64
            ));
        }
    }
    for chunk in rows.chunks(500) {
        let mut sql =
            String::from("INSERT INTO check_samples (server_id, ts, monitor_id, data) VALUES ");
        let _ = write!(sql, "{};", chunk.join(","));
        t.db.exec(&sql).await;
    }
    eprintln!(
        "{backend:?}: {} checks seeded in {:.1} s",
        rows.len(),
        seed.elapsed().as_secs_f64()
    );
    let cookie = "poolwatch_session=pws_perf";
    let bearer = "Bearer pwt_perf";
    let (api24, api_all, manage, public) = (
        format!("/api/v1/servers/{IP}/samples"),
        format!("/api/v1/servers/{IP}/samples?hours={}", DAYS * 24),
        format!("/manage/servers/{IP}"),
        format!("/scores/{IP}"),
    );
    let routes: &[(&str, &str, &str)] = &[
        (&api24, "authorization", bearer),
        (&api_all, "authorization", bearer),
        (&manage, "cookie", cookie),
        (&public, "accept", "text/html"),
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
            assert!(r.text().contains("rate-limited"), "{path}");
        }
        let (median, p99) = stats(ms);
        eprintln!("{backend:?} {path:<44} median {median:7.2} ms  p99 {p99:7.2} ms");
    }
    let v = t
        .send_from(
            CLIENT,
            Method::GET,
            &api24,
            &[("authorization", bearer)],
            Body::empty(),
        )
        .await
        .json();
    assert_eq!(v["overall"]["checks"], 7 * (86_400 / INTERVAL_S));
}
