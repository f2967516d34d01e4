//! The public web pages: the pool at a glance, a server's page with its
//! history chart, a zone's servers and the monitors. Server-rendered HTML
//! through `maud` templates, which escape every interpolated value (only
//! constant CSS is wrapped in `PreEscaped`), usable without JavaScript and at phone
//! width; the only script is the server page's few lines, served from
//! `/assets/server-page.js` (the pages' CSP allows no inline script).

mod alerts_page;
mod chart;
pub(crate) mod distribution_page;
pub(crate) mod evidence_page;
pub(crate) mod html;
mod selection_page;
mod server_page;
mod traceroutes_page;
mod zone_guard_page;

pub use server_page::{lookup, server};

use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use html::{PageError, ago, minute, page, respond};
use maud::{Markup, html};
use std::collections::HashMap;
use store::GlobalStatus;

/// A monitor seen this recently counts as online.
const ONLINE_S: i64 = 600;
/// "Recently" on the overview.
const CHANGES_WINDOW_S: i64 = 24 * 3600;
const CHANGES_SHOWN: i64 = 20;

fn yes_no(b: bool) -> Markup {
    html! {
        @if b { span.ok { "yes" } } @else { span.bad { "no" } }
    }
}

fn lookup_form() -> Markup {
    html! {
        form.lookup action="/scores" method="get" {
            input name="ip" placeholder="192.0.2.1 or 2001:db8::1" aria-label="Server IP address" required;
            button type="submit" { "Show server" }
        }
    }
}

/// `GET /`.
pub async fn index(State(st): State<AppState>) -> Result<Response, PageError> {
    let now = st.now();
    let zones = st.store().zone_list(now).await?;
    let monitors = st.store().list_monitors().await?;
    let changes = st
        .store()
        .score_crossings(
            now - CHANGES_WINDOW_S,
            scoring::IN_DNS_THRESHOLD,
            CHANGES_SHOWN,
        )
        .await?;
    let live: Vec<_> = monitors
        .iter()
        .filter(|m| m.status != GlobalStatus::Deleted)
        .collect();
    let online = live
        .iter()
        .filter(|m| m.last_seen.is_some_and(|t| t >= now - ONLINE_S))
        .count();
    let (with_servers, empty): (Vec<_>, Vec<_>) = zones
        .iter()
        .partition(|z| z.v4_registered + z.v6_registered > 0);

    let b = html! {
        h1 { "The pool at a glance" }
        h2 { "Look up a server" }
        (lookup_form())
        h2 { "Monitors" }
        p {
            a href="/monitors" { strong id="monitors-online" { (online) } " of " (live.len()) " monitors online" }
            " (seen in the last 10 minutes)."
        }
        h2 { "Zones" }
        @if with_servers.is_empty() {
            p.muted { "No zone has a server yet." }
        } @else {
            div.scroll { table.zones {
                thead { tr {
                    th { "zone" } th { "description" } th.num { "IPv4 active" } th.num { "IPv4 registered" }
                    th.num { "IPv6 active" } th.num { "IPv6 registered" }
                } }
                tbody {
                    @for z in &with_servers {
                        tr data-zone=(z.name) {
                            td { a href={ "/zones/" (url_segment(&z.name)) } { (z.name) } }
                            td { (z.description) }
                            td.num { (z.v4_active) } td.num { (z.v4_registered) }
                            td.num { (z.v6_active) } td.num { (z.v6_registered) }
                        }
                    }
                }
            } }
        }
        @if !empty.is_empty() {
            // Most of the ~250 zones of a young pool have no server; they
            // stay one click away instead of burying the rest of the page.
            details id="empty-zones" {
                summary { (empty.len()) " zones without servers" }
                p.zone-names {
                    @for (i, z) in empty.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ "/zones/" (url_segment(&z.name)) } title=(z.description) { (z.name) }
                    }
                }
            }
        }
        h2 { "Recent changes" }
        @if changes.is_empty() {
            p.muted { "No server entered or left DNS in the last 24 hours." }
        } @else {
            div.scroll { table.changes {
                thead { tr { th { "time" } th { "server" } th { "change" } th.num { "score" } } }
                tbody {
                    @for c in &changes {
                        @let (what, class) = if c.score >= scoring::IN_DNS_THRESHOLD {
                            ("entered DNS", "ok")
                        } else {
                            ("left DNS", "bad")
                        };
                        tr {
                            td { (minute(c.ts)) }
                            td { a href={ "/scores/" (c.ip) } { (c.ip) } }
                            td class=(class) { (what) }
                            td.num { (format!("{:.1} → {:.1}", c.previous, c.score)) }
                        }
                    }
                }
            } }
        }
    };
    Ok(respond(StatusCode::OK, 60, page("Overview", html! {}, b)))
}

