//! The "Zone guard" section of a zone's page: what the guard did for the
//! zone recently — when, how many servers it held, how many were dropped,
//! the allowance and its base, and per held server what each monitor saw.

use super::html::{ago, minute};
use maud::{Markup, html};
use store::GuardEventRow;

/// Events shown on the page: the last 30 days, at most this many.
pub const EVENTS_SHOWN: i64 = 20;
pub const WINDOW_S: i64 = 30 * 86_400;

/// The section for `events` (newest first; older than 30 days are left
/// out).
pub fn section(events: &[GuardEventRow], now: i64) -> Markup {
    let recent: Vec<&GuardEventRow> = events.iter().filter(|e| e.ts >= now - WINDOW_S).collect();
    html! {
        h2 id="zone-guard" { "Zone guard" }
        @if recent.is_empty() {
            p.muted id="no-guard-events" { "No guard events in the last 30 days." }
        } @else {
            p.muted {
                "When the zone would lose more than its share of servers within \
                 24 hours while some of them still answer at least one monitor, the guard keeps \
                 the excess in DNS (most recently good first)."
            }
            div.scroll { table.guard-events {
                thead { tr {
                    th { "time" } th.num { "held" } th.num { "dropped" } th.num { "allowed" }
                    th.num { "in DNS 24 h before" } th { "what happened" }
                } }
                tbody { @for e in recent { (event(e, now)) } }
            } }
        }
    }
}

fn event(e: &GuardEventRow, now: i64) -> Markup {
    html! {
        tr data-guard-event=(e.id) {
            td { (minute(e.ts)) " " span.muted { "(" (ago(e.ts, now)) ")" } }
            td.num { (e.held) } td.num { (e.dropped) } td.num { (e.allowed) }
            td.num { (e.baseline) }
            td {
                (e.detail.reason)
                @if !e.detail.held.is_empty() {
                    ul.held {
                        @for h in &e.detail.held {
                            li data-held=(h.ip) {
                                a href={ "/scores/" (h.ip) } { (h.ip) }
                                " (score " (format!("{:.1}", h.score))
                                @if let Some(t) = h.last_good_ts { ", last good " (minute(t)) }
                                "): "
                                @if h.monitors.is_empty() { "no monitors" }
                                @for (i, m) in h.monitors.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    span class=(if m.good { "ok" } else { "bad" }) {
                                        (m.name) " " (format!("{:.1}", m.score))
                                        @if let Some(err) = m.error.as_deref() { " " code { (err) } }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !e.detail.not_held.is_empty() {
                    p.muted {
                        "Not held (no monitor sees them good, or gone already): "
                        @for (i, ip) in e.detail.not_held.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href={ "/scores/" (ip) } { (ip) }
                        }
                    }
                }
            }
        }
    }
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
        let b = section(std::slice::from_ref(&e), now).into_string();
        assert!(b.contains("3 of 20 &lt;b&gt;"), "{b}");
        assert!(b.contains("&lt;far&gt; 12.0"), "{b}");
        assert!(b.contains("<code>i/o timeout</code>"), "{b}");
        assert!(b.contains("href=\"/scores/192.0.2.3\""), "{b}");
        assert!(b.contains("href=\"/scores/192.0.2.4\""), "{b}");
        let old = section(&[e], now + WINDOW_S + 3600).into_string();
        assert!(old.contains("No guard events in the last 30 days"), "{old}");
    }
}
