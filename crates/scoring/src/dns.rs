//! Whether a server may be handed out in DNS.

use crate::IN_DNS_THRESHOLD;

/// Servers due for deletion leave DNS this long before, so clients move away
/// before the address stops answering.
const DELETION_GRACE_SECS: i64 = 14 * 86_400;

/// DNS inclusion rule: score ≥ 10, netspeed > 0 and no deletion scheduled
/// within the next 14 days (`deletion_on` in unix seconds).
pub fn in_dns(score: f64, netspeed: i64, deletion_on: Option<i64>, now: i64) -> bool {
    in_dns_from(IN_DNS_THRESHOLD, score, netspeed, deletion_on, now)
}

/// [`in_dns`] with another score threshold (a policy's).
pub(crate) fn in_dns_from(
    threshold: f64,
    score: f64,
    netspeed: i64,
    deletion_on: Option<i64>,
    now: i64,
) -> bool {
    // The pool keeps a server only while deletion_on > now + 14 days, so a
    // deletion exactly 14 days away already removes it.
    score >= threshold
        && netspeed > 0
        && deletion_on.is_none_or(|d| d > now.saturating_add(DELETION_GRACE_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        const NOW: i64 = 1_700_000_000;
        const DAY: i64 = 86_400;
        // (name, score, netspeed, deletion_on, expected)
        let cases = [
            ("good", 20.0, 1000, None, true),
            ("exactly threshold", 10.0, 1000, None, true),
            ("just below", 9.999, 1000, None, false),
            ("negative", -50.0, 1000, None, false),
            ("NaN score", f64::NAN, 1000, None, false),
            ("netspeed 0", 20.0, 0, None, false),
            ("netspeed negative", 20.0, -1, None, false),
            ("netspeed 1", 20.0, 1, None, true),
            (
                "deletion in 15 days",
                20.0,
                1000,
                Some(NOW + 15 * DAY),
                true,
            ),
            (
                "deletion 14 days + 1 s",
                20.0,
                1000,
                Some(NOW + 14 * DAY + 1),
                true,
            ),
            (
                "deletion exactly 14 days",
                20.0,
                1000,
                Some(NOW + 14 * DAY),
                false,
            ),
            ("deletion in 1 day", 20.0, 1000, Some(NOW + DAY), false),
            ("deletion past", 20.0, 1000, Some(NOW - DAY), false),
            ("deletion far future", 20.0, 1000, Some(i64::MAX), true),
        ];
        for (name, score, netspeed, deletion_on, want) in cases {
            assert_eq!(in_dns(score, netspeed, deletion_on, NOW), want, "{name}");
        }
        // Clock arithmetic must not overflow at the extremes.
        assert!(!in_dns(20.0, 1, Some(i64::MAX), i64::MAX));
    }
}
