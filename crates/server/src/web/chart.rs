//! The server page's history chart as an inline SVG, drawn on the server
//! so the page needs no script: each monitor's offsets (left axis, square
//! root scale, clamped at ±2 s) and scores (right axis) as dots, the
//! aggregate score as a step line and the in-DNS threshold.
//!
//! Dots are zero-length round-capped path segments (`M x y h0`), one path
//! per monitor and colour, at whole-pixel positions with duplicates
//! dropped: a few thousand rows stay a few tens of kilobytes.

use maud::{Markup, html};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use store::LogRow;

const W: i64 = 1000;
const H: i64 = 400;
const X0: i64 = 58;
const X1: i64 = 950;
const Y0: i64 = 14;
const Y1: i64 = 372;

/// Offsets beyond this are drawn at the edge.
pub const OFFSET_CLAMP_S: f64 = 2.0;
const OFFSET_RANGES: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0];
const SCORE_TOP: f64 = 25.0;
const SCORE_FLOOR: f64 = -105.0;

/// Offset dot colour class: ≤ 25 ms, ≤ 100 ms, above.
pub fn offset_class(offset: f64) -> &'static str {
    let a = offset.abs();
    if a <= 0.025 {
        "ok"
    } else if a <= 0.1 {
        "warn"
    } else {
        "bad"
    }
}

/// Score dot colour class by the step that produced it.
pub fn step_class(step: f64) -> &'static str {
    if step >= 0.0 {
        "up"
    } else if step >= -2.0 {
        "down"
    } else {
        "fall"
    }
}

/// The smallest offset range that holds `max_abs` (at most the clamp).
pub fn offset_range(max_abs: f64) -> f64 {
    OFFSET_RANGES
        .iter()
        .copied()
        .find(|r| max_abs <= *r)
        .unwrap_or(OFFSET_CLAMP_S)
}

/// The score axis: from 25 down to just below the lowest score, at least
/// to −10 and never below −105.
pub fn score_floor(min_score: f64) -> f64 {
    let lo = ((min_score.min(-10.0) - 5.0) / 10.0).floor() * 10.0;
    lo.max(SCORE_FLOOR)
}

struct Scales {
    t0: i64,
    t1: i64,
    off_range: f64,
    score_lo: f64,
}

impl Scales {
    fn x(&self, ts: i64) -> i64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        X0 + (((ts - self.t0) as f64 / span) * (X1 - X0) as f64).round() as i64
    }

    /// Square root scale around the middle, clamped.
    fn y_offset(&self, offset: f64) -> i64 {
        let mid = (Y0 + Y1) as f64 / 2.0;
        let half = (Y1 - Y0) as f64 / 2.0;
        let a = (offset.abs().min(self.off_range) / self.off_range).sqrt();
        (mid - offset.signum() * a * half).round() as i64
    }

    fn y_score(&self, score: f64) -> i64 {
        let s = score.clamp(self.score_lo, SCORE_TOP);
        let f = (SCORE_TOP - s) / (SCORE_TOP - self.score_lo);
        (Y0 as f64 + f * (Y1 - Y0) as f64).round() as i64
    }
}

/// Dots of one colour: whole-pixel points, each drawn once.
#[derive(Default)]
struct Dots {
    n: usize,
    seen: HashSet<(i64, i64)>,
    d: String,
}

impl Dots {
    fn add(&mut self, x: i64, y: i64) {
        self.n += 1;
        if self.seen.insert((x, y)) {
            let _ = write!(self.d, "M{x} {y}h0");
        }
    }

    /// An SVG `path` element (closed explicitly: in HTML, foreign
    /// elements are not void).
    fn markup(&self, class: &str) -> Markup {
        html! {
            @if self.n > 0 {
                path class={ "dots " (class) } data-points=(self.n) d=(self.d) {}
            }
        }
    }
}

#[derive(Default)]
struct MonitorDots {
    name: String,
    offset: [Dots; 3],
    score: [Dots; 3],
}

