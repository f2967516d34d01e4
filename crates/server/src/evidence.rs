//! What a server's samples say (issue 15), for the JSON API and the pages:
//! one `Store::samples` read for the window, judged by `scoring::evidence`
//! (the rules live there), with the monitors' names. Rendering is in
//! `web::evidence_page`; the API handler in `manage::servers_api`.

use crate::error::ApiError;
use crate::housekeeping_job::DEFAULT_SAMPLE_RETENTION;
use crate::state::AppState;
use scoring::{Evidence, Stats};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use store::{ServerMonitorRow, StoreError};

/// The window pages use and the API defaults to: a day holds 160 checks of
/// an active monitor (one every 9 min), far above `scoring::evidence`'s
/// minimum, and a limiter shows within it.
pub const DEFAULT_HOURS: u32 = 24;

/// The longest window: samples older than `--sample-retention` are gone.
pub fn max_hours(st: &AppState) -> u32 {
    let keep = st
        .cfg()
        .housekeeping
        .as_ref()
        .map_or(DEFAULT_SAMPLE_RETENTION, |h| h.sample_retention);
    u32::try_from(keep.as_secs() / 3600)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// `hours` from a query string: absent → [`DEFAULT_HOURS`]; else a whole
/// number from 1 to `max`, or 400 naming it.
pub fn parse_hours(query: &[(String, String)], max: u32) -> Result<u32, ApiError> {
    let Some((_, v)) = query.iter().find(|(k, _)| k == "hours") else {
        return Ok(DEFAULT_HOURS.min(max));
    };
    match v.trim().parse::<u32>() {
        Ok(h) if (1..=max).contains(&h) => Ok(h),
        _ => Err(ApiError::bad_request(format!(
            "hours: '{v}' is not a whole number of hours from 1 to {max} (the sample retention)"
        ))),
    }
}

/// A server's evidence over a window, with names for its monitors.
#[derive(Debug)]
pub struct ServerEvidence {
    pub evidence: Evidence,
    /// Monitor id → name (a monitor gone since shows as `#id`).
    pub names: BTreeMap<i64, String>,
    pub hours: u32,
    /// The window: `since <= ts < until`.
    pub since: i64,
    pub until: i64,
}

impl ServerEvidence {
    /// The last `hours` before `now` of `server_id`'s samples; `monitors`
    /// from `Store::server_monitors` (the pages have them already).
    pub async fn load(
        st: &AppState,
        server_id: i64,
        monitors: &[ServerMonitorRow],
        hours: u32,
        now: i64,
    ) -> Result<ServerEvidence, StoreError> {
        let since = now - i64::from(hours) * 3600;
        // One read for the whole window; the analysis is over borrowed
        // samples, so nothing is copied.
        let checks = st.store().samples(server_id, None, since, now + 1).await?;
        let evidence =
            Evidence::from_checks(checks.iter().map(|c| (c.monitor_id, c.samples.as_slice())));
        let names = monitors
            .iter()
            .map(|m| (m.monitor_id, m.name.clone()))
            .collect();
        Ok(ServerEvidence {
            evidence,
            names,
            hours,
            since,
            until: now + 1,
        })
    }

    /// A monitor's name for people.
    pub fn name(&self, monitor_id: i64) -> String {
        self.names
            .get(&monitor_id)
            .cloned()
            .unwrap_or_else(|| format!("#{monitor_id}"))
    }

    /// The API's body (API.md "Samples").
    pub fn json(&self, ip: &str) -> Value {
        let e = &self.evidence;
        let monitors: Vec<Value> = e
            .monitors
            .iter()
            .map(|m| {
                let mut v = stats_json(&m.stats);
                v["monitor_id"] = json!(m.monitor_id);
                v["monitor"] = json!(self.name(m.monitor_id));
                v["verdict"] = json!(m.verdict.as_str());
                v
            })
            .collect();
        json!({
            "ip": ip, "hours": self.hours, "since": self.since, "until": self.until,
            "verdict": e.verdict.as_str(), "explanation": e.verdict.explain(),
            "overall": stats_json(&e.overall), "monitors": monitors,
        })
    }
}

/// Counts, rates by position and the rtt spread, as JSON.
fn stats_json(s: &Stats) -> Value {
    let positions: Vec<Value> = s
        .positions
        .iter()
        .map(|p| {
            json!({
                "position": p.position, "sent": p.sent, "answered": p.answered,
                "answer_rate": p.answer_rate(), "kod": p.kod,
            })
        })
        .collect();
    json!({ "checks": s.checks, "positions": positions, "rtt_us": s.rtt })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn hours_default_range_and_errors() {
        assert_eq!(parse_hours(&q(&[]), 360).unwrap(), 24);
        assert_eq!(parse_hours(&q(&[]), 12).unwrap(), 12);
        assert_eq!(parse_hours(&q(&[("hours", "1")]), 360).unwrap(), 1);
        assert_eq!(parse_hours(&q(&[("hours", " 360 ")]), 360).unwrap(), 360);
        for bad in ["0", "361", "-1", "1.5", "", "day"] {
            let e = parse_hours(&q(&[("hours", bad)]), 360).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.detail().starts_with("hours:"), "{bad}: {}", e.detail());
        }
    }
}
