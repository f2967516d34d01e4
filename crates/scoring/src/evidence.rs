//! What the samples say (issue 15): over a window of one server's checks,
//! per monitor and overall, how often each sample position was answered,
//! which KoD codes came back at which position, the spread of round trips,
//! and a verdict an operator can act on.
//!
//! The rules, in order (first match wins), over the monitors with at least
//! [`MIN_CHECKS`] checks (the *judged* monitors):
//!
//! 1. no judged monitor → `not-enough-data`;
//! 2. a `RATE` KoD anywhere, or *position-dependent* loss (the first
//!    sample answered far more often than the later ones,
//!    [`RATE_LATER_SHARE`] and [`RATE_Z`]) at a strict majority of judged
//!    monitors → `rate-limited`.
//!    A limiter counts per client, so every monitor sees it alike;
//! 3. every judged monitor answers at most [`NO_ANSWER_RATE`] of its
//!    samples → `no-answers` (down for everyone is not path loss);
//! 4. every judged monitor loses at most [`CLEAN_LOSS`] → `clean`;
//! 5. the losing monitors (loss above [`CLEAN_LOSS`]) are at most half of
//!    the judged ones and at least one judged monitor is clean →
//!    `path-loss` (the server answers; some paths to it drop packets);
//! 6. else → `random-loss` (lost at most monitors, whatever the position).
//!
//! A KoD reply is not an answer here: it is counted under its code, so a
//! limiter that kisses later samples shows the same falling answer rate as
//! one that stays silent. Pure: no I/O, no clock.

use crate::Sample;
use serde::Serialize;
use std::collections::BTreeMap;

/// Checks a monitor needs before its own samples are judged. With 4
/// samples a check, 8 checks give 8 first samples against 24 later ones:
/// enough for [`RATE_Z`] to tell a limiter (z ≈ 5.7 at 8 checks) from a
/// monitor losing half of everything at random (z rarely above 2), and
/// few enough that a testing monitor (one check in 45 min) counts within a
/// day.
pub const MIN_CHECKS: u32 = 8;

/// Loss is position-dependent when the later samples' answer rate is at
/// most this share of the first sample's. ntpd's `discard average 3
/// minimum 2` lets at most one of the three later samples of a check 2 s
/// apart through (a share of ⅓ or less, 0 when it answers the first only),
/// also when monitors behind one address share its budget and the first
/// sample is refused too; random loss keeps the share near 1.
pub const RATE_LATER_SHARE: f64 = 0.5;

/// … and the difference must be significant: a two-proportion z score
/// (first vs later samples, pooled variance) of at least this. 3 keeps a
/// monitor with few checks and random loss from reading as a limiter by
/// chance (about one in a thousand), while a limiter answering every first
/// sample scores 5 or more from [`MIN_CHECKS`] on.
pub const RATE_Z: f64 = 3.0;

/// Share of a monitor's samples that may go unanswered while it still sees
/// the server clean: one or two stray lost packets in 10–30 checks of 4
/// samples (2.5–5 %) are the internet, not the server or its path.
pub const CLEAN_LOSS: f64 = 0.1;

/// At or below this answer rate a monitor gets (almost) nothing: when every
/// judged monitor is there the server is down or refusing everyone, which
/// is neither path loss nor random loss.
pub const NO_ANSWER_RATE: f64 = 0.05;

/// The KoD code that says "you ask too often".
pub const RATE_KOD: &str = "RATE";

/// What the samples say about a server (or, per monitor, about its view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    NotEnoughData,
    Clean,
    RateLimited,
    PathLoss,
    RandomLoss,
    NoAnswers,
}

