//! The selector's 24-hour statistics per (server, monitor) pair, kept
//! incrementally: two UTC-day buckets (the current day and the one before)
//! instead of a scan of a day of log rows, so a selector pass over every
//! pair reads one row per pair.
//!
//! The estimate for "the last 24 h" at `now` is the current bucket plus the
//! previous one weighted by the share of it still inside the window
//! (`1 − seconds into today / 86 400`) — the sliding-window counter
//! approximation. Averages are ratios of the weighted sums, so they are
//! exact when results are spread evenly; counts are rounded to the nearest
//! whole data point.

use crate::monitor_selection::MonitorStats;

const DAY: i64 = 86_400;

/// Sums of one bucket. `rtt_*` only over answered results.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    pub n: i64,
    pub step: f64,
    pub rtt_n: i64,
    /// Milliseconds.
    pub rtt_ms: f64,
}

impl Sums {
    fn add(&mut self, step: f64, rtt_ms: Option<f64>) {
        self.n += 1;
        self.step += step;
        if let Some(r) = rtt_ms.filter(|r| r.is_finite()) {
            self.rtt_n += 1;
            self.rtt_ms += r;
        }
    }
}

/// The two buckets of one pair; `day` is the UTC day (`ts / 86 400`) of
/// `cur`, `None` before the first result.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PairWindow {
    pub day: Option<i64>,
    pub cur: Sums,
    pub prev: Sums,
}

impl PairWindow {
    /// The buckets as they stand on `day`: rolled forward, never back.
    fn rolled(&self, day: i64) -> (i64, Sums, Sums) {
        match self.day {
            Some(d) if d >= day => (d, self.cur, self.prev),
            Some(d) if d + 1 == day => (day, Sums::default(), self.cur),
            _ => (day, Sums::default(), Sums::default()),
        }
    }

    /// Adds one result taken at `ts`. A result older than the current
    /// bucket's day (a late replay) counts in the current bucket.
    pub fn add(&mut self, ts: i64, step: f64, rtt_ms: Option<f64>) {
        let (day, mut cur, prev) = self.rolled(ts.div_euclid(DAY));
        cur.add(step, rtt_ms);
        *self = PairWindow {
            day: Some(day),
            cur,
            prev,
        };
    }

    /// The estimate for the 24 h before `now`.
    pub fn stats(&self, now: i64) -> MonitorStats {
        let today = now.div_euclid(DAY);
        let (day, cur, prev) = self.rolled(today);
        let w = if day > today {
            // Results stamped in the future (clock skew): take them whole.
            1.0
        } else {
            1.0 - now.rem_euclid(DAY) as f64 / DAY as f64
        };
        let n = cur.n as f64 + w * prev.n as f64;
        let step = cur.step + w * prev.step;
        let rtt_n = cur.rtt_n as f64 + w * prev.rtt_n as f64;
        let rtt = cur.rtt_ms + w * prev.rtt_ms;
        let count = n.round() as u32;
        MonitorStats {
            count,
            avg_step: if n > 0.0 { step / n } else { 0.0 },
            avg_rtt_ms: if rtt_n > 0.0 { rtt / rtt_n } else { 0.0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 20_000 * DAY; // a midnight

    #[test]
    fn empty_has_no_data() {
        let s = PairWindow::default().stats(T0);
        assert_eq!(s.count, 0);
        assert!(!s.healthy());
    }

    #[test]
    fn same_day_is_exact() {
        let mut w = PairWindow::default();
        for i in 0..10 {
            w.add(T0 + i * 600, if i < 8 { 1.0 } else { -5.0 }, Some(20.0));
        }
        let s = w.stats(T0 + 7200);
        assert_eq!(s.count, 10);
        assert!((s.avg_step - (8.0 - 10.0) / 10.0).abs() < 1e-9);
        assert!((s.avg_rtt_ms - 20.0).abs() < 1e-9);
    }

    #[test]
    fn timeouts_do_not_count_toward_rtt() {
        let mut w = PairWindow::default();
        w.add(T0, 1.0, Some(30.0));
        w.add(T0 + 60, -5.0, None);
        let s = w.stats(T0 + 120);
        assert_eq!(s.count, 2);
        assert!((s.avg_rtt_ms - 30.0).abs() < 1e-9);
        assert!((s.avg_step + 2.0).abs() < 1e-9);
    }

    #[test]
    fn previous_day_fades_out() {
        let mut w = PairWindow::default();
        for i in 0..48 {
            w.add(T0 + i * 1800, 1.0, Some(10.0)); // all of day 0
        }
        assert_eq!(w.stats(T0 + DAY - 1).count, 48);
        // A quarter into day 1 three quarters of day 0 still count.
        assert_eq!(w.stats(T0 + DAY + DAY / 4).count, 36);
        w.add(T0 + DAY + DAY / 4, -5.0, None);
        let s = w.stats(T0 + DAY + DAY / 4);
        assert_eq!(s.count, 37);
        assert!((s.avg_step - (36.0 - 5.0) / 37.0).abs() < 1e-9);
        // Two days later nothing is left.
        assert_eq!(w.stats(T0 + 3 * DAY).count, 0);
    }

    #[test]
    fn a_late_result_does_not_roll_back() {
        let mut w = PairWindow::default();
        w.add(T0 + DAY + 10, 1.0, None);
        w.add(T0 + 10, 1.0, None); // replayed from yesterday
        assert_eq!(w.day, Some(20_001));
        assert_eq!(w.cur.n, 2);
    }

    #[test]
    fn a_gap_of_days_starts_over() {
        let mut w = PairWindow::default();
        w.add(T0, -5.0, None);
        w.add(T0 + 5 * DAY, 1.0, Some(1.0));
        assert_eq!(w.prev, Sums::default());
        let s = w.stats(T0 + 5 * DAY);
        assert_eq!(s.count, 1);
        assert!(s.healthy());
    }
}
