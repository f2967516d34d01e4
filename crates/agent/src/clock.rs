//! The clock sanity check: before submitting anything the agent compares its
//! own clock with the reference servers the service names. A monitor whose
//! clock is off would blame every server in the pool for its own error.

use ntp::{CheckConfig, CheckResult, TargetPolicy};
use std::net::SocketAddr;

/// A reference server further off than this fails the check.
pub const MAX_OFFSET: f64 = 0.010;

/// What the agent says (log and its clock report) when the service names
/// no reference servers.
pub const DISABLED: &str = "clock check disabled: the service names no reference servers, \
    so this agent cannot tell whether its own clock is right; ask the pool operator to configure some";

/// The outcome of one sanity check.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockVerdict {
    pub ok: bool,
    pub checked: usize,
    /// Reference servers that failed, with why.
    pub failures: Vec<(String, String)>,
}

impl ClockVerdict {
    /// One line for the log.
    pub fn summary(&self) -> String {
        if self.checked == 0 {
            return DISABLED.to_string();
        }
        if self.failures.is_empty() {
            return format!("clock agrees with {} reference server(s)", self.checked);
        }
        let why: Vec<String> = self
            .failures
            .iter()
            .map(|(s, w)| format!("{s}: {w}"))
            .collect();
        format!(
            "{} of {} reference server(s) disagree with our clock ({})",
            self.failures.len(),
            self.checked,
            why.join("; ")
        )
    }
}

/// Why one reference result fails the check, if it does.
pub fn judge(r: &CheckResult) -> Option<String> {
    let Some(s) = r.best_sample() else {
        return Some("no sample".into());
    };
    if let Some(e) = &s.error {
        return Some(e.to_string());
    }
    if s.leap == Some(3) {
        return Some("not in sync (leap 3)".into());
    }
    match s.offset {
        Some(o) if o.abs() > MAX_OFFSET => Some(format!("offset {:+.1} ms", o * 1000.0)),
        Some(_) => None,
        None => Some("no offset".into()),
    }
}

/// The verdict over all reference results: it fails when more than half fail.
/// With no reference servers there is nothing to compare with, and it passes.
pub fn verdict(results: &[(String, Result<CheckResult, String>)]) -> ClockVerdict {
    let failures: Vec<(String, String)> = results
        .iter()
        .filter_map(|(name, r)| match r {
            Ok(r) => judge(r).map(|w| (name.clone(), w)),
            Err(e) => Some((name.clone(), e.clone())),
        })
        .collect();
    ClockVerdict {
        ok: failures.len() * 2 <= results.len(),
        checked: results.len(),
        failures,
    }
}

/// Query every reference server (`host[:port]`, `default_port` otherwise) and judge.
pub async fn check_clock(
    refs: &[String],
    default_port: u16,
    policy: TargetPolicy,
    cfg: &CheckConfig,
) -> ClockVerdict {
    let futs = refs.iter().map(|r| async move {
        let res = async {
            let (host, port) = ntp::parse_host_port(r, default_port)?;
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("cannot resolve: {e}"))?
                .collect();
            // Prefer the family we send from; a reference of the other family
            // is queried from whatever address the system picks.
            let same_family =
                |a: &SocketAddr| cfg.source.is_none_or(|s| s.is_ipv4() == a.is_ipv4());
            let addr = *addrs
                .iter()
                .find(|a| same_family(a))
                .or(addrs.first())
                .ok_or("no address")?;
            policy.check(addr.ip()).map_err(|e| e.to_string())?;
            let cfg = CheckConfig {
                source: cfg.source.filter(|_| same_family(&addr)),
                ..*cfg
            };
            Ok(ntp::check(r.clone(), addr, &cfg).await)
        }
        .await;
        (r.clone(), res)
    });
    verdict(&futures::future::join_all(futs).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ntp::{ErrorCode, Sample};

    fn result(offset: Option<f64>, leap: u8, error: Option<ErrorCode>) -> CheckResult {
        let s = Sample {
            ts: 0.0,
            offset,
            rtt: Some(0.001),
            stratum: Some(2),
            leap: Some(leap),
            refid: None,
            no_response: false,
            error,
            packet: None,
        };
        CheckResult::new("r".into(), "127.0.0.1:123".parse().unwrap(), vec![s])
    }

    #[test]
    fn judge_table() {
        assert_eq!(judge(&result(Some(0.002), 0, None)), None);
        assert_eq!(judge(&result(Some(-0.0099), 0, None)), None);
        assert_eq!(
            judge(&result(Some(0.011), 0, None)).unwrap(),
            "offset +11.0 ms"
        );
        assert_eq!(
            judge(&result(Some(0.0), 3, None)).unwrap(),
            "not in sync (leap 3)"
        );
        assert_eq!(
            judge(&result(None, 0, Some(ErrorCode::Timeout))).unwrap(),
            "i/o timeout"
        );
    }

    #[test]
    fn more_than_half_must_fail() {
        let good = || Ok(result(Some(0.0), 0, None));
        let bad = || Ok(result(Some(0.5), 0, None));
        let v = |rs: Vec<Result<CheckResult, String>>| {
            verdict(
                &rs.into_iter()
                    .enumerate()
                    .map(|(i, r)| (format!("r{i}"), r))
                    .collect::<Vec<_>>(),
            )
            .ok
        };
        assert!(v(vec![]));
        assert!(v(vec![good(), good(), bad()]));
        assert!(!v(vec![good(), bad(), bad()]));
        assert!(v(vec![good(), good(), bad(), bad()]));
        assert!(!v(vec![good(), bad(), bad(), Err("cannot resolve".into())]));
        assert!(!v(vec![bad()]));
    }
}
