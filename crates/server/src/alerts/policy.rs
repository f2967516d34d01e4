//! When to alert a server's account: a pure function of the server's
//! aggregate score, its alert state, the policy and the time.
//!
//! - **Armed**: only a server that has been seen at 10 or more is ever
//!   alerted. The first pass that sees it up creates its state row; a
//!   server that never reached 10 (a new one still being tested, or one
//!   that never worked) has no row and gets no alert.
//! - **Down** when an armed server's score is below 10 and its account has
//!   not been told so yet.
//! - **Reminder** while it stays down: the first `first_reminder` (24 h)
//!   after the down alert, then each gap doubled (48 h, 96 h, …) up to
//!   `max_reminder_gap` (7 days), at most `max_reminders` (5) per episode.
//!   With the defaults: 1, 3, 7, 14 and 21 days after the down alert.
//! - **Recovered** when the score is 10 or more again after a down alert.
//! - **At most one message per `min_interval`** (1 h) per server, counting
//!   every delivery attempt, failed ones too (a timed-out send may have
//!   arrived). Whatever is due waits for the interval to pass: a recovery
//!   inside it waits, and when the server falls again meanwhile nothing is
//!   sent at all (the account was last told "down", which is true again).
//!   A failed delivery is therefore retried on the first pass after the
//!   interval, if it is then still due.
//! - A server that has no score yet is left alone.

use store::{AlertKind, AlertState};

/// The score from which a server is in the pool (and no longer "down").
pub const THRESHOLD: f64 = scoring::IN_DNS_THRESHOLD;

/// How often an account may hear about one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPolicy {
    /// At most one message per server this often (seconds).
    pub min_interval_s: i64,
    /// The first reminder this long after the down alert (seconds).
    pub first_reminder_s: i64,
    /// Gaps between reminders double up to this (seconds).
    pub max_reminder_gap_s: i64,
    /// Reminders per down episode; 0 = none.
    pub max_reminders: i64,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            min_interval_s: 3600,
            first_reminder_s: 24 * 3600,
            max_reminder_gap_s: 7 * 24 * 3600,
            max_reminders: 5,
        }
    }
}

impl AlertPolicy {
    /// The wait after the last down/reminder message before reminder
    /// number `sent + 1`.
    pub fn reminder_gap(&self, sent: i64) -> i64 {
        let mut gap = self.first_reminder_s.max(0);
        for _ in 0..sent.clamp(0, 62) {
            gap = gap.saturating_mul(2);
            if gap >= self.max_reminder_gap_s {
                break;
            }
        }
        gap.min(self.max_reminder_gap_s.max(self.first_reminder_s))
    }
}

/// What the policy looks at for one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Input<'a> {
    /// The aggregate score.
    pub score: f64,
    /// Whether the server has been scored at all.
    pub scored: bool,
    /// Its stored state; None: never seen up.
    pub state: Option<&'a AlertState>,
    /// The newest delivery attempt, successful or not.
    pub last_attempt_at: Option<i64>,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The message to send, if any.
    pub send: Option<AlertKind>,
    /// The state to keep when nothing is delivered (None: no row). After a
    /// delivery keep [`after_sent`] of it instead.
    pub state: Option<AlertState>,
}

/// Decide for one server at `now` (unix seconds).
pub fn decide(input: &Input<'_>, policy: &AlertPolicy, now: i64) -> Decision {
    let keep = Decision {
        send: None,
        state: input.state.cloned(),
    };
    if !input.scored || input.score.is_nan() {
        return keep;
    }
    let up = input.score >= THRESHOLD;
    let Some(prev) = input.state else {
        // Armed from the first time it is seen up.
        return Decision {
            send: None,
            state: up.then(AlertState::default),
        };
    };
    let last = match (prev.last_sent_at, input.last_attempt_at) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let quiet = last.is_none_or(|t| now - t >= policy.min_interval_s);
    let told_down = matches!(
        prev.last_kind,
        Some(AlertKind::Down) | Some(AlertKind::Reminder)
    );
    let mut state = prev.clone();
    let send = if up {
        state.down_since = None;
        (told_down && quiet).then_some(AlertKind::Recovered)
    } else {
        state.down_since = Some(prev.down_since.unwrap_or(now));
        if !told_down {
            quiet.then_some(AlertKind::Down)
        } else {
            let due = prev.reminders < policy.max_reminders
                && prev
                    .last_sent_at
                    .is_some_and(|t| now - t >= policy.reminder_gap(prev.reminders));
            (due && quiet).then_some(AlertKind::Reminder)
        }
    };
    Decision {
        send,
        state: Some(state),
    }
}

