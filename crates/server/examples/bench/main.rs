//! Benchmarks of the central service through its real HTTP listener (not
//! timed tests: run by hand, numbers go to BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p server --example bench -- ingest sqlite
//! cargo run --release -p server --example bench -- ingest postgres   # needs POOLWATCH_TEST_PG_URL
//! cargo run --release -p server --example bench -- query sqlite
//! cargo run --release -p server --example bench -- query postgres
//! ```
//!
//! `ingest`: several monitors at once, each in a loop of POST /work (100
//! servers) and POST /results (100 results), scoring and logging included;
//! reports results/s. `query`: fills the store with 1,000,000 log rows
//! (through the store, the same scoring path) and times
//! `/scores/{ip}/log?limit=10000&monitor=*`.
//!
//! `ingest-side-by-side` (the backend argument is ignored): SQLite,
//! PostgreSQL with one `serve` process and with two, in one run, each
//! service a child process (`serve-child`), see `ingest_bench.rs`;
//! `--rounds N` (1) repeats the three interleaved.
//!
//! `probe`: the store calls of one batch cycle timed alone, to show what
//! bounds ingest.
//!
//! `page`: one server with `--rows` log rows (4 monitors; results go in
//! through the store, 1000 per batch) and times the web pages
//! `/scores/{ip}`, `/`, `/monitors` and `/scores/{ip}/json?monitor=*&limit=5000`,
//! reporting bytes per response.
//!
//! Options (after the backend): `--monitors N` (4), `--servers N` (2000),
//! `--seconds N` (20), `--rows N` (1000000), `--requests N` (300),
//! `--samples N` (4: samples sent with each `ingest` result; 0 sends none,
//! as agents before issue 15 did).
//!
//! `replay-gen`, `replay-run`: `policy replay` of generated samples, see
//! `replay_bench.rs` and bench/replay.sh.
//!
//! `selector`: the monitor selector and ingest at 50,000 servers × 300
//! monitors, see `selector_bench.rs`; also `--passes N` (3), `--rate N` results/s
//! (2000), `--batch N` (10), `--budget N` (servers whose candidates a pass
//! reads, 8000 as in `serve`).

mod ingest_bench;
mod replay_bench;
mod selector_bench;

use server::admin::{AddMonitor, AddServer};
use server::{RateLimitConfig, ServerConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use store::testing::StoreTesting as _;
use store::{GlobalStatus, ResultIn, Store, WorkIntervals};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Opts {
    mode: String,
    backend: String,
    monitors: usize,
    servers: usize,
    seconds: u64,
    rows: usize,
    requests: usize,
    passes: usize,
    rate: usize,
    batch: usize,
    budget: usize,
    samples: usize,
    rounds: usize,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    };
    let mode = args.first().cloned().unwrap_or_else(|| "ingest".into());
    let at_scale = mode == "selector";
    Opts {
        backend: args.get(1).cloned().unwrap_or_else(|| "sqlite".into()),
        monitors: get("--monitors", if at_scale { 300 } else { 4 }),
        servers: get("--servers", if at_scale { 50_000 } else { 2000 }),
        seconds: get("--seconds", 20) as u64,
        rows: get("--rows", 1_000_000),
        requests: get("--requests", 300),
        passes: get("--passes", 3),
        rate: get("--rate", 2000),
        batch: get("--batch", 10),
        budget: get("--budget", server::selector_job::CANDIDATE_BUDGET),
        samples: get("--samples", 4),
        rounds: get("--rounds", 1),
        mode,
    }
}

/// "median X ms, p99 Y ms, max Z ms" of the times (sorted in place).
fn latency(times: &mut [Duration]) -> String {
    if times.is_empty() {
        return "no samples".into();
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(times[times.len() - 1])
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A store on the chosen backend; PostgreSQL gets a fresh database.
async fn open_store(backend: &str, dir: &std::path::Path) -> (Store, Option<(String, String)>) {
    match backend {
        "sqlite" => (Store::open(None, dir).await.expect("sqlite"), None),
        "postgres" => {
            let admin = std::env::var("POOLWATCH_TEST_PG_URL").expect("set POOLWATCH_TEST_PG_URL");
            let name = format!("pw_bench_{:08x}", rand::random::<u32>());
            let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                .await
                .expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut c)
                .await
                .expect("create database");
            let base = admin.rsplit_once('/').expect("URL with a database").0;
            let url = format!("{base}/{name}");
            let store = Store::open(Some(&url), dir).await.expect("postgres");
            (store, Some((admin, name)))
        }
        other => panic!("backend {other}: sqlite or postgres"),
    }
}

async fn drop_pg(pg: Option<(String, String)>) {
    if let Some((admin, name)) = pg {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .expect("connect");
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut c)
        .await;
    }
}