impl Verdict {
    /// The verdict's name in the API and on pages.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotEnoughData => "not-enough-data",
            Verdict::Clean => "clean",
            Verdict::RateLimited => "rate-limited",
            Verdict::PathLoss => "path-loss",
            Verdict::RandomLoss => "random-loss",
            Verdict::NoAnswers => "no-answers",
        }
    }

    /// One sentence for the server's operator.
    pub fn explain(self) -> &'static str {
        match self {
            Verdict::NotEnoughData => {
                "Too few checks in this window to say how the server answers; look again after more checks."
            }
            Verdict::Clean => {
                "The server answers every sample of its checks, at every monitor, apart from a stray lost packet."
            }
            Verdict::RateLimited => {
                "The server answers the first sample of a check but refuses or ignores the later ones (or sends RATE kiss-o'-death packets): it rate-limits the monitors, so loosen its rate limit (e.g. ntpd's `discard`/`limited`) for them."
            }
            Verdict::PathLoss => {
                "Some monitors lose samples while others see the server clean: the loss is on the network paths to those monitors, not in the server."
            }
            Verdict::RandomLoss => {
                "Samples are lost at most monitors whatever their position in the check: the server or its own network drops packets."
            }
            Verdict::NoAnswers => {
                "No monitor gets answers from the server: it is down, unreachable or refusing everyone."
            }
        }
    }
}

/// One sample position over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PositionStats {
    /// 0-based position in the check.
    pub position: u8,
    /// Samples sent at this position (a check stopped by DENY sends fewer).
    pub sent: u32,
    /// Replies without KoD or error.
    pub answered: u32,
    /// KoD replies by code.
    pub kod: BTreeMap<String, u32>,
}

impl PositionStats {
    /// `answered / sent`; `None` when nothing was sent.
    pub fn answer_rate(&self) -> Option<f64> {
        (self.sent > 0).then(|| f64::from(self.answered) / f64::from(self.sent))
    }
}

/// Round trips of the answered samples, µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RttSpread {
    pub count: u32,
    pub min_us: u32,
    /// The lower median.
    pub median_us: u32,
    /// Nearest rank.
    pub p90_us: u32,
    pub max_us: u32,
}

impl RttSpread {
    /// `None` for no round trips.
    pub fn of(mut rtts: Vec<u32>) -> Option<RttSpread> {
        if rtts.is_empty() {
            return None;
        }
        rtts.sort_unstable();
        let n = rtts.len();
        // Nearest rank: the smallest value with at least p of the values
        // at or below it.
        let rank = |p: f64| ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        Some(RttSpread {
            count: u32::try_from(n).unwrap_or(u32::MAX),
            min_us: rtts[0],
            median_us: rtts[(n - 1) / 2],
            p90_us: rtts[rank(0.9)],
            max_us: rtts[n - 1],
        })
    }
}

/// Counts over a set of checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub checks: u32,
    /// By position, 0 first.
    pub positions: Vec<PositionStats>,
    pub rtt: Option<RttSpread>,
}

/// A KoD: a reply whose error is a 4-character code (`RATE`, `DENY`, …);
/// socket errors are words and come without a reply.
fn kod_code(s: &Sample) -> Option<&str> {
    let e = s.error.as_deref()?;
    (s.answered && e.len() == 4 && e.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(e)
}

impl Stats {
    fn add(&mut self, samples: &[Sample], rtts: &mut Vec<u32>) {
        self.checks += 1;
        for s in samples {
            let p = usize::from(s.position);
            while self.positions.len() <= p {
                let position = u8::try_from(self.positions.len()).unwrap_or(u8::MAX);
                self.positions.push(PositionStats {
                    position,
                    ..PositionStats::default()
                });
            }
            let at = &mut self.positions[p];
            at.sent += 1;
            if let Some(code) = kod_code(s) {
                *at.kod.entry(code.to_string()).or_default() += 1;
            } else if s.answered && s.error.is_none() {
                at.answered += 1;
                rtts.extend(s.rtt_us);
            }
        }
    }

    fn totals(&self) -> (u32, u32) {
        self.positions
            .iter()
            .fold((0, 0), |(s, a), p| (s + p.sent, a + p.answered))
    }

    /// Share of samples answered, over every position.
    pub fn answer_rate(&self) -> Option<f64> {
        let (sent, answered) = self.totals();
        (sent > 0).then(|| f64::from(answered) / f64::from(sent))
    }

    /// RATE KoDs at any position.
    pub fn rate_kods(&self) -> u32 {
        self.positions
            .iter()
            .filter_map(|p| p.kod.get(RATE_KOD))
            .sum()
    }

    /// The first sample answered significantly more often than the later
    /// ones ([`RATE_LATER_SHARE`], [`RATE_Z`]).
    pub fn position_dependent(&self) -> bool {
        let Some((first, later)) = self.positions.split_first() else {
            return false;
        };
        let (n0, a0) = (f64::from(first.sent), f64::from(first.answered));
        let (nl, al) = later.iter().fold((0.0, 0.0), |(n, a), p| {
            (n + f64::from(p.sent), a + f64::from(p.answered))
        });
        if n0 == 0.0 || nl == 0.0 {
            return false;
        }
        let (first_rate, later_rate) = (a0 / n0, al / nl);
        let pooled = (a0 + al) / (n0 + nl);
        let se = (pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / nl)).sqrt();
        // se is 0 only when every sample agrees: no dependence then.
        later_rate <= RATE_LATER_SHARE * first_rate
            && se > 0.0
            && (first_rate - later_rate) / se >= RATE_Z
    }

    /// This set of checks on its own: what one monitor sees. Path loss needs
    /// other monitors, so a losing monitor reads `random-loss` here.
    fn verdict(&self) -> Verdict {
        if self.checks < MIN_CHECKS {
            return Verdict::NotEnoughData;
        }
        let rate = self.answer_rate().unwrap_or(0.0);
        if self.rate_kods() > 0 || self.position_dependent() {
            Verdict::RateLimited
        } else if rate <= NO_ANSWER_RATE {
            Verdict::NoAnswers
        } else if 1.0 - rate <= CLEAN_LOSS {
            Verdict::Clean
        } else {
            Verdict::RandomLoss
        }
    }
}

