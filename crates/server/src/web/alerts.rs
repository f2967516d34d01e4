//! The server page's "Alerts" section: which alerts went to the server's
//! operator and whether they were delivered. The page is public, so it
//! shows when, what and by which channel — never the address, the webhook
//! URL or a delivery error (which could name either).

use super::html::esc;
use std::fmt::Write as _;
use store::AlertRow;

/// Attempts shown on the page.
pub const PAGE_ALERTS: i64 = 10;

pub fn section(b: &mut String, alerts: &[AlertRow]) {
    if alerts.is_empty() {
        return;
    }
    b.push_str(
        "<section id=\"alerts\"><h2>Alerts</h2><div class=\"scroll\"><table><thead><tr>\
         <th>When (UTC)</th><th>Alert</th><th>Channel</th><th>Delivered</th></tr></thead><tbody>",
    );
    for a in alerts {
        let (class, delivered) = if a.ok { ("ok", "yes") } else { ("bad", "no") };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{delivered}</td></tr>",
            esc(&crate::logfmt::timestamp(a.ts)),
            esc(a.kind.as_str()),
            esc(a.channel.as_str()),
        );
    }
    b.push_str(
        "</tbody></table></div><p class=\"muted\">Sent to the server's account when its score \
         falls below 10, as reminders while it stays down, and when it is back.</p></section>",
    );
}
