//! The server's score from its monitors' scores ("recent median"), and when
//! a new aggregate is worth a log row.

use crate::MonitorStatus;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Latest per-monitor score for one server, input to the aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorScore {
    pub monitor_id: i64,
    pub status: MonitorStatus,
    pub score: f64,
    /// When the score was last updated, unix seconds.
    pub ts: i64,
    /// Round-trip time of that result, seconds; breaks ties between equal
    /// scores in favour of nearer monitors.
    pub rtt: Option<f64>,
}

/// Fallback windows, tried in order: the trusted monitors first, then wider
/// sets so a new or poorly covered server still gets a score.
const WINDOWS: [(&[MonitorStatus], i64); 3] = [
    (&[MonitorStatus::Active], 1200),
    (
        &[MonitorStatus::Active, MonitorStatus::Testing],
        WINDOW_TRUSTED_S,
    ),
    (
        &[MonitorStatus::Candidate, MonitorStatus::Testing],
        WINDOW_WIDEST_S,
    ),
];

/// The second window (active or testing monitors): while some monitor of
/// those scored the server this recently, candidates do not count.
pub const WINDOW_TRUSTED_S: i64 = 2700;
/// The widest window (candidates or testing).
pub const WINDOW_WIDEST_S: i64 = 7200;

/// Recent-median aggregate; `None` when no monitor qualifies in any window.
pub fn aggregate(scores: &[MonitorScore], now: i64) -> Option<f64> {
    let latest = latest_per_monitor(scores);
    WINDOWS.iter().find_map(|(statuses, window)| {
        let recent: Vec<&MonitorScore> = latest
            .iter()
            .copied()
            .filter(|m| statuses.contains(&m.status) && now.saturating_sub(m.ts) <= *window)
            .collect();
        pick(recent).map(|m| m.score)
    })
}

/// The newest entry of each monitor. Its status is the monitor's current
/// one, so a monitor paused since its last result is excluded even if an
/// older entry says active. On equal ts the later entry in the slice wins.
fn latest_per_monitor(scores: &[MonitorScore]) -> Vec<&MonitorScore> {
    // A stable sort by (monitor, ts) and the last of each monitor's run:
    // no map to allocate, for the one-entry-per-monitor input of the
    // scorer, replay and simulation (called per check).
    let mut v: Vec<&MonitorScore> = scores.iter().collect();
    v.sort_by_key(|m| (m.monitor_id, m.ts));
    let mut out: Vec<&MonitorScore> = Vec::with_capacity(v.len());
    for m in v {
        match out.last_mut() {
            Some(last) if last.monitor_id == m.monitor_id => *last = m,
            _ => out.push(m),
        }
    }
    out
}

/// The pool's choice among the qualifying entries. With fewer than 3 a
/// median means little, and the pool takes the oldest entry; with more, the
/// lower median by (score, rtt) so that a tie leans toward the worse value.
fn pick(mut recent: Vec<&MonitorScore>) -> Option<&MonitorScore> {
    if recent.len() < 3 {
        return recent.into_iter().min_by_key(|m| (m.ts, m.monitor_id));
    }
    recent.sort_by(|a, b| {
        a.score
            .total_cmp(&b.score)
            .then_with(|| cmp_rtt(a.rtt, b.rtt))
            .then_with(|| a.monitor_id.cmp(&b.monitor_id))
    });
    let n = recent.len();
    let i = if n.is_multiple_of(2) {
        n / 2 - 1
    } else {
        n / 2
    };
    Some(recent[i])
}

