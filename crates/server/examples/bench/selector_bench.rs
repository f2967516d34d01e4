//! The selector and the aggregate at 10× the real pool: 50,000 servers and
//! 300 monitors (15,000,000 server/monitor pairs). Not a timed test: run by
//! hand, numbers go to BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p server --example bench -- selector sqlite
//! cargo run --release -p server --example bench -- selector postgres   # needs POOLWATCH_TEST_PG_URL
//! ```
//!
//! Options after the backend: `--servers N` (50000 here), `--monitors N` (300 here),
//! `--rate N` results/s for the ingest part (2000), `--seconds N` (30),
//! `--batch N` results per submission (10).
//!
//! Setup: monitors through the admin path (3 per account, each in its own
//! /20), servers and pairs bulk-inserted with SQL: per server 7 active, 5
//! testing, the rest candidates, each pair with 24 h statistics that vary
//! in count (0–39), average step (−0.1 to 1; one pair in ten unhealthy) and
//! rtt (5–204 ms). Then:
//! 1. full selector passes (`server::selector_job::run_pass`), timed by part,
//!    with the process's peak RSS over the pass;
//! 2. ingest at `--rate` results/s in batches of `--batch` from all
//!    monitors at once: each submission scores the results and updates the
//!    aggregate in its transaction, so the aggregate lag behind a
//!    submission is the submission's latency — reported as p50/p99/max.

use super::{Opts, drop_pg, latency, now, open_store};
use scoring::SelectorConfig;
use server::admin::AddMonitor;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use store::testing::StoreTesting as _;
use store::{GlobalStatus, ResultIn};

/// (VmRSS, VmHWM) in MB.
fn rss() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (get("VmRSS:"), get("VmHWM:"))
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The pairs' bulk insert: status and statistics derived from the ids.
const PAIRS_SQL: &str = "INSERT INTO server_scores (monitor_id, server_id, status, score, score_ts, \
     stats_day, cur_n, cur_step, cur_rtt_n, cur_rtt, prev_n, prev_step, prev_rtt_n, prev_rtt) \
     SELECT m.id, s.id, \
       CASE WHEN (s.id * 7 + m.id) % $1 < 7 THEN 'active' \
            WHEN (s.id * 7 + m.id) % $1 < 12 THEN 'testing' ELSE 'candidate' END, \
       15.0, $2, $3, \
       (s.id * 7 + m.id * 13) % 40, \
       ((s.id * 7 + m.id * 13) % 40) * (((s.id * 31 + m.id * 17) % 20) / 19.0 * 1.1 - 0.1), \
       (s.id * 7 + m.id * 13) % 40, \
       ((s.id * 7 + m.id * 13) % 40) * (5.0 + (m.id * 37 + s.id) % 200), \
       0, 0.0, 0, 0.0 \
     FROM servers s CROSS JOIN monitors m WHERE s.id >= $4 AND s.id < $5";

/// Bulk-inserts servers 100.64.x.y-like lab addresses (never probed) and
/// every pair, in chunks of 5,000 servers.
/// The bulk insert on one connection (either backend's).
macro_rules! fill_on {
    ($o:expr, $c:expr, $ts:expr) => {{
        let (o, ts) = ($o, $ts);
        let day = ts.div_euclid(86_400);
        let mut id = 1usize;
        while id <= o.servers {
            let end = (id + 5000).min(o.servers + 1);
            let mut sql = String::from(
                "INSERT INTO servers (id, ip, ip_version, netspeed, score, score_ts, created_on) VALUES ",
            );
            for i in id..end {
                let ip = Ipv4Addr::from(0x0A00_0000u32 + i as u32 * 4);
                if i > id {
                    sql.push(',');
                }
                sql.push_str(&format!("({i}, '{ip}', 4, 10000, 15.0, {ts}, {ts})"));
            }
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut $c)
                .await
                .expect("insert servers");
            sqlx::query(PAIRS_SQL)
                .bind(o.monitors as i64)
                .bind(ts)
                .bind(day)
                .bind(id as i64)
                .bind(end as i64)
                .execute(&mut $c)
                .await
                .expect("insert pairs");
            id = end;
        }
    }};
}

async fn fill(o: &Opts, url: &str, ts: i64) {
    if url.starts_with("postgres") {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .expect("connect for bulk insert");
        fill_on!(o, c, ts);
        sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
    } else {
        let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(url)
            .await
            .expect("connect for bulk insert");
        fill_on!(o, c, ts);
    }
}

