//! The arithmetic of one submission, apart from any database: given the
//! stored state of the touched servers, what to write.

use crate::sql::{LogIns, ScoreTuple, ScoreUpd, ServerTuple, WindowTuple, window_of};
use crate::{PairState, PairTransition, ResultIn, StoreError};
use scoring::{MonitorScore, MonitorStatus, Observation};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub accepted: usize,
    /// This monitor's new standing per touched server.
    pub scores: Vec<ScoreUpd>,
    /// Monitor rows in submission order, then aggregate rows.
    pub logs: Vec<LogIns>,
    /// New aggregate per server that has one.
    pub aggregates: Vec<(i64, f64)>,
    /// Pair state changes (traceroute triggers).
    pub transitions: Vec<crate::PairTransition>,
}

/// The status that counts for the aggregate: a monitor that is not
/// globally active or testing counts for nothing, and a globally testing
/// one is at most testing for any server.
fn effective(status: MonitorStatus, global: &str) -> MonitorStatus {
    match (global, status) {
        ("active", s) => s,
        ("testing", MonitorStatus::Active) => MonitorStatus::Testing,
        ("testing", s) => s,
        _ => MonitorStatus::Paused,
    }
}

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

pub(crate) fn s_to_us(s: Option<f64>) -> Option<i64> {
    finite(s).map(|s| (s * 1e6).round() as i64)
}

struct Own {
    score: f64,
    ts: Option<i64>,
    rtt_us: Option<i64>,
    status: MonitorStatus,
    window: scoring::PairWindow,
    last_error: String,
}

fn pair_state(score: f64, error: &str) -> PairState {
    if score >= scoring::IN_DNS_THRESHOLD {
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

pub(crate) fn plan(
    monitor_id: i64,
    results: &[ResultIn],
    touched: &[i64],
    servers: Vec<ServerTuple>,
    scores: Vec<ScoreTuple>,
    windows: Vec<WindowTuple>,
    now: i64,
) -> Result<Plan, StoreError> {
    let mut windows: HashMap<i64, (scoring::PairWindow, String)> = windows
        .iter()
        .map(|t| (t.0, (window_of(t), t.10.clone().unwrap_or_default())))
        .collect();
    let last_logged: HashMap<i64, Option<(f64, i64)>> = servers
        .into_iter()
        .map(|(id, score, ts)| (id, score.zip(ts)))
        .collect();
    if let Some(missing) = touched.iter().find(|id| !last_logged.contains_key(id)) {
        return Err(StoreError::Invalid(format!("unknown server id {missing}")));
    }

    let mut own: HashMap<i64, Own> = HashMap::new();
    let mut others: HashMap<i64, Vec<MonitorScore>> = HashMap::new();
    for (server_id, mid, status, score, score_ts, rtt_us, global) in scores {
        let status: MonitorStatus = status
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("stored server score status {status:?}")))?;
        let status = effective(status, &global);
        if mid == monitor_id {
            let (window, last_error) = windows.remove(&server_id).unwrap_or_default();
            own.insert(
                server_id,
                Own {
                    score,
                    ts: score_ts,
                    rtt_us,
                    status,
                    window,
                    last_error,
                },
            );
        } else if let Some(ts) = score_ts {
            others.entry(server_id).or_default().push(MonitorScore {
                monitor_id: mid,
                status,
                score,
                ts,
                rtt: rtt_us.map(|us| us as f64 / 1e6),
            });
        }
    }

    let mut plan = Plan {
        accepted: results.len(),
        ..Plan::default()
    };
    // How this monitor saw each server before the batch (first results
    // have nothing to compare with).
    let before: HashMap<i64, PairState> = own
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
        let step = scoring::step(&obs);
        let entry = own.entry(r.server_id).or_insert(Own {
            score: 0.0,
            ts: None,
            rtt_us: None,
            status: MonitorStatus::Candidate,
            window: scoring::PairWindow::default(),
            last_error: String::new(),
        });
        entry.score = scoring::update(entry.score, step);
        entry.ts = Some(r.ts);
        entry.rtt_us = s_to_us(r.rtt);
        entry
            .window
            .add(r.ts, step.step, finite(r.rtt).map(|s| s * 1e3));
        // The error code sticks while the pair stays below 10, so a climb
        // back after an outage is told from a new pair's first climb.
        match r.error.as_deref().filter(|e| !e.is_empty()) {
            Some(e) => entry.last_error = e.to_string(),
            None if entry.score >= scoring::IN_DNS_THRESHOLD => entry.last_error.clear(),
            None => {}
        }
        plan.logs.push(LogIns {
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
        let mine = &own[&server_id];
        let ts = mine.ts.expect("every touched server has a result");
        plan.scores.push(ScoreUpd {
            server_id,
            score: mine.score,
            score_ts: ts,
            rtt_us: mine.rtt_us,
            window: mine.window,
            last_error: mine.last_error.clone(),
        });
        if let Some(from) = before.get(&server_id) {
            let to = pair_state(mine.score, &mine.last_error);
            if is_transition(from, &to) {
                plan.transitions.push(PairTransition {
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
        let Some(agg) = scoring::aggregate(&all, now) else {
            continue;
        };
        plan.aggregates.push((server_id, agg));
        let prev = last_logged[&server_id];
        if scoring::should_log_aggregate(prev, agg, now) {
            plan.logs.push(LogIns {
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
    Ok(plan)
}
