//! The public web pages: the pool at a glance, a server's page with its
//! history chart, a zone's servers and the monitors. Server-rendered HTML
//! (no template engine: `format!` and one escaping helper, [`html::esc`],
//! applied to every stored string), usable without JavaScript and at phone
//! width; the only script is the server page's few lines, served from
//! `/assets/server-page.js` (the pages' CSP allows no inline script).

mod alerts;
mod chart;
mod html;
mod selection;
mod server_page;
mod traceroutes;
mod zone_guard;

pub use server_page::{lookup, server};

use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use html::{PageError, ago, esc, minute, page, respond};
use maud::{PreEscaped, html};
use std::collections::HashMap;
use std::fmt::Write as _;
use store::MonitorGlobalStatus;

/// A monitor seen this recently counts as online.
const ONLINE_S: i64 = 600;
/// "Recently" on the overview.
const CHANGES_WINDOW_S: i64 = 24 * 3600;
const CHANGES_SHOWN: i64 = 20;

fn yes_no(b: bool) -> &'static str {
    if b {
        "<span class=\"ok\">yes</span>"
    } else {
        "<span class=\"bad\">no</span>"
    }
}

fn lookup_form() -> &'static str {
    "<form class=\"lookup\" action=\"/scores\" method=\"get\">\
     <input name=\"ip\" placeholder=\"192.0.2.1 or 2001:db8::1\" aria-label=\"Server IP address\" required>\
     <button type=\"submit\">Show server</button></form>"
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
        .filter(|m| m.status != MonitorGlobalStatus::Deleted)
        .collect();
    let online = live
        .iter()
        .filter(|m| m.last_seen.is_some_and(|t| t >= now - ONLINE_S))
        .count();

    let mut b = String::with_capacity(8 * 1024);
    b.push_str("<h1>The pool at a glance</h1><h2>Look up a server</h2>");
    b.push_str(lookup_form());
    let _ = write!(
        b,
        "<h2>Monitors</h2><p><a href=\"/monitors\"><strong id=\"monitors-online\">{online}</strong> \
         of {} monitors online</a> (seen in the last 10 minutes).</p>",
        live.len()
    );
    b.push_str(
        "<h2>Zones</h2><div class=\"scroll\"><table class=\"zones\"><thead><tr><th>zone</th>\
         <th>description</th><th class=\"num\">IPv4 active</th><th class=\"num\">IPv4 registered</th>\
         <th class=\"num\">IPv6 active</th><th class=\"num\">IPv6 registered</th></tr></thead><tbody>",
    );
    for z in &zones {
        let _ = write!(
            b,
            "<tr data-zone=\"{n}\"><td><a href=\"/zones/{u}\">{n}</a></td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&z.description),
            z.v4_active,
            z.v4_registered,
            z.v6_active,
            z.v6_registered,
            n = esc(&z.name),
            u = esc(&url_segment(&z.name)),
        );
    }
    b.push_str("</tbody></table></div><h2>Recent changes</h2>");
    if changes.is_empty() {
        b.push_str("<p class=\"muted\">No server entered or left DNS in the last 24 hours.</p>");
    } else {
        b.push_str(
            "<div class=\"scroll\"><table class=\"changes\"><thead><tr><th>time</th><th>server</th>\
             <th>change</th><th class=\"num\">score</th></tr></thead><tbody>",
        );
        for c in &changes {
            let (what, class) = if c.score >= scoring::IN_DNS_THRESHOLD {
                ("entered DNS", "ok")
            } else {
                ("left DNS", "bad")
            };
            let _ = write!(
                b,
                "<tr><td>{}</td><td><a href=\"/scores/{ip}\">{ip}</a></td>\
                 <td class=\"{class}\">{what}</td><td class=\"num\">{:.1} → {:.1}</td></tr>",
                minute(c.ts),
                c.previous,
                c.score,
                ip = c.ip,
            );
        }
        b.push_str("</tbody></table></div>");
    }
    Ok(respond(
        StatusCode::OK,
        60,
        page("Overview", html! {}, PreEscaped(b)),
    ))
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

    let mut b = String::with_capacity(4 * 1024 + servers.len() * 200);
    let _ = write!(
        b,
        "<h1>Zone {}</h1><p>{}</p><dl class=\"facts\">\
         <dt>IPv4</dt><dd id=\"v4-counts\">{} active of {} registered</dd>\
         <dt>IPv6</dt><dd id=\"v6-counts\">{} active of {} registered</dd>\
         <dt>Served by DNS</dt><dd>{}</dd></dl>",
        esc(&z.name),
        esc(&z.description),
        z.v4_active,
        z.v4_registered,
        z.v6_active,
        z.v6_registered,
        yes_no(z.dns)
    );
    if let Some(p) = &z.parent {
        let _ = write!(
            b,
            "<p>Part of <a href=\"/zones/{}\">{}</a>.</p>",
            esc(&url_segment(p)),
            esc(p)
        );
    }
    let history = st.store().zone_history(&z.name, 60).await?;
    if !history.is_empty() {
        b.push_str(
            "<h2>History</h2><div class=\"scroll\"><table class=\"history\"><thead><tr><th>day (UTC)</th>\
             <th class=\"num\">IPv4 active</th><th class=\"num\">IPv4 registered</th>\
             <th class=\"num\">IPv6 active</th><th class=\"num\">IPv6 registered</th></tr></thead><tbody>",
        );
        for h in &history {
            let day = chrono::DateTime::from_timestamp(h.day, 0)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            let _ = write!(
                b,
                "<tr data-day=\"{}\"><td>{day}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                h.day, h.v4_active, h.v4_registered, h.v6_active, h.v6_registered
            );
        }
        b.push_str("</tbody></table></div>");
    }
    let events = st
        .store()
        .guard_events(&z.name, zone_guard::EVENTS_SHOWN)
        .await?;
    zone_guard::section(&mut b, &events, now);
    let dns = st.store().server_dns_all().await?;
    b.push_str("<h2>Servers</h2>");
    if servers.is_empty() {
        b.push_str("<p class=\"muted\">No servers in this zone.</p>");
    } else {
        b.push_str(
            "<div class=\"scroll\"><table class=\"servers\"><thead><tr><th>server</th>\
             <th class=\"num\">score</th><th class=\"num\">netspeed (kbit/s)</th><th>in DNS</th></tr></thead><tbody>",
        );
        for s in &servers {
            let _ = write!(
                b,
                "<tr data-ip=\"{ip}\"><td><a href=\"/scores/{ip}\">{ip}</a></td><td class=\"num\">{:.1}</td>\
                 <td class=\"num\">{}</td><td>{}</td></tr>",
                s.score,
                s.netspeed,
                {
                    let m = store::DnsMembership::for_server(s, dns.get(&s.id), now);
                    if m.held {
                        "<span class=\"ok\" title=\"its score is below 10; the zone guard keeps it\">yes (held by the zone guard)</span>"
                    } else {
                        yes_no(m.in_dns)
                    }
                },
                ip = s.ip,
            );
        }
        b.push_str("</tbody></table></div>");
    }
    let title = format!("Zone {}", z.name);
    Ok(respond(
        StatusCode::OK,
        120,
        page(&title, html! {}, PreEscaped(b)),
    ))
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
    let mut b = String::with_capacity(4 * 1024);
    b.push_str("<h1>Monitors</h1>");
    if crate::clock_check::disabled(st.cfg()) {
        let _ = write!(
            b,
            "<p class=\"bad\" id=\"clock-check-disabled\"><strong>Warning:</strong> {}.</p>",
            esc(crate::clock_check::WARNING)
        );
    }
    b.push_str(
        "<div class=\"scroll\"><table class=\"monitors\"><thead><tr><th>name</th>\
         <th>location</th><th>status</th><th>online</th><th>last seen</th><th>version</th>\
         <th class=\"num\">checks, last hour</th><th>clock check</th></tr></thead><tbody>",
    );
    let clocks: HashMap<i64, store::MonitorClock> = st
        .store()
        .monitor_clocks()
        .await?
        .into_iter()
        .map(|c| (c.monitor_id, c))
        .collect();
    for m in monitors
        .iter()
        .filter(|m| m.status != MonitorGlobalStatus::Deleted)
    {
        let seen = match m.last_seen {
            Some(t) => format!(
                "{} <span class=\"muted\">({})</span>",
                minute(t),
                ago(t, now)
            ),
            None => "never".into(),
        };
        let online = m.last_seen.is_some_and(|t| t >= now - ONLINE_S);
        let _ = write!(
            b,
            "<tr data-monitor=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{seen}</td>\
             <td>{}</td><td class=\"num\">{}</td>{}</tr>",
            m.id,
            esc(&m.name),
            esc(&m.location),
            m.status,
            yes_no(online),
            esc(m.client_version.as_deref().unwrap_or("")),
            checks.get(&m.id).copied().unwrap_or(0),
            match clocks.get(&m.id) {
                Some(c) => format!(
                    "<td class=\"clock-{}\" title=\"{}\">{} <span class=\"muted\">({})</span></td>",
                    if c.ok { "ok" } else { "failing" },
                    esc(&c.detail),
                    if c.ok { "ok" } else { "failing" },
                    ago(c.ts, now)
                ),
                None => "<td class=\"clock-unknown\">unknown</td>".to_string(),
            },
        );
    }
    b.push_str("</tbody></table></div>");
    Ok(respond(
        StatusCode::OK,
        60,
        page("Monitors", html! {}, PreEscaped(b)),
    ))
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
