//! The step table: what one observation is worth, and how it moves a
//! monitor's score.

use serde::{Deserialize, Serialize};

/// One monitor's observation of one server, as submitted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Observation {
    /// Server clock minus ours, seconds.
    pub offset: Option<f64>,
    /// Round-trip delay, seconds.
    pub rtt: Option<f64>,
    pub stratum: Option<u8>,
    pub leap: Option<u8>,
    /// Stable error code: a kiss code (`RATE`, `DENY`, `RSTR`, ...), a socket
    /// error (`i/o timeout`, `connection refused`) or `bad reply: <why>`.
    pub error: Option<String>,
    /// No usable reply arrived at all.
    pub no_response: bool,
}

/// The step an observation earns, and the ceiling the score is clamped to
/// afterwards when the case has one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub step: f64,
    pub cap: Option<f64>,
}

/// Weight of the previous score: the score is an exponential moving sum, so
/// a steady step `x` settles at `x / (1 - DECAY)` = 20·x.
const DECAY: f64 = 0.95;

/// How the agent reports a stratum-0 reply that carries no kiss code; it may
/// leave `stratum` unset on error replies, so the text alone must suffice.
const STRATUM0_NO_CODE: &str = "bad reply: stratum 0 without kiss code";

const fn plain(step: f64) -> Step {
    Step { step, cap: None }
}

const fn capped(step: f64, cap: f64) -> Step {
    Step {
        step,
        cap: Some(cap),
    }
}

/// A kiss code is 1–4 printable ASCII characters; socket errors and
/// `bad reply: ...` always contain a space, so they never qualify.
fn is_kiss_code(e: &str) -> bool {
    (1..=4).contains(&e.len()) && e.bytes().all(|c| (0x21..=0x7e).contains(&c))
}

/// The fixed rows of the step table (DESIGN.md "Scores"); the offset curve
/// between 0 and 0.75 s is not a row. A policy (`crate::policy`) may
/// replace any of them to ask "what if".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StepTable {
    pub no_response: Step,
    /// KoD `RATE`.
    pub rate: Step,
    /// KoD `DENY` or `RSTR`.
    pub deny: Step,
    /// Stratum 0 without a kiss code: unsynchronised but answering.
    pub unsynchronised: Step,
    /// Any other error (or no offset).
    pub error: Step,
    /// |offset| > 3 s.
    pub offset_over_3s: Step,
    /// Stratum ≥ 8.
    pub high_stratum: Step,
    /// |offset| > 0.75 s.
    pub offset_over_750ms: Step,
}

impl StepTable {
    /// The pool's current table.
    pub const POOL: StepTable = StepTable {
        no_response: plain(-5.0),
        rate: plain(-3.5),
        // Access refused: sink fast and far so it takes long to come back.
        deny: capped(-10.0, -50.0),
        // Never good enough for DNS.
        unsynchronised: capped(-2.0, 5.0),
        error: plain(-4.0),
        // A clock this wrong would actively harm clients: keep it well down.
        offset_over_3s: capped(-4.0, -20.0),
        high_stratum: plain(-4.0),
        offset_over_750ms: plain(-2.0),
    };
}

impl Default for StepTable {
    fn default() -> Self {
        Self::POOL
    }
}

/// The step table (DESIGN.md "Scores"): the first matching row wins.
pub fn step(obs: &Observation) -> Step {
    step_with(&StepTable::POOL, obs)
}

/// [`step`] with other fixed rows.
pub fn step_with(t: &StepTable, obs: &Observation) -> Step {
    // An empty string is how some encoders spell "no error".
    let error = obs.error.as_deref().filter(|e| !e.is_empty());
    // NaN or infinite offsets are meaningless measurements, not huge ones.
    let offset = obs.offset.filter(|o| o.is_finite());

    if obs.no_response {
        return t.no_response;
    }
    match error {
        Some("RATE") => return t.rate,
        Some("DENY" | "RSTR") => return t.deny,
        _ => {}
    }
    let stratum0_no_code = match error {
        Some(e) if e == STRATUM0_NO_CODE => true,
        Some(e) => obs.stratum == Some(0) && !is_kiss_code(e),
        None => obs.stratum == Some(0),
    };
    if stratum0_no_code {
        return t.unsynchronised;
    }
    let Some(offset) = offset.filter(|_| error.is_none()) else {
        return t.error;
    };
    let s = offset.abs();
    if s > 3.0 {
        return t.offset_over_3s;
    }
    if obs.stratum.is_some_and(|st| st >= 8) {
        return t.high_stratum;
    }
    if s > 0.75 {
        return t.offset_over_750ms;
    }
    // The rounded coefficients overshoot 1 just above 25 ms; without the
    // clamp a steady 26 ms would settle above MAX_SCORE.
    if s > 0.1 {
        return plain((-2.308 * s + 0.731).min(1.0));
    }
    if s > 0.025 {
        return plain((-6.667 * s + 1.167).min(1.0));
    }
    plain(1.0)
}

