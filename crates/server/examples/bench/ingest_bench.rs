//! `ingest`: monitors in a loop of POST /work and POST /results against a
//! real listener, results/s. `ingest-side-by-side`: in one run, SQLite,
//! PostgreSQL with one `serve` and PostgreSQL with two `serve` processes
//! sharing the monitors (issue 16), `--rounds N` times interleaved.
//!
//! In the side-by-side mode every service is a separate process: the bench
//! runs itself again as `serve-child BACKEND TARGET` (the store on
//! `TARGET`, a data directory or a PostgreSQL URL, served by
//! `server::serve_on` with the same settings as the in-process `ingest`),
//! reads the child's address from its first stdout line and stops it by
//! closing its stdin. Two children on one database is what two `serve`
//! behind a load balancer are: two processes, two connection pools, each
//! with its own group commit. Monitor `i` talks to child `i % N`.

use super::{Conn, Opts, bench_samples, drop_pg, now, open_store, populate, start, unlimited};
use api::{Submission, Work};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use store::Store;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The totals of one drive.
struct Drive {
    results: usize,
    batches: usize,
    idle: usize,
    secs: f64,
}

/// Runs one monitor per key (monitor `i` against `addrs[i % len]`) for
/// `seconds`.
async fn drive(addrs: &[SocketAddr], keys: Vec<String>, seconds: u64, n_samples: usize) -> Drive {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let addr = addrs[i % addrs.len()];
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::new(addr).await;
            let (mut results, mut batches, mut idle) = (0usize, 0usize, 0usize);
            while Instant::now() < deadline {
                let (st, body) = c.call("POST", api::WORK_PATH, Some(&key), b"").await;
                assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
                let work: Work = serde_json::from_slice(&body).unwrap();
                if work.servers.is_empty() {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let ts = now();
                let sub = Submission {
                    batch_id: work.batch_id.clone(),
                    results: work
                        .servers
                        .iter()
                        .enumerate()
                        .map(|(i, s)| api::CheckResult {
                            ip: s.ip.parse().unwrap(),
                            ticket: s.ticket.clone(),
                            ts,
                            offset: Some(0.0005 * (i % 7) as f64),
                            rtt: Some(0.012 + 0.001 * (i % 5) as f64),
                            stratum: Some(2),
                            leap: Some(0),
                            refid: Some("GPS".into()),
                            error: None,
                            no_response: i.is_multiple_of(50),
                            samples: bench_samples(i, n_samples),
                        })
                        .collect(),
                };
                let body = serde_json::to_vec(&sub).unwrap();
                let (st, resp) = c.call("POST", api::RESULTS_PATH, Some(&key), &body).await;
                assert_eq!(st, 200, "{}", String::from_utf8_lossy(&resp));
                let a: api::Accepted = serde_json::from_slice(&resp).unwrap();
                results += a.accepted as usize;
                batches += 1;
            }
            (results, batches, idle)
        }));
    }
    let started = Instant::now();
    let mut d = Drive {
        results: 0,
        batches: 0,
        idle: 0,
        secs: 0.0,
    };
    for t in tasks {
        let (r, b, i) = t.await.unwrap();
        d.results += r;
        d.batches += b;
        d.idle += i;
    }
    d.secs = started.elapsed().as_secs_f64();
    d
}

fn report(label: &str, o: &Opts, d: &Drive, rows: i64) -> f64 {
    let rate = d.results as f64 / d.secs;
    println!(
        "ingest {label}: {} monitors, {} servers, batches of 100: {} results in {:.1} s = {rate:.0} results/s ({} batches, {} idle polls, {rows} log rows)",
        o.monitors, o.servers, d.results, d.secs, d.batches, d.idle
    );
    rate
}

/// `ingest sqlite|postgres`: the service in this process.
pub(crate) async fn ingest(o: &Opts) {
    let dir = tempfile::tempdir().unwrap();
    let (store, pg) = open_store(&o.backend, dir.path()).await;
    let keys = populate(&store, o.servers, o.monitors).await;
    let (addr, stop, task) = start(store.clone(), unlimited()).await;
    let d = drive(&[addr], keys, o.seconds, o.samples).await;
    let (_, _, rows) = store.counts().await.unwrap();
    report(&o.backend, o, &d, rows);
    let _ = stop.send(());
    task.await.unwrap();
    store.close().await;
    drop_pg(pg).await;
}

