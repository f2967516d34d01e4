//! The monitor selector in the service: a pass reads every server's pairs
//! from the store in chunks, runs `scoring::select_with` on each and applies
//! the changes (each logged with its reason). `serve` runs a pass at start
//! and then every [`SelectorSettings::interval`].

use crate::jobs::{Job, JobName};
use crate::metrics::{
    Metrics, SELECTOR_CHANGES, SELECTOR_DEFERRED, SELECTOR_PASS_SECONDS, SELECTOR_PASSES,
    SELECTOR_SERVERS,
};
use crate::state::AppState;
use scoring::{GlobalStatus, SelectorConfig, SelectorMonitor, SelectorServer};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use store::{SelectorChange, Store, StoreError};
use tokio_util::sync::CancellationToken;

pub(crate) mod settings;
pub use settings::{CANDIDATE_BUDGET, SelectorSettings};

/// Servers read per store round trip.
pub const CHUNK: i64 = 500;

/// Every server's candidates are read at least every this many passes
/// (every 2 hours at the default interval) while the candidate budget
/// allows; in between only for servers that need them (see
/// [`needs_candidates`]).
pub const CANDIDATE_ROTATION: u64 = 12;

/// What one pass did and how long its parts took.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassReport {
    pub servers: usize,
    /// Pairs read: the counted ones of every server plus candidates.
    pub pairs: usize,
    /// Servers whose candidates were read in this pass.
    pub candidate_servers: usize,
    /// Servers that wanted their candidates read but were left for a later
    /// pass by the candidate budget.
    pub deferred: usize,
    pub changes: usize,
    /// Changes per new status.
    pub to_active: usize,
    pub to_testing: usize,
    pub to_candidate: usize,
    pub to_paused: usize,
    /// Time spent reading, summed over the two readers (it overlaps
    /// selecting and writing, so it can exceed the total).
    pub read: Duration,
    pub compute: Duration,
    pub write: Duration,
    pub total: Duration,
}

/// The changes the selector wants for one server (not applied).
pub fn changes_for(
    cfg: &SelectorConfig,
    input: &store::SelectorInput,
    monitors: &HashMap<i64, (Option<i64>, std::net::IpAddr, GlobalStatus)>,
    now: i64,
) -> Vec<SelectorChange> {
    let server = SelectorServer {
        ip: input.ip,
        account_id: input.account_id,
    };
    let mons: Vec<SelectorMonitor> = input
        .pairs
        .iter()
        .filter_map(|p| {
            let &(account_id, ip, global_status) = monitors.get(&p.monitor_id)?;
            Some(SelectorMonitor {
                monitor_id: p.monitor_id,
                account_id,
                ip,
                global_status,
                status: p.status,
                stats: p.window.stats(now),
            })
        })
        .collect();
    scoring::select_with(cfg, &server, &mons, now)
        .into_iter()
        .map(|c| SelectorChange {
            server_id: input.server_id,
            monitor_id: c.monitor_id,
            from: c.from,
            to: c.to,
            reason: c.reason.to_string(),
        })
        .collect()
}

/// Whether the selector may want a candidate for this server now: no
/// monitor is active or testing (bootstrap), testing is below its target
/// (promotion), or a testing monitor is unhealthy (replacement). Swaps for
/// merely better candidates wait for the server's turn in the rotation.
pub fn needs_candidates(cfg: &SelectorConfig, input: &store::SelectorInput, now: i64) -> bool {
    scoring::needs_candidates(
        cfg,
        input.pairs.iter().map(|p| (p.status, p.window.stats(now))),
    )
}

