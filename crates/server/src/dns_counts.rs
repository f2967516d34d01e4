//! Client distribution (issue 17 item 3), the service's side: the DNS
//! processes' answer counts come in at `POST /api/dns-counts` (the
//! `/api/dns-zone` token) or, from `serve`'s own DNS, through
//! [`record_loop`]; both store them with `Store::record_dns_counts`.
//! `GET /api/v1/servers/{ip}/dns` and the server page read them back as a
//! [`Distribution`]; the admin page lists the servers [`flagged`].

use crate::dns_zone::dns_token;
use crate::error::ApiError;
use crate::housekeeping_job::DEFAULT_DNS_COUNT_RETENTION;
use crate::state::{AppState, Clock};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use dns::{CountReport, CountsStored, UNKNOWN_COUNTRY};
use serde::Serialize;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;
use store::{DnsServerCounts, Store, StoreError};
use tokio_util::sync::CancellationToken;

mod check;
pub use check::{
    CLOCK_SKEW_S, MAX_COUNT, MAX_COUNTRIES, REPORT_ID_MAX, check_report, report_body_cap,
};

/// How often `serve`'s own DNS stores its counts by default
/// (`--dns-count-interval`), as `poolwatch dns` posts them.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// `?days=` of the JSON route: the default (the pool's page shows 3 days)
/// and the longest window.
pub const DEFAULT_DAYS: i64 = 3;
pub const MAX_DAYS: i64 = 14;
/// Client countries shown, most answers first.
pub const TOP_COUNTRIES: usize = 10;
/// The admin flag: answers at least this many times the netspeed share,
/// over the last [`DEFAULT_DAYS`], with at least [`FLAG_MIN_ANSWERS`]
/// answers. A weighted pick misses its share by about √expected, so at a
/// thousand answers a ratio of 2 is far past chance: what is left is the
/// zone's shape (too few servers for their weights, a server far heavier
/// than the rest) or a DNS process that misbehaves.
pub const FLAG_RATIO: f64 = 2.0;
pub const FLAG_MIN_ANSWERS: i64 = 1000;

/// `serve`'s own DNS: reports that could not be stored (a database down
/// for a while) are kept and tried again, up to this many, oldest dropped
/// first: a day of minutes.
pub const MAX_PENDING_REPORTS: usize = 1440;

/// The retention the service keeps counts for (reports older are refused).
pub(crate) fn retention(st: &AppState) -> Duration {
    st.cfg()
        .housekeeping
        .as_ref()
        .map_or(DEFAULT_DNS_COUNT_RETENTION, |h| h.dns_count_retention)
}

/// `POST /api/dns-counts`: one [`CountReport`] of a `poolwatch dns`. The
/// token is checked before a byte of the body is read; the body is capped
/// at [`report_body_cap`]. Not JSON → 400; a field of the wrong type or an
/// unacceptable value → 422 naming it, nothing stored. Answers
/// [`CountsStored`] (`new: false` for a `report_id` stored before).
pub async fn post(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CountsStored>, ApiError> {
    let metrics = st.metrics();
    if let Err(e) = dns_token(&st, &headers) {
        // A closed route (no --zone or no token: 404) is not a refusal.
        if e.status() == axum::http::StatusCode::UNAUTHORIZED {
            metrics.dns_count_report("unauthorized");
        }
        return Err(e);
    }
    let report = match read_report(&st, body).await {
        Ok(r) => r,
        Err(e) => {
            metrics.dns_count_report("invalid");
            return Err(e);
        }
    };
    match st.store().record_dns_counts(&report, st.now()).await {
        Ok(stored) => {
            metrics.dns_counts_stored(&stored);
            Ok(Json(stored))
        }
        Err(e) => {
            metrics.dns_count_report("failed");
            Err(match e {
                StoreError::Invalid(why) => ApiError::unprocessable(why),
                e => e.into(),
            })
        }
    }
}

/// The body as a checked report: capped, JSON, the type, [`check_report`].
async fn read_report(st: &AppState, body: Body) -> Result<CountReport, ApiError> {
    let cap = report_body_cap();
    let bytes = axum::body::to_bytes(body, cap)
        .await
        .map_err(|_| ApiError::too_large(cap))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let report = serde_path_to_error::deserialize::<_, CountReport>(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".into() } else { path };
        ApiError::unprocessable(format!("{field}: {}", e.into_inner()))
    })?;
    check_report(&report, st.now(), retention(st))
        .map_err(|(field, why)| ApiError::unprocessable(format!("{field}: {why}")))?;
    Ok(report)
}