fn idx(class: &str) -> usize {
    match class {
        "ok" | "up" => 0,
        "warn" | "down" => 1,
        _ => 2,
    }
}

fn offset_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1.0 {
        format!("{v}s")
    } else {
        format!("{}ms", (v * 1000.0).round())
    }
}

/// The chart for `rows` (any order), or a short note when there is
/// nothing to draw. `names` maps monitor ids to names for rows without one.
pub fn render(rows: &[LogRow], names: &BTreeMap<i64, String>) -> Markup {
    if rows.is_empty() {
        return html! { p.muted { "No history yet." } };
    }
    let t0 = rows.iter().map(|r| r.ts).min().unwrap_or(0);
    let t1 = rows.iter().map(|r| r.ts).max().unwrap_or(0).max(t0 + 60);
    let max_off = rows
        .iter()
        .filter_map(|r| r.offset)
        .filter(|o| o.is_finite())
        .fold(0.0f64, |m, o| m.max(o.abs()));
    let min_score = rows.iter().map(|r| r.score).fold(0.0f64, f64::min);
    let sc = Scales {
        t0,
        t1,
        off_range: offset_range(max_off),
        score_lo: score_floor(min_score),
    };

    let mut monitors: BTreeMap<i64, MonitorDots> = BTreeMap::new();
    let mut aggregate: Vec<(i64, f64)> = Vec::new();
    for r in rows {
        let Some(mid) = r.monitor_id else {
            aggregate.push((r.ts, r.score));
            continue;
        };
        let m = monitors.entry(mid).or_insert_with(|| MonitorDots {
            name: r
                .monitor_name
                .clone()
                .or_else(|| names.get(&mid).cloned())
                .unwrap_or_else(|| mid.to_string()),
            ..MonitorDots::default()
        });
        let x = sc.x(r.ts);
        if let Some(o) = r.offset.filter(|o| o.is_finite()) {
            m.offset[idx(offset_class(o))].add(x, sc.y_offset(o));
        }
        m.score[idx(step_class(r.step))].add(x, sc.y_score(r.score));
    }

    let aggregate_d = (!aggregate.is_empty()).then(|| {
        aggregate.sort_by_key(|a| a.0);
        // A step line: the aggregate holds until its next logged change.
        let (ts, score) = aggregate[0];
        let mut d = format!("M{} {}", sc.x(ts), sc.y_score(score));
        for &(ts, score) in &aggregate[1..] {
            let _ = write!(d, "H{}V{}", sc.x(ts), sc.y_score(score));
        }
        let _ = write!(d, "H{}", sc.x(t1));
        d
    });
    html! {
        svg.chart viewBox={ "0 0 " (W) " " (H) } role="img"
            aria-label="Offset and score history per monitor" data-from=(t0) data-to=(t1) {
            (axes(&sc))
            @for (id, m) in &monitors {
                g.monitor data-monitor=(id) data-name=(m.name) {
                    @for (dots, class) in m.offset.iter().zip(["offset ok", "offset warn", "offset bad"]) {
                        (dots.markup(class))
                    }
                    @for (dots, class) in m.score.iter().zip(["score up", "score down", "score fall"]) {
                        (dots.markup(class))
                    }
                }
            }
            @if let Some(d) = aggregate_d {
                path.aggregate data-points=(aggregate.len()) d=(d) {}
            }
        }
    }
}