/// Servers 10.0.x.y (lab addresses; nothing sends packets here).
fn server_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        (i / 250 / 250) as u8,
        (i / 250 % 250) as u8,
        (i % 250 + 1) as u8,
    ))
}

async fn populate(store: &Store, servers: usize, monitors: usize) -> Vec<String> {
    store
        .seed_zones(&server::admin::zone_seeds())
        .await
        .unwrap();
    for i in 0..servers {
        server::admin::add_server(
            store,
            None,
            AddServer {
                ip: server_ip(i),
                zone: Some("de".into()),
                netspeed: 10_000,
                account: None,
                allow_private: true,
            },
            now(),
        )
        .await
        .unwrap();
    }
    let mut keys = Vec::new();
    for m in 0..monitors {
        let (_, key) = server::admin::add_monitor(
            store,
            AddMonitor {
                name: format!("bench-{m}"),
                ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, m as u8 + 1)),
                location: "bench".into(),
                account: None,
                status: GlobalStatus::Active,
            },
            now(),
        )
        .await
        .unwrap();
        keys.push(key);
    }
    keys
}

/// A minimal keep-alive HTTP/1.1 client, so the client costs next to
/// nothing next to the server being measured.
struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    async fn new(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        Conn {
            r: BufReader::new(s),
        }
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(k) = key {
            req.push_str(&format!(
                "Authorization: Bearer {k}\r\nContent-Type: application/json\r\n"
            ));
        }
        req.push_str("\r\n");
        let s = self.r.get_mut();
        s.write_all(req.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).await.unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap();
            }
        }
        let mut out = vec![0; len];
        self.r.read_exact(&mut out).await.unwrap();
        (status, out)
    }
}

async fn start(
    store: Store,
    cfg: ServerConfig,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server::serve_on(listener, cfg, store, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx, task)
}

fn unlimited() -> ServerConfig {
    ServerConfig {
        batch_size: 100,
        intervals: WorkIntervals {
            active_s: 1,
            testing_s: 1,
            candidate_s: 1,
        },
        rate_limit: RateLimitConfig {
            per_second: 0.0,
            ..RateLimitConfig::default()
        },
        // The selector's pass at start would share the single writer with
        // the first seconds of ingest; it is measured by the `selector` mode.
        selector: None,
        // Hundreds of monitors connect from 127.0.0.1.
        http: server::HttpLimits {
            max_connections: 100_000,
            max_connections_per_client: 100_000,
            ..Default::default()
        },
        ..ServerConfig::default()
    }
}