/// The selector and ingest at scale; see the module docs.
pub async fn run(o: &Opts) {
    let dir = tempfile::tempdir().unwrap();
    let (store, pg) = open_store(&o.backend, dir.path()).await;
    let url = match &pg {
        Some((admin, name)) => format!("{}/{name}", admin.rsplit_once('/').expect("URL").0),
        None => format!("sqlite://{}", dir.path().join("poolwatch.db").display()),
    };
    let t = Instant::now();
    for m in 0..o.monitors {
        // Each monitor in its own /20 (11.x.y.5), three per account.
        let ip = IpAddr::V4(Ipv4Addr::from(0x0B00_0005u32 + ((m as u32) << 12)));
        server::admin::add_monitor(
            &store,
            AddMonitor {
                name: format!("mon-{m}"),
                ip,
                location: "bench".into(),
                account: Some(format!("acct-{}", m / 3)),
                status: GlobalStatus::Active,
            },
            now(),
        )
        .await
        .unwrap();
    }
    let ts = now() - 60;
    fill(o, &url, ts).await;
    println!(
        "selector {}: {} servers × {} monitors = {} pairs set up in {:.0} s",
        o.backend,
        o.servers,
        o.monitors,
        o.servers * o.monitors,
        t.elapsed().as_secs_f64()
    );

    let cfg = SelectorConfig::default();
    for pass in 1..=o.passes {
        reset_peak();
        let (before, _) = rss();
        let r = server::selector_job::run_pass(&store, &cfg, o.budget, now(), pass as u64)
            .await
            .unwrap();
        let (after, peak) = rss();
        println!(
            "pass {pass}: {} servers ({} with candidates, {} deferred), {} pairs read, {} changes (→active {}, →testing {}, →candidate {}, →paused {}) \
             in {:.2} s (read {:.2} s, select {:.2} s, write {:.2} s); RSS {before:.0} → {after:.0} MB, peak {peak:.0} MB",
            r.servers,
            r.candidate_servers,
            r.deferred,
            r.pairs,
            r.changes,
            r.to_active,
            r.to_testing,
            r.to_candidate,
            r.to_paused,
            r.total.as_secs_f64(),
            r.read.as_secs_f64(),
            r.compute.as_secs_f64(),
            r.write.as_secs_f64(),
        );
    }

    // Ingest at a fixed rate while nothing else runs.
    let batches_per_s = (o.rate / o.batch).max(1);
    let gap = Duration::from_secs_f64(1.0 / batches_per_s as f64);
    let total = batches_per_s * o.seconds as usize;
    let lat = std::sync::Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let mut tick = tokio::time::interval(gap);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for b in 0..total {
        tick.tick().await;
        let (store, lat) = (store.clone(), lat.clone());
        let monitor = (b % o.monitors) as i64 + 1;
        let first = (b * o.batch * 7919) % o.servers;
        let ids: Vec<i64> = (0..o.batch)
            .map(|k| ((first + k * 1009) % o.servers) as i64 + 1)
            .collect();
        tasks.spawn(async move {
            let t = Instant::now();
            let ts = now();
            let seq = store.create_batch(monitor, &ids, ts).await.unwrap();
            let results: Vec<ResultIn> = ids
                .iter()
                .enumerate()
                .map(|(k, &server_id)| ResultIn {
                    server_id,
                    ts,
                    offset: Some(0.0003 * (k % 7) as f64),
                    rtt: Some(0.020),
                    stratum: Some(2),
                    leap: Some(0),
                    ..ResultIn::default()
                })
                .collect();
            // A monitor's batches must be submitted in order; a clash with
            // its own newer batch is counted, not retried.
            let ok = store
                .submit_results(monitor, seq, &results, ts)
                .await
                .is_ok();
            lat.lock().unwrap().push((t.elapsed(), ok));
        });
        while tasks.len() > 64 {
            tasks.join_next().await;
        }
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    let l = lat.lock().unwrap().clone();
    let failed = l.iter().filter(|x| !x.1).count();
    let mut times: Vec<Duration> = l.iter().map(|x| x.0).collect();
    println!(
        "ingest: {} results in {elapsed:.1} s = {:.0} results/s offered {} /s; \
         work+submit latency (= aggregate lag) {}; {failed} out of order",
        l.len() * o.batch,
        (l.len() * o.batch) as f64 / elapsed,
        o.rate,
        latency(&mut times),
    );
    store.close().await;
    drop_pg(pg).await;
}
