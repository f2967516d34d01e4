//! The server page's "Alerts" section: which alerts went to the server's
//! operator and whether they were delivered. The page is public, so it
//! shows when, what and by which channel — never the address, the webhook
//! URL or a delivery error (which could name either).

use maud::{Markup, html};
use store::AlertRow;

/// Attempts shown on the page.
pub const PAGE_ALERTS: i64 = 10;

pub fn section(alerts: &[AlertRow]) -> Markup {
    html! {
        @if !alerts.is_empty() {
            section id="alerts" {
                h2 { "Alerts" }
                div.scroll { table {
                    thead { tr {
                        th { "When (UTC)" } th { "Alert" } th { "Channel" } th { "Delivered" }
                    } }
                    tbody {
                        @for a in alerts {
                            @let (class, delivered) = if a.ok { ("ok", "yes") } else { ("bad", "no") };
                            tr {
                                td { (crate::logfmt::timestamp(a.ts)) }
                                td { (a.kind.as_str()) }
                                td { (a.channel.as_str()) }
                                td class=(class) { (delivered) }
                            }
                        }
                    }
                } }
                p.muted {
                    "Sent to the server's account when its score \
                     falls below 10, as reminders while it stays down, and when it is back."
                }
            }
        }
    }
}
