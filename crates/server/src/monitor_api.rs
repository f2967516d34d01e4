//! The monitor API: an agent reads its config, takes a batch of work and
//! submits the batch's results. Every route needs the monitor's key.
//!
//! A submission is checked whole before anything is stored: every ticket,
//! the batch's owner and order, every field. Only then does the store take
//! it, in one transaction.

use crate::error::ApiError;
use crate::extract::{AuthedMonitor, JsonBody, JsonBodyOrEmpty, KeyedMonitor};
use crate::keys::TOKEN_LIFETIME_S;
use crate::metrics::outcome;
use crate::state::AppState;
use api::{
    Accepted, AccessToken, CheckResult, ClockReport, MAX_BATCH_SIZE, MonitorConfig, Submission,
    Work, WorkRequest, WorkServer,
};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use std::collections::HashSet;
use store::{GlobalStatus, ResultIn, WorkIntervals};

/// Per-monitor overrides (the `monitors.config` JSON); absent fields keep
/// the service's values.
#[derive(Debug, Default, Deserialize)]
struct ConfigOverride {
    samples: Option<u32>,
    sample_interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    reference_servers: Option<Vec<String>>,
    batch_size: Option<u32>,
}

/// The text form of a batch sequence number.
pub fn batch_id_text(seq: i64) -> String {
    format!("{seq:020}")
}

