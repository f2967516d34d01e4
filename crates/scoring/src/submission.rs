//! What one monitor's submission changes: the decision, apart from any
//! database. The store reads the stored state of the touched servers
//! ([`Before`]), calls [`decide`], and applies the [`Writes`] in the same
//! transaction.
//!
//! # API
//!
//! ```text
//! pub fn needs_candidates(monitor_id: i64, touched: &[i64], pairs: &[PairBefore], now: i64) -> Vec<i64>
//! pub fn decide(monitor_id: i64, results: &[ResultIn], touched: &[i64], before: Before, now: i64)
//!     -> Result<Writes, UnknownServer>
//! ```
//!
//! Per result, in submission order: the step ([`crate::step`]), the pair's
//! new score ([`crate::update`]), its selector window and its sticky error
//! code, and a log row. Per touched server: this monitor's new standing,
//! the pair's transition (a traceroute trigger), the new aggregate over
//! every monitor's latest score ([`crate::aggregate`]) and, when it moved
//! enough, an aggregate log row ([`crate::should_log_aggregate`]).

use crate::GlobalStatus;
use crate::{MonitorScore, MonitorStatus, Observation, PairWindow};
use std::collections::HashMap;

/// One measurement as submitted by a monitor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultIn {
    pub server_id: i64,
    /// When the check was made, unix seconds.
    pub ts: i64,
    /// Seconds.
    pub offset: Option<f64>,
    /// Seconds (stored as integer microseconds).
    pub rtt: Option<f64>,
    pub stratum: Option<u8>,
    pub leap: Option<u8>,
    pub refid: Option<String>,
    pub error: Option<String>,
    pub no_response: bool,
}

/// How one monitor sees one server: healthy when its score for the server
/// is at least [`crate::IN_DNS_THRESHOLD`] (10), else unhealthy with the
/// last error code since it was last healthy ('' when there was none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairState {
    Healthy,
    Unhealthy { error: String },
}

/// A change of [`PairState`] for (server, monitor) made by one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairTransition {
    pub server_id: i64,
    pub monitor_id: i64,
    pub from: PairState,
    pub to: PairState,
}

/// A touched server as stored: its last logged aggregate `(score, ts)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerBefore {
    pub server_id: i64,
    pub last_logged: Option<(f64, i64)>,
}

/// One monitor's stored standing for a touched server.
#[derive(Debug, Clone, PartialEq)]
pub struct PairBefore {
    pub server_id: i64,
    pub monitor_id: i64,
    /// The monitor's status for this server.
    pub status: MonitorStatus,
    /// The monitor's global status.
    pub global: GlobalStatus,
    pub score: f64,
    /// `None` before the pair's first result.
    pub score_ts: Option<i64>,
    pub rtt_us: Option<i64>,
}

/// The submitting monitor's selector window and sticky error code for one
/// touched server.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OwnWindow {
    pub server_id: i64,
    pub window: PairWindow,
    pub last_error: String,
}

/// The stored state a submission is decided on.
#[derive(Debug, Clone, Default)]
pub struct Before {
    /// Every touched server.
    pub servers: Vec<ServerBefore>,
    /// The submitting monitor's pairs, the other active or testing
    /// monitors' pairs, and the candidates [`needs_candidates`] asked for.
    pub pairs: Vec<PairBefore>,
    pub windows: Vec<OwnWindow>,
}

/// One row for the score log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogWrite {
    pub server_id: i64,
    /// `None` for an aggregate row.
    pub monitor_id: Option<i64>,
    pub ts: i64,
    pub step: f64,
    pub score: f64,
    pub offset: Option<f64>,
    pub rtt_us: Option<i64>,
    pub stratum: Option<i64>,
    pub leap: Option<i64>,
    pub refid: Option<String>,
    pub error: Option<String>,
    pub no_response: bool,
}

/// The submitting monitor's new standing for one server.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreWrite {
    pub server_id: i64,
    pub score: f64,
    pub score_ts: i64,
    pub rtt_us: Option<i64>,
    /// The selector's 24 h statistics with this batch's results added.
    pub window: PairWindow,
    /// Last error since the pair was last healthy ('' once healthy).
    pub last_error: String,
}