/// Which of a chunk's servers get their candidates read: first those with
/// no active or testing monitor, then the others that need candidates, then
/// the rotation's; at most `quota`. Within each group the start moves with
/// the pass, so a group larger than the quota is covered over the next
/// passes rather than always from its lowest id.
fn pick_for_candidates(
    cfg: &SelectorConfig,
    chunk: &[store::SelectorInput],
    quota: usize,
    now: i64,
    pass: u64,
) -> (Vec<i64>, usize) {
    let slot = (pass % CANDIDATE_ROTATION) as i64;
    let mut groups: [Vec<i64>; 3] = Default::default();
    for i in chunk {
        let counted = i.pairs.iter().any(|p| {
            matches!(
                p.status,
                scoring::MonitorStatus::Active | scoring::MonitorStatus::Testing
            )
        });
        if !counted {
            groups[0].push(i.server_id);
        } else if needs_candidates(cfg, i, now) {
            groups[1].push(i.server_id);
        } else if i.server_id.rem_euclid(CANDIDATE_ROTATION as i64) == slot {
            groups[2].push(i.server_id);
        }
    }
    let wanted: usize = groups.iter().map(Vec::len).sum();
    let mut picked = Vec::with_capacity(wanted.min(quota));
    for mut g in groups {
        let room = quota - picked.len();
        if g.len() > room {
            let start = (pass as usize).wrapping_mul(room.max(1)) % g.len();
            g.rotate_left(start);
            g.truncate(room);
        }
        picked.extend(g);
    }
    picked.sort_unstable();
    let deferred = wanted - picked.len();
    (picked, deferred)
}

/// One chunk of servers with the candidates they need (at most `quota`
/// servers' worth); returns the chunk, the time spent reading, how many
/// servers got candidates and how many were deferred.
async fn read_chunk(
    store: &Store,
    cfg: &SelectorConfig,
    (lo, hi): (i64, i64),
    quota: usize,
    now: i64,
    pass: u64,
) -> Result<(Vec<store::SelectorInput>, Duration, usize, usize), StoreError> {
    let t = Instant::now();
    let mut chunk = store.selector_inputs(lo, hi).await?;
    let (want, deferred) = pick_for_candidates(cfg, &chunk, quota, now, pass);
    // Both in server id order.
    let mut at = 0;
    for (server_id, pair) in store.selector_candidates(&want).await? {
        while at < chunk.len() && chunk[at].server_id < server_id {
            at += 1;
        }
        if let Some(input) = chunk.get_mut(at).filter(|i| i.server_id == server_id) {
            input.pairs.push(pair);
        }
    }
    Ok((chunk, t.elapsed(), want.len(), deferred))
}

/// One pass over every server. `pass` numbers the passes: candidates are
/// read for servers that [`needs_candidates`] and for those with
/// `id % CANDIDATE_ROTATION == pass % CANDIDATE_ROTATION`, for at most
/// `budget` servers per pass, shared evenly between the chunks of
/// [`CHUNK`] server ids.
pub async fn run_pass(
    store: &Store,
    cfg: &SelectorConfig,
    budget: usize,
    now: i64,
    pass: u64,
) -> Result<PassReport, StoreError> {
    let start = Instant::now();
    let mut report = PassReport::default();
    let monitors: HashMap<i64, (Option<i64>, std::net::IpAddr, GlobalStatus)> = store
        .list_monitors()
        .await?
        .into_iter()
        .map(|m| (m.id, (m.account_id, m.ip, m.status)))
        .collect();
    // Two chunks (server id ranges) are read at once, each with the
    // candidates it needs, in order, while the previous one is selected
    // and written.
    let max_id = store.max_server_id().await?;
    let ranges: Vec<(i64, i64)> = (0..)
        .map(|k| (1 + k * CHUNK, (k + 1) * CHUNK))
        .take_while(|&(lo, _)| lo <= max_id)
        .collect();
    let quota = budget.div_ceil(ranges.len().max(1));
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let reader = {
        let (store, cfg) = (store.clone(), *cfg);
        tokio::spawn(async move {
            use futures::StreamExt as _;
            let mut chunks = futures::stream::iter(ranges)
                .map(|range| read_chunk(&store, &cfg, range, quota, now, pass))
                .buffered(2);
            while let Some(r) = chunks.next().await {
                let failed = r.is_err();
                if tx.send(r).await.is_err() || failed {
                    return;
                }
            }
        })
    };
    while let Some(r) = rx.recv().await {
        let (chunk, read, with_candidates, deferred) = r?;
        report.read += read;
        report.candidate_servers += with_candidates;
        report.deferred += deferred;
        let t = Instant::now();
        let mut changes = Vec::new();
        for input in &chunk {
            report.servers += 1;
            report.pairs += input.pairs.len();
            changes.extend(changes_for(cfg, input, &monitors, now));
        }
        report.compute += t.elapsed();
        let t = Instant::now();
        let applied = store.apply_selector_changes(&changes, now).await?;
        report.write += t.elapsed();
        report.changes += applied;
        for c in &changes {
            match c.to {
                scoring::MonitorStatus::Active => report.to_active += 1,
                scoring::MonitorStatus::Testing => report.to_testing += 1,
                scoring::MonitorStatus::Candidate => report.to_candidate += 1,
                scoring::MonitorStatus::Paused => report.to_paused += 1,
            }
        }
    }
    reader.abort();
    report.total = start.elapsed();
    Ok(report)
}