/// Grid, tick labels on both sides, time labels and the threshold.
fn axes(sc: &Scales) -> Markup {
    let r = sc.off_range;
    let mut offs = vec![0.0, r, -r];
    if let Some(&inner) = OFFSET_RANGES.iter().rev().find(|v| **v <= r / 4.0) {
        offs.extend([inner, -inner]);
    }
    let step = if SCORE_TOP - sc.score_lo <= 60.0 {
        10.0
    } else {
        25.0
    };
    let mut scores = Vec::new();
    let mut v = (sc.score_lo / step).ceil() * step;
    while v <= SCORE_TOP {
        scores.push(v);
        v += step;
    }
    let ty = sc.y_score(scoring::IN_DNS_THRESHOLD);
    html! {
        @for o in offs {
            @let y = sc.y_offset(o);
            line.grid x1=(X0) x2=(X1) y1=(y) y2=(y) {}
            text x=(X0 - 4) y=(y + 4) text-anchor="end" { (offset_label(o)) }
        }
        @for v in scores {
            text x=(X1 + 4) y=(sc.y_score(v) + 4) { (v) }
        }
        line.threshold x1=(X0) x2=(X1) y1=(ty) y2=(ty) {}
        text x=(X1 - 4) y=(ty - 4) text-anchor="end" { "in DNS at score ≥ 10" }
        @for (i, label) in time_labels(sc.t0, sc.t1).into_iter().enumerate() {
            @let x = sc.x(sc.t0 + (sc.t1 - sc.t0) * i as i64 / 4);
            @let anchor = match i {
                0 => "start",
                4 => "end",
                _ => "middle",
            };
            line.grid x1=(x) x2=(x) y1=(Y0) y2=(Y1) {}
            text x=(x) y=(Y1 + 16) text-anchor=(anchor) { (label) }
        }
        text x="4" y=(Y0 - 2) { "offset" }
        text x=(X1 + 4) y=(Y0 - 2) { "score" }
    }
}

