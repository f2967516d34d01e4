//! Automatic traceroutes: when a monitor's view of a server changes state
//! (healthy ↔ unhealthy, or a new error code), that monitor and one that
//! still sees the server well are asked for a traceroute with their next
//! work call (at most once per 20 minutes per pair, see the store); the
//! agents send them back to `POST /api/v1/monitor/traceroute`.

use crate::error::ApiError;
use crate::extract::{AuthedMonitor, JsonBody};
use crate::state::AppState;
use api::{TraceRequest, TracerouteStored, TracerouteSubmission};
use axum::Json;
use axum::extract::State;
use store::{MonitorRow, PairState, PairTransition, StoreError, TracerouteHop, TracerouteIn};

/// Traceroute requests handed out per work call.
pub const REQUESTS_PER_WORK: i64 = 4;
pub const MAX_HOPS: usize = 64;
pub const MAX_TTL: i64 = 64;
const MAX_PROBES: usize = 16;
const MAX_RTT_MS: f64 = 60_000.0;
const MAX_TOOL_CHARS: usize = 32;
const MAX_ERROR_BYTES: usize = 256;
const MAX_AGE_S: i64 = 86_400;
const MAX_FUTURE_S: i64 = 300;

/// The requests for `m` to go out with a work answer. Best effort: a
/// failure here must not cost the monitor its batch.
pub async fn take_requests(st: &AppState, m: &MonitorRow, now: i64) -> Vec<TraceRequest> {
    match st
        .store()
        .take_traceroute_requests(m.id, now, REQUESTS_PER_WORK)
        .await
    {
        Ok(rows) => rows
            .into_iter()
            .map(|(_, ip, reason)| TraceRequest {
                ip: ip.to_string(),
                reason,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(monitor = %m.name, error = %e, "cannot read traceroute requests");
            Vec::new()
        }
    }
}

fn state_text(s: &PairState) -> &str {
    match s {
        PairState::Healthy => "healthy",
        PairState::Unhealthy { error } if error.is_empty() => "unhealthy",
        PairState::Unhealthy { error } => error,
    }
}

/// Why a traceroute is asked for: "monitor X: healthy → i/o timeout".
pub fn reason(monitor: &str, t: &PairTransition) -> String {
    let text: String = format!(
        "monitor {monitor}: {} → {}",
        state_text(&t.from),
        state_text(&t.to)
    );
    // Error codes are short, but keep the stored reason bounded.
    text.chars().take(200).collect()
}

/// At most this many of one submission's transitions lead to traceroute
/// requests: more at once means the monitor's own network changed, and the
/// first few traceroutes show that (the store also caps pending requests
/// per monitor at [`store::TRACEROUTE_MAX_PENDING`]).
pub const TRANSITIONS_TRACED_PER_SUBMISSION: usize = 8;

/// After a submission: ask this monitor, and one that still sees the
/// server well, for a traceroute per changed server, all in one store
/// transaction. Best effort (the results are stored already).
pub async fn request_for_transitions(
    st: &AppState,
    m: &MonitorRow,
    transitions: &[PairTransition],
    now: i64,
) {
    let mut requests = Vec::new();
    for t in transitions.iter().take(TRANSITIONS_TRACED_PER_SUBMISSION) {
        let why = reason(&m.name, t);
        requests.push((t.server_id, t.monitor_id, why.clone()));
        match st.store().good_monitor_for(t.server_id, t.monitor_id).await {
            Ok(Some(good)) => requests.push((t.server_id, good, why)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot pick a monitor for a comparison traceroute")
            }
        }
    }
    if transitions.len() > TRANSITIONS_TRACED_PER_SUBMISSION {
        tracing::info!(
            monitor = %m.name,
            changed = transitions.len(),
            traced = TRANSITIONS_TRACED_PER_SUBMISSION,
            "many servers changed state at once for one monitor; tracing only the first"
        );
    }
    match st.store().request_traceroutes(&requests, now).await {
        Ok(0) => {}
        Ok(n) => st.metrics().traceroutes_requested(n as u64),
        Err(e) => tracing::warn!(error = %e, "cannot request traceroutes"),
    }
}

/// Field checks; the error names the field.
fn check(t: &TracerouteSubmission, now: i64) -> Result<(), ApiError> {
    let bad = |field: String, why: &str| ApiError::bad_request(format!("{field}: {why}"));
    if t.ts < now - MAX_AGE_S || t.ts > now + MAX_FUTURE_S {
        return Err(bad(
            "ts".into(),
            "out of range (unix seconds, not in the future, at most a day old)",
        ));
    }
    let tool = t.tool.trim();
    if tool.is_empty() || t.tool.chars().count() > MAX_TOOL_CHARS {
        return Err(bad("tool".into(), "must be 1 to 32 characters"));
    }
    if t.error.as_ref().is_some_and(|e| e.len() > MAX_ERROR_BYTES) {
        return Err(bad("error".into(), "longer than 256 bytes"));
    }
    if t.hops.len() > MAX_HOPS {
        return Err(bad("hops".into(), "more than 64 hops"));
    }
    for (i, h) in t.hops.iter().enumerate() {
        if !(1..=MAX_TTL).contains(&h.ttl) {
            return Err(bad(format!("hops[{i}].ttl"), "must be 1..=64"));
        }
        if h.rtt_ms.len() > MAX_PROBES {
            return Err(bad(format!("hops[{i}].rtt_ms"), "more than 16 probes"));
        }
        if h.sent as usize > MAX_PROBES {
            return Err(bad(format!("hops[{i}].sent"), "more than 16 probes"));
        }
        if let Some(j) = h
            .rtt_ms
            .iter()
            .position(|v| !v.is_finite() || !(0.0..=MAX_RTT_MS).contains(v))
        {
            return Err(bad(
                format!("hops[{i}].rtt_ms[{j}]"),
                "must be a finite number of milliseconds, 0 to 60000",
            ));
        }
    }
    Ok(())
}

/// `POST /api/v1/monitor/traceroute`: store a traceroute this monitor was
/// asked for. 400 for a bad body, 409 when it was not asked for (or was
/// answered already).
pub async fn submit(
    State(st): State<AppState>,
    AuthedMonitor(m): AuthedMonitor,
    JsonBody(t): JsonBody<TracerouteSubmission>,
) -> Result<Json<TracerouteStored>, ApiError> {
    let now = st.now();
    check(&t, now)?;
    let input = TracerouteIn {
        ts: t.ts,
        tool: t.tool.trim().to_string(),
        hops: t
            .hops
            .iter()
            .map(|h| TracerouteHop {
                ttl: h.ttl as u8,
                ip: h.ip.map(|ip| ip.to_canonical()),
                rtt_ms: h.rtt_ms.clone(),
                sent: h.sent,
            })
            .collect(),
        error: t.error.filter(|e| !e.trim().is_empty()),
    };
    match st.store().store_traceroute(m.id, t.ip, &input, now).await {
        Ok(_) => {
            st.metrics().traceroute_stored();
            Ok(Json(TracerouteStored { stored: true }))
        }
        // An address we do not know was not asked for either.
        Err(StoreError::NotFound(_)) | Err(StoreError::Conflict(_)) => {
            Err(ApiError::conflict(format!(
                "ip: no traceroute to {} was requested of this monitor",
                t.ip
            )))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub() -> TracerouteSubmission {
        TracerouteSubmission {
            ip: "192.0.2.1".parse().unwrap(),
            ts: 1_700_000_000,
            tool: "mtr".into(),
            hops: vec![api::Hop {
                ttl: 1,
                ip: Some("10.0.0.1".parse().unwrap()),
                rtt_ms: vec![0.3, 0.4],
                sent: 2,
            }],
            error: None,
        }
    }

    fn detail(t: &TracerouteSubmission) -> String {
        check(t, 1_700_000_000)
            .err()
            .map(|e| e.detail().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn checks_name_the_field() {
        assert_eq!(detail(&sub()), "");
        let mut t = sub();
        t.hops[0].ttl = 0;
        assert!(detail(&t).starts_with("hops[0].ttl"));
        t.hops[0].ttl = 65;
        assert!(detail(&t).starts_with("hops[0].ttl"));
        let mut t = sub();
        t.hops[0].rtt_ms = vec![1.0, f64::NAN];
        assert!(detail(&t).starts_with("hops[0].rtt_ms[1]"));
        t.hops[0].rtt_ms = vec![-1.0];
        assert!(detail(&t).starts_with("hops[0].rtt_ms[0]"));
        let mut t = sub();
        t.tool = "x".repeat(33);
        assert!(detail(&t).starts_with("tool"));
        t.tool = String::new();
        assert!(detail(&t).starts_with("tool"));
        let mut t = sub();
        t.error = Some("e".repeat(257));
        assert!(detail(&t).starts_with("error"));
        let mut t = sub();
        t.hops = (1..=65)
            .map(|i| api::Hop {
                ttl: i.min(64),
                ip: None,
                rtt_ms: vec![],
                sent: 2,
            })
            .collect();
        assert!(detail(&t).starts_with("hops:"));
        let mut t = sub();
        t.ts += 3600;
        assert!(detail(&t).starts_with("ts"));
    }

    #[test]
    fn reasons() {
        let t = |from, to| PairTransition {
            server_id: 1,
            monitor_id: 2,
            from,
            to,
        };
        let down = PairState::Unhealthy {
            error: "i/o timeout".into(),
        };
        assert_eq!(
            reason("defra1", &t(PairState::Healthy, down.clone())),
            "monitor defra1: healthy → i/o timeout"
        );
        assert_eq!(
            reason(
                "x",
                &t(
                    PairState::Unhealthy {
                        error: String::new()
                    },
                    PairState::Healthy
                )
            ),
            "monitor x: unhealthy → healthy"
        );
    }
}