/// One `serve-child` process.
struct Child {
    proc: tokio::process::Child,
    addr: SocketAddr,
}

async fn spawn_child(backend: &str, target: &str) -> Child {
    let mut proc = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["serve-child", backend, target])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("bench serve-child");
    let mut out = BufReader::new(proc.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).await.unwrap();
    let addr = line.trim().parse().expect("serve-child prints its address");
    Child { proc, addr }
}

impl Child {
    /// Closes its stdin (it shuts down) and waits for it to exit.
    async fn stop(mut self) {
        drop(self.proc.stdin.take());
        let status = self.proc.wait().await.unwrap();
        assert!(status.success(), "serve-child: {status}");
    }
}

/// `serve-child sqlite DIR | postgres URL`: serves until stdin closes.
pub(crate) async fn serve_child(backend: &str, target: &str) {
    let store = match backend {
        "sqlite" => Store::open(None, std::path::Path::new(target)).await,
        _ => Store::open(Some(target), std::path::Path::new(".")).await,
    }
    .expect("serve-child store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap());
    server::serve_on(listener, unlimited(), store.clone(), async {
        // tokio's stdin needs a feature the workspace does not enable.
        let _ = tokio::task::spawn_blocking(|| {
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())
        })
        .await;
    })
    .await
    .unwrap();
    store.close().await;
}

/// One row of the side-by-side run: the store filled here, `instances`
/// child processes serving it.
async fn one(o: &Opts, backend: &str, instances: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (store, pg) = open_store(backend, dir.path()).await;
    let keys = populate(&store, o.servers, o.monitors).await;
    let target = match &pg {
        Some((admin, name)) => format!("{}/{name}", admin.rsplit_once('/').unwrap().0),
        None => dir.path().to_str().unwrap().to_string(),
    };
    // SQLite is one process's file: hand it to the child alone.
    let store = if pg.is_none() {
        store.close().await;
        None
    } else {
        Some(store)
    };
    let mut children = Vec::new();
    for _ in 0..instances {
        children.push(spawn_child(backend, &target).await);
    }
    let addrs: Vec<SocketAddr> = children.iter().map(|c| c.addr).collect();
    let d = drive(&addrs, keys, o.seconds, o.samples).await;
    for c in children {
        c.stop().await;
    }
    let store = match store {
        Some(s) => s,
        None => Store::open(None, dir.path()).await.unwrap(),
    };
    let (_, _, rows) = store.counts().await.unwrap();
    store.close().await;
    drop_pg(pg).await;
    let label = match (backend, instances) {
        ("sqlite", _) => "sqlite (one serve process)".to_string(),
        (b, n) => format!("{b} ({n} serve process{})", if n == 1 { "" } else { "es" }),
    };
    report(&label, o, &d, rows)
}

/// `ingest-side-by-side`: SQLite, PostgreSQL × 1 and PostgreSQL × 2
/// `serve` processes, `--rounds` times interleaved, then a table.
pub(crate) async fn side_by_side(o: &Opts) {
    let rows: [(&str, &str, usize); 3] = [
        ("SQLite, one serve", "sqlite", 1),
        ("PostgreSQL, one serve", "postgres", 1),
        ("PostgreSQL, two serve processes", "postgres", 2),
    ];
    let mut rates = vec![Vec::new(); rows.len()];
    for _ in 0..o.rounds {
        for (i, (_, backend, n)) in rows.iter().enumerate() {
            rates[i].push(one(o, backend, *n).await);
        }
    }
    println!(
        "\n| service | results/s ({} s per run, {} monitors, {} servers, {} samples) |",
        o.seconds, o.monitors, o.servers, o.samples
    );
    println!("|---|---|");
    for ((label, ..), r) in rows.iter().zip(&rates) {
        let list: Vec<String> = r.iter().map(|v| format!("{v:.0}")).collect();
        println!("| {label} | {} |", list.join(", "));
    }
}
