//! `/scores/{ip}`: what the pool thinks of one server and why — score,
//! DNS state with its reasons, the history chart with its legend, recent
//! errors — and `/scores?ip=` for the lookup form.

use super::chart;
use super::html::{PageError, minute, page, respond};
use crate::error::ApiError;
use crate::logfmt;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use store::{LogRow, MonitorFilter, ServerMonitorRow, ServerRow, TracerouteRow};

/// Rows drawn in the chart (every monitor and the aggregate together):
/// enough for about a day of a busy server, bounded so the page stays fast.
pub const CHART_ROWS: i64 = 5000;
const ERRORS_SHOWN: usize = 20;

/// `GET /scores?ip=…`: the lookup form's target.
pub async fn lookup(Query(q): Query<Vec<(String, String)>>) -> Result<Response, PageError> {
    let ip = q
        .iter()
        .find(|(k, _)| k == "ip")
        .map(|(_, v)| v.trim())
        .unwrap_or("");
    if ip.is_empty() {
        return Ok(redirect("/"));
    }
    let ip: IpAddr = ip.parse().map_err(|_| {
        ApiError::bad_request("not an IP address: enter e.g. 192.0.2.1 or 2001:db8::1")
    })?;
    Ok(redirect(&format!("/scores/{ip}")))
}

fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Why a server is not in DNS, in the operator's words (empty when it is).
fn not_in_dns_reasons(s: &ServerRow, now: i64) -> Vec<String> {
    let mut why = Vec::new();
    // Each rule on its own, through the one DNS rule in `scoring`.
    if !scoring::in_dns(s.score, 1, None, now) {
        why.push(format!(
            "its score {:.1} is below {}",
            s.score,
            scoring::IN_DNS_THRESHOLD
        ));
    }
    if !scoring::in_dns(scoring::MAX_SCORE, s.netspeed, None, now) {
        why.push("its netspeed is 0 (monitoring only)".into());
    }
    if !scoring::in_dns(scoring::MAX_SCORE, 1, s.deletion_on, now) {
        let day = s.deletion_on.map(day).unwrap_or_default();
        why.push(format!(
            "it is scheduled for deletion on {day} (servers leave DNS 14 days before)"
        ));
    }
    if s.account_disabled {
        why.push("its account is disabled".into());
    }
    why
}

fn day(ts: i64) -> String {
    let mut s = logfmt::timestamp(ts);
    s.truncate(10);
    s
}

/// `GET /scores/{ip}`.
pub async fn server(
    State(st): State<AppState>,
    Path(ip): Path<String>,
) -> Result<Response, PageError> {
    let not_found = || PageError::not_found("This server is not in the pool.");
    let ip: IpAddr = ip.parse().map_err(|_| not_found())?;
    let s = st.store().server_by_ip(ip).await?.ok_or_else(not_found)?;
    let now = st.now();
    let rows = st
        .store()
        .log_rows(s.id, MonitorFilter::All, CHART_ROWS, None)
        .await?;
    let all_monitors = st.store().server_monitors(s.id).await?;
    let samples = crate::evidence::ServerEvidence::load(
        &st,
        s.id,
        &all_monitors,
        crate::evidence::DEFAULT_HOURS,
        now,
    )
    .await?;
    let monitors: Vec<ServerMonitorRow> = all_monitors
        .iter()
        .filter(|m| m.monitor_status != store::GlobalStatus::Deleted)
        .cloned()
        .collect();
    let traces = st.store().latest_traceroutes(s.id).await?;
    let selection = crate::selector_job::server_view(
        st.store(),
        s.id,
        s.ip,
        all_monitors,
        super::selection_page::PAGE_CHANGES,
        now,
    )
    .await?;
    let dns = st.store().server_dns(s.id).await?;
    let dns = store::DnsMembership::for_server(&s, dns.as_ref(), now);
    let alerts = st
        .store()
        .alerts_for_server(s.id, super::alerts_page::PAGE_ALERTS)
        .await?;
    let distribution = crate::dns_counts::Distribution::read(
        st.store(),
        s.id,
        s.ip,
        crate::dns_counts::DEFAULT_DAYS,
        now,
    )
    .await?;
    let sections = Sections {
        distribution: &distribution,
        samples: &samples,
        sample_detail: st.cfg().public_sample_detail,
        traces: &traces,
        selection: &selection,
        alerts: &alerts,
    };
    let doc = render(&s, &rows, &monitors, &sections, now, dns);
    Ok(respond(StatusCode::OK, 120, doc))
}