/// One monitor's view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorEvidence {
    pub monitor_id: i64,
    #[serde(flatten)]
    pub stats: Stats,
    /// What this monitor's samples alone say.
    pub verdict: Verdict,
}

/// What the samples of one server over a window say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub verdict: Verdict,
    /// Every monitor's checks together.
    pub overall: Stats,
    /// By monitor id.
    pub monitors: Vec<MonitorEvidence>,
}

impl Evidence {
    /// From each check's monitor id and its samples (in position order),
    /// in any order of checks.
    pub fn from_checks<'a>(checks: impl IntoIterator<Item = (i64, &'a [Sample])>) -> Evidence {
        let mut overall = Stats::default();
        let mut all_rtts = Vec::new();
        let mut by_monitor: BTreeMap<i64, (Stats, Vec<u32>)> = BTreeMap::new();
        for (monitor_id, samples) in checks {
            overall.add(samples, &mut all_rtts);
            let (stats, rtts) = by_monitor.entry(monitor_id).or_default();
            stats.add(samples, rtts);
        }
        overall.rtt = RttSpread::of(all_rtts);
        let monitors: Vec<MonitorEvidence> = by_monitor
            .into_iter()
            .map(|(monitor_id, (mut stats, rtts))| {
                stats.rtt = RttSpread::of(rtts);
                let verdict = stats.verdict();
                MonitorEvidence {
                    monitor_id,
                    stats,
                    verdict,
                }
            })
            .collect();
        let verdict = verdict(&overall, &monitors);
        Evidence {
            verdict,
            overall,
            monitors,
        }
    }
}

/// The server's verdict: the rules of the module doc, in order.
fn verdict(overall: &Stats, monitors: &[MonitorEvidence]) -> Verdict {
    let judged: Vec<&MonitorEvidence> = monitors
        .iter()
        .filter(|m| m.verdict != Verdict::NotEnoughData)
        .collect();
    if judged.is_empty() {
        return Verdict::NotEnoughData;
    }
    let count = |v: Verdict| judged.iter().filter(|m| m.verdict == v).count();
    let limited = judged
        .iter()
        .filter(|m| m.stats.position_dependent())
        .count();
    if overall.rate_kods() > 0 || 2 * limited > judged.len() {
        return Verdict::RateLimited;
    }
    if count(Verdict::NoAnswers) == judged.len() {
        return Verdict::NoAnswers;
    }
    let clean = count(Verdict::Clean);
    if clean == judged.len() {
        return Verdict::Clean;
    }
    let losing = judged.len() - clean;
    if clean > 0 && 2 * losing <= judged.len() {
        Verdict::PathLoss
    } else {
        Verdict::RandomLoss
    }
}

#[cfg(test)]
mod tests;
