//! The server page's "Monitors" section: which monitors count for the
//! server (active), are on trial (testing) or wait (candidate, paused), with
//! the selector's 24 h statistics and its latest changes with reasons.

use super::html::esc;
use crate::selector::ServerMonitors;
use std::fmt::Write as _;

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

pub fn section(b: &mut String, view: &ServerMonitors) {
    b.push_str("<section id=\"selection\"><h2>Monitors</h2>");
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
    if monitors.is_empty() {
        b.push_str("<p class=\"muted\">No monitor checks this server yet.</p>");
    } else {
        b.push_str(
            "<div class=\"scroll\"><table><thead><tr><th>Monitor</th><th>Status</th>\
             <th class=\"num\">Score</th><th class=\"num\">Checks 24 h</th>\
             <th class=\"num\">Avg step</th><th class=\"num\">Avg RTT</th>\
             <th class=\"num\">Priority</th></tr></thead><tbody>",
        );
        for m in monitors {
            let s = &m.stats_24h;
            let health = if s.count == 0 {
                ""
            } else if s.healthy {
                " class=\"ok\""
            } else {
                " class=\"bad\""
            };
            let _ = write!(
                b,
                "<tr data-selection=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{:.1}</td>\
                 <td class=\"num\">{}</td><td class=\"num\"{health}>{:.2}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                m.id,
                esc(&m.name),
                esc(&m.status),
                m.score,
                s.count,
                s.avg_step,
                if s.count > 0 {
                    format!("{:.1} ms", s.avg_rtt_ms)
                } else {
                    "–".into()
                },
                s.priority.map(|p| p.to_string()).unwrap_or("–".into()),
            );
        }
        b.push_str("</tbody></table></div>");
    }
    b.push_str("<h3>Selector changes</h3>");
    if view.changes.is_empty() {
        b.push_str("<p class=\"muted\">No changes yet.</p>");
    } else {
        b.push_str(
            "<div class=\"scroll\"><table id=\"selector-changes\"><thead><tr><th>When (UTC)</th>\
             <th>Monitor</th><th>Change</th><th>Reason</th></tr></thead><tbody>",
        );
        for c in &view.changes {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td></tr>",
                esc(&c.time),
                esc(&c.monitor),
                esc(&c.from),
                esc(&c.to),
                esc(&c.reason)
            );
        }
        b.push_str("</tbody></table></div>");
    }
    let _ = write!(
        b,
        "<p class=\"muted\">The overall score is the median of the active monitors' scores. \
         The selector keeps the monitors that see the server well and answer fastest; \
         <a href=\"/api/v1/servers/{}/monitors\">all of it as JSON</a>.</p></section>",
        esc(&view.server)
    );
}
