//! The zone guard in the running service: a pass over the store every
//! minute ([`run_loop`]). Each pass decides per DNS zone which servers to
//! hold in DNS (`scoring::zone_guard_rules`), writes every server's DNS state and
//! records guard events (`Store::run_zone_guard`). The DNS zone, the API
//! and the pages read that state; `/metrics` reads the per-zone numbers.
//!
//! A server whose score drops stays in DNS until the next pass decides
//! (at most a minute), so a DNS refresh between passes never drops what
//! the guard would hold.

use crate::jobs::{Job, JobName};
use crate::state::Clock;
use scoring::ZoneGuardConfig;
use std::time::Duration;
use store::{GuardRun, Store, StoreError};
use tokio_util::sync::CancellationToken;

/// Time between guard passes.
pub const GUARD_INTERVAL: Duration = Duration::from_secs(60);

/// `off` or a share: `0.1`, `0.25`, `10%`. The share is of the zone's
/// in-DNS servers 24 h ago and must be in [0, 1].
pub fn parse_zone_guard(s: &str) -> Result<ZoneGuardConfig, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(ZoneGuardConfig::Off);
    }
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1.0).contains(&(v / scale)) => {
            Ok(ZoneGuardConfig::MaxShare(v / scale))
        }
        _ => Err(format!(
            "'{s}' is not a zone guard setting: give off or a share between 0 and 1 (e.g. 0.1 or 10%)"
        )),
    }
}

/// One pass at `now`, logging what the guard did.
pub async fn pass(
    store: &Store,
    config: ZoneGuardConfig,
    now: i64,
) -> Result<GuardRun, StoreError> {
    let run = store.run_zone_guard(config, now).await?;
    for e in &run.events {
        tracing::warn!(
            zone = %e.zone,
            held = e.held,
            dropped = e.dropped,
            allowed = e.allowed,
            baseline = e.baseline,
            "zone guard: {}",
            e.detail.reason
        );
    }
    if run.entered + run.left > 0 {
        tracing::info!(
            entered = run.entered,
            left = run.left,
            held = run.held.len(),
            "DNS membership changed"
        );
    }
    Ok(run)
}

/// The zone guard as a background job of `serve`, a pass every
/// [`GUARD_INTERVAL`].
pub fn job(store: Store, config: ZoneGuardConfig, clock: Clock) -> Job {
    Job::new(JobName::ZoneGuard, move |stop| {
        run_loop(store.clone(), config, GUARD_INTERVAL, clock.clone(), stop)
    })
}

/// Run a pass now and then every `interval` until `stop`.
pub async fn run_loop(
    store: Store,
    config: ZoneGuardConfig,
    interval: Duration,
    clock: Clock,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = pass(&store, config, clock.now()).await {
            tracing::warn!(error = %e, "zone guard pass failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert_eq!(parse_zone_guard("off"), Ok(ZoneGuardConfig::Off));
        assert_eq!(parse_zone_guard("OFF"), Ok(ZoneGuardConfig::Off));
        assert_eq!(parse_zone_guard("0.2"), Ok(ZoneGuardConfig::MaxShare(0.2)));
        assert_eq!(parse_zone_guard("10%"), Ok(ZoneGuardConfig::MaxShare(0.1)));
        assert_eq!(parse_zone_guard("0"), Ok(ZoneGuardConfig::MaxShare(0.0)));
        for bad in ["", "1.5", "-0.1", "NaN", "inf", "ten", "150%"] {
            assert!(parse_zone_guard(bad).is_err(), "{bad}");
        }
    }
}