/// The sections below the history, each from its own source.
struct Sections<'a> {
    distribution: &'a crate::dns_counts::Distribution,
    samples: &'a crate::evidence::ServerEvidence,
    /// `--public-sample-detail`.
    sample_detail: bool,
    traces: &'a [TracerouteRow],
    selection: &'a crate::selector_job::ServerMonitors,
    alerts: &'a [store::AlertRow],
}

fn render(
    s: &ServerRow,
    rows: &[LogRow],
    monitors: &[ServerMonitorRow],
    sections: &Sections<'_>,
    now: i64,
    dns: store::DnsMembership,
) -> String {
    let ip = s.ip.to_string();
    let why = not_in_dns_reasons(s, now);
    // History: chart, legend (hover or focus highlights a monitor's points
    // through CSS alone; the script adds click-to-hide).
    let names: BTreeMap<i64, String> = monitors
        .iter()
        .map(|m| (m.monitor_id, m.name.clone()))
        .collect();
    let b = html! {
        h1 { (ip) }
        dl.facts {
            dt { "Current score" }
            dd {
                strong id="score" { (format!("{:.1}", s.score)) }
                @if let Some(t) = s.score_ts { " at " (minute(t)) }
                " "
                span.muted { "(servers with a score of at least 10 are used in the pool)" }
            }
            dt { "In DNS" }
            @if why.is_empty() {
                dd id="in-dns" class="ok" { "yes" }
            } @else if dns.in_dns {
                // Below the score rule but kept in DNS (see the zone pages).
                dd id="in-dns" class="ok" data-held=(dns.held) {
                    "yes: "
                    @if dns.held {
                        "held by the zone guard (a monitor still sees it good while its zone loses many servers)"
                    } @else {
                        "until the zone guard's next check"
                    }
                    " although " (why.join("; "))
                }
            } @else {
                dd id="in-dns" class="bad" { "no: " (why.join("; ")) }
            }
            dt { "Zones" }
            dd {
                @if s.zones.is_empty() { "none" }
                @for (i, z) in s.zones.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href={ "/zones/" (super::url_segment(z)) } { (z) }
                }
            }
            dt { "Netspeed" }
            dd { (s.netspeed) " kbit/s" }
            @if let Some(d) = s.deletion_on {
                dt { "Deletion" }
                dd id="deletion" class="bad" { "scheduled for " (day(d)) }
            }
        }
        section.history id="history" {
            h2 { "History" }
            // Scrolls sideways on a phone rather than shrinking the labels away.
            div.scroll { (chart::render(rows, &names)) }
            (legend(rows, monitors))
            p.muted {
                "Dots: offset per check (left axis, square root scale; green ≤ 25 ms, \
                 orange ≤ 100 ms, pink above) and each monitor's score (right axis). \
                 Line: the server's overall score. Hover a monitor to highlight it, click to hide it."
            }
        }
        (errors(rows, &names))
        (super::evidence_page::public_section(sections.samples, sections.sample_detail))
        (super::distribution_page::section(sections.distribution))
        (super::selection_page::section(sections.selection))
        (super::traceroutes_page::section(sections.traces, now))
        (super::alerts_page::section(sections.alerts))
        h2 { "Data" }
        p {
            a href={ "/scores/" (ip) "/log?limit=200&monitor=*" } { "CSV log" }
            " · "
            a href={ "/scores/" (ip) "/json?monitor=*&limit=" (CHART_ROWS) } { "JSON" }
            " · "
            a href={ "/api/v1/servers/" (ip) } { "current standing (JSON)" }
            " · "
            a href={ "/api/v1/servers/" (ip) "/dns" } { "client distribution (JSON)" }
            " · server #" (s.id)
        }
        // From its own URL: the pages' policy allows no inline script.
        script src=(crate::security::SERVER_PAGE_JS) {}
    };
    page(&ip, monitor_style(monitors), b)
}

