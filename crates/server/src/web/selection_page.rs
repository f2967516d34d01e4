//! The server page's "Monitors" section: which monitors count for the
//! server (active), are on trial (testing) or wait (candidate, paused), with
//! the selector's 24 h statistics and its latest changes with reasons.

use crate::selector_job::ServerMonitors;
use maud::{Markup, html};

/// Changes shown on the page (the API has more).
pub const PAGE_CHANGES: i64 = 12;

fn rank(status: &str) -> u8 {
    match status {
        "active" => 0,
        "testing" => 1,
        "candidate" => 2,
        _ => 3,
    }
}

pub fn section(view: &ServerMonitors) -> Markup {
    let mut monitors: Vec<_> = view
        .monitors
        .iter()
        .filter(|m| m.monitor_status != "deleted")
        .collect();
    monitors.sort_by(|a, b| {
        rank(&a.status)
            .cmp(&rank(&b.status))
            .then(a.name.cmp(&b.name))
    });
    html! {
        section id="selection" {
            h2 { "Monitors" }
            @if monitors.is_empty() {
                p.muted { "No monitor checks this server yet." }
            } @else {
                div.scroll { table {
                    thead { tr {
                        th { "Monitor" } th { "Status" } th.num { "Score" } th.num { "Checks 24 h" }
                        th.num { "Avg step" } th.num { "Avg RTT" } th.num { "Priority" }
                    } }
                    tbody {
                        @for m in monitors {
                            @let s = &m.stats_24h;
                            @let health = if s.count == 0 {
                                None
                            } else if s.healthy {
                                Some("ok")
                            } else {
                                Some("bad")
                            };
                            tr data-selection=(m.id) {
                                td { (m.name) }
                                td { (m.status) }
                                td.num { (format!("{:.1}", m.score)) }
                                td.num { (s.count) }
                                td.num class=[health] { (format!("{:.2}", s.avg_step)) }
                                td.num {
                                    @if s.count > 0 { (format!("{:.1} ms", s.avg_rtt_ms)) } @else { "–" }
                                }
                                td.num {
                                    @match s.priority { Some(p) => { (p) } None => { "–" } }
                                }
                            }
                        }
                    }
                } }
            }
            h3 { "Selector changes" }
            @if view.changes.is_empty() {
                p.muted { "No changes yet." }
            } @else {
                div.scroll { table id="selector-changes" {
                    thead { tr { th { "When (UTC)" } th { "Monitor" } th { "Change" } th { "Reason" } } }
                    tbody {
                        @for c in &view.changes {
                            tr {
                                td { (c.time) }
                                td { (c.monitor) }
                                td { (c.from) " → " (c.to) }
                                td { (c.reason) }
                            }
                        }
                    }
                } }
            }
            p.muted {
                "The overall score is the median of the active monitors' scores. \
                 The selector keeps the monitors that see the server well and answer fastest; "
                a href={ "/api/v1/servers/" (view.server) "/monitors" } { "all of it as JSON" }
                "."
            }
        }
    }
}
