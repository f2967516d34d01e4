//! Store-level throughput and latency checks (the HTTP benchmark lives in
//! the server crate). Ignored by default; run in release mode:
//!
//! ```text
//! cargo test -p store --release --test perf -- --ignored --nocapture
//! ```

mod common;

use common::TestDb;
use std::time::{Duration, Instant};
use store::*;

const T0: i64 = 1_700_000_000;
/// Defaults; `PERF_SERVERS` / `PERF_MONITORS` override.
const SERVERS: usize = 500;
const MONITORS: usize = 4;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
const ROUNDS: usize = 20;
const BATCH: usize = 100;
const LOG_ROWS: i64 = 1_000_000;
const LOG_SERVERS: i64 = 50;

macro_rules! perf {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "benchmark; run with --release -- --ignored"]
            async fn sqlite() {
                let db = $crate::common::sqlite().await;
                super::$name(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "benchmark; run with --release -- --ignored"]
            async fn postgres() {
                let Some(db) = $crate::common::postgres().await else {
                    return;
                };
                super::$name(&db).await;
            }
        }
    };
}

/// CPU seconds used by this process so far (all threads), from
/// /proc/self/stat: on a shared machine wall time alone misleads.
fn cpu_s() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(end) = s.rfind(')') else { return 0.0 };
    let f: Vec<&str> = s[end + 2..].split(' ').collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

perf!(ingest);
perf!(log_read);

async fn setup(s: &Store, servers: usize, monitors_n: usize) -> (Vec<i64>, Vec<i64>) {
    common::seed_global(s).await;
    let mut ids = Vec::new();
    for i in 0..servers {
        let ip = format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
        ids.push(common::add_server_in(s, &ip, "@", T0).await);
    }
    let mut monitors = Vec::new();
    for m in 0..monitors_n {
        let row = s
            .add_monitor(
                NewMonitor {
                    name: format!("m{m}"),
                    location: String::new(),
                    ip: format!("192.0.2.{}", m + 1).parse().unwrap(),
                    account_id: None,
                    status: GlobalStatus::Active,
                    key_hash: format!("{m:064}"),
                },
                T0,
            )
            .await
            .unwrap();
        monitors.push(row.id);
    }
    (ids, monitors)
}

