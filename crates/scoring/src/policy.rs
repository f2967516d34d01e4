//! A scoring policy (issue 15): which samples of a check count and how,
//! the step table and the in-DNS threshold. [`Policy::current`] is what
//! the service scores with; `poolwatch policy replay` and `policy
//! simulate` score the same checks under others to ask "what if".
//!
//! A policy file (TOML), every field optional but `name`:
//!
//! ```toml
//! name = "all-must-answer"
//! samples = 4                  # the first N samples of each check, 1..=16
//! combine = "all-must-answer"  # best-of | first-answer | all-must-answer
//! timeout = 3.0                # seconds; a slower reply counts as none
//! in_dns_threshold = 10.0
//! [steps]                      # rows of the step table to replace
//! rate = { step = -1.0 }
//! no_response = { step = -5.0 }
//! ```

use crate::sample::{Sample, best_index};
use crate::step::{Step, StepTable, step_with};
use crate::{IN_DNS_THRESHOLD, Observation};
use serde::{Deserialize, Serialize};

/// How the samples of one check become the one observation scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Combine {
    /// The monitor's rule: the best sample (DESIGN.md "Best sample").
    BestOf,
    /// The first sample that got a reply (a KoD is a reply).
    FirstAnswer,
    /// Every sample must get a clean reply: the first unanswered one, else
    /// the first with an error, else the best.
    AllMustAnswer,
}

impl Combine {
    pub const fn as_str(self) -> &'static str {
        match self {
            Combine::BestOf => "best-of",
            Combine::FirstAnswer => "first-answer",
            Combine::AllMustAnswer => "all-must-answer",
        }
    }
}

/// A scoring policy. See the module doc for the file format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Shown in reports; letters, digits, `-`, `_`, `.`, at most 40.
    pub name: String,
    /// The first N samples of each check are used (1..=16).
    pub samples: u8,
    pub combine: Combine,
    /// Seconds: an answered sample with a longer round trip counts as
    /// unanswered (`i/o timeout`). Stored history can only be replayed with
    /// a timeout up to the one it was measured with (3 s by default).
    pub timeout: f64,
    pub steps: StepTable,
    /// A server is in DNS from this aggregate score up.
    pub in_dns_threshold: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Self::current()
    }
}

/// Why a policy is not usable; names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("policy {field}: {why}")]
pub struct PolicyError {
    pub field: &'static str,
    pub why: String,
}

impl Policy {
    /// What the service scores with today: best of 4, a 3 s timeout, the
    /// pool's step table, in DNS from 10.
    pub fn current() -> Policy {
        Policy {
            name: "current".to_string(),
            samples: 4,
            combine: Combine::BestOf,
            timeout: 3.0,
            steps: StepTable::POOL,
            in_dns_threshold: IN_DNS_THRESHOLD,
        }
    }