/// Zone names are plain labels (`europe`, `de`, `@`); keep the link
/// harmless whatever is stored.
fn url_segment(name: &str) -> String {
    name.bytes()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.' {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

/// `GET /zones/{name}`.
pub async fn zone(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let now = st.now();
    let z = st
        .store()
        .zone_list(now)
        .await?
        .into_iter()
        .find(|z| z.name == name)
        .ok_or(PageError::not_found("no such zone"))?;
    let mut servers: Vec<_> = st
        .store()
        .list_servers()
        .await?
        .into_iter()
        .filter(|s| s.zones.contains(&z.name))
        .filter(|s| s.deletion_on.is_none_or(|d| d > now))
        .collect();
    servers.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.ip.cmp(&b.ip)));

    let history = st.store().zone_history(&z.name, 60).await?;
    let events = st
        .store()
        .guard_events(&z.name, zone_guard_page::EVENTS_SHOWN)
        .await?;
    let dns = st.store().server_dns_all().await?;
    let b = html! {
        h1 { "Zone " (z.name) }
        p { (z.description) }
        dl.facts {
            dt { "IPv4" } dd id="v4-counts" { (z.v4_active) " active of " (z.v4_registered) " registered" }
            dt { "IPv6" } dd id="v6-counts" { (z.v6_active) " active of " (z.v6_registered) " registered" }
            dt { "Served by DNS" } dd { (yes_no(z.dns)) }
        }
        @if let Some(p) = &z.parent {
            p { "Part of " a href={ "/zones/" (url_segment(p)) } { (p) } "." }
        }
        @if !history.is_empty() {
            h2 { "History" }
            div.scroll { table.history {
                thead { tr {
                    th { "day (UTC)" } th.num { "IPv4 active" } th.num { "IPv4 registered" }
                    th.num { "IPv6 active" } th.num { "IPv6 registered" }
                } }
                tbody {
                    @for h in &history {
                        @let day = chrono::DateTime::from_timestamp(h.day, 0)
                            .map(|d| d.format("%Y-%m-%d").to_string())
                            .unwrap_or_default();
                        tr data-day=(h.day) {
                            td { (day) } td.num { (h.v4_active) } td.num { (h.v4_registered) }
                            td.num { (h.v6_active) } td.num { (h.v6_registered) }
                        }
                    }
                }
            } }
        }
        (zone_guard_page::section(&events, now))
        h2 { "Servers" }
        @if servers.is_empty() {
            p.muted { "No servers in this zone." }
        } @else {
            div.scroll { table.servers {
                thead { tr {
                    th { "server" } th.num { "score" } th.num { "netspeed (kbit/s)" } th { "in DNS" }
                } }
                tbody {
                    @for s in &servers {
                        @let m = store::DnsMembership::for_server(s, dns.get(&s.id), now);
                        tr data-ip=(s.ip) {
                            td { a href={ "/scores/" (s.ip) } { (s.ip) } }
                            td.num { (format!("{:.1}", s.score)) }
                            td.num { (s.netspeed) }
                            td {
                                @if m.held {
                                    span.ok title="its score is below 10; the zone guard keeps it" {
                                        "yes (held by the zone guard)"
                                    }
                                } @else {
                                    (yes_no(m.in_dns))
                                }
                            }
                        }
                    }
                }
            } }
        }
    };
    let title = format!("Zone {}", z.name);
    Ok(respond(StatusCode::OK, 120, page(&title, html! {}, b)))
}

/// `GET /monitors`.
pub async fn monitors(State(st): State<AppState>) -> Result<Response, PageError> {
    let now = st.now();
    let monitors = st.store().list_monitors().await?;
    let checks: HashMap<i64, i64> = st
        .store()
        .checks_since(now - 3600)
        .await?
        .into_iter()
        .collect();
    let clocks: HashMap<i64, store::MonitorClock> = st
        .store()
        .monitor_clocks()
        .await?
        .into_iter()
        .map(|c| (c.monitor_id, c))
        .collect();
    let b = html! {
        h1 { "Monitors" }
        @if crate::clock_check::disabled(st.cfg()) {
            p.bad id="clock-check-disabled" {
                strong { "Warning:" } " " (crate::clock_check::WARNING) "."
            }
        }
        div.scroll { table.monitors {
            thead { tr {
                th { "name" } th { "location" } th { "status" } th { "online" } th { "last seen" }
                th { "version" } th.num { "checks, last hour" } th { "clock check" }
            } }
            tbody {
                @for m in monitors.iter().filter(|m| m.status != GlobalStatus::Deleted) {
                    tr data-monitor=(m.id) {
                        td { (m.name) }
                        td { (m.location) }
                        td { (m.status) }
                        td { (yes_no(m.last_seen.is_some_and(|t| t >= now - ONLINE_S))) }
                        td {
                            @match m.last_seen {
                                Some(t) => { (minute(t)) " " span.muted { "(" (ago(t, now)) ")" } }
                                None => { "never" }
                            }
                        }
                        td { (m.client_version.as_deref().unwrap_or("")) }
                        td.num { (checks.get(&m.id).copied().unwrap_or(0)) }
                        @match clocks.get(&m.id) {
                            Some(c) => {
                                @let state = if c.ok { "ok" } else { "failing" };
                                td class={ "clock-" (state) } title=(c.detail) {
                                    (state) " " span.muted { "(" (ago(c.ts, now)) ")" }
                                }
                            }
                            None => { td.clock-unknown { "unknown" } }
                        }
                    }
                }
            }
        } }
    };
    Ok(respond(StatusCode::OK, 60, page("Monitors", html! {}, b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_links_are_plain() {
        assert_eq!(url_segment("north-america"), "north-america");
        assert_eq!(url_segment("@"), "%40");
        assert_eq!(url_segment("a\"b"), "a%22b");
    }
}
