//! One check's samples, generated from the server's and the path's state:
//! 4 queries 2 s apart with a 3 s timeout, as the agent sends them
//! (`ntp::check_until`: the next query 2 s after the previous one was sent,
//! or when it timed out; 2 s more after a `RATE`). The random numbers come
//! from a generator seeded by (scenario seed, pair, time), so a check is the
//! same whatever else ran before it, under every policy.

use super::engine::mix;
use super::world::{Effect, Timed};
use crate::rate_limit::{Decision, Limiter};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scoring::Sample;
use std::net::IpAddr;

/// Queries per check, seconds between them, and the query timeout: the
/// service's defaults (DESIGN.md "Measuring a server").
pub const SAMPLES: u8 = 4;
pub const SAMPLE_INTERVAL: f64 = 2.0;
pub const TIMEOUT: f64 = 3.0;

/// What a check needs to know of one monitor's path to one server.
pub struct Path<'a> {
    pub seed: u64,
    pub pair: u64,
    pub monitor: usize,
    pub monitor_region: usize,
    pub monitor_ip: IpAddr,
    /// Base round trip, seconds.
    pub rtt: f64,
    /// Loss on every path.
    pub loss: f64,
    /// The server's events.
    pub effects: &'a [Timed],
}

/// What one query got.
enum Reply {
    Answer,
    Rate,
    Nothing,
}

/// Fills `out` with the samples of the check starting at `t`. `limiter` is
/// the server's, made on its first rate-limited query.
pub fn generate(path: &Path, limiter: &mut Option<Limiter>, t: i64, out: &mut Vec<Sample>) {
    out.clear();
    let mut rng = SmallRng::seed_from_u64(mix(path.seed ^ mix(path.pair << 32 ^ t as u64)));
    let mut at = 0.0f64;
    for position in 0..SAMPLES {
        let now = t as f64 + at;
        let mut reaches = rng.random::<f64>() >= path.loss;
        let jitter: f64 = rng.random();
        let offset: f64 = rng.random();
        let (mut dead, mut limit) = (false, None);
        for e in path.effects.iter().filter(|e| e.at(now)) {
            match e.effect {
                Effect::Dead => dead = true,
                Effect::Silent { monitor } if monitor == path.monitor => reaches = false,
                Effect::CutOutside { region } if region != path.monitor_region => reaches = false,
                // The draw only for a path with loss, so other checks keep
                // their numbers.
                Effect::Loss { monitor, p }
                    if monitor.is_none_or(|m| m == path.monitor) && rng.random::<f64>() < p =>
                {
                    reaches = false
                }
                Effect::RateLimit(l) => limit = Some(l),
                _ => {}
            }
        }
        // A query that never reaches the server costs it nothing.
        let reply = match limit {
            _ if dead || !reaches => Reply::Nothing,
            None => Reply::Answer,
            Some(l) => {
                let lim = limiter.get_or_insert_with(|| Limiter::new(l));
                match (lim.check(path.monitor_ip, now), l.kod) {
                    (Decision::Answer, _) => Reply::Answer,
                    (Decision::Limited, true) => Reply::Rate,
                    (Decision::Limited, false) => Reply::Nothing,
                }
            }
        };
        // A little queueing on top of the path, and a clock within 1 ms.
        let rtt = path.rtt * (1.0 + 0.05 * jitter);
        let rtt_us = Some((rtt * 1e6) as u32);
        let send_ms = (at * 1e3) as u16;
        let (sample, took, extra) = match reply {
            Reply::Answer => (
                Sample {
                    position,
                    send_ms,
                    answered: true,
                    rtt_us,
                    offset: Some((offset - 0.5) * 2e-3),
                    stratum: Some(2),
                    leap: Some(0),
                    error: None,
                },
                rtt,
                0.0,
            ),
            Reply::Rate => (
                Sample {
                    position,
                    send_ms,
                    answered: true,
                    rtt_us,
                    offset: None,
                    stratum: Some(0),
                    leap: Some(3),
                    error: Some("RATE".to_string()),
                },
                rtt,
                SAMPLE_INTERVAL,
            ),
            Reply::Nothing => (
                Sample {
                    position,
                    send_ms,
                    error: Some("i/o timeout".to_string()),
                    ..Sample::default()
                },
                TIMEOUT,
                0.0,
            ),
        };
        out.push(sample);
        at += (SAMPLE_INTERVAL + extra).max(took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::RateLimit;

    fn path(effects: &[Timed]) -> Path<'_> {
        Path {
            seed: 7,
            pair: 3,
            monitor: 1,
            monitor_region: 0,
            monitor_ip: "10.1.0.1".parse().unwrap(),
            rtt: 0.02,
            loss: 0.0,
            effects,
        }
    }

    fn forever(effect: Effect) -> Timed {
        Timed {
            start: 0,
            end: i64::MAX,
            effect,
        }
    }

    fn answered(effects: &[Timed]) -> Vec<bool> {
        let mut out = Vec::new();
        generate(&path(effects), &mut None, 1000, &mut out);
        out.iter()
            .map(|s| s.answered && s.error.is_none())
            .collect()
    }

    #[test]
    fn a_clean_path_answers_every_query_two_seconds_apart() {
        let mut out = Vec::new();
        generate(&path(&[]), &mut None, 1000, &mut out);
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|s| s.answered && s.error.is_none()));
        let sends: Vec<u16> = out.iter().map(|s| s.send_ms).collect();
        assert_eq!(sends, [0, 2000, 4000, 6000]);
        let mut again = Vec::new();
        generate(&path(&[]), &mut None, 1000, &mut again);
        assert_eq!(out, again, "same seed, pair and time: same samples");
    }

    #[test]
    fn effects_silence_the_right_queries() {
        assert_eq!(answered(&[forever(Effect::Dead)]), [false; 4]);
        assert_eq!(
            answered(&[forever(Effect::Silent { monitor: 1 })]),
            [false; 4]
        );
        assert_eq!(
            answered(&[forever(Effect::Silent { monitor: 2 })]),
            [true; 4]
        );
        // Cut off from monitors outside region 1; this one is in region 0.
        assert_eq!(
            answered(&[forever(Effect::CutOutside { region: 1 })]),
            [false; 4]
        );
        assert_eq!(
            answered(&[forever(Effect::CutOutside { region: 0 })]),
            [true; 4]
        );
        let all_lost = Effect::Loss {
            monitor: None,
            p: 1.0,
        };
        assert_eq!(answered(&[forever(all_lost)]), [false; 4]);
        // Over before the check: no effect.
        let past = Timed {
            end: 1000,
            ..forever(Effect::Dead)
        };
        assert_eq!(answered(&[past]), [true; 4]);
    }

    #[test]
    fn a_rate_limiter_answers_the_first_query_and_after_backing_off() {
        let mut out = Vec::new();
        let mut limiter = None;
        let e = [forever(Effect::RateLimit(RateLimit::default()))];
        generate(&path(&e), &mut limiter, 1000, &mut out);
        let errors: Vec<Option<&str>> = out.iter().map(|s| s.error.as_deref()).collect();
        // 0 s answered; 2 s RATE; backed off to 6 s: RATE; 10 s: rested.
        assert_eq!(errors, [None, Some("RATE"), Some("RATE"), None]);
        let sends: Vec<u16> = out.iter().map(|s| s.send_ms).collect();
        assert_eq!(sends, [0, 2000, 6000, 10000]);
        assert!(limiter.is_some());
    }
}
