//! One query of a check as kept (issue 15), and the monitor's rule for the
//! best sample, over stored samples: what a replayed policy sees.

use crate::Observation;
use serde::{Deserialize, Serialize};

/// One query of a check. The store keeps it packed (`store::samples`), the
/// agent sends it as `api::Sample`, and policies and analyses read it here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// 0-based position in the check; stored by order.
    pub position: u8,
    /// Milliseconds after the check's first query (at most 65 535).
    pub send_ms: u16,
    /// A reply came (a KoD reply counts as answered).
    pub answered: bool,
    /// Round trip, microseconds.
    pub rtt_us: Option<u32>,
    /// Server clock minus ours, seconds (stored as f32).
    pub offset: Option<f64>,
    pub stratum: Option<u8>,
    pub leap: Option<u8>,
    /// KoD code or socket error, as the log row's `error`.
    pub error: Option<String>,
}

impl Sample {
    /// The best-sample order of the monitor (DESIGN.md "Best sample", the
    /// agent's `ntp::check::compare`): a reply without error, then a reply
    /// with one, then no reply.
    pub fn rank(&self) -> u8 {
        match (self.answered, self.error.is_some()) {
            (true, false) => 0,
            (true, true) => 1,
            (false, _) => 2,
        }
    }

    /// Round trip in seconds.
    pub fn rtt(&self) -> Option<f64> {
        self.rtt_us.map(|us| f64::from(us) / 1e6)
    }

    /// What a monitor submits when this sample is the one it reports.
    pub fn observation(&self) -> Observation {
        Observation {
            offset: self.offset,
            rtt: self.rtt(),
            stratum: self.stratum,
            leap: self.leap,
            error: self.error.clone(),
            no_response: !self.answered,
        }
    }
}

/// Index of the best sample (the first of equals: lower rank, then lower
/// rtt, unknown rtt last), `None` for no samples.
pub fn best_index(samples: &[Sample]) -> Option<usize> {
    samples
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| {
            a.rank().cmp(&b.rank()).then_with(|| {
                let ra = a.rtt_us.map_or(f64::INFINITY, f64::from);
                let rb = b.rtt_us.map_or(f64::INFINITY, f64::from);
                ra.total_cmp(&rb)
            })
        })
        .map(|(i, _)| i)
}

/// Samples the crate's tests build checks from.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::Sample;

    /// An answer at `position` (2 s apart), 1 ms off, stratum 2.
    pub fn answered(position: u8, rtt_us: u32) -> Sample {
        Sample {
            position,
            send_ms: u16::from(position) * 2000,
            answered: true,
            rtt_us: Some(rtt_us),
            offset: Some(0.001),
            stratum: Some(2),
            leap: Some(0),
            error: None,
        }
    }

    /// No reply: `i/o timeout`.
    pub fn lost(position: u8) -> Sample {
        Sample {
            position,
            send_ms: u16::from(position) * 2000,
            error: Some("i/o timeout".into()),
            ..Sample::default()
        }
    }

    /// A `RATE` kiss-o'-death.
    pub fn rate(position: u8) -> Sample {
        Sample {
            answered: true,
            rtt_us: Some(900),
            stratum: Some(0),
            leap: Some(3),
            error: Some("RATE".into()),
            ..lost(position)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(position: u8, answered: bool, rtt_us: Option<u32>, error: Option<&str>) -> Sample {
        Sample {
            position,
            answered,
            rtt_us,
            error: error.map(str::to_string),
            ..Sample::default()
        }
    }

    #[test]
    fn best_follows_the_monitor_rule() {
        let timeout = s(0, false, None, Some("i/o timeout"));
        let rate = s(1, true, Some(900), Some("RATE"));
        let slow = s(2, true, Some(5_000), None);
        let fast = s(3, true, Some(1_000), None);
        assert_eq!(best_index(&[]), None);
        assert_eq!(best_index(std::slice::from_ref(&timeout)), Some(0));
        assert_eq!(best_index(&[timeout.clone(), rate.clone()]), Some(1));
        assert_eq!(
            best_index(&[timeout.clone(), rate.clone(), slow.clone()]),
            Some(2)
        );
        assert_eq!(best_index(&[timeout, rate, slow, fast.clone()]), Some(3));
        // The first of equals wins.
        assert_eq!(best_index(&[fast.clone(), fast]), Some(0));
    }

    #[test]
    fn observation_carries_the_sample() {
        let o = s(0, true, Some(12_500), None).observation();
        assert_eq!(o.rtt, Some(0.0125));
        assert!(!o.no_response);
        let o = s(0, false, None, Some("i/o timeout")).observation();
        assert!(o.no_response);
        assert_eq!(o.error.as_deref(), Some("i/o timeout"));
    }
}
