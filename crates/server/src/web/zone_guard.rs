//! The "Zone guard" section of a zone's page: what the guard did for the
//! zone recently — when, how many servers it held, how many were dropped,
//! the allowance and its base, and per held server what each monitor saw.

use super::html::{ago, esc, minute};
use std::fmt::Write as _;
use store::GuardEventRow;

/// Events shown on the page: the last 30 days, at most this many.
pub const EVENTS_SHOWN: i64 = 20;
pub const WINDOW_S: i64 = 30 * 86_400;

/// Append the section for `events` (newest first; older than 30 days are
/// left out).
pub fn section(b: &mut String, events: &[GuardEventRow], now: i64) {
    b.push_str("<h2 id=\"zone-guard\">Zone guard</h2>");
    let recent: Vec<&GuardEventRow> = events.iter().filter(|e| e.ts >= now - WINDOW_S).collect();
    if recent.is_empty() {
        b.push_str(
            "<p class=\"muted\" id=\"no-guard-events\">No guard events in the last 30 days.</p>",
        );
        return;
    }
    b.push_str(
        "<p class=\"muted\">When the zone would lose more than its share of servers within \
         24 hours while some of them still answer at least one monitor, the guard keeps \
         the excess in DNS (most recently good first).</p>\
         <div class=\"scroll\"><table class=\"guard-events\"><thead><tr><th>time</th>\
         <th class=\"num\">held</th><th class=\"num\">dropped</th><th class=\"num\">allowed</th>\
         <th class=\"num\">in DNS 24 h before</th><th>what happened</th></tr></thead><tbody>",
    );
    for e in recent {
        let _ = write!(
            b,
            "<tr data-guard-event=\"{}\"><td>{} <span class=\"muted\">({})</span></td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}",
            e.id,
            minute(e.ts),
            ago(e.ts, now),
            e.held,
            e.dropped,
            e.allowed,
            e.baseline,
            esc(&e.detail.reason)
        );
        if !e.detail.held.is_empty() {
            b.push_str("<ul class=\"held\">");
            for h in &e.detail.held {
                let ip = esc(&h.ip);
                let _ = write!(
                    b,
                    "<li data-held=\"{ip}\"><a href=\"/scores/{ip}\">{ip}</a> (score {:.1}{}): ",
                    h.score,
                    h.last_good_ts
                        .map(|t| format!(", last good {}", minute(t)))
                        .unwrap_or_default()
                );
                if h.monitors.is_empty() {
                    b.push_str("no monitors");
                }
                for (i, m) in h.monitors.iter().enumerate() {
                    let _ = write!(
                        b,
                        "{}<span class=\"{}\">{} {:.1}{}</span>",
                        if i > 0 { ", " } else { "" },
                        if m.good { "ok" } else { "bad" },
                        esc(&m.name),
                        m.score,
                        match m.error.as_deref() {
                            Some(err) => format!(" <code>{}</code>", esc(err)),
                            None => String::new(),
                        }
                    );
                }
                b.push_str("</li>");
            }
            b.push_str("</ul>");
        }
        if !e.detail.not_held.is_empty() {
            b.push_str(
                "<p class=\"muted\">Not held (no monitor sees them good, or gone already): ",
            );
            for (i, ip) in e.detail.not_held.iter().enumerate() {
                let ip = esc(ip);
                let _ = write!(
                    b,
                    "{}<a href=\"/scores/{ip}\">{ip}</a>",
                    if i > 0 { ", " } else { "" }
                );
            }
            b.push_str("</p>");
        }
        b.push_str("</td></tr>");
    }
    b.push_str("</tbody></table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{GuardDetail, HeldServer, MonitorSaw};

    #[test]
    fn escapes_and_shows_what_monitors_saw() {
        let now = 1_700_000_000;
        let e = GuardEventRow {
            id: 7,
            zone: "de".into(),
            ts: now - 60,
            held: 1,
            dropped: 2,
            allowed: 2,
            baseline: 20,
            detail: GuardDetail {
                reason: "3 of 20 <b>".into(),
                held: vec![HeldServer {
                    server_id: 3,
                    ip: "192.0.2.3".into(),
                    score: 4.0,
                    last_good_ts: Some(now - 100),
                    monitors: vec![
                        MonitorSaw {
                            name: "<far>".into(),
                            status: "active".into(),
                            score: 12.0,
                            score_ts: Some(now - 100),
                            error: None,
                            good: true,
                        },
                        MonitorSaw {
                            name: "near".into(),
                            status: "active".into(),
                            score: 2.0,
                            score_ts: Some(now - 100),
                            error: Some("i/o timeout".into()),
                            good: false,
                        },
                    ],
                }],
                not_held: vec!["192.0.2.4".into()],
            },
        };
        let mut b = String::new();
        section(&mut b, std::slice::from_ref(&e), now);
        assert!(b.contains("3 of 20 &lt;b&gt;"), "{b}");
        assert!(b.contains("&lt;far&gt; 12.0"), "{b}");
        assert!(b.contains("<code>i/o timeout</code>"), "{b}");
        assert!(b.contains("href=\"/scores/192.0.2.3\""), "{b}");
        assert!(b.contains("href=\"/scores/192.0.2.4\""), "{b}");
        let mut old = String::new();
        section(&mut old, &[e], now + WINDOW_S + 3600);
        assert!(old.contains("No guard events in the last 30 days"), "{old}");
    }
}