/// The page's own `<style>`: the traceroute columns and, per monitor, the
/// rule that dims the others while its legend row is hovered or focused.
/// CSS is not HTML, so it is not HTML-escaped; it holds only constants and
/// numeric monitor ids.
fn monitor_style(monitors: &[ServerMonitorRow]) -> Markup {
    let mut css = String::from(super::traceroutes_page::STYLE);
    for m in monitors {
        let id = m.monitor_id;
        let _ = write!(
            css,
            ".history:has(tr[data-monitor=\"{id}\"]:hover) g.monitor:not([data-monitor=\"{id}\"]),\
             .history:has(tr[data-monitor=\"{id}\"]:focus) g.monitor:not([data-monitor=\"{id}\"]),\
             .history:has(tr[data-monitor=\"{id}\"]:hover) .aggregate{{opacity:.12}}"
        );
    }
    html! { style { (PreEscaped(css)) } }
}

fn legend(rows: &[LogRow], monitors: &[ServerMonitorRow]) -> Markup {
    let mut rtt: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
    for r in rows {
        if let (Some(id), Some(v)) = (r.monitor_id, r.rtt) {
            let e = rtt.entry(id).or_default();
            e.0 += v * 1000.0;
            e.1 += 1;
        }
    }
    html! {
        div.scroll { table.legend {
            thead { tr {
                th { "monitor" } th { "location" } th { "status" } th.num { "score" }
                th.num { "avg rtt" } th { "last check" }
            } }
            tbody {
                @for m in monitors {
                    tr data-monitor=(m.monitor_id) {
                        td { (m.name) }
                        td { (m.location) }
                        td { (m.status) }
                        td.num { (format!("{:.1}", m.score)) }
                        td.num {
                            @if let Some(e) = rtt.get(&m.monitor_id).filter(|e| e.1 > 0) {
                                (format!("{:.1} ms", e.0 / f64::from(e.1)))
                            }
                        }
                        td { @if let Some(t) = m.score_ts { (minute(t)) } }
                    }
                }
            }
        } }
    }
}

fn errors(rows: &[LogRow], names: &BTreeMap<i64, String>) -> Markup {
    let mut errs: Vec<&LogRow> = rows
        .iter()
        .filter(|r| r.monitor_id.is_some() && r.error.is_some())
        .collect();
    errs.sort_by(|a, b| b.ts.cmp(&a.ts).then(b.id.cmp(&a.id)));
    html! {
        h2 { "Recent errors" }
        @if errs.is_empty() {
            p.muted { "No errors in the charted history." }
        } @else {
            div.scroll { table.errors {
                thead { tr { th { "time" } th { "monitor" } th { "error" } } }
                tbody {
                    @for r in errs.iter().take(ERRORS_SHOWN) {
                        @let id = r.monitor_id.unwrap_or(0);
                        @let name = r
                            .monitor_name
                            .clone()
                            .or_else(|| names.get(&id).cloned())
                            .unwrap_or_else(|| id.to_string());
                        tr {
                            td { (logfmt::timestamp(r.ts)) }
                            td { (name) }
                            td { code { (logfmt::sanitize_error(r.error.as_deref().unwrap_or(""))) } }
                        }
                    }
                }
            } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(score: f64, netspeed: i64, deletion_on: Option<i64>) -> ServerRow {
        ServerRow {
            id: 1,
            ip: "192.0.2.1".parse().unwrap(),
            ip_version: 4,
            account_id: None,
            netspeed,
            score,
            score_ts: None,
            deletion_on,
            created_on: 0,
            zones: vec![],
            hostname: None,
            verified_on: None,
            note: String::new(),
            alerts_on: true,
            account_disabled: false,
        }
    }

    #[test]
    fn reasons_for_not_being_in_dns() {
        let now = 1_700_000_000;
        assert!(not_in_dns_reasons(&server(15.0, 1000, None), now).is_empty());
        let r = not_in_dns_reasons(&server(3.0, 0, Some(now + 86_400)), now);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r[0].contains("below 10"));
        assert!(r[1].contains("netspeed is 0"));
        assert!(r[2].contains("scheduled for deletion"));
        assert!(not_in_dns_reasons(&server(15.0, 1000, Some(now + 30 * 86_400)), now).is_empty());
        let disabled = ServerRow {
            account_disabled: true,
            ..server(15.0, 1000, None)
        };
        assert_eq!(
            not_in_dns_reasons(&disabled, now),
            ["its account is disabled"]
        );
        assert!(!store::DnsMembership::for_server(&disabled, None, now).in_dns);
    }
}
