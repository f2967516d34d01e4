//! A per-client rate limiter in the manner of ntpd's `discard average A
//! minimum M` with `restrict … limited` (and `kod`): the announcement's
//! case of a server that answers the first query of a check and refuses
//! the next ones. Pure: time comes in as seconds, so the UDP servers
//! (`reply`) and the virtual-clock pool simulation (`pool`) limit alike.
//!
//! Each client owes the server "debt" in seconds: an answer adds `average`,
//! and the debt drains one second per second. A request is refused while
//! the debt would pass `average × burst`, or when it comes sooner than
//! `minimum` after the client's previous request (answered or not).
//! With the defaults (8 s, 2 s, burst 1) a check of 4 queries 2 s apart
//! gets one answer: the first.

use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;

/// The `rate_limit` table of a behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Seconds per answer on average, per client (ntpd's `average 3` is
    /// 2³ = 8 s).
    pub average: f64,
    /// Seconds: a request sooner than this after the client's previous one
    /// is refused (ntpd's guard time, `minimum 2`).
    pub minimum: f64,
    /// Answers a rested client gets back to back before the average holds.
    pub burst: u32,
    /// Refuse with a `RATE` kiss-o'-death (ntpd's `kod`); else stay silent.
    pub kod: bool,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            average: 8.0,
            minimum: 2.0,
            burst: 1,
            kod: true,
        }
    }
}

impl RateLimit {
    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.average.is_finite() && self.average > 0.0 && self.average <= 3600.0) {
            return Err("rate_limit.average: seconds, more than 0 and at most 3600".into());
        }
        if !(self.minimum.is_finite() && (0.0..=3600.0).contains(&self.minimum)) {
            return Err("rate_limit.minimum: seconds, 0 to 3600".into());
        }
        if !(1..=1000).contains(&self.burst) {
            return Err("rate_limit.burst: 1 to 1000".into());
        }
        Ok(())
    }
}

/// What the limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Answer,
    /// Refused: answer `RATE` if the limit says `kod`, else drop.
    Limited,
}

#[derive(Debug, Clone, Copy)]
struct Client {
    last: f64,
    debt: f64,
}

/// Clients remembered at most; past it, rested clients are forgotten
/// first (as ntpd's MRU list recycles its oldest entries).
const MAX_CLIENTS: usize = 65_536;

/// The state of one limited server.
#[derive(Debug, Clone)]
pub struct Limiter {
    limit: RateLimit,
    clients: HashMap<IpAddr, Client>,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            clients: HashMap::new(),
        }
    }

    pub fn limit(&self) -> &RateLimit {
        &self.limit
    }

    /// Decides a request from `client` at `now` (seconds, any epoch, not
    /// decreasing per client).
    pub fn check(&mut self, client: IpAddr, now: f64) -> Decision {
        if self.clients.len() >= MAX_CLIENTS && !self.clients.contains_key(&client) {
            self.clients.retain(|_, c| c.debt - (now - c.last) > 0.0);
            if self.clients.len() >= MAX_CLIENTS {
                self.clients.clear();
            }
        }
        let l = self.limit;
        let c = self.clients.entry(client).or_insert(Client {
            last: f64::NEG_INFINITY,
            debt: 0.0,
        });
        let elapsed = (now - c.last).max(0.0);
        c.last = now;
        c.debt = (c.debt - elapsed).max(0.0);
        if elapsed < l.minimum || c.debt + l.average > l.average * f64::from(l.burst) {
            return Decision::Limited;
        }
        c.debt += l.average;
        Decision::Answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 4, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 4, 2));

    fn check_of_four(l: &mut Limiter, client: IpAddr, t0: f64) -> Vec<Decision> {
        (0..4)
            .map(|i| l.check(client, t0 + 2.0 * f64::from(i)))
            .collect()
    }

    #[test]
    fn a_four_sample_check_gets_the_first_answer_only() {
        let mut l = Limiter::new(RateLimit::default());
        use Decision::*;
        assert_eq!(
            check_of_four(&mut l, A, 0.0),
            [Answer, Limited, Limited, Limited]
        );
        // Another client has its own budget.
        assert_eq!(
            check_of_four(&mut l, B, 1.0),
            [Answer, Limited, Limited, Limited]
        );
        // Minutes later the client is rested again.
        assert_eq!(
            check_of_four(&mut l, A, 600.0),
            [Answer, Limited, Limited, Limited]
        );
    }

    #[test]
    fn one_answer_per_average_when_polled_slowly_enough() {
        let mut l = Limiter::new(RateLimit::default());
        let answered = (0..100)
            .filter(|i| l.check(A, 8.0 * f64::from(*i)) == Decision::Answer)
            .count();
        assert_eq!(answered, 100);
        // Every 4 s: about half answered.
        let mut l = Limiter::new(RateLimit::default());
        let answered = (0..100)
            .filter(|i| l.check(A, 4.0 * f64::from(*i)) == Decision::Answer)
            .count();
        assert_eq!(answered, 50);
    }

    #[test]
    fn burst_and_minimum() {
        let limit = RateLimit {
            burst: 4,
            ..RateLimit::default()
        };
        let mut l = Limiter::new(limit);
        assert!(
            check_of_four(&mut l, A, 0.0)
                .iter()
                .all(|d| *d == Decision::Answer)
        );
        // Sooner than the guard time: refused whatever the budget.
        let mut l = Limiter::new(limit);
        assert_eq!(l.check(A, 0.0), Decision::Answer);
        assert_eq!(l.check(A, 1.0), Decision::Limited);
    }

    #[test]
    fn validate_names_the_field() {
        for (l, field) in [
            (
                RateLimit {
                    average: 0.0,
                    ..RateLimit::default()
                },
                "average",
            ),
            (
                RateLimit {
                    minimum: f64::NAN,
                    ..RateLimit::default()
                },
                "minimum",
            ),
            (
                RateLimit {
                    burst: 0,
                    ..RateLimit::default()
                },
                "burst",
            ),
        ] {
            assert!(l.validate().unwrap_err().contains(field));
        }
        RateLimit::default().validate().unwrap();
    }
}
