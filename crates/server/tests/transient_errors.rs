//! A submission that fails because the database is full answers 503 with
//! `Retry-After` (the JSON error of every route), stores nothing, does not
//! wedge the other monitor routes, and the service recovers by itself once
//! space is back. Both backends.
//!
//! SQLite is made full with the store's size limit over a file holding a
//! filler table (deleting it frees the space); PostgreSQL gets triggers
//! that raise `disk_full` on every log row, clock report and monitor
//! update (last_seen).

mod common;

use axum::http::{Method, StatusCode};
use common::{Backend, TestApp, good_results};
use serde_json::json;
use server::ServerConfig;
use store::{GlobalStatus, MonitorFilter, Store, StoreOptions};

const SERVERS: usize = 100;
/// Monitors reporting a long clock check while the disk is full: more than
/// one page of rows, so on SQLite some need a new page.
const CLOCKS: usize = 6;

fn cfg() -> ServerConfig {
    ServerConfig {
        batch_size: SERVERS as u32,
        ..ServerConfig::default()
    }
}

on_both_backends!(full_disk_answers_503_and_recovers);

async fn full_disk_answers_503_and_recovers(backend: Backend) {
    // One config for both apps below: it holds the ticket secret.
    let cfg = cfg();
    let t = app_or_skip!(backend, cfg.clone());
    t.seed_zones().await;
    let mut servers = Vec::new();
    for i in 1..=SERVERS {
        servers.push(t.add_server(&format!("192.0.2.{i}")).await);
    }
    let (m, key) = t.add_monitor("m1", GlobalStatus::Active).await;
    let mut others = Vec::new();
    for i in 0..CLOCKS {
        others.push(
            t.add_monitor(&format!("o{i}"), GlobalStatus::Active)
                .await
                .1,
        );
    }
    let work = t.work(&key).await;
    assert_eq!(work.servers.len(), SERVERS);
    let sub = good_results(&work);
    let logged_before = t.log_count().await;

    // The database runs out of space.
    let TestApp { mut db, .. } = t;
    match backend {
        Backend::Sqlite => {
            db.exec(
                "CREATE TABLE filler (b BLOB);
                 INSERT INTO filler VALUES (zeroblob(2000000));",
            )
            .await;
            // A limit below the file's size: no growth at all.
            db.store = Store::open_with(
                None,
                db.dir.path(),
                &StoreOptions {
                    sqlite_max_bytes: Some(1),
                },
            )
            .await
            .unwrap();
        }
        Backend::Postgres => {
            db.exec(
                "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'
                       USING ERRCODE = 'disk_full'; END $$;
                 CREATE TRIGGER disk_full BEFORE INSERT ON log_scores
                     FOR EACH ROW EXECUTE FUNCTION disk_full();
                 CREATE CONSTRAINT TRIGGER disk_full AFTER INSERT ON monitor_clock
                     DEFERRABLE INITIALLY DEFERRED
                     FOR EACH ROW EXECUTE FUNCTION disk_full();
                 -- last_seen must be written at the next call, and fails:
                 -- the call goes on without it (bookkeeping, best effort).
                 UPDATE monitors SET last_seen = NULL;
                 CREATE TRIGGER disk_full BEFORE UPDATE ON monitors
                     FOR EACH ROW EXECUTE FUNCTION disk_full();",
            )
            .await
        }
    }
    let t = TestApp::new(db, cfg);

    let r = t.submit(&key, &sub).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.header("retry-after"), "5");
    assert_eq!(r.json()["error"], "unavailable", "{}", r.text());
    assert!(r.error_detail().contains("retry"), "{}", r.text());

    // A clock report that needs new space fails too, and on SQLite takes
    // its whole transaction with it (a one-row upsert has no statement
    // journal), so sqlx's ROLLBACK fails as after a failed COMMIT; on
    // PostgreSQL the COMMIT fails.
    let long = json!({"ok": true, "detail": "d".repeat(1000)});
    let mut refused = 0;
    for k in &others {
        let r = t
            .monitor_call(Method::POST, "/api/v1/monitor/clock", Some(k), Some(&long))
            .await;
        match r.status {
            StatusCode::NO_CONTENT => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert_eq!(r.header("retry-after"), "5");
            }
            other => panic!("clock while full: {other} {}", r.text()),
        }
    }
    assert!(refused > 0, "no clock report needed new space");

    // The other routes still answer while the disk is full (they need no
    // new space, and last_seen is best effort): no failed write left a
    // connection inside a transaction.
    for _ in 0..3 {
        let r = t
            .monitor_call(Method::GET, "/api/v1/monitor/config", Some(&key), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "config: {}", r.text());
        let r = t.submit(&key, &sub).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    }
    // Nothing half-written: no log row, the batch still open, no score.
    assert_eq!(t.log_count().await, logged_before);
    let seq = server::parse_batch_id(&work.batch_id).unwrap();
    assert!(!t.store().batch(seq).await.unwrap().unwrap().submitted);
    for sm in t.store().server_monitors(servers[0].id).await.unwrap() {
        assert_eq!(sm.score_ts, None);
    }

    // Space comes back; the same service takes everything again.
    match backend {
        Backend::Sqlite => t.db.exec("DELETE FROM filler").await,
        Backend::Postgres => {
            t.db.exec(
                "DROP TRIGGER disk_full ON log_scores;
                 DROP TRIGGER disk_full ON monitor_clock;
                 DROP TRIGGER disk_full ON monitors;",
            )
            .await
        }
    }
    let r = t
        .monitor_call(Method::GET, "/api/v1/monitor/config", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "config: {}", r.text());
    let r = t
        .monitor_call(
            Method::POST,
            "/api/v1/monitor/clock",
            Some(&key),
            Some(&json!({"ok": true, "detail": "fine"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "clock: {}", r.text());
    for k in &others {
        let r = t
            .monitor_call(Method::POST, "/api/v1/monitor/clock", Some(k), Some(&long))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "clock: {}", r.text());
    }
    assert_eq!(t.store().monitor_clocks().await.unwrap().len(), CLOCKS + 1);
    let r = t.submit(&key, &sub).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({"accepted": SERVERS, "duplicate": false}));
    let r = t
        .monitor_call(Method::POST, "/api/v1/monitor/work", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "work: {}", r.text());

    // Every result once; an aggregate row per server; the batch closed.
    assert!(t.store().batch(seq).await.unwrap().unwrap().submitted);
    for s in &servers {
        let mine = t
            .store()
            .log_rows(s.id, MonitorFilter::Monitor(m.id), 10, None)
            .await
            .unwrap();
        assert_eq!(mine.len(), 1, "{}", s.ip);
        let agg = t
            .store()
            .log_rows(s.id, MonitorFilter::Aggregate, 10, None)
            .await
            .unwrap();
        assert_eq!(agg.len(), 1, "{}", s.ip);
        let sm = t.store().server_monitors(s.id).await.unwrap();
        let mine_now = sm
            .iter()
            .find(|x| x.monitor_id == m.id)
            .expect("m1's standing");
        assert_eq!(mine_now.score, mine[0].score);
    }
    assert_eq!(t.log_count().await, logged_before + 2 * SERVERS as i64);
    t.store().close().await;
}