/// `serve`'s own DNS: every `interval` (and once more when `stop` comes)
/// stores what `harvest` hands over (the DNS side's
/// `AnswerCounts::harvest`), through the store directly. A report the
/// store could not take for now is kept (at most [`MAX_PENDING_REPORTS`])
/// and tried again, under the same id, so nothing is counted twice; one it
/// refuses (not transient) is logged and dropped.
pub async fn record_loop<H>(
    store: Store,
    clock: Clock,
    interval: Duration,
    mut harvest: H,
    stop: CancellationToken,
) where
    H: FnMut() -> Vec<CountReport>,
{
    let mut pending: Vec<CountReport> = Vec::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is now: nothing counted yet.
    tick.tick().await;
    loop {
        let last = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tick.tick() => false,
        };
        pending.extend(harvest());
        if pending.len() > MAX_PENDING_REPORTS {
            let dropped = pending.len() - MAX_PENDING_REPORTS;
            tracing::warn!(
                dropped,
                "DNS counts: the store has taken no report for long; dropped the oldest"
            );
            pending.drain(..dropped);
        }
        let mut kept = Vec::new();
        for report in pending.drain(..) {
            match store.record_dns_counts(&report, clock.now()).await {
                Ok(stored) if stored.unknown > 0 => {
                    tracing::debug!(unknown = stored.unknown, "DNS counts: servers gone since")
                }
                Ok(_) => {}
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "DNS counts not stored now; trying again");
                    kept.push(report);
                }
                Err(e) => {
                    tracing::warn!(error = %e, report_id = %report.report_id, "DNS counts refused; dropped")
                }
            }
        }
        pending = kept;
        if last {
            if !pending.is_empty() {
                tracing::warn!(
                    reports = pending.len(),
                    "DNS counts not stored at shutdown: lost"
                );
            }
            return;
        }
    }
}

/// A server's client distribution over a window, as the JSON route and
/// the server page show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    pub ip: String,
    pub days: i64,
    /// Start of the window (unix seconds, the start of its first hour).
    pub since: i64,
    /// Answers that held the server.
    pub answers: i64,
    /// Answers of its family from the zones it is in.
    pub zone_answers: i64,
    /// `answers / zone_answers`; `None` without zone answers.
    pub share: Option<f64>,
    /// Its netspeed share: `expected / zone_answers`.
    pub netspeed_share: Option<f64>,
    /// The top client countries, most answers first.
    pub countries: Vec<CountryShare>,
}

/// One client country of a [`Distribution`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountryShare {
    /// Lower-case ISO code, or `-` for clients not located.
    pub country: String,
    pub answers: i64,
    /// Every address answer sent to that country.
    pub country_answers: i64,
    /// answers × 10000 / country_answers (‱): of that country's answers,
    /// how many held this server. `None` when the country total is
    /// missing (its report was not the first of a split harvest).
    pub permyriad: Option<f64>,
}

impl Distribution {
    /// From the store's sums.
    pub fn new(ip: IpAddr, days: i64, since: i64, c: DnsServerCounts) -> Distribution {
        let ratio = |a: f64, b: i64| (b > 0).then(|| a / b as f64);
        Distribution {
            ip: ip.to_string(),
            days,
            since: store::dns_count_hour(since),
            answers: c.answers,
            zone_answers: c.zone_answers,
            share: ratio(c.answers as f64, c.zone_answers),
            netspeed_share: ratio(c.expected, c.zone_answers),
            countries: c
                .countries
                .into_iter()
                .take(TOP_COUNTRIES)
                .map(|k| CountryShare {
                    permyriad: ratio(k.answers as f64 * 10_000.0, k.country_answers),
                    country: k.country,
                    answers: k.answers,
                    country_answers: k.country_answers,
                })
                .collect(),
        }
    }

