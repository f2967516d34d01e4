//! The "Traceroutes" section of a server's page: the latest traceroute of
//! each monitor (taken automatically when a monitor's view of the server
//! changed), side by side so the paths can be compared.

use super::html::{ago, esc, minute};
use std::fmt::Write as _;
use store::TracerouteRow;

/// Page-specific style: columns that wrap on a narrow screen.
pub const STYLE: &str = ".traces{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,22em),1fr));\
gap:1em;align-items:start}\
.trace{background:#fff;padding:.6em;overflow-x:auto}.trace h3{font-size:1em;margin:0 0 .3em}\
.trace p{margin:.2em 0}.trace table{min-width:0;width:100%}.trace td.hop-ip{font-family:monospace}";

/// Appends the section to `b`.
pub fn section(b: &mut String, traces: &[TracerouteRow], now: i64) {
    b.push_str("<section class=\"traceroutes\" id=\"traceroutes\"><h2>Traceroutes</h2>");
    if traces.is_empty() {
        b.push_str(
            "<p class=\"muted\">No traceroutes yet. Monitors send one (UDP to port 123) when \
             their view of this server changes.</p></section>",
        );
        return;
    }
    b.push_str(
        "<p class=\"muted\">The latest traceroute of each monitor (UDP probes to port 123), taken \
         when a monitor's view of this server changed.</p><div class=\"traces\">",
    );
    for t in traces {
        column(b, t, now);
    }
    b.push_str("</div></section>");
}

fn column(b: &mut String, t: &TracerouteRow, now: i64) {
    let _ = write!(
        b,
        "<div class=\"trace\" data-monitor=\"{}\"><h3>{}</h3>\
         <p><time>{}</time> <span class=\"muted\">({})</span></p>\
         <p class=\"reason\">{}</p><p class=\"muted\">tool: {}</p>",
        t.monitor_id,
        esc(&t.monitor_name),
        minute(t.ts),
        ago(t.ts, now),
        esc(&t.reason),
        esc(&t.tool),
    );
    if let Some(e) = &t.error {
        let _ = write!(b, "<p class=\"bad trace-error\">{}</p>", esc(e));
    }
    if !t.hops.is_empty() {
        b.push_str(
            "<table><thead><tr><th class=\"num\">ttl</th><th>address</th>\
             <th class=\"num\">rtt</th><th class=\"num\">loss</th></tr></thead><tbody>",
        );
        for h in &t.hops {
            let ip =
                h.ip.map(|ip| esc(&ip.to_string()))
                    .unwrap_or_else(|| "*".to_string());
            let rtts = h
                .rtt_ms
                .iter()
                .map(|v| format!("{v:.1}"))
                .collect::<Vec<_>>()
                .join(" / ");
            let rtts = if rtts.is_empty() {
                "—".to_string()
            } else {
                format!("{rtts} ms")
            };
            let loss = if h.sent > 0 {
                let lost = h.sent.saturating_sub(h.rtt_ms.len() as u32);
                format!("{lost}/{}", h.sent)
            } else {
                String::new()
            };
            let _ = write!(
                b,
                "<tr><td class=\"num\">{}</td><td class=\"hop-ip\">{ip}</td>\
                 <td class=\"num\">{rtts}</td><td class=\"num\">{loss}</td></tr>",
                h.ttl
            );
        }
        b.push_str("</tbody></table>");
    } else if t.error.is_none() {
        b.push_str("<p class=\"muted\">no hops</p>");
    }
    b.push_str("</div>");
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
        let mut b = String::new();
        section(&mut b, &[row, failed], 1_700_000_600);
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
        let mut empty = String::new();
        section(&mut empty, &[], 0);
        assert!(empty.contains("No traceroutes yet"));
    }
}