/// The selector as a background job of `serve`.
pub fn job(state: AppState, settings: SelectorSettings) -> Job {
    Job::new(JobName::Selector, move |stop| {
        run_loop(state.clone(), settings.clone(), stop)
    })
}

/// Runs a pass now and then every `settings.interval` until `stop`; logs
/// each pass that changed something and records metrics.
pub async fn run_loop(
    state: AppState,
    settings: SelectorSettings,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for pass in 0u64.. {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = state.now();
        let budget = settings.candidate_budget;
        match run_pass(state.store(), &settings.config, budget, now, pass).await {
            Ok(r) => {
                record_pass(state.metrics(), &r);
                if r.changes > 0 {
                    tracing::info!(
                        servers = r.servers,
                        changes = r.changes,
                        to_active = r.to_active,
                        to_testing = r.to_testing,
                        to_candidate = r.to_candidate,
                        to_paused = r.to_paused,
                        deferred = r.deferred,
                        seconds = r.total.as_secs_f64(),
                        "selector pass"
                    );
                } else {
                    tracing::debug!(
                        servers = r.servers,
                        seconds = r.total.as_secs_f64(),
                        "selector pass: no changes"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "selector pass failed"),
        }
    }
    Ok(())
}

/// The metrics of one pass.
fn record_pass(m: &Metrics, r: &PassReport) {
    use metrics::{counter, gauge};
    m.record(|| {
        counter!(SELECTOR_PASSES).increment(1);
        gauge!(SELECTOR_PASS_SECONDS).set(r.total.as_secs_f64());
        gauge!(SELECTOR_SERVERS).set(r.servers as f64);
        gauge!(SELECTOR_DEFERRED).set(r.deferred as f64);
        for (to, n) in [
            ("active", r.to_active),
            ("testing", r.to_testing),
            ("candidate", r.to_candidate),
            ("paused", r.to_paused),
        ] {
            counter!(SELECTOR_CHANGES, "to" => to).increment(n as u64);
        }
    });
}

// ------------------------------------------------------------------ API

/// One monitor's standing for a server in `GET /api/v1/servers/{ip}/monitors`.
#[derive(Debug, serde::Serialize)]
pub struct MonitorStanding {
    pub id: i64,
    pub name: String,
    /// Per-server status: active, testing, candidate or paused.
    pub status: String,
    /// The monitor's own (global) status.
    pub monitor_status: String,
    pub score: f64,
    pub score_ts: Option<i64>,
    pub stats_24h: Stats24h,
}

/// The selector's view of a monitor's last 24 h for the server.
#[derive(Debug, serde::Serialize)]
pub struct Stats24h {
    pub count: u32,
    pub avg_step: f64,
    pub avg_rtt_ms: f64,
    pub healthy: bool,
    /// `round(avg_rtt_ms × (1 + 2 × (1 − avg_step)))`; null without data.
    pub priority: Option<i64>,
}

/// One selector change.
#[derive(Debug, serde::Serialize)]
pub struct ChangeOut {
    pub ts: i64,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub time: String,
    pub monitor_id: i64,
    pub monitor: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

#[derive(Debug, serde::Serialize)]
pub struct ServerMonitors {
    pub server: String,
    pub monitors: Vec<MonitorStanding>,
    pub changes: Vec<ChangeOut>,
}

/// Most changes one request returns.
pub const MAX_CHANGES: i64 = 500;

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// What the selector knows about a server: every monitor with its status,
/// score and 24 h statistics, and the newest changes (for the API and the
/// server page). `monitors` is the server's [`Store::server_monitors`],
/// which the server page has read already.
pub async fn server_view(
    store: &Store,
    server_id: i64,
    ip: std::net::IpAddr,
    monitors: Vec<store::ServerMonitorRow>,
    changes_limit: i64,
    now: i64,
) -> Result<ServerMonitors, StoreError> {
    let windows: HashMap<i64, scoring::PairWindow> = store
        .selector_input(server_id)
        .await?
        .map(|i| {
            i.pairs
                .into_iter()
                .map(|p| (p.monitor_id, p.window))
                .collect()
        })
        .unwrap_or_default();
    let monitors =
        monitors
            .into_iter()
            .map(|m| {
                let s = windows.get(&m.monitor_id).map(|w| w.stats(now)).unwrap_or(
                    scoring::MonitorStats {
                        count: 0,
                        avg_step: 0.0,
                        avg_rtt_ms: 0.0,
                    },
                );
                let priority = s.priority();
                MonitorStanding {
                    id: m.monitor_id,
                    name: m.name,
                    status: m.status.to_string(),
                    monitor_status: m.monitor_status.as_str().to_string(),
                    score: round(m.score, 1),
                    score_ts: m.score_ts,
                    stats_24h: Stats24h {
                        count: s.count,
                        avg_step: round(s.avg_step, 3),
                        avg_rtt_ms: round(s.avg_rtt_ms, 2),
                        healthy: s.healthy(),
                        priority: (priority != i64::MAX).then_some(priority),
                    },
                }
            })
            .collect();
    let changes = store
        .selector_log(server_id, changes_limit)
        .await?
        .into_iter()
        .map(|c| ChangeOut {
            ts: c.ts,
            time: crate::logfmt::timestamp(c.ts),
            monitor_id: c.monitor_id,
            monitor: c.monitor_name,
            from: c.from.to_string(),
            to: c.to.to_string(),
            reason: c.reason,
        })
        .collect();
    Ok(ServerMonitors {
        server: ip.to_string(),
        monitors,
        changes,
    })
}

/// `GET /api/v1/servers/{ip}/monitors?limit=N` (changes, default 50, max 500).
pub async fn monitors_api(
    axum::extract::State(st): axum::extract::State<AppState>,
    axum::extract::Path(ip): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
) -> Result<axum::Json<ServerMonitors>, crate::ApiError> {
    let not_found = || crate::ApiError::not_found("server not found");
    let ip: std::net::IpAddr = ip.parse().map_err(|_| not_found())?;
    let limit = q
        .iter()
        .find(|(k, _)| k == "limit")
        .map(|(_, v)| v.as_str());
    let limit = match limit {
        None => 50,
        Some(t) => match t.parse::<i64>() {
            Ok(n) if (1..=MAX_CHANGES).contains(&n) => n,
            _ => {
                return Err(crate::ApiError::bad_request(format!(
                    "limit: '{t}' is not a number from 1 to {MAX_CHANGES}"
                )));
            }
        },
    };
    let s = st.store().server_by_ip(ip).await?.ok_or_else(not_found)?;
    Ok(axum::Json(
        server_view(
            st.store(),
            s.id,
            ip,
            st.store().server_monitors(s.id).await?,
            limit,
            st.now(),
        )
        .await?,
    ))
}
