//! No key, key fragment or ticket ever reaches the service's log, on SQLite
//! and PostgreSQL. Its own test binary with the capturing subscriber as the
//! process's global one. As a thread-local subscriber beside other tests'
//! threads it once captured nothing in CI: while it is the only dispatch
//! in the process, a thread without a subscriber that first hits a
//! callsite caches "never" for it (tokio-rs/tracing#3611).

mod common;

use axum::http::{Method, StatusCode};
use common::{Backend, Capture, good_results};
use server::ServerConfig;
use store::GlobalStatus;

/// Keys and tickets never reach the log, whatever happens: good calls,
/// wrong keys, forged tickets, bad bodies.
async fn nothing_secret_in_logs(backend: Backend, cap: &Capture) {
    cap.clear();
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    t.add_server("192.0.2.1").await;
    let (_, key) = t.add_monitor("quiet", GlobalStatus::Active).await;
    let work = t.work(&key).await;
    let mut secrets = vec![
        key.clone(),
        key[server::keys::KEY_PREFIX.len()..].to_string(),
    ];
    secrets.extend(work.servers.iter().map(|s| s.ticket.clone()));

    let mut forged = good_results(&work);
    forged.results[0].ticket = "00".repeat(32);
    secrets.push(forged.results[0].ticket.clone());
    assert_eq!(t.submit(&key, &forged).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.submit(&key, &good_results(&work)).await.status,
        StatusCode::OK
    );
    let wrong = format!("{key}0");
    t.monitor_call(Method::GET, "/api/v1/monitor/config", Some(&wrong), None)
        .await;
    t.monitor_call(
        Method::POST,
        "/api/v1/monitor/results",
        Some(&key),
        Some(&serde_json::json!({"batch_id": work.batch_id, "results": [{"ticket": work.servers[0].ticket}]})),
    )
    .await;

    let logged = cap.text();
    assert!(!logged.is_empty(), "the capture works");
    for s in &secrets {
        assert!(
            !logged.contains(s.as_str()),
            "a secret was logged:\n{logged}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_secret_in_logs_on_either_backend() {
    let cap = Capture::default();
    let writer = cap.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    // One after the other: each run starts from an empty capture.
    nothing_secret_in_logs(Backend::Sqlite, &cap).await;
    nothing_secret_in_logs(Backend::Postgres, &cap).await;
}
