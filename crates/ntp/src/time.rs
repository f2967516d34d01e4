//! NTP timestamps (RFC 5905 §6): 32.32 fixed point seconds since 1900, with
//! era-aware conversion to and from Unix time.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix epoch).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
const FRAC: f64 = 4_294_967_296.0; // 2^32

/// A 64-bit NTP timestamp: 32 bits of seconds (mod 2^32, so the era is implicit)
/// and 32 bits of fraction.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The all-zero timestamp, which RFC 5905 reserves for "unknown".
    pub const ZERO: NtpTimestamp = NtpTimestamp(0);

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// Encode a Unix time given as whole seconds (may be negative) and nanoseconds.
    /// The era is dropped, as on the wire.
    pub fn from_unix(secs: i64, nanos: u32) -> Self {
        let ntp_secs = (secs as i128 + NTP_UNIX_OFFSET as i128).rem_euclid(1 << 32) as u64;
        let frac = ((nanos as u64) << 32) / 1_000_000_000;
        NtpTimestamp((ntp_secs << 32) | frac)
    }

    /// Encode a `SystemTime` (any era).
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self::from_unix(d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => {
                let d = e.duration();
                let (mut s, mut n) = (-(d.as_secs() as i64), d.subsec_nanos());
                if n > 0 {
                    s -= 1;
                    n = 1_000_000_000 - n;
                }
                Self::from_unix(s, n)
            }
        }
    }

    /// Unix time in seconds, taking the era that puts this timestamp within
    /// ±68 years of `pivot` (normally the local clock when the packet was
    /// received). This is RFC 5905's rule for resolving the era.
    pub fn to_unix_near(self, pivot: SystemTime) -> f64 {
        let p = NtpTimestamp::from_system_time(pivot);
        let pivot_unix = unix_seconds(pivot);
        pivot_unix + self.diff(p)
    }

    /// Unix time in seconds for an explicit era (era 0 is 1900–2036, era 1 starts 2036-02-07).
    pub fn to_unix_in_era(self, era: i32) -> f64 {
        let secs = era as f64 * FRAC + self.seconds() as f64 - NTP_UNIX_OFFSET as f64;
        secs + self.fraction() as f64 / FRAC
    }

    /// `self − other` in seconds, correct across an era boundary as long as the
    /// two are within 68 years of each other (wrapping 64-bit arithmetic).
    pub fn diff(self, other: NtpTimestamp) -> f64 {
        (self.0.wrapping_sub(other.0) as i64) as f64 / FRAC
    }
}

impl std::ops::Add<Duration> for NtpTimestamp {
    type Output = NtpTimestamp;

    /// This timestamp moved forward by a duration (wrapping into the next era).
    fn add(self, d: Duration) -> Self {
        let ticks = (d.as_secs() << 32) + ((d.subsec_nanos() as u64) << 32) / 1_000_000_000;
        NtpTimestamp(self.0.wrapping_add(ticks))
    }
}

/// Seconds since the Unix epoch as f64 (negative before 1970).
pub fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// NTP short format (16.16 fixed point), used for root delay and dispersion.
pub fn short_to_seconds(v: u32) -> f64 {
    v as f64 / 65536.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_is_ntp_2208988800() {
        assert_eq!(
            NtpTimestamp::from_unix(0, 0).seconds() as u64,
            NTP_UNIX_OFFSET
        );
    }

    #[test]
    fn era_table() {
        // (unix seconds, ntp seconds field, era)
        let cases: &[(i64, u32, i32)] = &[
            (0, 2_208_988_800, 0),
            (-2_208_988_800, 0, 0),            // 1900-01-01, start of era 0
            (2_085_978_495, u32::MAX, 0),      // 2036-02-07 06:28:15, last second of era 0
            (2_085_978_496, 0, 1),             // first second of era 1
            (1_798_761_600, 4_007_750_400, 0), // 2027-01-01
        ];
        for &(unix, ntp, era) in cases {
            let ts = NtpTimestamp::from_unix(unix, 0);
            assert_eq!(ts.seconds(), ntp, "unix {unix}");
            assert_eq!(ts.to_unix_in_era(era), unix as f64, "unix {unix}");
            let pivot = UNIX_EPOCH + Duration::from_secs(2_085_978_496 - 1000);
            if (unix - 2_085_978_496).abs() < 1_000_000 {
                assert_eq!(
                    ts.to_unix_near(pivot),
                    unix as f64,
                    "near pivot, unix {unix}"
                );
            }
        }
    }

    #[test]
    fn diff_crosses_era_boundary() {
        let before = NtpTimestamp::from_unix(2_085_978_495, 500_000_000);
        let after = NtpTimestamp::from_unix(2_085_978_496, 250_000_000);
        assert!((after.diff(before) - 0.75).abs() < 1e-9);
        assert!((before.diff(after) + 0.75).abs() < 1e-9);
    }

    #[test]
    fn fraction_precision() {
        let ts = NtpTimestamp::from_unix(1_700_000_000, 123_456_789);
        let back = ts.to_unix_near(SystemTime::now());
        assert!((back - 1_700_000_000.123_456_8).abs() < 1e-6);
    }

    #[test]
    fn add_duration() {
        let ts = NtpTimestamp::from_unix(100, 0) + Duration::from_millis(1500);
        assert!((ts.diff(NtpTimestamp::from_unix(100, 0)) - 1.5).abs() < 1e-9);
    }
}