/// The five time labels at the quarters of `t0..=t1`, as fine as the span
/// needs and no finer, so that no two read the same: seconds when the
/// quarters are under a minute apart, days when they are a day or more
/// apart, else minutes. The first label carries the date; a later one
/// only when the date changed.
fn time_labels(t0: i64, t1: i64) -> Vec<String> {
    let step = (t1 - t0) / 4;
    let mut out: Vec<String> = Vec::with_capacity(5);
    let mut last_date = String::new();
    for i in 0..=4 {
        // "YYYY-MM-DD HH:MM:SS"
        let full = crate::logfmt::timestamp(t0 + (t1 - t0) * i / 4);
        let (date, time) = full.split_at(10);
        let time = &time[1..];
        let label = if step >= 86_400 {
            date.to_string()
        } else {
            let time = if step >= 60 { &time[..5] } else { time };
            if i == 0 {
                format!("{date} {time}")
            } else if date != last_date {
                format!("{} {time}", &date[5..])
            } else {
                time.to_string()
            }
        };
        last_date = date.to_string();
        out.push(label);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_labels_fit_the_span_and_never_repeat() {
        // 2026-12-07 02:23:20 UTC
        let t0 = 1_796_610_200;
        let seconds = time_labels(t0, t0 + 2 * 60);
        assert_eq!(
            seconds,
            [
                "2026-12-07 02:23:20",
                "02:23:50",
                "02:24:20",
                "02:24:50",
                "02:25:20"
            ]
        );
        let minutes = time_labels(t0, t0 + 5 * 60);
        assert_eq!(
            minutes,
            ["2026-12-07 02:23", "02:24", "02:25", "02:27", "02:28"]
        );
        let hours = time_labels(t0, t0 + 2 * 3600);
        assert_eq!(
            hours,
            ["2026-12-07 02:23", "02:53", "03:23", "03:53", "04:23"]
        );
        let across_midnight = time_labels(t0, t0 + 86_400);
        assert_eq!(across_midnight[0], "2026-12-07 02:23");
        assert_eq!(across_midnight[4], "12-08 02:23");
        let days = time_labels(t0, t0 + 30 * 86_400);
        assert_eq!(days[0], "2026-12-07");
        assert_eq!(days[4], "2027-01-06");
        for labels in [seconds, minutes, hours, across_midnight, days] {
            let mut seen = labels.clone();
            seen.dedup();
            assert_eq!(seen.len(), 5, "{labels:?}");
        }
    }

    fn row(ts: i64, monitor: Option<i64>, offset: Option<f64>, step: f64, score: f64) -> LogRow {
        LogRow {
            id: ts,
            ts,
            offset,
            step,
            score,
            monitor_id: monitor,
            monitor_name: monitor.map(|m| format!("m{m}")),
            rtt: Some(0.01),
            stratum: Some(2),
            leap: Some(0),
            refid: None,
            error: None,
            no_response: false,
        }
    }

    #[test]
    fn colour_classes() {
        for (o, want) in [
            (0.0, "ok"),
            (0.025, "ok"),
            (-0.0251, "warn"),
            (0.1, "warn"),
            (0.1001, "bad"),
            (-3.0, "bad"),
        ] {
            assert_eq!(offset_class(o), want, "{o}");
        }
        for (s, want) in [
            (1.0, "up"),
            (0.0, "up"),
            (-0.5, "down"),
            (-2.0, "down"),
            (-5.0, "fall"),
        ] {
            assert_eq!(step_class(s), want, "{s}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(offset_range(0.0), 0.005);
        assert_eq!(offset_range(0.003), 0.005);
        assert_eq!(offset_range(0.03), 0.05);
        assert_eq!(offset_range(2.0), 2.0);
        assert_eq!(offset_range(50.0), 2.0);
        assert_eq!(score_floor(5.0), -20.0);
        assert_eq!(score_floor(-12.0), -20.0);
        assert_eq!(score_floor(-47.0), -60.0);
        assert_eq!(score_floor(-1000.0), -105.0);
    }

    #[test]
    fn offsets_are_clamped_and_square_root_scaled() {
        let sc = Scales {
            t0: 0,
            t1: 100,
            off_range: 2.0,
            score_lo: -105.0,
        };
        assert_eq!(sc.y_offset(5.0), Y0);
        assert_eq!(sc.y_offset(-5.0), Y1);
        assert_eq!(sc.y_offset(0.0), (Y0 + Y1) / 2);
        // A quarter of the range sits half way out.
        let half = (Y1 - Y0) as f64 / 2.0;
        assert_eq!(
            sc.y_offset(0.5),
            ((Y0 + Y1) as f64 / 2.0 - half / 2.0).round() as i64
        );
        assert_eq!(sc.y_score(25.0), Y0);
        assert_eq!(sc.y_score(-200.0), Y1);
    }

    #[test]
    fn draws_each_monitor_and_the_aggregate() {
        let mut rows = Vec::new();
        for i in 0..10 {
            rows.push(row(i * 60, Some(1), Some(0.001), 1.0, i as f64));
            rows.push(row(i * 60 + 1, Some(2), Some(0.5), -2.5, -(i as f64)));
            rows.push(row(i * 60 + 2, None, None, 1.0, i as f64));
        }
        let svg = render(&rows, &BTreeMap::new()).into_string();
        assert!(svg.contains("<g class=\"monitor\" data-monitor=\"1\" data-name=\"m1\">"));
        assert!(svg.contains("<g class=\"monitor\" data-monitor=\"2\" data-name=\"m2\">"));
        assert!(svg.contains("class=\"dots offset ok\" data-points=\"10\""));
        assert!(svg.contains("class=\"dots offset bad\" data-points=\"10\""));
        assert!(svg.contains("class=\"dots score fall\" data-points=\"10\""));
        assert!(svg.contains("<path class=\"aggregate\" data-points=\"10\""));
        assert!(svg.contains("class=\"threshold\""));
        assert_eq!(
            render(&[], &BTreeMap::new()).into_string(),
            "<p class=\"muted\">No history yet.</p>"
        );
    }

    #[test]
    fn names_are_escaped() {
        let mut r = row(0, Some(7), Some(0.0), 1.0, 1.0);
        r.monitor_name = Some("<b>\"x\"".into());
        let svg = render(&[r], &BTreeMap::new()).into_string();
        assert!(svg.contains("data-name=\"&lt;b&gt;&quot;x&quot;\""));
    }
}