async fn ingest(db: &TestDb) {
    let s = &db.store;
    let servers = knob("PERF_SERVERS", SERVERS);
    let (_, monitors) = setup(s, servers, knob("PERF_MONITORS", MONITORS)).await;
    let start = Instant::now();
    let cpu0 = cpu_s();
    let tasks: Vec<_> = monitors
        .iter()
        .map(|&m| {
            let s = s.clone();
            tokio::spawn(async move {
                let iv = WorkIntervals {
                    active_s: 0,
                    testing_s: 0,
                    candidate_s: 0,
                };
                let mut n = 0;
                let mut phase = [Duration::ZERO; 2];
                let rounds = (ROUNDS * servers / BATCH).min(200);
                for round in 0..rounds {
                    let now = T0 + round as i64;
                    let t = Instant::now();
                    let (seq, work) = s.take_work_batch(m, iv, BATCH as i64, now).await.unwrap();
                    let ids: Vec<i64> = work.iter().map(|w| w.server_id).collect();
                    phase[0] += t.elapsed();
                    let results: Vec<ResultIn> = ids
                        .iter()
                        .map(|&server_id| ResultIn {
                            server_id,
                            ts: now,
                            offset: Some(0.0005 * (server_id % 7) as f64),
                            rtt: Some(0.020),
                            stratum: Some(2),
                            leap: Some(0),
                            refid: Some("GPS".into()),
                            error: None,
                            no_response: false,
                        })
                        .collect();
                    let t = Instant::now();
                    n += s
                        .submit_results(m, seq, &results, now)
                        .await
                        .unwrap()
                        .accepted;
                    phase[1] += t.elapsed();
                }
                if m == 1 {
                    println!(
                        "monitor 1, {rounds} rounds, wall time incl. waiting for the writer: \
                         take_work_batch {:.2?}, submit_results {:.2?}",
                        phase[0], phase[1]
                    );
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let dt = start.elapsed();
    let cpu = cpu_s() - cpu0;
    println!(
        "{} ingest: {total} results in {:.2?} = {:.0} results/s; {:.1} µs CPU per result \
         (take_work_batch + submit_results, {BATCH}/batch, {} monitors, {servers} servers)",
        s.backend_name(),
        dt,
        total as f64 / dt.as_secs_f64(),
        cpu * 1e6 / total as f64,
        monitors.len(),
    );
}

async fn log_read(db: &TestDb) {
    let s = &db.store;
    let (ids, _) = setup(s, LOG_SERVERS as usize, MONITORS).await;
    let start = Instant::now();
    bulk_logs(db, ids[0]).await;
    println!(
        "{}: loaded {LOG_ROWS} log rows in {:.2?}",
        s.backend_name(),
        start.elapsed()
    );
    assert!(s.counts().await.unwrap().2 >= LOG_ROWS);
    let target = ids[LOG_SERVERS as usize / 2];
    for (name, filter, since) in [
        ("All", MonitorFilter::All, None),
        ("Aggregate", MonitorFilter::Aggregate, None),
        ("Monitor", MonitorFilter::Monitor(1), None),
        ("All since", MonitorFilter::All, Some(T0 + 1000)),
    ] {
        let mut times: Vec<Duration> = Vec::new();
        let mut n = 0;
        let cpu0 = cpu_s();
        for _ in 0..60 {
            let t = Instant::now();
            n = s
                .log_rows(target, filter, 10_000, since)
                .await
                .unwrap()
                .len();
            times.push(t.elapsed());
        }
        let cpu_ms = (cpu_s() - cpu0) * 1000.0 / times.len() as f64;
        times.sort();
        println!(
            "{} log_rows({name}, limit 10000): {n} rows, median {:.2?}, p99 {:.2?}, \
             {cpu_ms:.1} ms CPU per call (client side; PostgreSQL's own CPU not counted)",
            s.backend_name(),
            times[times.len() / 2],
            times[times.len() * 99 / 100]
        );
    }
}

/// 1M rows spread over the servers: every 5th row an aggregate, the rest
/// from monitors 1–4, one per second.
async fn bulk_logs(db: &TestDb, first_server: i64) {
    let per_server = LOG_ROWS / LOG_SERVERS;
    let sql = format!(
        "INSERT INTO log_scores (id, server_id, monitor_id, ts, step, score, \"offset\", rtt, stratum, leap) \
         SELECT 1000000000 + n, {first_server} + n % {LOG_SERVERS}, \
         CASE WHEN (n / {LOG_SERVERS}) % 5 = 0 THEN NULL ELSE (n / {LOG_SERVERS}) % 5 END, \
         {T0} + n / {LOG_SERVERS}, 1, 19.5, 0.0012, 21000, 2, 0 FROM ",
    );
    let _ = per_server;
    match &db.url {
        None => {
            let path = db.data_dir().join("poolwatch.db");
            let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
                "sqlite://{}",
                path.display()
            ))
            .await
            .unwrap();
            let q = format!(
                "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < {LOG_ROWS}) \
                 {sql} g"
            );
            sqlx::query(sqlx::AssertSqlSafe(q))
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
        }
        Some(url) => {
            let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                .await
                .unwrap();
            let q = format!("{sql} generate_series(0, {LOG_ROWS} - 1) AS g(n)");
            sqlx::query(sqlx::AssertSqlSafe(q))
                .execute(&mut c)
                .await
                .unwrap();
            // As autovacuum would: sets the visibility map for index-only scans.
            sqlx::query("VACUUM ANALYZE log_scores")
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
}