async fn query(o: &Opts) {
    let dir = tempfile::tempdir().unwrap();
    let (store, pg) = open_store(&o.backend, dir.path()).await;
    let servers = 50usize;
    let monitors = 4usize;
    populate(&store, servers, monitors).await;
    let server_ids: Vec<i64> = store
        .list_servers()
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    let monitor_ids: Vec<i64> = store
        .list_monitors()
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    // Rounds a minute apart, ending now; every monitor checks every server.
    let per_round = servers * monitors;
    let rounds = o.rows / per_round + 1;
    let t0 = now() - rounds as i64 * 60;
    let fill_start = Instant::now();
    let mut round = 0usize;
    loop {
        let (_, _, rows) = store.counts().await.unwrap();
        if rows as usize >= o.rows {
            break;
        }
        let ts = t0 + round as i64 * 60;
        for (mi, &m) in monitor_ids.iter().enumerate() {
            let seq = store.create_batch(m, &server_ids, ts).await.unwrap();
            let results: Vec<ResultIn> = server_ids
                .iter()
                .enumerate()
                .map(|(i, &s)| ResultIn {
                    server_id: s,
                    ts,
                    offset: Some(0.0002 * ((i + mi + round) % 11) as f64),
                    rtt: Some(0.010 + 0.0001 * ((i * 7 + round) % 50) as f64),
                    stratum: Some(2),
                    leap: Some(0),
                    refid: Some("GPS".into()),
                    error: (round + i)
                        .is_multiple_of(97)
                        .then(|| "i/o timeout".to_string()),
                    no_response: (round + i).is_multiple_of(97),
                })
                .collect();
            store.submit_results(m, seq, &results, ts).await.unwrap();
        }
        round += 1;
    }
    let (_, _, rows) = store.counts().await.unwrap();
    println!(
        "query {}: filled {rows} log rows ({} per server) in {:.0} s",
        o.backend,
        rows as usize / servers,
        fill_start.elapsed().as_secs_f64()
    );
    let ip = server_ip(7);
    let sid = store.server_by_ip(ip).await.unwrap().unwrap().id;
    let mut direct = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let rows = store
            .log_rows(sid, store::MonitorFilter::All, 10_000, None)
            .await
            .unwrap();
        direct.push(t.elapsed());
        assert!(!rows.is_empty());
    }
    direct.sort();
    println!(
        "query {}: store.log_rows(limit 10000, all) alone: median {:.1} ms",
        o.backend,
        direct[direct.len() / 2].as_secs_f64() * 1000.0
    );
    let (addr, stop, task) = start(store.clone(), unlimited()).await;
    let mut c = Conn::new(addr).await;
    let path = format!("/scores/{ip}/log?limit=10000&monitor=*");
    let mut times = Vec::with_capacity(o.requests);
    for i in 0..o.requests + 10 {
        let t = Instant::now();
        let (st, body) = c.call("GET", &path, None, b"").await;
        let dt = t.elapsed();
        assert_eq!(st, 200);
        if i == 0 {
            let lines = body.iter().filter(|&&b| b == b'\n').count();
            println!("response: {} bytes, {} lines", body.len(), lines);
        }
        if i >= 10 {
            times.push(dt);
        }
    }
    println!(
        "query {}: GET {path} x{}: {}",
        o.backend,
        times.len(),
        latency(&mut times)
    );
    let _ = stop.send(());
    task.await.unwrap();
    store.close().await;
    drop_pg(pg).await;
}

/// The web pages over one server with `o.rows` log rows.
async fn page(o: &Opts) {
    const PER_BATCH: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let (store, pg) = open_store(&o.backend, dir.path()).await;
    let monitors = 4usize;
    populate(&store, 1, monitors).await;
    let sid = store.list_servers().await.unwrap()[0].id;
    let monitor_ids: Vec<i64> = store
        .list_monitors()
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    // Every monitor checks the server every 4 s (so 1,000,000 rows span
    // about 11 days), ending now; a batch holds 1000 checks of one monitor.
    let per_monitor = o.rows / monitors;
    let t0 = now() - (per_monitor as i64) * 4;
    let fill_start = Instant::now();
    let mut done = 0usize;
    while done < per_monitor {
        let n = PER_BATCH.min(per_monitor - done);
        for (mi, &m) in monitor_ids.iter().enumerate() {
            let last_ts = t0 + (done + n) as i64 * 4;
            let seq = store.create_batch(m, &[sid], last_ts).await.unwrap();
            let results: Vec<ResultIn> = (done..done + n)
                .map(|k| {
                    let bad = (k + mi * 13) % 97 == 0;
                    ResultIn {
                        server_id: sid,
                        ts: t0 + k as i64 * 4 + mi as i64,
                        offset: (!bad).then(|| 0.0003 * ((k + mi) % 11) as f64 * (mi + 1) as f64),
                        rtt: (!bad).then(|| 0.010 + 0.0001 * ((k * 7) % 50) as f64),
                        stratum: Some(2),
                        leap: Some(0),
                        refid: Some("GPS".into()),
                        error: bad.then(|| "i/o timeout".to_string()),
                        no_response: bad,
                    }
                })
                .collect();
            store
                .submit_results(m, seq, &results, last_ts)
                .await
                .unwrap();
        }
        done += n;
    }
    if let Some((admin, name)) = &pg {
        // Autovacuum analyzes a table this size within a minute or so;
        // without statistics the planner scans the whole log.
        let base = admin.rsplit_once('/').expect("URL with a database").0;
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{base}/{name}"))
            .await
            .expect("connect");
        sqlx::query("ANALYZE")
            .execute(&mut c)
            .await
            .expect("analyze");
    }
    let (_, _, rows) = store.counts().await.unwrap();
    println!(
        "page {}: filled {rows} log rows for one server in {:.0} s",
        o.backend,
        fill_start.elapsed().as_secs_f64()
    );
    let ip = server_ip(0);
    let (addr, stop, task) = start(store.clone(), unlimited()).await;
    let mut c = Conn::new(addr).await;
    for path in [
        format!("/scores/{ip}"),
        format!("/scores/{ip}/json?monitor=*&limit=5000"),
        "/".to_string(),
        "/monitors".to_string(),
    ] {
        let mut times = Vec::with_capacity(o.requests);
        let mut bytes = 0;
        for i in 0..o.requests + 10 {
            let t = Instant::now();
            let (st, body) = c.call("GET", &path, None, b"").await;
            let dt = t.elapsed();
            assert_eq!(st, 200, "{path}");
            bytes = body.len();
            if i >= 10 {
                times.push(dt);
            }
        }
        println!(
            "page {}: GET {path} x{}: {}, {bytes} bytes",
            o.backend,
            times.len(),
            latency(&mut times)
        );
    }
    let _ = stop.send(());
    task.await.unwrap();
    store.close().await;
    drop_pg(pg).await;
}

