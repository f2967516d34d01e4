//! The "Traceroutes" section of a server's page: the latest traceroute of
//! each monitor (taken automatically when a monitor's view of the server
//! changed), side by side so the paths can be compared.

use super::html::{ago, minute};
use maud::{Markup, html};
use store::TracerouteRow;

/// Page-specific style: columns that wrap on a narrow screen.
pub const STYLE: &str = ".traces{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,22em),1fr));\
gap:1em;align-items:start}\
.trace{background:#fff;padding:.6em;overflow-x:auto}.trace h3{font-size:1em;margin:0 0 .3em}\
.trace p{margin:.2em 0}.trace table{min-width:0;width:100%}.trace td.hop-ip{font-family:monospace}";

/// The section.
pub fn section(traces: &[TracerouteRow], now: i64) -> Markup {
    html! {
        section.traceroutes id="traceroutes" {
            h2 { "Traceroutes" }
            @if traces.is_empty() {
                p.muted {
                    "No traceroutes yet. Monitors send one (UDP to port 123) when \
                     their view of this server changes."
                }
            } @else {
                p.muted {
                    "The latest traceroute of each monitor (UDP probes to port 123), taken \
                     when a monitor's view of this server changed."
                }
                div.traces { @for t in traces { (column(t, now)) } }
            }
        }
    }
}

fn column(t: &TracerouteRow, now: i64) -> Markup {
    html! {
        div.trace data-monitor=(t.monitor_id) {
            h3 { (t.monitor_name) }
            p { time { (minute(t.ts)) } " " span.muted { "(" (ago(t.ts, now)) ")" } }
            p.reason { (t.reason) }
            p.muted { "tool: " (t.tool) }
            @if let Some(e) = &t.error {
                p.bad.trace-error { (e) }
            }
            @if !t.hops.is_empty() {
                table {
                    thead { tr {
                        th.num { "ttl" } th { "address" } th.num { "rtt" } th.num { "loss" }
                    } }
                    tbody {
                        @for h in &t.hops {
                            @let rtts = h
                                .rtt_ms
                                .iter()
                                .map(|v| format!("{v:.1}"))
                                .collect::<Vec<_>>()
                                .join(" / ");
                            tr {
                                td.num { (h.ttl) }
                                td.hop-ip {
                                    @match h.ip { Some(ip) => { (ip) } None => { "*" } }
                                }
                                td.num {
                                    @if rtts.is_empty() { "—" } @else { (rtts) " ms" }
                                }
                                td.num {
                                    @if h.sent > 0 {
                                        (h.sent.saturating_sub(h.rtt_ms.len() as u32)) "/" (h.sent)
                                    }
                                }
                            }
                        }
                    }
                }
            } @else if t.error.is_none() {
                p.muted { "no hops" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::TracerouteHop;

    #[test]
    fn renders_columns_and_escapes() {
        let row = TracerouteRow {
            id: 1,
            server_id: 1,
            monitor_id: 7,
            monitor_name: "<b>mon</b>".into(),
            ts: 1_700_000_000,
            reason: "monitor <b>mon</b>: healthy → i/o timeout".into(),
            tool: "mtr".into(),
            hops: vec![
                TracerouteHop {
                    ttl: 1,
                    ip: Some("10.0.0.1".parse().unwrap()),
                    rtt_ms: vec![0.25, 0.5],
                    sent: 2,
                },
                TracerouteHop {
                    ttl: 2,
                    ip: None,
                    rtt_ms: vec![],
                    sent: 2,
                },
            ],
            error: None,
        };
        let failed = TracerouteRow {
            monitor_id: 8,
            monitor_name: "other".into(),
            tool: "none".into(),
            hops: vec![],
            error: Some("neither mtr nor traceroute is installed <x>".into()),
            ..row.clone()
        };
        let b = section(&[row, failed], 1_700_000_600).into_string();
        assert!(!b.contains("<b>"), "{b}");
        assert!(b.contains("&lt;b&gt;mon&lt;/b&gt;"));
        assert!(b.contains("data-monitor=\"7\"") && b.contains("data-monitor=\"8\""));
        assert!(
            b.contains("0.2 / 0.5 ms") || b.contains("0.3 / 0.5 ms"),
            "{b}"
        );
        assert!(b.contains("<td class=\"hop-ip\">*</td>"));
        assert!(b.contains("2/2"));
        assert!(b.contains("installed &lt;x&gt;"));
        assert!(b.contains("10 min ago"));
        let empty = section(&[], 0).into_string();
        assert!(empty.contains("No traceroutes yet"));
    }
}