    /// The built-in policies by name, `(name, what it is)`, for `--policy
    /// NAME` and help texts; [`Policy::preset`] makes one.
    pub const PRESETS: &'static [(&'static str, &'static str)] = &[
        (
            "current",
            "best of the first 4 samples (what the service scores)",
        ),
        ("first-1", "the first sample only (one query per check)"),
        ("first-2", "best of the first 2 samples"),
        ("first-3", "best of the first 3 samples"),
        (
            "first-answer",
            "the first answered sample of 4 (a KoD counts)",
        ),
        (
            "all-must-answer",
            "all 4 samples must get a clean answer, else the first failure",
        ),
    ];

    /// A built-in policy by name ([`Policy::PRESETS`]).
    pub fn preset(name: &str) -> Option<Policy> {
        let with = |samples, combine| Policy {
            name: name.to_string(),
            samples,
            combine,
            ..Policy::current()
        };
        Some(match name {
            "current" => Policy::current(),
            "first-1" => with(1, Combine::BestOf),
            "first-2" => with(2, Combine::BestOf),
            "first-3" => with(3, Combine::BestOf),
            "first-answer" => with(4, Combine::FirstAnswer),
            "all-must-answer" => with(4, Combine::AllMustAnswer),
            _ => return None,
        })
    }

    /// Checks every field; call after reading a file.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |field, why: &str| {
            Err(PolicyError {
                field,
                why: why.to_string(),
            })
        };
        if self.name.is_empty()
            || self.name.len() > 40
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return bad("name", "1 to 40 letters, digits, '-', '_' or '.'");
        }
        if !(1..=16).contains(&self.samples) {
            return bad("samples", "must be 1 to 16");
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 60.0) {
            return bad("timeout", "must be more than 0 and at most 60 seconds");
        }
        if !self.in_dns_threshold.is_finite() {
            return bad("in_dns_threshold", "must be a number");
        }
        let t = &self.steps;
        for (row, s) in [
            ("steps.no_response", t.no_response),
            ("steps.rate", t.rate),
            ("steps.deny", t.deny),
            ("steps.unsynchronised", t.unsynchronised),
            ("steps.error", t.error),
            ("steps.offset_over_3s", t.offset_over_3s),
            ("steps.high_stratum", t.high_stratum),
            ("steps.offset_over_750ms", t.offset_over_750ms),
        ] {
            if !(s.step.is_finite() && s.step.abs() <= 100.0) {
                return bad(row, "step must be a number from -100 to 100");
            }
            if s.cap.is_some_and(|c| !(c.is_finite() && c.abs() <= 1000.0)) {
                return bad(row, "cap must be a number from -1000 to 1000");
            }
        }
        Ok(())
    }

    /// The observation this policy scores for a check's samples (in
    /// position order); `None` when the check kept no samples.
    pub fn observe(&self, samples: &[Sample]) -> Option<Observation> {
        let n = samples.len().min(usize::from(self.samples));
        let used = &samples[..n];
        // Most checks have no reply slower than the timeout: pick among the
        // samples as given, without copying (a replay scores millions).
        if !used.iter().any(|s| self.too_slow(s)) {
            return self.pick(used).map(|i| used[i].observation());
        }
        let timed: Vec<Sample> = used.iter().map(|s| self.timed(s)).collect();
        self.pick(&timed).map(|i| timed[i].observation())
    }

    /// The sample this policy's `combine` scores.
    fn pick(&self, used: &[Sample]) -> Option<usize> {
        match self.combine {
            Combine::BestOf => best_index(used),
            Combine::FirstAnswer => used
                .iter()
                .position(|s| s.answered)
                .or_else(|| best_index(used)),
            Combine::AllMustAnswer => used
                .iter()
                .position(|s| !s.answered)
                .or_else(|| used.iter().position(|s| s.error.is_some()))
                .or_else(|| best_index(used)),
        }
    }

    /// An answer this policy's timeout would not have waited for.
    fn too_slow(&self, s: &Sample) -> bool {
        s.answered && s.rtt().is_some_and(|rtt| rtt > self.timeout)
    }

    /// A sample as this policy's timeout sees it.
    fn timed(&self, s: &Sample) -> Sample {
        if self.too_slow(s) {
            Sample {
                answered: false,
                rtt_us: None,
                offset: None,
                stratum: None,
                leap: None,
                error: Some("i/o timeout".to_string()),
                ..s.clone()
            }
        } else {
            s.clone()
        }
    }

    /// The step an observation earns under this policy's table.
    pub fn step(&self, obs: &Observation) -> Step {
        step_with(&self.steps, obs)
    }

    /// [`crate::in_dns`] with this policy's threshold.
    pub fn in_dns(&self, score: f64, netspeed: i64, deletion_on: Option<i64>, now: i64) -> bool {
        crate::dns::in_dns_from(self.in_dns_threshold, score, netspeed, deletion_on, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::fixtures::{answered as ok, lost, rate};

    fn with(combine: Combine, samples: u8) -> Policy {
        Policy {
            combine,
            samples,
            ..Policy::current()
        }
    }

    /// A rate-limited server: the first query answered, the rest refused.
    fn limited() -> Vec<Sample> {
        vec![ok(0, 2_000), rate(1), lost(2), lost(3)]
    }

    #[test]
    fn current_is_valid_and_scores_like_step() {
        let p = Policy::current();
        p.validate().unwrap();
        let obs = p.observe(&limited()).unwrap();
        assert_eq!(p.step(&obs), crate::step(&obs));
        assert_eq!(p.step(&obs).step, 1.0);
        assert!(p.in_dns(10.0, 1, None, 0) && !p.in_dns(9.9, 1, None, 0));
    }

    #[test]
    fn combine_modes_on_a_rate_limited_check() {
        let s = limited();
        let best = with(Combine::BestOf, 4).observe(&s).unwrap();
        assert!(!best.no_response && best.error.is_none());
        let first = with(Combine::FirstAnswer, 4).observe(&s).unwrap();
        assert_eq!(first.rtt, Some(0.002));
        let all = with(Combine::AllMustAnswer, 4).observe(&s).unwrap();
        assert!(all.no_response, "{all:?}");
        // Only the first two used: no loss, but a RATE.
        let all2 = with(Combine::AllMustAnswer, 2).observe(&s).unwrap();
        assert_eq!(all2.error.as_deref(), Some("RATE"));
        // First sample only: clean under every mode.
        for c in [
            Combine::BestOf,
            Combine::FirstAnswer,
            Combine::AllMustAnswer,
        ] {
            assert!(with(c, 1).observe(&s).unwrap().error.is_none());
        }
        assert_eq!(with(Combine::BestOf, 4).observe(&[]), None);
    }

    #[test]
    fn first_answer_takes_a_kod_and_falls_back_to_none() {
        let s = vec![lost(0), rate(1), ok(2, 1_000)];
        let o = with(Combine::FirstAnswer, 4).observe(&s).unwrap();
        assert_eq!(o.error.as_deref(), Some("RATE"));
        let o = with(Combine::FirstAnswer, 4)
            .observe(&[lost(0), lost(1)])
            .unwrap();
        assert!(o.no_response);
    }

    #[test]
    fn a_shorter_timeout_loses_slow_replies() {
        let s = vec![ok(0, 900_000), ok(1, 400_000)];
        let p = Policy {
            timeout: 0.5,
            ..Policy::current()
        };
        assert_eq!(p.observe(&s).unwrap().rtt, Some(0.4));
        let o = Policy { samples: 1, ..p }.observe(&s).unwrap();
        assert!(o.no_response);
        assert_eq!(o.error.as_deref(), Some("i/o timeout"));
    }

    #[test]
    fn steps_replace_rows() {
        let p = Policy {
            steps: StepTable {
                rate: Step {
                    step: -1.0,
                    cap: None,
                },
                ..StepTable::POOL
            },
            ..with(Combine::AllMustAnswer, 2)
        };
        let o = p.observe(&limited()).unwrap();
        assert_eq!(p.step(&o).step, -1.0);
        assert_eq!(crate::step(&o).step, -3.5);
    }

    #[test]
    fn every_preset_is_valid_and_named() {
        for (name, _) in Policy::PRESETS {
            let p = Policy::preset(name).unwrap();
            p.validate().unwrap();
            assert_eq!(p.name, *name);
        }
        assert_eq!(Policy::preset("current"), Some(Policy::current()));
        assert_eq!(Policy::preset("best-of-5"), None);
        let all = Policy::preset("all-must-answer").unwrap();
        assert!(all.observe(&limited()).unwrap().no_response);
    }

    #[test]
    fn validate_names_the_field() {
        let bad = [
            (
                Policy {
                    name: "".into(),
                    ..Policy::current()
                },
                "name",
            ),
            (
                Policy {
                    name: "a b".into(),
                    ..Policy::current()
                },
                "name",
            ),
            (
                Policy {
                    samples: 0,
                    ..Policy::current()
                },
                "samples",
            ),
            (
                Policy {
                    samples: 17,
                    ..Policy::current()
                },
                "samples",
            ),
            (
                Policy {
                    timeout: 0.0,
                    ..Policy::current()
                },
                "timeout",
            ),
            (
                Policy {
                    timeout: f64::NAN,
                    ..Policy::current()
                },
                "timeout",
            ),
            (
                Policy {
                    in_dns_threshold: f64::INFINITY,
                    ..Policy::current()
                },
                "in_dns_threshold",
            ),
            (
                Policy {
                    steps: StepTable {
                        rate: Step {
                            step: f64::NAN,
                            cap: None,
                        },
                        ..StepTable::POOL
                    },
                    ..Policy::current()
                },
                "steps.rate",
            ),
        ];
        for (p, field) in bad {
            assert_eq!(p.validate().unwrap_err().field, field, "{p:?}");
        }
    }
}