/// The sequence number of a batch id, if it is one we could have issued.
pub fn parse_batch_id(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Results may be spooled by an agent for a while, but not for ever, and
/// not from the future beyond clock slop.
const MAX_RESULT_AGE_S: i64 = 30 * 86_400;
const MAX_RESULT_FUTURE_S: i64 = 300;

/// The monitor's `monitors.config` overrides (none when unreadable).
fn overrides(m: &store::MonitorRow) -> ConfigOverride {
    match m.config.as_deref() {
        None | Some("") => ConfigOverride::default(),
        Some(text) => serde_json::from_str(text).unwrap_or_else(|e| {
            tracing::warn!(monitor = %m.name, error = %e, "ignoring unreadable monitor config");
            ConfigOverride::default()
        }),
    }
}

/// The batch size this monitor is told and given.
fn batch_size(cfg: &crate::ServerConfig, o: &ConfigOverride) -> u32 {
    o.batch_size
        .unwrap_or(cfg.batch_size)
        .clamp(1, MAX_BATCH_SIZE)
}

pub async fn config(
    State(st): State<AppState>,
    AuthedMonitor(m): AuthedMonitor,
) -> Result<Json<MonitorConfig>, ApiError> {
    let cfg = st.cfg();
    let o = overrides(&m);
    let batch_size = batch_size(cfg, &o);
    Ok(Json(MonitorConfig {
        ip: m.ip.to_string(),
        name: m.name,
        samples: o.samples.unwrap_or(cfg.samples),
        sample_interval_ms: o.sample_interval_ms.unwrap_or(cfg.sample_interval_ms),
        timeout_ms: o.timeout_ms.unwrap_or(cfg.timeout_ms),
        reference_servers: o
            .reference_servers
            .unwrap_or_else(|| cfg.reference_servers.clone()),
        batch_size,
    }))
}

/// A short-lived access token for the monitor whose long-lived key made
/// the call (see `keys::AccessTokens`).
pub async fn token(State(st): State<AppState>, KeyedMonitor(m): KeyedMonitor) -> Json<AccessToken> {
    let expires = st.now() + TOKEN_LIFETIME_S;
    Json(AccessToken {
        token: st.access_tokens().sign(m.id, expires, &m.key_hash),
        expires_in: TOKEN_LIFETIME_S as u64,
    })
}

/// How long an agent with nothing to do should wait: a quarter of the
/// shortest interval, between 1 s and a minute.
fn idle_retry(iv: &WorkIntervals) -> u64 {
    let shortest = iv.active_s.min(iv.testing_s).min(iv.candidate_s);
    (shortest / 4).clamp(1, 60) as u64
}

pub async fn work(
    State(st): State<AppState>,
    AuthedMonitor(m): AuthedMonitor,
    JsonBodyOrEmpty(WorkRequest {}): JsonBodyOrEmpty<WorkRequest>,
) -> Result<Json<Work>, ApiError> {
    let mut intervals = st.cfg().intervals;
    if m.status != GlobalStatus::Active {
        // A monitor still on trial checks its "active" servers only at the
        // testing pace, as in the pool.
        intervals.active_s = intervals.active_s.max(intervals.testing_s);
    }
    let now = st.now();
    // The batch size the config answer named (the agent caps what it reads by it).
    let size = batch_size(st.cfg(), &overrides(&m));
    // Due servers and their batch in one transaction.
    let (seq, items) = st
        .store()
        .take_work_batch(m.id, intervals, i64::from(size), now)
        .await?;
    let traceroutes = crate::traceroute_requests::take_requests(&st, &m, now).await;
    let live_checks = crate::live_checks::take_requests(&st, &m, now).await;
    if items.is_empty() {
        return Ok(Json(Work {
            batch_id: String::new(),
            servers: Vec::new(),
            retry_after_s: idle_retry(&intervals),
            traceroutes,
            live_checks,
        }));
    }
    let batch_id = batch_id_text(seq);
    let servers = items
        .iter()
        .map(|w| WorkServer {
            ip: w.ip.to_string(),
            ticket: st.tickets().sign(m.id, &batch_id, w.ip),
        })
        .collect();
    Ok(Json(Work {
        batch_id,
        servers,
        retry_after_s: 0,
        traceroutes,
        live_checks,
    }))
}

/// The fields of one sample as a result or a live check report carries
/// them, so both are judged by one function.
pub(crate) struct SampleFields<'a> {
    pub ts: i64,
    pub offset: Option<f64>,
    pub rtt: Option<f64>,
    pub stratum: Option<u8>,
    pub leap: Option<u8>,
    pub refid: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// Field checks that need no database; the error names the field, after
/// `prefix` (`results[3].` or empty).
pub(crate) fn check_sample(prefix: &str, r: &SampleFields, now: i64) -> Result<(), ApiError> {
    let bad = |field: &str, why: &str| ApiError::bad_request(format!("{prefix}{field}: {why}"));
    if r.ts < now - MAX_RESULT_AGE_S || r.ts > now + MAX_RESULT_FUTURE_S {
        return Err(bad(
            "ts",
            "out of range (unix seconds, not in the future, at most 30 days old)",
        ));
    }
    if r.offset.is_some_and(|o| !o.is_finite() || o.abs() > 1e9) {
        return Err(bad("offset", "not a plausible number of seconds"));
    }
    if r.rtt
        .is_some_and(|v| !v.is_finite() || !(0.0..=60.0).contains(&v))
    {
        return Err(bad("rtt", "must be between 0 and 60 seconds"));
    }
    if r.stratum.is_some_and(|s| s > 16) {
        return Err(bad("stratum", "must be 0..=16"));
    }
    if r.leap.is_some_and(|l| l > 3) {
        return Err(bad("leap", "must be 0..=3"));
    }
    if r.refid.is_some_and(|s| s.len() > 64) {
        return Err(bad("refid", "longer than 64 bytes"));
    }
    if r.error.is_some_and(|s| s.len() > 256) {
        return Err(bad("error", "longer than 256 bytes"));
    }
    Ok(())
}

fn check_fields(i: usize, r: &CheckResult, now: i64) -> Result<(), ApiError> {
    let f = SampleFields {
        ts: r.ts,
        offset: r.offset,
        rtt: r.rtt,
        stratum: r.stratum,
        leap: r.leap,
        refid: r.refid.as_deref(),
        error: r.error.as_deref(),
    };
    check_sample(&format!("results[{i}]."), &f, now)?;
    check_samples(i, &r.samples)
}

/// The samples of result `i` (issue 15): at most
/// [`store::MAX_SAMPLES`], positions 0, 1, … in order, each field in the
/// range a result's is; the error names `results[i].samples[j].field`.
fn check_samples(i: usize, samples: &[api::Sample]) -> Result<(), ApiError> {
    if samples.len() > store::MAX_SAMPLES {
        return Err(ApiError::bad_request(format!(
            "results[{i}].samples: {} given, at most {}",
            samples.len(),
            store::MAX_SAMPLES
        )));
    }
    for (j, s) in samples.iter().enumerate() {
        let bad = |field: &str, why: &str| {
            ApiError::bad_request(format!("results[{i}].samples[{j}].{field}: {why}"))
        };
        if s.position as usize != j {
            return Err(bad("position", "must be 0, 1, … in order"));
        }
        if s.send_ms > 60_000 {
            return Err(bad("send_ms", "must be 0..=60000"));
        }
        if s.offset.is_some_and(|o| !o.is_finite() || o.abs() > 1e9) {
            return Err(bad("offset", "not a plausible number of seconds"));
        }
        if s.rtt
            .is_some_and(|v| !v.is_finite() || !(0.0..=60.0).contains(&v))
        {
            return Err(bad("rtt", "must be between 0 and 60 seconds"));
        }
        if s.stratum.is_some_and(|v| v > 16) {
            return Err(bad("stratum", "must be 0..=16"));
        }
        if s.leap.is_some_and(|l| l > 3) {
            return Err(bad("leap", "must be 0..=3"));
        }
        if s.error.as_ref().is_some_and(|e| e.len() > 255) {
            return Err(bad("error", "longer than 255 bytes"));
        }
    }
    Ok(())
}

/// A checked sample as the store keeps it.
fn sample_row(s: &api::Sample) -> store::SampleRow {
    store::SampleRow {
        position: s.position,
        send_ms: s.send_ms as u16,
        answered: s.answered,
        rtt_us: s.rtt.map(|r| (r * 1e6).round() as u32),
        offset: s.offset,
        stratum: s.stratum,
        leap: s.leap,
        error: s.error.clone().filter(|e| !e.is_empty()),
    }
}

pub async fn results(
    State(st): State<AppState>,
    AuthedMonitor(m): AuthedMonitor,
    JsonBody(sub): JsonBody<Submission>,
) -> Result<Json<Accepted>, ApiError> {
    let now = st.now();
    let seq = parse_batch_id(&sub.batch_id)
        .ok_or_else(|| ApiError::bad_request("batch_id: not a batch id this service issued"))?;
    if sub.results.is_empty() {
        return Err(ApiError::bad_request("results: empty"));
    }
    // Everything that needs no database first, so a bad submission costs
    // nothing but parsing.
    let batch_id = batch_id_text(seq);
    let mut seen = HashSet::with_capacity(sub.results.len());
    for (i, r) in sub.results.iter().enumerate() {
        check_fields(i, r, now)?;
        if !seen.insert(r.ip) {
            return Err(ApiError::bad_request(format!(
                "results[{i}].ip: {} appears twice",
                r.ip
            )));
        }
        if !st.tickets().verify(m.id, &batch_id, r.ip, &r.ticket) {
            return Err(ApiError::forbidden(format!(
                "results[{i}].ticket: not issued to this monitor for {} in this batch",
                r.ip
            )));
        }
    }
    let batch = st
        .store()
        .batch(seq)
        .await?
        .filter(|b| b.monitor_id == m.id)
        .ok_or_else(|| ApiError::forbidden("batch_id: not a batch of this monitor"))?;
    if !batch.submitted && m.last_submit_batch.is_some_and(|last| seq < last) {
        st.metrics().batch(&m.name, "out_of_order");
        return Err(ApiError::conflict(format!(
            "batch_id: batch {batch_id} is older than this monitor's last submitted batch"
        )));
    }
    let mut rows = Vec::with_capacity(sub.results.len());
    let mut samples: Vec<Vec<store::SampleRow>> = Vec::with_capacity(sub.results.len());
    for (i, r) in sub.results.iter().enumerate() {
        // The batch row knows which addresses it was issued for.
        let found = batch
            .servers
            .iter()
            .find(|(_, ip)| *ip == r.ip)
            .map(|(id, _)| *id);
        let server_id = match found {
            Some(id) => id,
            None => {
                return Err(ApiError::forbidden(format!(
                    "results[{i}].ip: {} is not in this batch",
                    r.ip
                )));
            }
        };
        rows.push(ResultIn {
            server_id,
            ts: r.ts,
            offset: r.offset,
            rtt: r.rtt,
            stratum: r.stratum,
            leap: r.leap,
            refid: r.refid.clone().filter(|s| !s.is_empty()),
            error: r.error.clone().filter(|s| !s.is_empty()),
            no_response: r.no_response,
        });
        samples.push(r.samples.iter().map(sample_row).collect());
    }
    let out = st
        .store()
        .submit_results_with_samples(m.id, seq, &rows, &samples, now)
        .await?;
    crate::traceroute_requests::request_for_transitions(&st, &m, &out.transitions, now).await;
    if out.duplicate {
        st.metrics().batch(&m.name, "duplicate");
    } else {
        st.metrics().batch(&m.name, "accepted");
        for r in &sub.results {
            let o = outcome(r.no_response, r.error.as_deref(), r.offset, r.stratum);
            st.metrics().result(&m.name, o, (now - r.ts) as f64);
        }
    }
    Ok(Json(Accepted {
        accepted: out.accepted as u64,
        duplicate: out.duplicate,
    }))
}

/// `POST /api/v1/monitor/clock`: record the monitor's clock check, shown on
/// `/monitors`. 204 on success.
pub async fn clock(
    State(st): State<AppState>,
    AuthedMonitor(m): AuthedMonitor,
    JsonBody(r): JsonBody<ClockReport>,
) -> Result<axum::http::StatusCode, ApiError> {
    if r.detail.chars().count() > 1000 {
        return Err(ApiError::bad_request("detail: longer than 1000 characters"));
    }
    let c = store::MonitorClock {
        monitor_id: m.id,
        ok: r.ok,
        detail: r.detail,
        ts: st.now(),
    };
    st.store().set_monitor_clock(&c).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_order_as_text_and_number() {
        assert_eq!(batch_id_text(42), "00000000000000000042");
        assert!(batch_id_text(9) < batch_id_text(10));
        assert_eq!(parse_batch_id(&batch_id_text(i64::MAX)), Some(i64::MAX));
        assert_eq!(parse_batch_id("42"), Some(42));
        for bad in ["", "-1", "1e3", " 1", "abc", "123456789012345678901"] {
            assert_eq!(parse_batch_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn idle_retry_follows_intervals() {
        assert_eq!(idle_retry(&WorkIntervals::default()), 60);
        let fast = WorkIntervals {
            active_s: 8,
            testing_s: 20,
            candidate_s: 30,
        };
        assert_eq!(idle_retry(&fast), 2);
    }
}
