//! The "Client distribution" section of a server's page (issue 17 item 3,
//! the pool's section of the same name): its share of its zones' DNS
//! answers beside its netspeed share, and the countries whose clients got
//! it most, over the last days (`dns_counts::Distribution`).

use crate::dns_counts::{Distribution, country_label};
use maud::{Markup, html};

/// A share as a percentage with enough digits for small servers.
pub fn percent(share: Option<f64>) -> String {
    match share {
        None => "—".into(),
        Some(s) if s * 100.0 >= 10.0 => format!("{:.1} %", s * 100.0),
        Some(s) => format!("{:.3} %", s * 100.0),
    }
}

/// The section.
pub fn section(d: &Distribution) -> Markup {
    html! {
        section.distribution id="client-distribution" {
            h2 { "Client distribution" }
            @if d.answers == 0 && d.zone_answers == 0 {
                p.muted id="distribution-none" {
                    "No DNS answer counts for this server in the last " (d.days)
                    " days yet. The DNS servers report every minute which servers \
                     they handed out, to clients of which country."
                }
            } @else {
                dl.facts {
                    dt { "Share of its zones' answers" }
                    dd id="dns-share" { (percent(d.share)) }
                    dt { "Netspeed share" }
                    dd id="netspeed-share" { (percent(d.netspeed_share)) }
                    dt { "Answers" }
                    dd id="dns-answers" {
                        (d.answers) " of " (d.zone_answers)
                        " " span.muted { "(last " (d.days) " days)" }
                    }
                }
                @if !d.countries.is_empty() {
                    table id="dns-countries" {
                        thead { tr {
                            th { "client country" } th.num { "answers" }
                            th.num { "of the country's" } th.num { "‱" }
                        } }
                        tbody {
                            @for c in &d.countries {
                                tr data-country=(c.country) {
                                    td { (country_label(&c.country)) }
                                    td.num { (c.answers) }
                                    td.num { (c.country_answers) }
                                    td.num {
                                        @match c.permyriad {
                                            Some(p) => { (format!("{p:.1}")) }
                                            None => { "—" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                p.muted {
                    "‱: of every DNS answer to that country's clients, how many in \
                     10,000 held this server. The netspeed share is what the server's \
                     weight asks for; a share far above it means its zones have few \
                     servers for their traffic."
                }
            }
        }
    }
}

/// The admin page's list of servers whose share of their zones' answers
/// is far above their netspeed share (`dns_counts::flagged`).
pub fn admin_section(flagged: &[crate::dns_counts::Flagged]) -> Markup {
    use crate::dns_counts::{DEFAULT_DAYS, FLAG_MIN_ANSWERS, FLAG_RATIO};
    html! {
        h2 id="dns-share-flags" { "DNS share far above netspeed" }
        p.muted {
            "Servers that got at least " (FLAG_RATIO) "× the answers their netspeed \
             asks for, with at least " (FLAG_MIN_ANSWERS) " answers, in the last "
            (DEFAULT_DAYS) " days."
        }
        @if flagged.is_empty() { p.muted id="dns-share-none" { "None." } } @else {
            div.scroll { table id="dns-share-flagged" {
                thead { tr {
                    th { "Server" } th.num { "answers" } th.num { "share" }
                    th.num { "netspeed share" } th.num { "ratio" }
                } }
                tbody { @for f in flagged {
                    tr {
                        td { a href={ "/scores/" (f.ip) "#client-distribution" } { (f.ip) } }
                        td.num { (f.answers) }
                        td.num { (percent(f.share)) }
                        td.num { (percent(f.netspeed_share)) }
                        td.num {
                            @match f.ratio {
                                Some(r) => { (format!("{r:.1}×")) }
                                None => { "no netspeed share" }
                            }
                        }
                    }
                } }
            } }
        }
    }
}