/// Everything one submission writes.
#[derive(Debug, Default)]
pub struct Writes {
    pub accepted: usize,
    /// This monitor's new standing per touched server.
    pub scores: Vec<ScoreWrite>,
    /// Monitor rows in submission order, then aggregate rows.
    pub logs: Vec<LogWrite>,
    /// New aggregate per server that has one.
    pub aggregates: Vec<(i64, f64)>,
    /// Pair state changes (traceroute triggers).
    pub transitions: Vec<PairTransition>,
}

/// A result for a server that is not in [`Before::servers`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown server id {0}")]
pub struct UnknownServer(pub i64);

/// The touched servers whose candidates' scores the aggregate may need:
/// candidates count only where no other active or testing monitor scored
/// the server within the trusted window (see [`crate::aggregate`]), so the
/// store reads them only then and a submission's cost stays independent of
/// the number of monitors.
pub fn needs_candidates(
    monitor_id: i64,
    touched: &[i64],
    pairs: &[PairBefore],
    now: i64,
) -> Vec<i64> {
    let measuring = |s: MonitorStatus, g: GlobalStatus| {
        matches!(s, MonitorStatus::Active | MonitorStatus::Testing)
            && matches!(g, GlobalStatus::Active | GlobalStatus::Testing)
    };
    touched
        .iter()
        .copied()
        .filter(|&id| {
            !pairs.iter().any(|p| {
                p.server_id == id
                    && p.monitor_id != monitor_id
                    && measuring(p.status, p.global)
                    && p.score_ts
                        .is_some_and(|ts| ts >= now - crate::WINDOW_TRUSTED_S)
            })
        })
        .collect()
}

/// The status that counts for the aggregate: a monitor that is not
/// globally active or testing counts for nothing, and a globally testing
/// one is at most testing for any server.
fn effective(status: MonitorStatus, global: GlobalStatus) -> MonitorStatus {
    match (global, status) {
        (GlobalStatus::Active, s) => s,
        (GlobalStatus::Testing, MonitorStatus::Active) => MonitorStatus::Testing,
        (GlobalStatus::Testing, s) => s,
        _ => MonitorStatus::Paused,
    }
}

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// Seconds to whole microseconds, as rtts are stored; non-finite is none.
pub fn s_to_us(s: Option<f64>) -> Option<i64> {
    finite(s).map(|s| (s * 1e6).round() as i64)
}

struct Own {
    score: f64,
    ts: Option<i64>,
    rtt_us: Option<i64>,
    status: MonitorStatus,
    window: PairWindow,
    last_error: String,
}

fn pair_state(score: f64, error: &str) -> PairState {
    if score >= crate::IN_DNS_THRESHOLD {
        PairState::Healthy
    } else {
        PairState::Unhealthy {
            error: error.to_string(),
        }
    }
}

/// Whether going from `from` to `to` is worth a traceroute: healthy →
/// unhealthy, back to healthy after an error, or a new, non-empty error
/// code while unhealthy. A score climbing to 10 on answered queries (a new
/// pair, or a recovery from a bad offset) says nothing about the path.
fn is_transition(from: &PairState, to: &PairState) -> bool {
    match (from, to) {
        (PairState::Healthy, PairState::Healthy) => false,
        (PairState::Healthy, PairState::Unhealthy { .. }) => true,
        (PairState::Unhealthy { error }, PairState::Healthy) => !error.is_empty(),
        (PairState::Unhealthy { error: a }, PairState::Unhealthy { error: b }) => {
            !b.is_empty() && a != b
        }
    }
}

