//! Replaying one server's stored checks under several policies (issue 15,
//! `poolwatch policy replay`): its DNS membership at each hour mark per
//! policy, through a [`Ledger`] each, and a tally of what its samples
//! said, which explains why policies disagree about it.
//!
//! Pure: the caller reads the checks (per server, oldest first) and
//! writes the report.

use crate::{Ledger, MonitorStatus, Policy, Sample};
use serde::{Deserialize, Serialize};

/// A server as a replay needs it beside its checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayedServer {
    pub netspeed: i64,
    pub deletion_on: Option<i64>,
}

/// One stored check.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    pub ts: i64,
    pub monitor_id: i64,
    /// The monitor's status for the server (today's: the store keeps no
    /// history of statuses).
    pub status: MonitorStatus,
    pub samples: &'a [Sample],
}

/// What one server's samples said over the window, by position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleTally {
    pub checks: u64,
    /// Checks that kept a sample at each position (index = position).
    pub present: Vec<u64>,
    /// ... of which that sample got no clean answer (lost, KoD, error).
    pub failed: Vec<u64>,
    /// ... of which that sample was a `RATE` KoD.
    pub rate: Vec<u64>,
    /// Checks whose first sample was clean but a later one was not.
    pub later_lost: u64,
    /// Monitors that checked it, and of those the ones that saw `RATE`.
    pub monitors: u32,
    pub monitors_rate: u32,
}

impl SampleTally {
    /// One line for a report: e.g. "87 % of checks lost samples 2–4 · lost
    /// by sample: 0 %, 100 %, 100 %, 100 % · RATE at 3 of 3 monitors".
    pub fn why(&self) -> String {
        if self.checks == 0 {
            return "no checks".to_string();
        }
        let pct = |n: u64, of: u64| (n * 100 + of / 2).checked_div(of).unwrap_or(0);
        let n = self.present.len();
        let mut parts = Vec::new();
        if self.later_lost > 0 && n > 1 {
            parts.push(format!(
                "{} % of checks lost samples 2–{n} after a clean first",
                pct(self.later_lost, self.checks)
            ));
        }
        let by: Vec<String> = (0..n)
            .map(|p| format!("{} %", pct(self.failed[p], self.present[p])))
            .collect();
        parts.push(format!("lost by sample: {}", by.join(", ")));
        if self.monitors_rate > 0 {
            parts.push(format!(
                "RATE at {} of {} monitors",
                self.monitors_rate, self.monitors
            ));
        }
        parts.join(" · ")
    }
}

/// Replays servers one after another under fixed policies, evaluating
/// membership at fixed marks (unix seconds, ascending).
pub struct Replayer {
    ledgers: Vec<Ledger>,
    marks: Vec<i64>,
    // Per server, reused: monitors seen, and whether each saw RATE.
    seen: Vec<(i64, bool)>,
}

/// One server's replay: `in_dns[policy][mark]`, and its tally.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerOutcome {
    pub in_dns: Vec<Vec<bool>>,
    pub tally: SampleTally,
}

impl Replayer {
    pub fn new(policies: Vec<Policy>, marks: Vec<i64>) -> Replayer {
        Replayer {
            ledgers: policies.into_iter().map(Ledger::new).collect(),
            marks,
            seen: Vec::new(),
        }
    }

    pub fn marks(&self) -> &[i64] {
        &self.marks
    }

