//! `/manage/admin/policy-reports`: the reports `poolwatch policy replay
//! --save` kept (issue 15), for admins only (404 for everyone else, as
//! every admin page). The page shows a saved report rather than running a
//! replay: a month of the pool is minutes of work, not a page load, and a
//! saved report stays comparable after the samples it came from expire.
//! Read-only, so no form and no CSRF token.

use super::admin_pages::admin_only;
use super::auth::Operator;
use super::view::page;
use crate::policy_replay::{Report, render::describe};
use crate::state::AppState;
use crate::web::html::{PageError, minute};
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use std::fmt::Write as _;

pub async fn list_page(State(st): State<AppState>, op: Operator) -> Result<Response, PageError> {
    admin_only(&op)?;
    let reports = st.store().policy_reports().await?;
    Ok(page(
        "Policy replay reports",
        Some(&op),
        html! {
            h1 { "Policy replay reports" }
            p.muted {
                "Stored history rescored under other policies. Make one with "
                code { "poolwatch policy replay --from DATE --to DATE --policy NAME|FILE … --save" }
                "."
            }
            @if reports.is_empty() { p.muted { "No saved reports." } } @else {
                div.scroll { table {
                    thead { tr { th { "Report" } th { "Saved" } th { "Window (UTC)" } th { "Policies" } } }
                    tbody { @for r in &reports {
                        tr {
                            td { a href={ "/manage/admin/policy-reports/" (r.id) } { "#" (r.id) } }
                            td { (minute(r.created)) }
                            td { (minute(r.from_ts)) " → " (minute(r.to_ts)) }
                            td { (r.policies) }
                        }
                    } }
                } }
            }
        },
    ))
}

pub async fn report_page(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    admin_only(&op)?;
    let id: i64 = id
        .parse()
        .map_err(|_| PageError::not_found("no such report"))?;
    let Some((row, json)) = st.store().policy_report(id).await? else {
        return Err(PageError::not_found("no such report"));
    };
    let r: Report =
        serde_json::from_str(&json).map_err(|_| PageError::not_found("report unreadable"))?;
    let base = &r.policies[0];
    Ok(page(
        &format!("Policy replay #{}", row.id),
        Some(&op),
        html! {
            h1 { "Policy replay #" (row.id) }
            p {
                (minute(r.from)) " → " (minute(r.to)) " UTC · " (r.servers) " servers · "
                (r.checks) " checks · in DNS counted hourly after a " (r.warmup_h) " h warm-up · "
                "monitor statuses as of the replay · baseline " strong { (base.policy.name) }
            }
            p { a href="/manage/admin/policy-reports" { "All reports" } }
            h2 { "Servers in DNS" }
            (chart(&r))
            div.scroll { table {
                thead { tr {
                    th { "Policy" } th { "Rules" } th { "Mean in DNS" } th { "Min" } th { "Max" }
                    th { "Changed" } th { "Left" } th { "Joined" }
                } }
                tbody { @for (i, p) in r.policies.iter().enumerate() {
                    tr {
                        td { (swatch(i)) " " (p.policy.name) }
                        td { (describe(&p.policy)) }
                        td { (format!("{:.1}", p.mean_in_dns())) }
                        td { (p.in_dns.iter().min().copied().unwrap_or(0)) }
                        td { (p.in_dns.iter().max().copied().unwrap_or(0)) }
                        td { (p.changed) } td { (p.left) } td { (p.joined) }
                    }
                } }
            } }
            h2 { "Per zone" }
            p.muted { "Mean servers in DNS; left / joined compared with " (base.policy.name) "." }
            div.scroll { table {
                thead { tr { th { "Zone" } th { "Servers" } @for p in &r.policies { th { (p.policy.name) } } } }
                tbody { @for (z, bz) in base.zones.iter().enumerate() {
                    tr {
                        td { (bz.zone) } td { (bz.servers) }
                        @for p in &r.policies {
                            td { (format!("{:.1}", p.zones[z].mean_in_dns))
                                @if p.zones[z].left + p.zones[z].joined > 0 {
                                    " (−" (p.zones[z].left) " / +" (p.zones[z].joined) ")"
                                }
                            }
                        }
                    }
                } }
            } }
            @for p in &r.policies[1..] {
                h2 { "In DNS differently under " (p.policy.name) }
                @if p.servers.is_empty() { p.muted { "No server." } } @else {
                    p.muted { (p.changed) " servers; " (p.servers.len()) " listed, most changed first." }
                    div.scroll { table {
                        thead { tr {
                            th { "Server" } th { "Zones" }
                            th { "Marks in DNS under " (base.policy.name) } th { "under " (p.policy.name) }
                            th { "What its samples said" }
                        } }
                        tbody { @for s in &p.servers {
                            tr {
                                td { a href={ "/scores/" (s.ip) } { (s.ip) } }
                                td { (s.zones.join(", ")) }
                                td { (s.marks_in_baseline) } td { (s.marks_in) } td { (s.why) }
                            }
                        } }
                    } }
                }
            }
        },
    ))
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
const W: i64 = 1000;
const H: i64 = 300;
const X0: i64 = 60;
const X1: i64 = 980;
const Y0: i64 = 12;
const Y1: i64 = 270;

fn swatch(i: usize) -> Markup {
    html! {
        svg width="12" height="12" viewBox="0 0 12 12" aria-hidden="true" {
            rect width="12" height="12" fill=(COLOURS[i % COLOURS.len()]) {}
        }
    }
}

/// In-DNS count per policy over the marks: one polyline each, server-
/// rendered (no script), colours as attributes (the CSP allows no inline
/// style).
fn chart(r: &Report) -> Markup {
    let n = r.marks.len();
    if n == 0 {
        return html! { p.muted { "No marks." } };
    }
    let top = r
        .policies
        .iter()
        .flat_map(|p| p.in_dns.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |i: usize| X0 + (i as i64 * (X1 - X0)) / (n.max(2) as i64 - 1);
    let y = |v: u32| Y1 - (i64::from(v) * (Y1 - Y0)) / i64::from(top);
    let line = |p: &crate::policy_replay::PolicyReport| {
        let mut d = String::new();
        for (i, v) in p.in_dns.iter().enumerate() {
            let _ = write!(d, "{}{} {}", if i == 0 { "M" } else { "L" }, x(i), y(*v));
        }
        d
    };
    html! {
        svg.chart viewBox={ "0 0 " (W) " " (H) } role="img"
            aria-label="Servers in DNS per policy over time" {
            line x1=(X0) y1=(Y1) x2=(X1) y2=(Y1) stroke="#888" {}
            line x1=(X0) y1=(Y0) x2=(X0) y2=(Y1) stroke="#888" {}
            text x=(X0 - 6) y=(Y0 + 4) text-anchor="end" font-size="12" { (top) }
            text x=(X0 - 6) y=(Y1) text-anchor="end" font-size="12" { "0" }
            text x=(X0) y=(H - 8) font-size="12" { (minute(r.marks[0])) }
            text x=(X1) y=(H - 8) text-anchor="end" font-size="12" { (minute(r.marks[n - 1])) }
            @for (i, p) in r.policies.iter().enumerate() {
                path d=(line(p)) fill="none" stroke=(COLOURS[i % COLOURS.len()]) stroke-width="2"
                    data-policy=(p.policy.name) {}
            }
        }
    }
}
