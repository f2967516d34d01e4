//! `/scores/{ip}/log` (CSV) and `/scores/{ip}/json`: a server's score
//! history in the pool's formats, for the operators' own scripts and graphs.

use crate::error::ApiError;
use crate::logfmt;
use crate::registry::ServerInfo;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use store::{LogRow, MonitorFilter, ServerRow};

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 10_000;

/// The query string of both history routes, as the pool reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub monitor: MonitorParam,
    pub limit: i64,
    pub since: Option<i64>,
}

/// `monitor=`: absent/empty, `*`, digits, or a plain name.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorParam {
    Aggregate,
    All,
    Id(i64),
    Name(String),
    /// Anything else (wildcards, dots, spaces…): never matches.
    Invalid,
}

impl MonitorParam {
    pub fn parse(v: Option<&str>) -> Self {
        match v {
            None | Some("") => MonitorParam::Aggregate,
            Some("*") => MonitorParam::All,
            Some(s) if s.bytes().all(|b| b.is_ascii_digit()) => s
                .parse()
                .map(MonitorParam::Id)
                .unwrap_or(MonitorParam::Invalid),
            Some(s)
                if s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                MonitorParam::Name(s.to_string())
            }
            Some(_) => MonitorParam::Invalid,
        }
    }
}

impl HistoryQuery {
    /// Lenient like the pool: an unreadable `limit` is the default, an
    /// unreadable `since` is ignored; only `monitor` can make it a 404.
    pub fn parse(pairs: &[(String, String)]) -> Self {
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let limit = match get("limit").and_then(|v| v.trim().parse::<i64>().ok()) {
            Some(n) if n > 0 => n.min(MAX_LIMIT),
            _ => DEFAULT_LIMIT,
        };
        let since = get("since")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|s| *s >= 0);
        HistoryQuery {
            monitor: MonitorParam::parse(get("monitor")),
            limit,
            since,
        }
    }
}

/// The server and the rows a history request asks for.
async fn history(
    st: &AppState,
    ip: &str,
    pairs: &[(String, String)],
) -> Result<(ServerRow, Vec<LogRow>), ApiError> {
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| ApiError::not_found("server not found"))?;
    let server = st
        .store()
        .server_by_ip(ip)
        .await?
        .ok_or_else(|| ApiError::not_found("server not found"))?;
    let q = HistoryQuery::parse(pairs);
    let monitor_not_found = || ApiError::not_found("monitor not found");
    let filter = match q.monitor {
        MonitorParam::Aggregate => MonitorFilter::Aggregate,
        MonitorParam::All => MonitorFilter::All,
        MonitorParam::Id(id) => {
            let m = st
                .store()
                .monitor_by_id(id)
                .await?
                .ok_or_else(monitor_not_found)?;
            MonitorFilter::Monitor(m.id)
        }
        MonitorParam::Name(name) => {
            let m = st
                .store()
                .monitor_by_name(&name)
                .await?
                .filter(|m| m.status != store::GlobalStatus::Deleted)
                .ok_or_else(monitor_not_found)?;
            MonitorFilter::Monitor(m.id)
        }
        MonitorParam::Invalid => return Err(monitor_not_found()),
    };
    let rows = st
        .store()
        .log_rows(server.id, filter, q.limit, q.since)
        .await?;
    Ok((server, rows))
}

fn with_history_headers(mut resp: Response, rows: &[LogRow], now: i64) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(logfmt::cache_control(rows, now)),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

/// `GET /scores/{ip}/log`.
pub async fn log_csv(
    State(st): State<AppState>,
    Path(ip): Path<String>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let pairs = query.map(|Query(p)| p).unwrap_or_default();
    let (_, rows) = history(&st, &ip, &pairs).await.map_err(ApiError::plain)?;
    let body = logfmt::csv_document(&rows);
    let resp = (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "inline"),
        ],
        body,
    )
        .into_response();
    Ok(with_history_headers(resp, &rows, st.now()))
}

/// One point of `history` in the JSON form.
#[derive(Debug, Serialize)]
struct HistoryPoint {
    ts: i64,
    offset: Option<f64>,
    step: f64,
    score: f64,
    monitor_id: i64,
    /// Milliseconds.
    rtt: Option<f64>,
}

