//! "What the samples say" (issue 15): the public server page's section —
//! the verdict and its sentence, plus the overall answer rate by sample
//! position with `--public-sample-detail` — and the owner's detail (every
//! monitor's rates and KoDs by position, rtt spread) on the manage page.
//! Monitor-by-monitor numbers stay private by default: they show how a
//! server treats each monitor, which is the operator's business.

use crate::evidence::ServerEvidence;
use maud::{Markup, html};
use scoring::{PositionStats, RttSpread, Stats, Verdict};

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Clean => "ok",
        Verdict::NotEnoughData => "muted",
        _ => "bad",
    }
}

/// The verdict and its sentence.
fn verdict(ev: &ServerEvidence) -> Markup {
    let v = ev.evidence.verdict;
    html! {
        p {
            strong id="sample-verdict" class=(verdict_class(v)) data-verdict=(v.as_str()) { (v.as_str()) }
            " — " (v.explain())
        }
        p.muted {
            (ev.evidence.overall.checks) " checks in the last " (ev.hours) " hours, every sample of each."
        }
    }
}

/// The public server page's section; `detail` adds the overall answer
/// rate by position.
pub fn public_section(ev: &ServerEvidence, detail: bool) -> Markup {
    let o = &ev.evidence.overall;
    html! {
        section id="samples" {
            h2 { "What the samples say" }
            (verdict(ev))
            @if detail && !o.positions.is_empty() {
                div.scroll { table id="sample-positions" {
                    thead { tr {
                        th { "sample" }
                        @for p in &o.positions { th.num { "#" (p.position + 1) } }
                    } }
                    tbody { tr {
                        td { "answered" }
                        @for p in &o.positions { td.num { (rate(p)) } }
                    } }
                } }
            }
        }
    }
}

/// The owner's section on the manage server page: every monitor's
/// counts by position, then all monitors together.
pub fn owner_section(ev: &ServerEvidence) -> Markup {
    let e = &ev.evidence;
    let width = e.overall.positions.len();
    html! {
        section id="samples" {
            h2 { "What the samples say" }
            (verdict(ev))
            @if e.overall.checks > 0 {
                div.scroll { table id="sample-detail" {
                    thead { tr {
                        th { "monitor" } th.num { "checks" }
                        @for i in 0..width { th.num { "sample #" (i + 1) } }
                        th.num { "rtt min / median / p90 / max" } th { "alone it reads" }
                    } }
                    tbody {
                        @for m in &e.monitors {
                            tr data-monitor=(m.monitor_id) {
                                td { (ev.name(m.monitor_id)) }
                                (row(&m.stats, width))
                                td class=(verdict_class(m.verdict)) { (m.verdict.as_str()) }
                            }
                        }
                        tr #sample-overall {
                            td { strong { "all monitors" } }
                            (row(&e.overall, width))
                            td class=(verdict_class(e.verdict)) { (e.verdict.as_str()) }
                        }
                    }
                } }
                p.muted {
                    "Each sample column: answered (a reply without kiss-o'-death or error) of sent, \
                     then any kiss-o'-death codes. A rate limiter shows as answered first samples \
                     and failing later ones at every monitor; path loss as one monitor's losses."
                }
            }
        }
    }
}

fn row(s: &Stats, width: usize) -> Markup {
    html! {
        td.num { (s.checks) }
        @for i in 0..width {
            td.num {
                @if let Some(p) = s.positions.get(i) {
                    (rate(p)) " (" (p.answered) "/" (p.sent) ")"
                    @for (kod, n) in &p.kod { br; code { (kod) } " ×" (n) }
                }
            }
        }
        td.num { @if let Some(r) = s.rtt { (spread(r)) } }
    }
}

fn rate(p: &PositionStats) -> String {
    p.answer_rate()
        .map_or_else(String::new, |r| format!("{:.0} %", r * 100.0))
}

fn spread(r: RttSpread) -> String {
    let ms = |us: u32| f64::from(us) / 1000.0;
    format!(
        "{:.1} / {:.1} / {:.1} / {:.1} ms",
        ms(r.min_us),
        ms(r.median_us),
        ms(r.p90_us),
        ms(r.max_us)
    )
}