/// Decides what `monitor_id`'s `results` change, given the stored state of
/// the `touched` servers (sorted, deduplicated server ids of `results`).
pub fn decide(
    monitor_id: i64,
    results: &[ResultIn],
    touched: &[i64],
    before: Before,
    now: i64,
) -> Result<Writes, UnknownServer> {
    let mut windows: HashMap<i64, (PairWindow, String)> = before
        .windows
        .into_iter()
        .map(|w| (w.server_id, (w.window, w.last_error)))
        .collect();
    let last_logged: HashMap<i64, Option<(f64, i64)>> = before
        .servers
        .into_iter()
        .map(|s| (s.server_id, s.last_logged))
        .collect();
    if let Some(&missing) = touched.iter().find(|id| !last_logged.contains_key(id)) {
        return Err(UnknownServer(missing));
    }

    let mut own: HashMap<i64, Own> = HashMap::new();
    let mut others: HashMap<i64, Vec<MonitorScore>> = HashMap::new();
    for p in before.pairs {
        let status = effective(p.status, p.global);
        if p.monitor_id == monitor_id {
            let (window, last_error) = windows.remove(&p.server_id).unwrap_or_default();
            own.insert(
                p.server_id,
                Own {
                    score: p.score,
                    ts: p.score_ts,
                    rtt_us: p.rtt_us,
                    status,
                    window,
                    last_error,
                },
            );
        } else if let Some(ts) = p.score_ts {
            others.entry(p.server_id).or_default().push(MonitorScore {
                monitor_id: p.monitor_id,
                status,
                score: p.score,
                ts,
                rtt: p.rtt_us.map(|us| us as f64 / 1e6),
            });
        }
    }

    let mut writes = Writes {
        accepted: results.len(),
        ..Writes::default()
    };
    // How this monitor saw each server before the batch (first results
    // have nothing to compare with).
    let was: HashMap<i64, PairState> = own
        .iter()
        .filter(|(_, o)| o.ts.is_some())
        .map(|(&id, o)| (id, pair_state(o.score, &o.last_error)))
        .collect();
    for r in results {
        let offset = finite(r.offset);
        let obs = Observation {
            offset,
            rtt: finite(r.rtt),
            stratum: r.stratum,
            leap: r.leap,
            error: r.error.clone(),
            no_response: r.no_response,
        };
        let step = crate::step(&obs);
        let entry = own.entry(r.server_id).or_insert(Own {
            score: 0.0,
            ts: None,
            rtt_us: None,
            status: MonitorStatus::Candidate,
            window: PairWindow::default(),
            last_error: String::new(),
        });
        entry.score = crate::update(entry.score, step);
        entry.ts = Some(r.ts);
        entry.rtt_us = s_to_us(r.rtt);
        entry
            .window
            .add(r.ts, step.step, finite(r.rtt).map(|s| s * 1e3));
        // The error code sticks while the pair stays below 10, so a climb
        // back after an outage is told from a new pair's first climb.
        match r.error.as_deref().filter(|e| !e.is_empty()) {
            Some(e) => entry.last_error = e.to_string(),
            None if entry.score >= crate::IN_DNS_THRESHOLD => entry.last_error.clear(),
            None => {}
        }
        writes.logs.push(LogWrite {
            server_id: r.server_id,
            monitor_id: Some(monitor_id),
            ts: r.ts,
            step: step.step,
            score: entry.score,
            offset,
            rtt_us: entry.rtt_us,
            stratum: r.stratum.map(i64::from),
            leap: r.leap.map(i64::from),
            refid: r.refid.clone(),
            error: r.error.clone().filter(|e| !e.is_empty()),
            no_response: r.no_response,
        });
    }

    for &server_id in touched {
        // Every touched server has a result, so an entry above.
        let Some(mine) = own.get(&server_id) else {
            continue;
        };
        let Some(ts) = mine.ts else { continue };
        writes.scores.push(ScoreWrite {
            server_id,
            score: mine.score,
            score_ts: ts,
            rtt_us: mine.rtt_us,
            window: mine.window,
            last_error: mine.last_error.clone(),
        });
        if let Some(from) = was.get(&server_id) {
            let to = pair_state(mine.score, &mine.last_error);
            if is_transition(from, &to) {
                writes.transitions.push(PairTransition {
                    server_id,
                    monitor_id,
                    from: from.clone(),
                    to,
                });
            }
        }
        let mut all = others.remove(&server_id).unwrap_or_default();
        all.push(MonitorScore {
            monitor_id,
            status: mine.status,
            score: mine.score,
            ts,
            rtt: mine.rtt_us.map(|us| us as f64 / 1e6),
        });
        let Some(agg) = crate::aggregate(&all, now) else {
            continue;
        };
        writes.aggregates.push((server_id, agg));
        let prev = last_logged[&server_id];
        if crate::should_log_aggregate(prev, agg, now) {
            writes.logs.push(LogWrite {
                server_id,
                monitor_id: None,
                ts: now,
                // The change since the last logged aggregate.
                step: agg - prev.map_or(0.0, |p| p.0),
                score: agg,
                offset: None,
                rtt_us: None,
                stratum: None,
                leap: None,
                refid: None,
                error: None,
                no_response: false,
            });
        }
    }
    Ok(writes)
}