/// Where an ingest batch's time goes: each store call of one batch cycle,
/// timed alone on one connection (no HTTP).
async fn probe(o: &Opts) {
    let dir = tempfile::tempdir().unwrap();
    let (store, pg) = open_store(&o.backend, dir.path()).await;
    let keys = populate(&store, o.servers, o.monitors).await;
    let m = store
        .monitor_by_key_hash(&server::keys::hash_key(&keys[0]))
        .await
        .unwrap()
        .unwrap();
    let iv = unlimited().intervals;
    let (mut t_auth, mut t_touch, mut t_take, mut t_batch, mut t_get, mut t_submit) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    let n = (o.servers / 100).max(1);
    for _ in 0..n {
        let t = Instant::now();
        store.monitor_by_key_hash(&m.key_hash).await.unwrap();
        t_auth += t.elapsed();
        let t = Instant::now();
        store
            .touch_monitor(m.id, now(), Some("bench"))
            .await
            .unwrap();
        t_touch += t.elapsed();
        let t = Instant::now();
        let items = store.take_work(m.id, iv, 100, now()).await.unwrap();
        t_take += t.elapsed();
        let ids: Vec<i64> = items.iter().map(|w| w.server_id).collect();
        let t = Instant::now();
        let seq = store.create_batch(m.id, &ids, now()).await.unwrap();
        t_batch += t.elapsed();
        let t = Instant::now();
        store.batch(seq).await.unwrap();
        t_get += t.elapsed();
        let results: Vec<ResultIn> = ids
            .iter()
            .map(|&s| ResultIn {
                server_id: s,
                ts: now(),
                offset: Some(0.001),
                rtt: Some(0.012),
                stratum: Some(2),
                leap: Some(0),
                refid: Some("GPS".into()),
                ..ResultIn::default()
            })
            .collect();
        let t = Instant::now();
        store
            .submit_results(m.id, seq, &results, now())
            .await
            .unwrap();
        t_submit += t.elapsed();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
    println!(
        "probe {} ({n} batches of 100, ms per call): monitor_by_key_hash {:.2}, touch_monitor {:.2}, take_work {:.2}, create_batch {:.2}, batch {:.2}, submit_results {:.2}",
        o.backend,
        ms(t_auth),
        ms(t_touch),
        ms(t_take),
        ms(t_batch),
        ms(t_get),
        ms(t_submit)
    );
    store.close().await;
    drop_pg(pg).await;
}

#[tokio::main]
async fn main() {
    let o = opts();
    match o.mode.as_str() {
        "ingest" => ingest_bench::ingest(&o).await,
        "ingest-side-by-side" => ingest_bench::side_by_side(&o).await,
        "serve-child" => {
            let target = std::env::args().nth(3).expect("serve-child BACKEND TARGET");
            ingest_bench::serve_child(&o.backend, &target).await
        }
        "query" => query(&o).await,
        "probe" => probe(&o).await,
        "page" => page(&o).await,
        "selector" => selector_bench::run(&o).await,
        "replay-gen" => replay_bench::gen_main().await,
        "replay-run" => replay_bench::run_main().await,
        other => {
            panic!("mode {other}: ingest, query, probe, page, selector, replay-gen or replay-run")
        }
    }
}

/// `n` samples per result, as an `n`-sample agent sends them (issue 15):
/// the ingest benchmark measures storing them too.
fn bench_samples(i: usize, n: usize) -> Vec<api::Sample> {
    (0..n as u8)
        .map(|p| api::Sample {
            position: p,
            send_ms: 2000 * p as u32,
            answered: !i.is_multiple_of(50),
            rtt: Some(0.012 + 0.001 * p as f64),
            offset: Some(0.0005 * (i % 7) as f64),
            stratum: Some(2),
            leap: Some(0),
            error: None,
        })
        .collect()
}