    /// Scores one server's checks (oldest first) under every policy from
    /// fresh scores (0, as a new server), and its membership at each mark:
    /// at a mark, the checks before it count.
    pub fn server<'a>(
        &mut self,
        server: ReplayedServer,
        checks: impl IntoIterator<Item = Check<'a>>,
    ) -> ServerOutcome {
        for l in &mut self.ledgers {
            l.clear(0);
        }
        self.seen.clear();
        let mut tally = SampleTally::default();
        let mut in_dns = vec![Vec::with_capacity(self.marks.len()); self.ledgers.len()];
        let mut next = 0;
        for c in checks {
            while next < self.marks.len() && self.marks[next] <= c.ts {
                self.mark(server, next, &mut in_dns);
                next += 1;
            }
            for l in &mut self.ledgers {
                l.record(0, c.monitor_id, c.status, c.ts, c.samples);
            }
            self.tally(&mut tally, &c);
        }
        while next < self.marks.len() {
            self.mark(server, next, &mut in_dns);
            next += 1;
        }
        tally.monitors = self.seen.len() as u32;
        tally.monitors_rate = self.seen.iter().filter(|(_, r)| *r).count() as u32;
        ServerOutcome { in_dns, tally }
    }

    fn mark(&self, server: ReplayedServer, i: usize, in_dns: &mut [Vec<bool>]) {
        let at = self.marks[i];
        for (l, out) in self.ledgers.iter().zip(in_dns.iter_mut()) {
            out.push(l.in_dns(0, server.netspeed, server.deletion_on, at));
        }
    }

    fn tally(&mut self, t: &mut SampleTally, c: &Check<'_>) {
        t.checks += 1;
        if t.present.len() < c.samples.len() {
            t.present.resize(c.samples.len(), 0);
            t.failed.resize(c.samples.len(), 0);
            t.rate.resize(c.samples.len(), 0);
        }
        let mut rate = false;
        let mut later_lost = false;
        for (p, s) in c.samples.iter().enumerate() {
            t.present[p] += 1;
            if s.rank() != 0 {
                t.failed[p] += 1;
                later_lost |= p > 0;
            }
            if s.error.as_deref() == Some("RATE") {
                t.rate[p] += 1;
                rate = true;
            }
        }
        if later_lost && c.samples.first().is_some_and(|s| s.rank() == 0) {
            t.later_lost += 1;
        }
        match self.seen.iter_mut().find(|(m, _)| *m == c.monitor_id) {
            Some(e) => e.1 |= rate,
            None => self.seen.push((c.monitor_id, rate)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::fixtures::rate;

    fn ok(position: u8) -> Sample {
        crate::sample::fixtures::answered(position, 20_000)
    }
    use crate::Combine;

    const T0: i64 = 1_700_000_000;
    const SERVER: ReplayedServer = ReplayedServer {
        netspeed: 1000,
        deletion_on: None,
    };

    fn run(samples: &[Sample], hours: i64) -> ServerOutcome {
        let all = Policy {
            name: "all".into(),
            combine: Combine::AllMustAnswer,
            ..Policy::current()
        };
        let marks: Vec<i64> = (1..=hours).map(|h| T0 + h * 3600).collect();
        let mut r = Replayer::new(vec![Policy::current(), all], marks);
        // Three active monitors, every 5 minutes each.
        let checks: Vec<Check> = (0..hours * 12)
            .flat_map(|k| {
                (1..=3).map(move |m| Check {
                    ts: T0 + k * 300 + m,
                    monitor_id: m,
                    status: MonitorStatus::Active,
                    samples,
                })
            })
            .collect();
        r.server(SERVER, checks)
    }

    #[test]
    fn a_rate_limited_server_stays_under_best_of_and_leaves_under_all() {
        let out = run(&[ok(0), rate(1), rate(2), rate(3)], 6);
        // 12 checks per monitor an hour: 10 is reached in the second hour.
        assert_eq!(out.in_dns[0], vec![false, true, true, true, true, true]);
        assert_eq!(out.in_dns[1], vec![false; 6]);
        let t = &out.tally;
        assert_eq!(t.checks, 6 * 12 * 3);
        assert_eq!(t.present, vec![t.checks; 4]);
        assert_eq!(t.failed, vec![0, t.checks, t.checks, t.checks]);
        assert_eq!(t.rate, vec![0, t.checks, t.checks, t.checks]);
        assert_eq!((t.monitors, t.monitors_rate), (3, 3));
        assert_eq!(
            t.why(),
            "100 % of checks lost samples 2–4 after a clean first · \
             lost by sample: 0 %, 100 %, 100 %, 100 % · RATE at 3 of 3 monitors"
        );
    }

    #[test]
    fn a_clean_server_stays_under_both_and_servers_start_fresh() {
        let mut out = run(&[ok(0), ok(1), ok(2), ok(3)], 4);
        assert_eq!(out.in_dns[0], out.in_dns[1]);
        assert_eq!(out.in_dns[1], vec![false, true, true, true]);
        assert_eq!(out.tally.why(), "lost by sample: 0 %, 0 %, 0 %, 0 %");
        // A second server replayed by the same replayer starts from 0 and
        // its tally is its own.
        let marks: Vec<i64> = (1..=2).map(|h| T0 + h * 3600).collect();
        let mut r = Replayer::new(vec![Policy::current()], marks);
        let clean = [ok(0)];
        let good: Vec<Check> = (0..24)
            .map(|k| Check {
                ts: T0 + k * 300,
                monitor_id: 1,
                status: MonitorStatus::Active,
                samples: &clean,
            })
            .collect();
        assert_eq!(r.server(SERVER, good.clone()).in_dns[0], vec![false, true]);
        let late = &good[12..];
        out = r.server(SERVER, late.iter().copied());
        assert_eq!(out.in_dns[0], vec![false, false], "no score carried over");
        assert_eq!(out.tally.checks, 12);
        // No checks: out at every mark; netspeed 0: out.
        assert_eq!(r.server(SERVER, []).in_dns[0], vec![false, false]);
        let idle = ReplayedServer {
            netspeed: 0,
            ..SERVER
        };
        assert_eq!(r.server(idle, good).in_dns[0], vec![false, false]);
    }
}