/// Known round-trip times first (ascending), unknown last.
fn cmp_rtt(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The same score is re-logged at most this often, so graphs stay
/// continuous without a row per submitted result.
const SAME_SCORE_INTERVAL: i64 = 15 * 60;
/// A change of at most 5 % is not logged sooner than this.
const SIMILAR_SCORE_INTERVAL: i64 = 5 * 60;
const SIMILAR_FRACTION: f64 = 0.05;
/// Aggregates come out of float arithmetic; "equal" must tolerate noise.
const EPSILON: f64 = 1e-9;

/// Whether a new aggregate value should be logged, given the last logged
/// `(score, ts)`: skipped if equal within 15 min, within 5 % within 5 min,
/// or older than the last logged one.
pub fn should_log_aggregate(prev: Option<(f64, i64)>, new: f64, now: i64) -> bool {
    let Some((last, last_ts)) = prev else {
        return true;
    };
    // An out-of-order value would make the log's newest row not the latest.
    if now < last_ts {
        return false;
    }
    let age = now.saturating_sub(last_ts);
    if (new - last).abs() <= EPSILON && age < SAME_SCORE_INTERVAL {
        return false;
    }
    !(similar(new, last) && age < SIMILAR_SCORE_INTERVAL)
}

/// Within 5 % of the last logged value; a zero last value only matches zero,
/// as a percentage of zero is meaningless.
fn similar(new: f64, last: f64) -> bool {
    if last == 0.0 {
        return new.abs() <= EPSILON;
    }
    (new - last).abs() <= last.abs() * SIMILAR_FRACTION
}

#[cfg(test)]
mod tests {
    use super::*;
    use MonitorStatus::*;

    const NOW: i64 = 1_700_000_000;

    fn ms(monitor_id: i64, status: MonitorStatus, score: f64, age: i64) -> MonitorScore {
        MonitorScore {
            monitor_id,
            status,
            score,
            ts: NOW - age,
            rtt: Some(0.05),
        }
    }

    #[test]
    fn windows_and_selection() {
        let cases: Vec<(&str, Vec<MonitorScore>, Option<f64>)> = vec![
            ("empty", vec![], None),
            ("one active", vec![ms(1, Active, 15.0, 60)], Some(15.0)),
            (
                "active within 20 min beats testing",
                vec![ms(1, Active, 15.0, 1200), ms(2, Testing, 3.0, 10)],
                Some(15.0),
            ),
            (
                "stale active falls back to active/testing within 45 min",
                vec![
                    ms(1, Active, 15.0, 1201),
                    ms(2, Testing, 3.0, 2000),
                    ms(3, Candidate, 7.0, 10),
                ],
                // Two qualify (<3): the oldest is the testing one.
                Some(3.0),
            ),
            (
                "testing only within 45 min",
                vec![ms(2, Testing, 3.0, 2700), ms(3, Candidate, 7.0, 10)],
                Some(3.0),
            ),
            (
                "candidate/testing within 2 h",
                vec![ms(1, Active, 15.0, 2701), ms(3, Candidate, 7.0, 7200)],
                Some(7.0),
            ),
            (
                "candidate window excludes active",
                vec![ms(1, Active, 15.0, 3000)],
                None,
            ),
            (
                "everything stale",
                vec![ms(1, Candidate, 7.0, 7201), ms(2, Testing, 3.0, 9000)],
                None,
            ),
            (
                "paused never counts",
                vec![ms(1, Paused, 20.0, 0), ms(2, Paused, 20.0, 100)],
                None,
            ),
            (
                "paused ignored next to active",
                vec![
                    ms(1, Paused, -50.0, 0),
                    ms(2, Active, 12.0, 30),
                    ms(3, Paused, -50.0, 10),
                ],
                Some(12.0),
            ),
            (
                "two entries: oldest",
                vec![ms(1, Active, 19.0, 10), ms(2, Active, 2.0, 300)],
                Some(2.0),
            ),
            (
                "three: median",
                vec![
                    ms(1, Active, 19.0, 10),
                    ms(2, Active, 2.0, 300),
                    ms(3, Active, 11.0, 20),
                ],
                Some(11.0),
            ),
            (
                "four: lower median",
                vec![
                    ms(1, Active, 19.0, 10),
                    ms(2, Active, 2.0, 300),
                    ms(3, Active, 11.0, 20),
                    ms(4, Active, 15.0, 20),
                ],
                Some(11.0),
            ),
            (
                "five: median",
                vec![
                    ms(1, Active, 5.0, 10),
                    ms(2, Active, 4.0, 10),
                    ms(3, Active, 3.0, 10),
                    ms(4, Active, 2.0, 10),
                    ms(5, Active, 1.0, 10),
                ],
                Some(3.0),
            ),
            (
                "six: lower median",
                (1..=6).map(|i| ms(i, Active, i as f64, 10)).collect(),
                Some(3.0),
            ),
            (
                "stale active excluded from the median",
                vec![
                    ms(1, Active, 19.0, 10),
                    ms(2, Active, 18.0, 10),
                    ms(3, Active, 17.0, 10),
                    ms(4, Active, -100.0, 1500),
                ],
                Some(18.0),
            ),
            (
                "future timestamps count as recent",
                vec![ms(1, Active, 9.0, -60)],
                Some(9.0),
            ),
        ];
        for (name, scores, want) in cases {
            assert_eq!(aggregate(&scores, NOW), want, "{name}");
        }
    }

    #[test]
    fn duplicate_monitor_ids_keep_newest() {
        let cases: Vec<(&str, Vec<MonitorScore>, Option<f64>)> = vec![
            (
                "newest of one monitor",
                vec![ms(1, Active, 5.0, 100), ms(1, Active, 15.0, 50)],
                Some(15.0),
            ),
            (
                "order in the slice does not matter",
                vec![ms(1, Active, 15.0, 50), ms(1, Active, 5.0, 100)],
                Some(15.0),
            ),
            (
                "a duplicate does not count twice in the median",
                vec![
                    ms(1, Active, 1.0, 10),
                    ms(1, Active, 1.0, 20),
                    ms(1, Active, 1.0, 30),
                    ms(2, Active, 19.0, 40),
                ],
                // Two monitors (<3): the oldest latest entry, monitor 2.
                Some(19.0),
            ),
            (
                "newest entry paused: monitor excluded",
                vec![ms(1, Active, 15.0, 100), ms(1, Paused, 15.0, 10)],
                None,
            ),
            (
                "equal ts: later in slice wins",
                vec![ms(1, Active, 15.0, 10), ms(1, Active, 16.0, 10)],
                Some(16.0),
            ),
        ];
        for (name, scores, want) in cases {
            assert_eq!(aggregate(&scores, NOW), want, "{name}");
        }
    }

    #[test]
    fn rtt_breaks_ties() {
        let with_rtt = |id, score, rtt| MonitorScore {
            rtt,
            ..ms(id, Active, score, 10)
        };
        // Sorted: (5, 0.01)#3, (5, 0.2)#1, (5, None)#2, (9)#4 -> index 1.
        let scores = [
            with_rtt(1, 5.0, Some(0.2)),
            with_rtt(2, 5.0, None),
            with_rtt(3, 5.0, Some(0.01)),
            with_rtt(4, 9.0, Some(0.1)),
        ];
        assert_eq!(pick(scores.iter().collect()).map(|m| m.monitor_id), Some(1));
        // (5, 0.01)#3, (5, None)#2, (5, None)#5 -> index 1: None sorts last
        // but ties among Nones fall to monitor id.
        let scores = [
            with_rtt(5, 5.0, None),
            with_rtt(2, 5.0, None),
            with_rtt(3, 5.0, Some(0.01)),
        ];
        assert_eq!(pick(scores.iter().collect()).map(|m| m.monitor_id), Some(2));
    }

    #[test]
    fn oldest_with_fewer_than_three() {
        let scores = [ms(7, Active, 3.0, 100), ms(4, Active, 9.0, 100)];
        // Equal ts: the lower monitor id, so the result is deterministic.
        assert_eq!(aggregate(&scores, NOW), Some(9.0));
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let mut old = ms(1, Active, 5.0, 0);
        old.ts = i64::MIN;
        assert_eq!(aggregate(&[old], i64::MAX), None);
    }

    #[test]
    fn log_decisions() {
        // (name, prev, new, now, expected)
        let cases = [
            ("first value", None, 10.0, NOW, true),
            (
                "same within 15 min",
                Some((10.0, NOW - 899)),
                10.0,
                NOW,
                false,
            ),
            (
                "same after 15 min",
                Some((10.0, NOW - 900)),
                10.0,
                NOW,
                true,
            ),
            (
                "float noise is equal",
                Some((10.0, NOW - 60)),
                10.0 + 1e-12,
                NOW,
                false,
            ),
            (
                "within 5% within 5 min",
                Some((10.0, NOW - 299)),
                10.4,
                NOW,
                false,
            ),
            (
                "within 5% after 5 min",
                Some((10.0, NOW - 300)),
                10.4,
                NOW,
                true,
            ),
            (
                "exactly 5% within 5 min",
                Some((10.0, NOW - 10)),
                9.5,
                NOW,
                false,
            ),
            ("over 5% at once", Some((10.0, NOW - 1)), 10.6, NOW, true),
            (
                "negative, within 5%",
                Some((-20.0, NOW - 1)),
                -20.5,
                NOW,
                false,
            ),
            (
                "negative, over 5%",
                Some((-20.0, NOW - 1)),
                -22.0,
                NOW,
                true,
            ),
            (
                "from zero, any change",
                Some((0.0, NOW - 1)),
                0.01,
                NOW,
                true,
            ),
            ("zero stays zero", Some((0.0, NOW - 1)), 0.0, NOW, false),
            ("same ts, changed", Some((10.0, NOW)), 15.0, NOW, true),
            ("out of order", Some((10.0, NOW + 1)), 15.0, NOW, false),
        ];
        for (name, prev, new, now, want) in cases {
            assert_eq!(should_log_aggregate(prev, new, now), want, "{name}");
        }
        assert!(should_log_aggregate(Some((1.0, i64::MIN)), 1.0, i64::MAX));
    }
}
