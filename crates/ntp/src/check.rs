//! A *check*: several samples of one server and the choice of the best one.
//! The types and the choice are pure; `client::check` runs them.

use crate::classify::ErrorCode;
use crate::packet::Packet;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::net::SocketAddr;
use std::time::Duration;

/// How to check a server. The central service sets these per monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckConfig {
    /// Queries per check.
    pub samples: u32,
    /// Time between the starts of two queries.
    pub sample_interval: Duration,
    /// How long to wait for each reply.
    pub timeout: Duration,
    /// Local address to send from (a monitor sends from its registered IP);
    /// `None` lets the system choose.
    pub source: Option<std::net::IpAddr>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            samples: 4,
            sample_interval: Duration::from_secs(2),
            timeout: Duration::from_secs(3),
            source: None,
        }
    }
}

/// One query and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Unix time (seconds) when the query was sent.
    pub ts: f64,
    /// Server clock minus ours, seconds; only for a usable reply.
    pub offset: Option<f64>,
    /// Round-trip time, seconds; absent when nothing came back.
    pub rtt: Option<f64>,
    pub stratum: Option<u8>,
    pub leap: Option<u8>,
    pub refid: Option<String>,
    pub error: Option<ErrorCode>,
    /// True when no acceptable reply arrived at all.
    pub no_response: bool,
    /// Every header field of the reply, when there was one.
    pub packet: Option<Packet>,
}

impl Sample {
    /// A sample for which no reply came.
    pub fn failed(ts: f64, error: ErrorCode) -> Sample {
        Sample {
            ts,
            offset: None,
            rtt: None,
            stratum: None,
            leap: None,
            refid: None,
            error: Some(error),
            no_response: true,
            packet: None,
        }
    }

    /// 0 = reply without error, 1 = reply with error, 2 = no reply.
    fn rank(&self) -> u8 {
        match (&self.error, self.no_response) {
            (None, _) => 0,
            (Some(_), false) => 1,
            (Some(_), true) => 2,
        }
    }
}

/// Order samples best first: a reply without error beats one with an error;
/// among errors a reply beats no reply; then the lowest rtt.
pub fn compare(a: &Sample, b: &Sample) -> Ordering {
    a.rank().cmp(&b.rank()).then_with(|| {
        let ra = a.rtt.unwrap_or(f64::INFINITY);
        let rb = b.rtt.unwrap_or(f64::INFINITY);
        ra.total_cmp(&rb)
    })
}

/// Index of the best sample (the first of equals), `None` for no samples.
pub fn best_index(samples: &[Sample]) -> Option<usize> {
    samples
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| compare(a, b))
        .map(|(i, _)| i)
}

/// What to do after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// `RATE`: wait this much longer than usual before the next query.
    BackOff(Duration),
    /// `DENY`/`RSTR`: the server asked us to stop.
    Stop,
}

/// The rule applied after each sample.
pub fn next_after(sample: &Sample, cfg: &CheckConfig) -> Next {
    match &sample.error {
        Some(e) if e.is_access_denied() => Next::Stop,
        Some(e) if e.is_rate() => Next::BackOff(cfg.sample_interval),
        _ => Next::Continue,
    }
}

/// The outcome of checking one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The server as given (host or host:port).
    pub server: String,
    pub addr: SocketAddr,
    pub samples: Vec<Sample>,
    /// Index into `samples` of the best sample.
    pub best: Option<usize>,
}

impl CheckResult {
    pub fn new(server: String, addr: SocketAddr, samples: Vec<Sample>) -> Self {
        let best = best_index(&samples);
        CheckResult {
            server,
            addr,
            samples,
            best,
        }
    }

    /// The best sample, the one a monitor reports.
    pub fn best_sample(&self) -> Option<&Sample> {
        self.best.and_then(|i| self.samples.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(rtt: f64) -> Sample {
        Sample {
            ts: 0.0,
            offset: Some(0.001),
            rtt: Some(rtt),
            stratum: Some(2),
            leap: Some(0),
            refid: None,
            error: None,
            no_response: false,
            packet: None,
        }
    }

    fn kod(code: &str, rtt: f64) -> Sample {
        Sample {
            offset: None,
            error: Some(ErrorCode::Kiss(code.into())),
            stratum: Some(0),
            ..ok(rtt)
        }
    }

    #[test]
    fn best_sample_table() {
        let timeout = Sample::failed(0.0, ErrorCode::Timeout);
        let cases: Vec<(&str, Vec<Sample>, Option<usize>)> = vec![
            ("empty", vec![], None),
            (
                "lowest rtt wins",
                vec![ok(0.03), ok(0.01), ok(0.02)],
                Some(1),
            ),
            ("first of equals", vec![ok(0.01), ok(0.01)], Some(0)),
            (
                "good over error",
                vec![kod("RATE", 0.001), ok(0.5)],
                Some(1),
            ),
            (
                "good over timeout",
                vec![timeout.clone(), timeout.clone(), ok(0.2), timeout.clone()],
                Some(2),
            ),
            (
                "reply with error over no reply",
                vec![timeout.clone(), kod("RATE", 0.3)],
                Some(1),
            ),
            (
                "all timeouts",
                vec![timeout.clone(), timeout.clone()],
                Some(0),
            ),
        ];
        for (name, samples, want) in cases {
            assert_eq!(best_index(&samples), want, "{name}");
        }
    }

    #[test]
    fn next_rules() {
        let cfg = CheckConfig::default();
        assert_eq!(next_after(&ok(0.1), &cfg), Next::Continue);
        assert_eq!(next_after(&kod("DENY", 0.1), &cfg), Next::Stop);
        assert_eq!(next_after(&kod("RSTR", 0.1), &cfg), Next::Stop);
        assert_eq!(
            next_after(&kod("RATE", 0.1), &cfg),
            Next::BackOff(Duration::from_secs(2))
        );
        assert_eq!(
            next_after(&Sample::failed(0.0, ErrorCode::Timeout), &cfg),
            Next::Continue
        );
    }

    #[test]
    fn defaults_are_the_pools() {
        let c = CheckConfig::default();
        assert_eq!(
            (c.samples, c.sample_interval.as_secs(), c.timeout.as_secs()),
            (4, 2, 3)
        );
    }
}