    /// The server's distribution over the last `days` at `now`.
    pub async fn read(
        store: &Store,
        server_id: i64,
        ip: IpAddr,
        days: i64,
        now: i64,
    ) -> Result<Distribution, StoreError> {
        let since = now - days * 86_400;
        let c = store.dns_counts_for_server(server_id, since).await?;
        Ok(Distribution::new(ip, days, since, c))
    }
}

/// `?days=N` (1–[`MAX_DAYS`], default [`DEFAULT_DAYS`]); another
/// parameter or a bad value → 400 naming it.
fn parse_days(query: &[(String, String)]) -> Result<i64, ApiError> {
    let mut days = DEFAULT_DAYS;
    let mut seen = HashSet::new();
    for (k, v) in query {
        if k != "days" {
            return Err(ApiError::bad_request(format!(
                "{k}: unknown parameter (only days)"
            )));
        }
        if !seen.insert(k) {
            return Err(ApiError::bad_request("days: given twice"));
        }
        days = v
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "days: {v:?} is not a whole number of days from 1 to {MAX_DAYS}"
                ))
            })?;
    }
    Ok(days)
}

/// `GET /api/v1/servers/{ip}/dns?days=N`: the server's [`Distribution`].
pub async fn server_api(
    State(st): State<AppState>,
    Path(ip): Path<String>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Distribution>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("query: {e}")))?;
    let days = parse_days(&query)?;
    let not_found = || ApiError::not_found("server not found");
    let ip: IpAddr = ip.parse().map_err(|_| not_found())?;
    let s = st.store().server_by_ip(ip).await?.ok_or_else(not_found)?;
    Ok(Json(
        Distribution::read(st.store(), s.id, s.ip, days, st.now()).await?,
    ))
}

/// A server the admin page flags: its share far above its netspeed share.
#[derive(Debug, Clone, PartialEq)]
pub struct Flagged {
    pub ip: String,
    pub answers: i64,
    pub share: Option<f64>,
    pub netspeed_share: Option<f64>,
    /// answers / expected; `None` when it was expected to get none.
    pub ratio: Option<f64>,
}

/// The servers over [`FLAG_RATIO`] × their netspeed share with at least
/// [`FLAG_MIN_ANSWERS`] answers in the last [`DEFAULT_DAYS`], highest
/// ratio first.
pub async fn flagged(store: &Store, now: i64) -> Result<Vec<Flagged>, StoreError> {
    let rows = store
        .dns_share_outliers(now - DEFAULT_DAYS * 86_400, FLAG_MIN_ANSWERS, FLAG_RATIO)
        .await?;
    let of = |a: f64, b: i64| (b > 0).then(|| a / b as f64);
    let mut out: Vec<Flagged> = rows
        .into_iter()
        .map(|r| Flagged {
            share: of(r.answers as f64, r.zone_answers),
            netspeed_share: of(r.expected, r.zone_answers),
            ratio: (r.expected > 0.0).then(|| r.answers as f64 / r.expected),
            answers: r.answers,
            ip: r.ip,
        })
        .collect();
    // No expectation at all ranks first; then by ratio.
    out.sort_by(|a, b| {
        let key = |f: &Flagged| f.ratio.unwrap_or(f64::INFINITY);
        key(b).total_cmp(&key(a)).then_with(|| a.ip.cmp(&b.ip))
    });
    Ok(out)
}

/// Country codes as shown: upper case, `-` kept.
pub fn country_label(c: &str) -> String {
    if c == UNKNOWN_COUNTRY {
        "not located".into()
    } else {
        c.to_ascii_uppercase()
    }
}
