//! Live checks, the monitor side: the requests go out with a monitor's
//! work answers and the agents send one report each to
//! `POST /api/v1/monitor/live-check` (the service itself sends no NTP
//! packet). The rules of who is asked and what may be answered are the
//! store's (`store/src/live_checks.rs`); the pages that make a check and
//! show its answers are in `manage/`.

use crate::error::ApiError;
use crate::extract::{AuthedMonitor, JsonBody};
use crate::monitor_api::{SampleFields, check_sample};
use crate::state::AppState;
use api::{LiveCheckReport, LiveCheckRequest};
use axum::extract::State;
use axum::http::StatusCode;
use store::{LiveCheckAnswer, MonitorRow, StoreError};

/// Live checks handed out per work call (a check asks each monitor once,
/// so this only bounds a burst of adds).
pub const REQUESTS_PER_WORK: i64 = 3;

/// The requests for `m` to go out with a work answer. Best effort: a
/// failure here must not cost the monitor its batch.
pub async fn take_requests(st: &AppState, m: &MonitorRow, now: i64) -> Vec<LiveCheckRequest> {
    match st
        .store()
        .take_live_checks(m.id, now, REQUESTS_PER_WORK)
        .await
    {
        Ok(rows) => rows
            .into_iter()
            .map(|(id, ip)| LiveCheckRequest {
                id: id.to_string(),
                ip: ip.to_string(),
            })
            .collect(),
        Err(e) => {
            tracing::warn!(monitor = %m.name, error = %e, "cannot read live check requests");
            Vec::new()
        }
    }
}

/// `POST /api/v1/monitor/live-check`: one monitor's answer to a live
/// check it was handed. 204 when stored; refused with nothing stored
/// otherwise (see API.md).
pub async fn report(
    State(st): State<AppState>,
    AuthedMonitor(m): AuthedMonitor,
    JsonBody(r): JsonBody<LiveCheckReport>,
) -> Result<StatusCode, ApiError> {
    let now = st.now();
    let id: i64 =
        r.id.parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| ApiError::bad_request("id: not a live check id this service issued"))?;
    let fields = SampleFields {
        ts: r.ts,
        offset: r.offset,
        rtt: r.rtt,
        stratum: r.stratum,
        leap: r.leap,
        refid: r.refid.as_deref(),
        error: r.error.as_deref(),
    };
    check_sample("", &fields, now)?;
    let answer = LiveCheckAnswer {
        ts: r.ts,
        offset: r.offset,
        rtt: r.rtt,
        stratum: r.stratum,
        leap: r.leap,
        refid: r.refid,
        error: r.error,
        no_response: r.no_response,
    };
    match st
        .store()
        .record_live_check(m.id, id, r.ip, &answer, now)
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound(why)) => Err(ApiError::not_found(format!("id: {why}"))),
        Err(StoreError::Invalid(why)) => Err(ApiError::bad_request(why)),
        Err(StoreError::Conflict(why)) => Err(ApiError::conflict(format!("id: {why}"))),
        Err(e) => Err(e.into()),
    }
}