/// Apply one step: `prev·0.95 + step`, then clamp to the step's cap.
///
/// A NaN previous score (corrupt storage) restarts from 0, the score of a
/// new server, rather than poisoning every later value.
pub fn update(prev_score: f64, s: Step) -> f64 {
    let prev = if prev_score.is_nan() { 0.0 } else { prev_score };
    let raw = prev * DECAY + s.step;
    match s.cap {
        Some(cap) => raw.min(cap),
        None => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_SCORE;

    fn ok(offset: f64) -> Observation {
        Observation {
            offset: Some(offset),
            rtt: Some(0.010),
            stratum: Some(2),
            leap: Some(0),
            error: None,
            no_response: false,
        }
    }

    fn err(code: &str, stratum: Option<u8>) -> Observation {
        Observation {
            offset: None,
            stratum,
            error: Some(code.to_string()),
            ..ok(0.0)
        }
    }

    fn settle(obs: &Observation, start: f64, n: usize) -> f64 {
        (0..n).fold(start, |sc, _| update(sc, step(obs)))
    }

    #[test]
    fn pool_reference_values() {
        // (offset ms, expected step), from the pool's own test table.
        let cases = [
            (0.0, 1.0),
            (10.0, 1.0),
            (25.0, 1.0),
            (26.0, 0.993),
            (50.0, 0.833),
            (100.0, 0.5),
            (200.0, 0.270),
            (400.0, -0.192),
            (600.0, -0.654),
            (749.0, -0.998),
            (750.0, -1.0),
            (1000.0, -2.0),
        ];
        for (ms, want) in cases {
            for sign in [1.0, -1.0] {
                let got = step(&ok(sign * ms / 1000.0));
                assert!(
                    (got.step - want).abs() < 1e-3,
                    "{} ms: step {} want {want}",
                    sign * ms,
                    got.step
                );
                assert_eq!(got.cap, None, "{ms} ms");
            }
        }
    }

    #[test]
    fn boundaries() {
        // Exactly 25 ms is still full points; exactly 100 ms is 0.5 from
        // both formulas, so the switch between them has no jump.
        assert_eq!(step(&ok(0.025)).step, 1.0);
        assert!((step(&ok(0.1)).step - 0.5).abs() < 1e-3);
        assert!((step(&ok(0.100_000_1)).step - 0.5).abs() < 1e-3);
        assert!(step(&ok(0.025_000_1)).step <= 1.0);
        // Exactly 750 ms is still the linear row, exactly 3 s not yet capped.
        assert!((step(&ok(0.75)).step + 1.0).abs() < 1e-3);
        assert_eq!(step(&ok(3.0)), plain(-2.0));
        assert_eq!(step(&ok(3.000_001)), capped(-4.0, -20.0));
    }

    #[test]
    fn every_row_of_the_table() {
        let stratum0 = Observation {
            stratum: Some(0),
            ..ok(0.0)
        };
        let rows: Vec<(&str, Observation, Step)> = vec![
            (
                "no response",
                Observation {
                    no_response: true,
                    error: Some("i/o timeout".into()),
                    ..ok(0.0)
                },
                plain(-5.0),
            ),
            (
                "no response beats DENY",
                Observation {
                    no_response: true,
                    ..err("DENY", Some(0))
                },
                plain(-5.0),
            ),
            ("RATE", err("RATE", Some(0)), plain(-3.5)),
            ("RATE without stratum", err("RATE", None), plain(-3.5)),
            ("DENY", err("DENY", Some(0)), capped(-10.0, -50.0)),
            ("RSTR", err("RSTR", Some(0)), capped(-10.0, -50.0)),
            (
                "RSTR any stratum",
                err("RSTR", Some(3)),
                capped(-10.0, -50.0),
            ),
            ("stratum 0 no error", stratum0.clone(), capped(-2.0, 5.0)),
            (
                "stratum 0 bad reply",
                err(STRATUM0_NO_CODE, Some(0)),
                capped(-2.0, 5.0),
            ),
            (
                "stratum 0 bad reply, stratum unset",
                err(STRATUM0_NO_CODE, None),
                capped(-2.0, 5.0),
            ),
            (
                "stratum 0 empty error",
                Observation {
                    error: Some(String::new()),
                    ..stratum0.clone()
                },
                capped(-2.0, 5.0),
            ),
            ("other kiss code", err("INIT", Some(0)), plain(-4.0)),
            ("socket error", err("connection refused", None), plain(-4.0)),
            (
                "bad reply",
                err("bad reply: unsynchronized (leap 3)", Some(2)),
                plain(-4.0),
            ),
            (
                "error with an offset",
                Observation {
                    error: Some("bad stratum 16".into()),
                    ..ok(0.001)
                },
                plain(-4.0),
            ),
            (
                "offset none",
                Observation {
                    offset: None,
                    ..ok(0.0)
                },
                plain(-4.0),
            ),
            ("offset > 3 s", ok(5.0), capped(-4.0, -20.0)),
            ("offset < -3 s", ok(-5.0), capped(-4.0, -20.0)),
            (
                "offset > 3 s beats stratum",
                Observation {
                    stratum: Some(9),
                    ..ok(5.0)
                },
                capped(-4.0, -20.0),
            ),
            (
                "stratum 8",
                Observation {
                    stratum: Some(8),
                    ..ok(0.001)
                },
                plain(-4.0),
            ),
            (
                "stratum 7 is fine",
                Observation {
                    stratum: Some(7),
                    ..ok(0.001)
                },
                plain(1.0),
            ),
            ("offset > 750 ms", ok(1.5), plain(-2.0)),
            ("offset 300 ms", ok(0.3), plain(-2.308 * 0.3 + 0.731)),
            ("offset -60 ms", ok(-0.06), plain(-6.667 * 0.06 + 1.167)),
            ("offset 1 ms", ok(0.001), plain(1.0)),
            (
                "stratum unknown",
                Observation {
                    stratum: None,
                    ..ok(0.001)
                },
                plain(1.0),
            ),
        ];
        for (name, obs, want) in rows {
            assert_eq!(step(&obs), want, "{name}");
        }
    }

    #[test]
    fn non_finite_offsets_count_as_missing() {
        for o in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(step(&ok(o)), plain(-4.0), "{o}");
        }
    }

    #[test]
    fn kiss_codes() {
        let cases = [
            ("RATE", true),
            ("X", true),
            ("INIT", true),
            ("", false),
            ("TOOLONG", false),
            ("i/o timeout", false),
            ("A B", false),
            ("ÄB", false),
        ];
        for (s, want) in cases {
            assert_eq!(is_kiss_code(s), want, "{s:?}");
        }
    }

    #[test]
    fn update_rule() {
        let cases = [
            (0.0, plain(1.0), 1.0),
            (10.0, plain(-5.0), 4.5),
            (10.0, capped(-2.0, 5.0), 5.0),
            (2.0, capped(-2.0, 5.0), -0.1),
            (-100.0, capped(-10.0, -50.0), -105.0),
            (0.0, capped(-10.0, -50.0), -50.0),
            (f64::NAN, plain(1.0), 1.0),
        ];
        for (prev, s, want) in cases {
            let got = update(prev, s);
            assert!((got - want).abs() < 1e-9, "{prev} {s:?}: {got} want {want}");
        }
    }

    #[test]
    fn steady_states() {
        // (observation, start, expected score after 500 steps)
        let cases = [
            (ok(0.1), 0.0, 10.0),
            (ok(-0.1), 20.0, 10.0),
            (ok(0.0), 0.0, MAX_SCORE),
            (ok(0.0), -100.0, MAX_SCORE),
            (ok(0.05), 0.0, 16.67),
        ];
        for (obs, start, want) in cases {
            let got = settle(&obs, start, 500);
            assert!((got - want).abs() < 0.01, "{obs:?}: {got} want {want}");
        }
    }

    #[test]
    fn max_score_never_exceeded_by_good_results() {
        let mut sc = 0.0;
        for _ in 0..2000 {
            sc = update(sc, step(&ok(0.0)));
            assert!(sc <= MAX_SCORE, "{sc}");
        }
        // Just above 25 ms the raw formula exceeds 1; the clamp keeps it at 20.
        assert!(settle(&ok(0.025_001), MAX_SCORE, 2000) <= MAX_SCORE);
    }

    #[test]
    fn caps() {
        // Repeated DENY: at most -50 from the first result on.
        let deny = err("DENY", Some(0));
        let mut sc = MAX_SCORE;
        for _ in 0..200 {
            sc = update(sc, step(&deny));
            assert!(sc <= -50.0, "{sc}");
        }
        // An offset beyond 3 s pulls even a perfect server to -20 at once.
        assert_eq!(update(MAX_SCORE, step(&ok(3.5))), -20.0);
        assert_eq!(update(MAX_SCORE, step(&ok(-10.0))), -20.0);
        // Stratum 0 without a code: at most 5, i.e. out of DNS at once.
        let s0 = err(STRATUM0_NO_CODE, Some(0));
        assert_eq!(update(MAX_SCORE, step(&s0)), 5.0);
        assert!(settle(&s0, MAX_SCORE, 50) <= 5.0);
    }
}
