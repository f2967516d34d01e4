//! What operators rely on, on SQLite and PostgreSQL: the rate limit, the
//! metrics, keys kept only as hashes (and rotated), housekeeping, and a
//! real listener that shuts down cleanly. No secret in the logs: see
//! `secret_logs.rs`.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Backend, CLIENT, good_results};
use server::{RateLimitConfig, ServerConfig};
use store::GlobalStatus;
use store::testing::StoreTesting as _;

fn limited(per_second: f64, burst: f64, trusted: &[&str]) -> ServerConfig {
    ServerConfig {
        rate_limit: RateLimitConfig {
            per_second,
            burst,
            trusted_proxies: trusted.iter().map(|p| p.parse().unwrap()).collect(),
            ..RateLimitConfig::default()
        },
        ..ServerConfig::default()
    }
}

on_both_backends!(
    rate_limit_per_client,
    rate_limit_behind_trusted_proxy,
    metrics_series,
    failed_jobs_in_metrics,
    keys_are_stored_hashed,
    real_listener,
    housekeeping_pass,
    rotated_key,
);

async fn rate_limit_per_client(backend: Backend) {
    // 0.01/s: no token comes back during the test.
    let t = app_or_skip!(backend, limited(0.01, 3.0, &[]));
    t.seed_zones().await;
    t.add_server("192.0.2.1").await;
    for _ in 0..3 {
        assert_eq!(t.get("/api/v1/zones").await.status, StatusCode::OK);
    }
    let r = t.get("/api/v1/servers").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r
        .header("retry-after")
        .parse()
        .expect("Retry-After in seconds");
    assert!(wait >= 1);
    assert_eq!(r.json()["error"], "rate_limited");
    // The CSV route answers in text.
    let r = t.get("/scores/192.0.2.1/log").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("content-type").starts_with("text/plain"));
    assert!(!r.header("retry-after").is_empty());
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let r = t
        .send_from(
            CLIENT,
            Method::GET,
            "/api/v1/zones",
            &[("x-forwarded-for", "203.0.113.50")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Another client is not affected; an IPv6 client gets its own bucket.
    let r = t
        .send_from(
            "203.0.113.9:5555",
            Method::GET,
            "/api/v1/zones",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t
        .send_from(
            "[2001:db8:1:2::3]:5555",
            Method::GET,
            "/api/v1/zones",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // The monitor API (authenticated) and /metrics are not limited.
    let (_, key) = t.add_monitor("busy", GlobalStatus::Active).await;
    for _ in 0..10 {
        let r = t
            .monitor_call(Method::GET, "/api/v1/monitor/config", Some(&key), None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(t.get("/metrics").await.status, StatusCode::OK);
}

async fn rate_limit_behind_trusted_proxy(backend: Backend) {
    let t = app_or_skip!(backend, limited(0.01, 1.0, &["10.0.0.0/8"]));
    let proxy = "10.1.2.3:443";
    let via = |client: &'static str| {
        let t = &t;
        async move {
            t.send_from(
                proxy,
                Method::GET,
                "/api/v1/zones",
                &[("x-forwarded-for", client)],
                Body::empty(),
            )
            .await
            .status
        }
    };
    assert_eq!(via("203.0.113.1").await, StatusCode::OK);
    assert_eq!(via("203.0.113.1").await, StatusCode::TOO_MANY_REQUESTS);
    // A different client behind the same proxy has its own bucket; what it
    // claims further left in the chain is not believed.
    assert_eq!(via("198.51.100.1, 203.0.113.2").await, StatusCode::OK);
    assert_eq!(
        via("203.0.113.1, 203.0.113.2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn metrics_series(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    t.add_server("192.0.2.1").await;
    t.add_server("192.0.2.2").await;
    let (_, key) = t.add_monitor("metered", GlobalStatus::Active).await;
    let work = t.work(&key).await;
    let mut sub = good_results(&work);
    sub.results[1].offset = None;
    sub.results[1].rtt = None;
    sub.results[1].no_response = true;
    sub.results[1].error = Some("i/o timeout".into());
    assert_eq!(t.submit(&key, &sub).await.status, StatusCode::OK);
    t.submit(&key, &sub).await; // a duplicate
    let r = t.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/plain"));
    let text = r.text();
    for want in [
        r#"poolwatch_results_total{monitor="metered",outcome="ok"} 1"#,
        r#"poolwatch_results_total{monitor="metered",outcome="timeout"} 1"#,
        r#"poolwatch_batches_total{monitor="metered",outcome="accepted"} 1"#,
        r#"poolwatch_batches_total{monitor="metered",outcome="duplicate"} 1"#,
        "poolwatch_scorer_lag_seconds_bucket",
        "poolwatch_scorer_lag_seconds_count 2",
        "poolwatch_http_request_duration_seconds_bucket",
        r#"route="/api/v1/monitor/results""#,
        r#"route="/api/v1/monitor/work""#,
        "poolwatch_servers 2",
        "poolwatch_monitors 1",
        "poolwatch_log_rows ",
        "# TYPE poolwatch_results_total counter",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // Routes are labelled by pattern, never by the address asked for.
    t.get("/scores/192.0.2.1/log").await;
    let text = t.get("/metrics").await.text();
    assert!(text.contains(r#"route="/scores/{ip}/log""#), "{text}");
    assert!(!text.contains("192.0.2.1"), "{text}");
}

/// A background job that fails is counted in `/metrics` by job and kind;
/// the others show 0.
async fn failed_jobs_in_metrics(backend: Backend) {
    use server::jobs::{Job, JobName, Jobs};
    let t = app_or_skip!(backend, ServerConfig::default());
    let mut jobs = Jobs::new(t.state.job_stats().clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    jobs.start(Job::new(JobName::Alerts, move |_| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(());
            anyhow::bail!("no relay")
        }
    }));
    rx.recv().await.unwrap();
    // Counted as the run ends, before the back-off (1 s) starts.
    let counted = r#"poolwatch_job_failures_total{job="alerts",kind="error"} 1"#;
    let mut text = String::new();
    for _ in 0..50 {
        text = t.get("/metrics").await.text();
        if text.contains(counted) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for want in [
        counted,
        r#"poolwatch_job_failures_total{job="alerts",kind="panic"} 0"#,
        r#"poolwatch_job_failures_total{job="selector",kind="error"} 0"#,
        "# TYPE poolwatch_job_failures_total counter",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    jobs.shutdown(std::time::Duration::from_secs(1)).await;
}

/// Housekeeping prunes batches no agent can submit any more, keeps the log
/// unless a retention is set, prunes old live checks, removes servers on
/// their deletion date, and counts what it deleted in `/metrics`.
async fn housekeeping_pass(backend: Backend) {
    use server::housekeeping_job::{HousekeepingSettings, pass};
    const DAY: i64 = 86_400;
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    let srv = t.add_server("192.0.2.1").await;
    let (m, key) = t.add_monitor("tidy", GlobalStatus::Active).await;
    let work = t.work(&key).await;
    assert_eq!(
        t.submit(&key, &good_results(&work)).await.status,
        StatusCode::OK
    );
    // A batch issued three days ago and never submitted.
    let stale = t
        .store()
        .create_batch(m.id, &[srv.id], common::now() - 3 * DAY)
        .await
        .unwrap();
    let rows = t.log_count().await;
    assert!(rows >= 1);
    // An operator's server to be deleted in two days, and a live check.
    let acct = t.store().ensure_account("op").await.unwrap();
    let add = store::OperatorAdd {
        account_id: acct,
        ip: "81.2.69.142".parse().unwrap(),
        hostname: None,
        netspeed: 1500,
        zones: vec!["@".into()],
    };
    let limits = store::AddLimits {
        max_servers: 20,
        max_unverified: 2,
    };
    t.store()
        .add_operator_server(&add, limits, "user:op", common::now())
        .await
        .unwrap();
    let day = common::now() - common::now().rem_euclid(DAY) + 2 * DAY;
    t.store()
        .set_account_server_deletion(acct, add.ip, Some(day), "user:op", common::now())
        .await
        .unwrap();
    let check = t
        .store()
        .create_live_check(acct, add.ip, common::now())
        .await
        .unwrap();

    let keep_log = HousekeepingSettings::default();
    let done = pass(&t.state, &keep_log, common::now()).await.unwrap();
    assert_eq!((done.batches, done.log_rows), (1, 0));
    assert_eq!((done.live_checks, done.servers), (0, 0));
    assert!(t.store().batch(stale).await.unwrap().is_none());
    assert_eq!(t.log_count().await, rows);

    // Three days on with a two-day retention: every row is past it, and
    // the submitted batch too.
    let two_days = HousekeepingSettings {
        log_retention: Some(std::time::Duration::from_secs(2 * DAY as u64)),
        ..keep_log
    };
    let done = pass(&t.state, &two_days, common::now() + 3 * DAY)
        .await
        .unwrap();
    assert_eq!((done.batches, done.log_rows), (1, rows as u64));
    assert_eq!((done.live_checks, done.servers), (1, 1));
    assert!(t.store().live_check(check.id).await.unwrap().is_none());
    assert!(t.store().server_by_ip(add.ip).await.unwrap().is_none());
    assert_eq!(t.log_count().await, 0);
    // The server keeps its score; only history went.
    let after = t.store().server_by_id(srv.id).await.unwrap().unwrap();
    assert!(after.score > 0.0, "{after:?}");

    let text = t.get("/metrics").await.text();
    for want in [
        "poolwatch_housekeeping_passes_total 2".to_string(),
        r#"poolwatch_housekeeping_deleted_total{what="batches"} 2"#.to_string(),
        format!(r#"poolwatch_housekeeping_deleted_total{{what="log_rows"}} {rows}"#),
        r#"poolwatch_housekeeping_deleted_total{what="live_checks"} 1"#.to_string(),
        r#"poolwatch_housekeeping_deleted_total{what="servers"} 1"#.to_string(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
    // PostgreSQL's partitions (made ahead by the passes); SQLite has none.
    for table in ["log_scores", "check_samples"] {
        let line = format!("poolwatch_store_partitions{{table=\"{table}\"}} ");
        let n = text
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .map(|v| v.parse::<f64>().unwrap());
        match backend {
            Backend::Sqlite => assert_eq!(n, None, "{text}"),
            Backend::Postgres => {
                let ahead = if table == "log_scores" {
                    store::LOG_MONTHS_AHEAD
                } else {
                    store::SAMPLE_DAYS_AHEAD
                };
                // This period and those ahead, at least.
                assert!(n.unwrap() > f64::from(ahead), "{table}: {n:?}\n{text}");
            }
        }
    }
}

/// After `rotate_monitor_key` the old key is refused at once and the new
/// one works.
async fn rotated_key(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (_, old) = t.add_monitor("leaky", GlobalStatus::Active).await;
    let t = &t;
    let config = |key: String| async move {
        t.monitor_call(Method::GET, "/api/v1/monitor/config", Some(&key), None)
            .await
            .status
    };
    assert_eq!(config(old.clone()).await, StatusCode::OK);
    let (m, new) = server::admin::rotate_monitor_key(t.store(), "leaky")
        .await
        .unwrap();
    assert_eq!(m.name, "leaky");
    assert_ne!(new, old);
    assert_eq!(config(old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(config(new).await, StatusCode::OK);
    assert!(matches!(
        server::admin::rotate_monitor_key(t.store(), "nosuch").await,
        Err(server::admin::AdminError::Usage(_))
    ));
}

async fn keys_are_stored_hashed(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (m, key) = t.add_monitor("hashed", GlobalStatus::Active).await;
    let hash = server::keys::hash_key(&key);
    assert_eq!(m.key_hash, hash);
    let secret_part = key.trim_start_matches(server::keys::KEY_PREFIX).to_string();
    // Use the key once so every write path (last_seen, version) has run.
    let r = t
        .monitor_call(Method::GET, "/api/v1/monitor/config", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let dump = match backend {
        Backend::Sqlite => {
            t.store().close().await;
            let mut bytes = Vec::new();
            for f in ["poolwatch.db", "poolwatch.db-wal"] {
                if let Ok(b) = std::fs::read(t.db.dir.path().join(f)) {
                    bytes.extend(b);
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Backend::Postgres => {
            let url = t.db.pg_url.clone().unwrap();
            let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
                .await
                .unwrap();
            let (text,): (String,) =
                sqlx::query_as("SELECT string_agg(row_to_json(m)::text, ' ') FROM monitors m")
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
            text
        }
    };
    assert!(dump.contains(&hash), "the hash is what is stored");
    assert!(
        !dump.contains(&secret_part),
        "the plain key must not be stored"
    );
}

async fn real_listener(backend: Backend) {
    let Some(db) = common::TestDb::open(backend).await else {
        return;
    };
    let store = db.store.clone();
    // A batch issued three days ago: the service's housekeeping (on here,
    // as in `serve`) prunes it in its first pass, at start.
    let m = store
        .add_monitor(
            store::NewMonitor {
                name: "old".into(),
                location: "Lab".into(),
                ip: "192.0.2.200".parse().unwrap(),
                account_id: None,
                status: GlobalStatus::Active,
                key_hash: "0".repeat(64),
            },
            common::now(),
        )
        .await
        .unwrap();
    let stale = store
        .create_batch(m.id, &[], common::now() - 3 * 86_400)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve_on(
        listener,
        ServerConfig {
            housekeeping: Some(server::housekeeping_job::HousekeepingSettings::default()),
            ..limited(0.01, 1.0, &[])
        },
        store.clone(),
        async {
            let _ = rx.await;
        },
    ));
    let get = |path: &'static str| common::raw_get(addr, path);
    assert!(get("/api/v1/zones").await.starts_with("HTTP/1.1 200"));
    // The limiter sees the real peer address (127.0.0.1) and its burst of 1.
    let second = get("/api/v1/zones").await;
    assert!(second.starts_with("HTTP/1.1 429"), "{second}");
    assert!(second.to_ascii_lowercase().contains("retry-after:"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.batch(stale).await.unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the running service never pruned the stale batch"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("shuts down")
        .unwrap()
        .unwrap();
}