/// One monitor of the JSON `monitors` list.
#[derive(Debug, Serialize)]
struct MonitorSummary {
    id: i64,
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    ts: Option<String>,
    score: f64,
    status: String,
    /// Milliseconds, averaged over the returned rows.
    avg_rtt: Option<f64>,
}

#[derive(Debug, Serialize)]
struct HistoryJson {
    history: Vec<HistoryPoint>,
    monitors: Vec<MonitorSummary>,
    server: ServerInfo,
}

fn one_decimal(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// `GET /scores/{ip}/json`.
pub async fn log_json(
    State(st): State<AppState>,
    Path(ip): Path<String>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let pairs = query.map(|Query(p)| p).unwrap_or_default();
    let (server, rows) = history(&st, &ip, &pairs).await?;
    let now = st.now();

    // Average rtt per monitor over the returned rows (0 = aggregate).
    let mut rtts: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
    for r in &rows {
        let e = rtts.entry(r.monitor_id.unwrap_or(0)).or_insert((0.0, 0));
        if let Some(rtt) = r.rtt {
            e.0 += rtt * 1000.0;
            e.1 += 1;
        }
    }
    let standing: HashMap<i64, store::ServerMonitorRow> = st
        .store()
        .server_monitors(server.id)
        .await?
        .into_iter()
        .map(|m| (m.monitor_id, m))
        .collect();
    let monitors = rtts
        .iter()
        .map(|(&id, &(sum, n))| {
            let avg_rtt = (n > 0).then(|| one_decimal(sum / f64::from(n)));
            if id == 0 {
                MonitorSummary {
                    id: 0,
                    name: "recentmedian".into(),
                    kind: "score",
                    ts: server.score_ts.and_then(logfmt::rfc3339),
                    score: one_decimal(server.score),
                    status: "active".into(),
                    avg_rtt,
                }
            } else {
                let s = standing.get(&id);
                MonitorSummary {
                    id,
                    name: s.map(|s| s.name.clone()).unwrap_or_else(|| id.to_string()),
                    kind: "monitor",
                    ts: s.and_then(|s| s.score_ts).and_then(logfmt::rfc3339),
                    score: s.map(|s| one_decimal(s.score)).unwrap_or(0.0),
                    status: s.map(|s| s.status.to_string()).unwrap_or_default(),
                    avg_rtt,
                }
            }
        })
        .collect();
    let history = rows
        .iter()
        .map(|r| HistoryPoint {
            ts: r.ts,
            offset: r.offset,
            step: r.step,
            score: r.score,
            monitor_id: r.monitor_id.unwrap_or(0),
            rtt: r.rtt.map(|s| s * 1000.0),
        })
        .collect();
    let dns = st.store().server_dns(server.id).await?;
    let body = HistoryJson {
        history,
        monitors,
        server: ServerInfo::new(&server, dns.as_ref(), now),
    };
    Ok(with_history_headers(
        axum::Json(body).into_response(),
        &rows,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &[(&str, &str)]) -> HistoryQuery {
        let pairs: Vec<(String, String)> = s
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        HistoryQuery::parse(&pairs)
    }

    #[test]
    fn monitor_param() {
        use MonitorParam::*;
        for (v, want) in [
            (None, Aggregate),
            (Some(""), Aggregate),
            (Some("*"), All),
            (Some("12"), Id(12)),
            (Some("deksf1-1a6a7hp"), Name("deksf1-1a6a7hp".into())),
            (Some("a_b"), Invalid),
            (Some("a%"), Invalid),
            (Some("a.b"), Invalid),
            (Some("a b"), Invalid),
            (Some("a\tb"), Invalid),
            (Some("**"), Invalid),
            (Some("99999999999999999999999"), Invalid),
        ] {
            assert_eq!(MonitorParam::parse(v), want, "{v:?}");
        }
    }

    #[test]
    fn limit_and_since() {
        assert_eq!(q(&[]).limit, 100);
        assert_eq!(q(&[("limit", "abc")]).limit, 100);
        assert_eq!(q(&[("limit", "0")]).limit, 100);
        assert_eq!(q(&[("limit", "-5")]).limit, 100);
        assert_eq!(q(&[("limit", "5")]).limit, 5);
        assert_eq!(q(&[("limit", "20000")]).limit, 10_000);
        assert_eq!(q(&[("since", "1700000000")]).since, Some(1_700_000_000));
        assert_eq!(q(&[("since", "x")]).since, None);
    }
}
