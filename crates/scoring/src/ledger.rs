//! A score ledger (issue 15): one [`Policy`]'s running scores over many
//! checks, shared by `policy replay` (stored history) and `policy
//! simulate` (a virtual clock), so both score exactly as the service does:
//! each check's samples become one observation ([`Policy::observe`]), its
//! step ([`Policy::step`]) moves the pair's score ([`update`]); a server's
//! score is the existing [`aggregate`] of its monitors' latest scores, and
//! membership is [`Policy::in_dns`].
//!
//! Built for tens of millions of checks: servers are dense indexes the
//! caller assigns (0, 1, 2, …; a `Vec` slot each, no hashing), a server's
//! monitors a short `Vec` searched linearly (a server has about a dozen),
//! and recording a check allocates nothing unless the picked sample carries
//! an error text (the observation owns it).

use crate::{MonitorScore, MonitorStatus, Policy, Sample, aggregate, update};

/// What one recorded check did to its pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recorded {
    /// The pair's new score.
    pub score: f64,
    /// The step the check earned.
    pub step: f64,
    /// Round trip of the scored sample, seconds.
    pub rtt: Option<f64>,
}

/// One policy's scores for every (server, monitor) pair it has seen.
#[derive(Debug, Clone)]
pub struct Ledger {
    policy: Policy,
    servers: Vec<Vec<MonitorScore>>,
}

