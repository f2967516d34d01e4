//! `policy replay` at scale (issue 15, BENCHMARKS.md "policy replay"):
//! `replay-gen` fills a store with generated samples, `replay-run` replays
//! them under 4 policies (timed alone, under `/usr/bin/time -v`, by
//! bench/replay.sh).
//!
//! ```text
//! bench replay-gen sqlite --dir D [--servers 4000] [--monitors 7] [--days 30] [--interval 2130]
//! bench replay-gen postgres --url postgres://…/pw_replay_bench (an empty database)
//! bench replay-run sqlite --dir D [--days 30]      # or: postgres --url URL
//! ```
//!
//! Servers, by index: 1 in 20 rate-limits (the first query answered, RATE
//! for the others), 1 in 20 loses each query with probability 0.3, 1 in
//! 100 is dead for days 10–12 of the window, the rest answer cleanly. Each
//! monitor checks each server every `--interval` seconds (2130: 30 days ×
//! 4,000 servers × 7 monitors ≈ 34 M checks, 136 M samples). Monitors 0–4
//! are active for every server, 5–6 testing. The window ends at 00:00 UTC
//! today, so the replay's `--from` is within a 31-day retention.

use scoring::{Policy, Sample};
use server::admin::AddMonitor;
use server::policy_replay::{self, ReplayRequest};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;
use store::testing::StoreTesting as _;
use store::{GlobalStatus, MonitorStatus, NewServer, Store};

const DAY: i64 = 86_400;

struct Args {
    backend: String,
    dir: std::path::PathBuf,
    url: Option<String>,
    servers: usize,
    monitors: usize,
    days: i64,
    interval: i64,
}

fn args() -> Args {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| {
        a.iter()
            .position(|x| x == name)
            .and_then(|i| a.get(i + 1))
            .cloned()
    };
    let num = |name: &str, d: i64| get(name).map_or(d, |v| v.parse().expect("a number"));
    Args {
        backend: a.get(1).cloned().unwrap_or_else(|| "sqlite".into()),
        dir: get("--dir").map_or_else(|| "replay-bench-data".into(), Into::into),
        url: get("--url"),
        servers: num("--servers", 4000) as usize,
        monitors: num("--monitors", 7) as usize,
        days: num("--days", 30),
        interval: num("--interval", 2130),
    }
}

async fn open(a: &Args) -> Store {
    std::fs::create_dir_all(&a.dir).unwrap();
    let url = match a.backend.as_str() {
        "sqlite" => None,
        "postgres" => Some(a.url.as_deref().expect("postgres needs --url")),
        other => panic!("backend {other}: sqlite or postgres"),
    };
    Store::open(url, &a.dir).await.expect("open the store")
}

fn window(a: &Args) -> (i64, i64) {
    let now = super::now();
    let to = now - now.rem_euclid(DAY);
    (to - a.days * DAY, to)
}

fn ok(p: u8, rtt_us: u32) -> Sample {
    Sample {
        position: p,
        send_ms: u16::from(p) * 2000,
        answered: true,
        rtt_us: Some(rtt_us),
        offset: Some(0.0005 * f64::from(p + 1)),
        stratum: Some(2),
        leap: Some(0),
        error: None,
    }
}
fn lost(p: u8) -> Sample {
    Sample {
        position: p,
        send_ms: u16::from(p) * 2000,
        error: Some("i/o timeout".into()),
        ..Sample::default()
    }
}
fn rate(p: u8) -> Sample {
    Sample {
        answered: true,
        rtt_us: Some(21_000),
        stratum: Some(0),
        leap: Some(3),
        error: Some("RATE".into()),
        ..lost(p)
    }
}

/// Packed checks: [clean × 4 rtts, rate-limited, dead, lossy × 16 masks].
fn templates() -> Vec<Vec<u8>> {
    let enc = |s: Vec<Sample>| store::encode_samples(&s).unwrap();
    let mut t: Vec<Vec<u8>> = (0..4u32)
        .map(|k| {
            enc((0..4)
                .map(|p| ok(p, 10_000 + k * 9_000 + u32::from(p) * 300))
                .collect())
        })
        .collect();
    t.push(enc(vec![ok(0, 20_000), rate(1), rate(2), rate(3)]));
    t.push(enc((0..4).map(lost).collect()));
    for mask in 0..16u8 {
        t.push(enc((0..4)
            .map(|p| {
                if mask >> p & 1 == 1 {
                    lost(p)
                } else {
                    ok(p, 30_000)
                }
            })
            .collect()));
    }
    t
}

