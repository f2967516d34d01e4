//! The clock sanity check is the agents', against the reference servers
//! this service names in each monitor's config. With none configured (the
//! default) it is off: every agent submits whatever its own clock says,
//! and a monitor whose clock is off blames every server for it. That must
//! never be silent, so `serve` says it at start and every hour, exports a
//! gauge, and the `/monitors` page shows it.

use crate::config::ServerConfig;
use crate::jobs::{Job, JobName};
use std::time::Duration;

/// How often the warning is repeated while the check is off.
pub const WARN_EVERY: Duration = Duration::from_secs(3600);

/// The warning, in the log and (as HTML) on `/monitors`.
pub const WARNING: &str = "clock check disabled: no reference servers are configured, so agents \
    submit results without checking their own clocks; name some with --reference-server \
    (or reference_servers in the config file)";

/// True when the service hands out no reference servers by default.
/// (A monitor's own `monitors.config` override may still name some.)
pub fn disabled(cfg: &ServerConfig) -> bool {
    cfg.reference_servers.is_empty()
}

/// Warn now and every `every` while `disabled`; returns at once otherwise.
pub async fn warn_while_disabled(disabled: bool, every: Duration) {
    if !disabled {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        tracing::warn!("{WARNING}");
    }
}

/// The warning as a background job of `serve`: it finishes at once (and is
/// not restarted) when the check is on.
pub fn job(disabled: bool, every: Duration) -> Job {
    Job::new(JobName::ClockCheckWarning, move |stop| async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = warn_while_disabled(disabled, every) => {}
        }
        Ok(())
    })
}