impl Ledger {
    /// An empty ledger; every pair starts at 0, the score of a new server
    /// in the service.
    pub fn new(policy: Policy) -> Ledger {
        Ledger {
            policy,
            servers: Vec::new(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Scores one check of `server` (a dense index) by `monitor`, whose
    /// status for that server is `status`, at `ts` (unix seconds). Returns
    /// the pair's new score, or `None` (nothing changed) for a check
    /// without samples.
    pub fn record(
        &mut self,
        server: usize,
        monitor: i64,
        status: MonitorStatus,
        ts: i64,
        samples: &[Sample],
    ) -> Option<f64> {
        self.record_check(server, monitor, status, ts, samples)
            .map(|r| r.score)
    }

    /// [`Ledger::record`], also telling the step and round trip scored:
    /// what the selector's 24 h window of the pair adds (`PairWindow::add`).
    pub fn record_check(
        &mut self,
        server: usize,
        monitor: i64,
        status: MonitorStatus,
        ts: i64,
        samples: &[Sample],
    ) -> Option<Recorded> {
        let obs = self.policy.observe(samples)?;
        let step = self.policy.step(&obs);
        if server >= self.servers.len() {
            self.servers.resize_with(server + 1, Vec::new);
        }
        let monitors = &mut self.servers[server];
        let i = match monitors.iter().position(|m| m.monitor_id == monitor) {
            Some(i) => i,
            None => {
                monitors.push(MonitorScore {
                    monitor_id: monitor,
                    status,
                    score: 0.0,
                    ts,
                    rtt: None,
                });
                monitors.len() - 1
            }
        };
        let m = &mut monitors[i];
        m.score = update(m.score, step);
        m.status = status;
        m.ts = ts;
        m.rtt = obs.rtt;
        Some(Recorded {
            score: m.score,
            step: step.step,
            rtt: obs.rtt,
        })
    }

    /// Sets a pair's status without a check, as the selector does between
    /// checks; nothing for a pair never checked.
    pub fn set_status(&mut self, server: usize, monitor: i64, status: MonitorStatus) {
        if let Some(m) = self
            .servers
            .get_mut(server)
            .and_then(|ms| ms.iter_mut().find(|m| m.monitor_id == monitor))
        {
            m.status = status;
        }
    }

    /// The pair's latest score, `None` before its first check.
    pub fn monitor_score(&self, server: usize, monitor: i64) -> Option<f64> {
        self.monitors(server)
            .iter()
            .find(|m| m.monitor_id == monitor)
            .map(|m| m.score)
    }

    /// The latest score of each monitor of `server`, in first-seen order.
    pub fn monitors(&self, server: usize) -> &[MonitorScore] {
        self.servers.get(server).map_or(&[], Vec::as_slice)
    }

    /// The server's score at `now` (the service's recent-median
    /// aggregate), `None` when no monitor qualifies.
    pub fn score(&self, server: usize, now: i64) -> Option<f64> {
        aggregate(self.monitors(server), now)
    }

    /// Whether the server is in DNS at `now` under this policy; a server
    /// without a score is not.
    pub fn in_dns(&self, server: usize, netspeed: i64, deletion_on: Option<i64>, now: i64) -> bool {
        self.score(server, now)
            .is_some_and(|s| self.policy.in_dns(s, netspeed, deletion_on, now))
    }

    /// Forgets a server's scores (its slot stays, empty), so one ledger
    /// can replay servers one after another without growing.
    pub fn clear(&mut self, server: usize) {
        if let Some(m) = self.servers.get_mut(server) {
            m.clear();
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
    use crate::{Combine, Observation, step};

    fn limited() -> Vec<Sample> {
        vec![ok(0), rate(1), rate(2), rate(3)]
    }
    fn all_must_answer() -> Policy {
        Policy {
            name: "all-must-answer".into(),
            combine: Combine::AllMustAnswer,
            ..Policy::current()
        }
    }
    const T0: i64 = 1_700_000_000;

    #[test]
    fn a_pair_scores_like_step_and_update() {
        let mut l = Ledger::new(Policy::current());
        let clean = [ok(0), ok(1), ok(2), ok(3)];
        let mut expect = 0.0;
        for k in 0..5 {
            let got = l.record(3, 7, MonitorStatus::Active, T0 + k * 60, &clean);
            expect = update(expect, step(&clean[0].observation()));
            assert_eq!(got, Some(expect));
        }
        assert_eq!(l.monitor_score(3, 7), Some(expect));
        assert_eq!(l.monitor_score(3, 8), None);
        assert_eq!(l.monitor_score(0, 7), None, "other slots stay empty");
        // No samples: nothing scored, nothing changed.
        assert_eq!(l.record(3, 7, MonitorStatus::Active, T0 + 600, &[]), None);
        assert_eq!(l.monitors(3)[0].ts, T0 + 240);
    }

    #[test]
    fn the_policy_decides_what_a_rate_limited_check_is_worth() {
        let mut best = Ledger::new(Policy::current());
        let mut all = Ledger::new(all_must_answer());
        for k in 0..40 {
            for m in 1..=3 {
                best.record(0, m, MonitorStatus::Active, T0 + k * 60, &limited());
                all.record(0, m, MonitorStatus::Active, T0 + k * 60, &limited());
            }
        }
        let now = T0 + 39 * 60;
        let b = best.score(0, now).unwrap();
        let a = all.score(0, now).unwrap();
        assert!(b > 17.0, "best-of-4 takes the answered sample: {b}");
        // All-must-answer scores the first RATE: -3.5 per check.
        let rate_obs = Observation {
            error: Some("RATE".into()),
            stratum: Some(0),
            ..Observation::default()
        };
        assert_eq!(all.policy().step(&rate_obs).step, -3.5);
        assert!(a < -60.0, "{a}");
        assert!(best.in_dns(0, 1000, None, now));
        assert!(!all.in_dns(0, 1000, None, now));
        // Netspeed 0 or a near deletion keeps even a good server out.
        assert!(!best.in_dns(0, 0, None, now));
        assert!(!best.in_dns(0, 1000, Some(now + 86_400), now));
    }

    #[test]
    fn the_aggregate_uses_the_given_statuses_and_windows() {
        let mut l = Ledger::new(Policy::current());
        let clean = [ok(0)];
        // Monitor 1 active and good, monitors 2 and 3 candidates and bad.
        for k in 0..30 {
            let ts = T0 + k * 60;
            l.record(0, 1, MonitorStatus::Active, ts, &clean);
            l.record(0, 2, MonitorStatus::Candidate, ts, &limited()[1..]);
            l.record(0, 3, MonitorStatus::Candidate, ts, &limited()[1..]);
        }
        let now = T0 + 29 * 60;
        let good = l.monitor_score(0, 1).unwrap();
        assert_eq!(l.score(0, now), Some(good), "candidates don't count");
        assert_eq!(l.score(0, now), aggregate(l.monitors(0), now));
        // Two hours later nothing is recent: no score, not in DNS.
        assert_eq!(l.score(0, now + 3 * 3600), None);
        assert!(!l.in_dns(0, 1000, None, now + 3 * 3600));
        // A server never seen has no score.
        assert_eq!(l.score(9, now), None);
        assert!(!l.in_dns(9, 1000, None, now));
        // The status given with the latest check is the one used.
        l.record(0, 1, MonitorStatus::Paused, now + 60, &clean);
        assert_ne!(l.score(0, now + 60), Some(good));
    }

    #[test]
    fn record_check_tells_the_step_and_set_status_moves_the_aggregate() {
        let mut l = Ledger::new(Policy::current());
        let r = l
            .record_check(0, 1, MonitorStatus::Active, T0, &limited())
            .unwrap();
        assert_eq!((r.score, r.step, r.rtt), (1.0, 1.0, Some(0.02)));
        assert_eq!(l.score(0, T0), Some(1.0));
        // Demoted to candidate by the selector: no longer counted.
        l.set_status(0, 1, MonitorStatus::Candidate);
        assert_eq!(l.monitors(0)[0].status, MonitorStatus::Candidate);
        assert_eq!(l.score(0, T0 + 3000), Some(1.0), "only the widest window");
        l.set_status(0, 1, MonitorStatus::Paused);
        assert_eq!(l.score(0, T0), None);
        l.set_status(7, 1, MonitorStatus::Active); // never seen: nothing
        assert!(l.monitors(7).is_empty());
    }

    #[test]
    fn clear_forgets_one_server() {
        let mut l = Ledger::new(Policy::current());
        l.record(0, 1, MonitorStatus::Active, T0, &[ok(0)]);
        l.record(1, 1, MonitorStatus::Active, T0, &[ok(0)]);
        l.clear(0);
        assert_eq!(l.score(0, T0), None);
        assert_eq!(l.score(1, T0), Some(1.0));
        l.clear(5);
    }
}