/// A cheap deterministic hash for the loss pattern.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn pick(server: usize, monitor: usize, j: i64, day: i64) -> usize {
    let h = mix((server as u64) << 40 ^ (monitor as u64) << 32 ^ j as u64);
    match server {
        s if s % 20 == 0 => 4,
        s if s % 100 == 3 && (10..13).contains(&day) => 5,
        s if s % 20 == 1 => {
            // Each query lost with probability 0.3: a 4-bit mask.
            let mask = (0..4).fold(0, |m, p| m | (usize::from((h >> (p * 8)) % 10 < 3) << p));
            6 + mask
        }
        _ => (h % 4) as usize,
    }
}

pub async fn gen_main() {
    let a = args();
    let store = open(&a).await;
    let (from, _) = window(&a);
    let t0 = Instant::now();
    store
        .seed_zones(&server::admin::zone_seeds())
        .await
        .unwrap();
    let zones = ["de", "fr", "nl", "us", "jp", "br", "au", "za"];
    let mut ids = Vec::with_capacity(a.servers);
    for i in 0..a.servers {
        let row = store
            .add_server(
                NewServer {
                    ip: super::server_ip(i),
                    netspeed: 10_000,
                    account_id: None,
                    zones: vec![zones[i % zones.len()].into()],
                },
                from,
            )
            .await
            .unwrap();
        ids.push(row.id);
    }
    let mut monitors = Vec::new();
    for m in 0..a.monitors {
        let (row, _) = server::admin::add_monitor(
            &store,
            AddMonitor {
                name: format!("replay-{m}"),
                ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, m as u8 + 1)),
                location: "bench".into(),
                account: None,
                status: GlobalStatus::Active,
            },
            from,
        )
        .await
        .unwrap();
        monitors.push(row.id);
    }
    for id in &ids {
        for (m, mid) in monitors.iter().enumerate() {
            let status = if m < 5 {
                MonitorStatus::Active
            } else {
                MonitorStatus::Testing
            };
            store
                .set_server_score_status(*id, *mid, status)
                .await
                .unwrap();
        }
    }
    eprintln!(
        "{} servers, {} monitors in {:.1} s",
        a.servers,
        a.monitors,
        t0.elapsed().as_secs_f64()
    );
    let t = templates();
    let checks_per_pair = a.days * DAY / a.interval;
    let mut total = 0u64;
    let t1 = Instant::now();
    for chunk in (0..a.servers).collect::<Vec<_>>().chunks(25) {
        for (m, mid) in monitors.iter().enumerate() {
            let offset = m as i64 * a.interval / a.monitors as i64;
            let mut rows = Vec::with_capacity(chunk.len() * checks_per_pair as usize);
            for &i in chunk {
                for j in 0..checks_per_pair {
                    let ts = from + j * a.interval + offset + (i % 60) as i64;
                    let day = (ts - from) / DAY;
                    rows.push((ids[i], ts, t[pick(i, m, j, day)].clone()));
                }
            }
            total += rows.len() as u64;
            store.insert_samples(*mid, &rows).await.unwrap();
        }
        if chunk[0] % 500 == 0 {
            eprintln!(
                "{} checks, {:.0} checks/s",
                total,
                total as f64 / t1.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "generated {total} checks ({} samples) in {:.0} s ({:.0} checks/s)",
        total * 4,
        t1.elapsed().as_secs_f64(),
        total as f64 / t1.elapsed().as_secs_f64()
    );
    store.close().await;
}

pub async fn run_main() {
    let a = args();
    let store = open(&a).await;
    let (from, to) = window(&a);
    let policies = ["current", "first-1", "first-answer", "all-must-answer"]
        .iter()
        .map(|n| Policy::preset(n).unwrap())
        .collect();
    let req = ReplayRequest {
        from,
        to,
        policies,
        warmup_h: policy_replay::DEFAULT_WARMUP_H,
        every_s: 3600,
    };
    let t = Instant::now();
    let report = policy_replay::replay(&store, &req).await.expect("replay");
    let secs = t.elapsed().as_secs_f64();
    for p in &report.policies {
        println!(
            "{:<16} mean in DNS {:>7.1}, changed {:>5} (left {}, joined {})",
            p.policy.name,
            p.mean_in_dns(),
            p.changed,
            p.left,
            p.joined
        );
    }
    println!(
        "replayed {} servers, {} checks under {} policies in {:.1} s ({:.0} checks/s)",
        report.servers,
        report.checks,
        report.policies.len(),
        secs,
        report.checks as f64 / secs
    );
    store.close().await;
}