/// The state after `kind` was delivered (by at least one channel) at `now`.
pub fn after_sent(state: Option<AlertState>, kind: AlertKind, now: i64) -> AlertState {
    let mut s = state.unwrap_or_default();
    s.last_sent_at = Some(now);
    s.last_kind = Some(kind);
    s.reminders = match kind {
        AlertKind::Reminder => s.reminders + 1,
        AlertKind::Down | AlertKind::Recovered => 0,
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000;
    const H: i64 = 3600;
    const D: i64 = 86_400;

    fn st(down_since: Option<i64>, sent: Option<(i64, AlertKind)>, reminders: i64) -> AlertState {
        AlertState {
            down_since,
            last_sent_at: sent.map(|s| s.0),
            last_kind: sent.map(|s| s.1),
            reminders,
        }
    }

    use AlertKind::{Down, Recovered, Reminder};

    #[test]
    fn reminder_schedule() {
        let p = AlertPolicy::default();
        let gaps: Vec<i64> = (0..6).map(|n| p.reminder_gap(n) / H).collect();
        assert_eq!(gaps, [24, 48, 96, 168, 168, 168]);
        assert_eq!(p.reminder_gap(1000), 7 * D);
        let odd = AlertPolicy {
            first_reminder_s: 10 * D,
            ..AlertPolicy::default()
        };
        assert_eq!(odd.reminder_gap(0), 10 * D, "a long first gap is kept");
        assert_eq!(odd.reminder_gap(3), 10 * D);
    }

    #[test]
    fn table() {
        let p = AlertPolicy::default();
        // (what, score, scored, state, last attempt, now, send, new state)
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            f64,
            bool,
            Option<AlertState>,
            Option<i64>,
            i64,
            Option<AlertKind>,
            Option<AlertState>,
        )> = vec![
            ("unscored: nothing", 0.0, false, None, None, T, None, None),
            (
                "new and low: never armed",
                3.0,
                true,
                None,
                None,
                T,
                None,
                None,
            ),
            (
                "first time up: armed",
                12.0,
                true,
                None,
                None,
                T,
                None,
                Some(st(None, None, 0)),
            ),
            (
                "exactly 10 is up",
                10.0,
                true,
                None,
                None,
                T,
                None,
                Some(st(None, None, 0)),
            ),
            (
                "armed and up: nothing",
                15.0,
                true,
                Some(st(None, None, 0)),
                None,
                T,
                None,
                Some(st(None, None, 0)),
            ),
            (
                "armed, falls: down",
                9.9,
                true,
                Some(st(None, None, 0)),
                None,
                T,
                Some(Down),
                Some(st(Some(T), None, 0)),
            ),
            (
                "down already told: nothing before the reminder",
                2.0,
                true,
                Some(st(Some(T), Some((T, Down)), 0)),
                Some(T),
                T + 23 * H,
                None,
                Some(st(Some(T), Some((T, Down)), 0)),
            ),
            (
                "first reminder at 24 h",
                2.0,
                true,
                Some(st(Some(T), Some((T, Down)), 0)),
                Some(T),
                T + D,
                Some(Reminder),
                Some(st(Some(T), Some((T, Down)), 0)),
            ),
            (
                "second reminder waits 48 h",
                2.0,
                true,
                Some(st(Some(T), Some((T + D, Reminder)), 1)),
                Some(T + D),
                T + D + 47 * H,
                None,
                Some(st(Some(T), Some((T + D, Reminder)), 1)),
            ),
            (
                "second reminder at 48 h",
                2.0,
                true,
                Some(st(Some(T), Some((T + D, Reminder)), 1)),
                Some(T + D),
                T + 3 * D,
                Some(Reminder),
                Some(st(Some(T), Some((T + D, Reminder)), 1)),
            ),
            (
                "no more than max_reminders",
                2.0,
                true,
                Some(st(Some(T), Some((T, Reminder)), 5)),
                Some(T),
                T + 100 * D,
                None,
                Some(st(Some(T), Some((T, Reminder)), 5)),
            ),
            (
                "back up after a down alert: recovered",
                14.0,
                true,
                Some(st(Some(T), Some((T, Down)), 0)),
                Some(T),
                T + 2 * H,
                Some(Recovered),
                Some(st(None, Some((T, Down)), 0)),
            ),
            (
                "recovery inside the interval waits",
                14.0,
                true,
                Some(st(Some(T), Some((T, Down)), 0)),
                Some(T),
                T + 10 * 60,
                None,
                Some(st(None, Some((T, Down)), 0)),
            ),
            (
                "falls again before the recovery went out: nothing",
                4.0,
                true,
                Some(st(None, Some((T, Down)), 0)),
                Some(T),
                T + 30 * 60,
                None,
                Some(st(Some(T + 30 * 60), Some((T, Down)), 0)),
            ),
            (
                "falls again soon after a recovery: down waits",
                4.0,
                true,
                Some(st(None, Some((T, Recovered)), 0)),
                Some(T),
                T + 59 * 60,
                None,
                Some(st(Some(T + 59 * 60), Some((T, Recovered)), 0)),
            ),
            (
                "... and goes out when the interval has passed",
                4.0,
                true,
                Some(st(Some(T + 59 * 60), Some((T, Recovered)), 0)),
                Some(T),
                T + H,
                Some(Down),
                Some(st(Some(T + 59 * 60), Some((T, Recovered)), 0)),
            ),
            (
                "a failed attempt holds the next one for the interval",
                4.0,
                true,
                Some(st(Some(T), None, 0)),
                Some(T + 10),
                T + 10 + H - 1,
                None,
                Some(st(Some(T), None, 0)),
            ),
            (
                "... then it is retried",
                4.0,
                true,
                Some(st(Some(T), None, 0)),
                Some(T + 10),
                T + 10 + H,
                Some(Down),
                Some(st(Some(T), None, 0)),
            ),
            (
                "up without having been told down: nothing",
                18.0,
                true,
                Some(st(Some(T), Some((T - D, Recovered)), 0)),
                Some(T - D),
                T + 5,
                None,
                Some(st(None, Some((T - D, Recovered)), 0)),
            ),
            (
                "unscored keeps the state",
                0.0,
                false,
                Some(st(Some(T), Some((T, Down)), 0)),
                Some(T),
                T + 9 * D,
                None,
                Some(st(Some(T), Some((T, Down)), 0)),
            ),
        ];
        for (what, score, scored, state, last_attempt_at, now, send, new_state) in cases {
            let d = decide(
                &Input {
                    score,
                    scored,
                    state: state.as_ref(),
                    last_attempt_at,
                },
                &p,
                now,
            );
            assert_eq!(d.send, send, "{what}");
            assert_eq!(d.state, new_state, "{what}");
        }
    }

    #[test]
    fn after_sending() {
        let down = after_sent(Some(st(Some(T), None, 0)), Down, T);
        assert_eq!(down, st(Some(T), Some((T, Down)), 0));
        let r1 = after_sent(Some(down), Reminder, T + D);
        assert_eq!(r1, st(Some(T), Some((T + D, Reminder)), 1));
        let r2 = after_sent(Some(r1), Reminder, T + 3 * D);
        assert_eq!(r2.reminders, 2);
        let up = after_sent(
            Some(AlertState {
                down_since: None,
                ..r2
            }),
            Recovered,
            T + 4 * D,
        );
        assert_eq!(up, st(None, Some((T + 4 * D, Recovered)), 0));
    }

    #[test]
    fn a_whole_episode_with_the_defaults() {
        // Down at T, reminders at 1, 3, 7, 14 and 21 days, then silence,
        // recovery on day 30; passes every 10 minutes.
        let p = AlertPolicy::default();
        let mut state: Option<AlertState> = Some(AlertState::default());
        let mut sent = Vec::new();
        let mut now = T;
        while now < T + 31 * D {
            let score = if now < T + 30 * D { 1.0 } else { 15.0 };
            let d = decide(
                &Input {
                    score,
                    scored: true,
                    state: state.as_ref(),
                    last_attempt_at: state.as_ref().and_then(|s| s.last_sent_at),
                },
                &p,
                now,
            );
            state = match d.send {
                Some(k) => {
                    sent.push((k, (now - T) / H));
                    Some(after_sent(d.state, k, now))
                }
                None => d.state,
            };
            now += 600;
        }
        assert_eq!(
            sent,
            [
                (Down, 0),
                (Reminder, 24),
                (Reminder, 72),
                (Reminder, 168),
                (Reminder, 336),
                (Reminder, 504),
                (Recovered, 720),
            ]
        );
    }
}
