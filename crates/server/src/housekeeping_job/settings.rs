//! What housekeeping keeps: plain settings, below the job. (How an
//! operator writes the log retention is `poolwatch`'s settings.)

use std::time::Duration;

/// Time between housekeeping passes.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(3600);

/// The shortest log retention `serve` accepts: the overview's "changes in
/// the last 24 h" and the alerts' latest result per monitor read the log's
/// last day. (The selector's 24 h statistics live on the pairs, not here.)
pub const MIN_LOG_RETENTION: Duration = Duration::from_secs(2 * 86_400);

/// How long every sample of a check is kept by default (issue 15): the
/// window the per-position analysis and `policy replay` read.
pub const DEFAULT_SAMPLE_RETENTION: Duration = Duration::from_secs(15 * 86_400);

/// How long the DNS processes' answer counts (client distribution, issue
/// 17 item 3) are kept by default: the longest window the server's JSON
/// (`?days=14`) reads, and its first hour.
pub const DEFAULT_DNS_COUNT_RETENTION: Duration = Duration::from_secs(15 * 86_400);

/// The shortest DNS count retention: the server page's window, 3 days.
pub const MIN_DNS_COUNT_RETENTION: Duration = Duration::from_secs(3 * 86_400);

/// What housekeeping keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HousekeepingSettings {
    /// Time between passes.
    pub interval: Duration,
    /// Score log rows older than this are deleted; `None` keeps them all.
    pub log_retention: Option<Duration>,
    /// Checks' samples older than this are deleted.
    pub sample_retention: Duration,
    /// Hourly DNS count buckets older than this are deleted, and reports
    /// older are refused.
    pub dns_count_retention: Duration,
}

impl Default for HousekeepingSettings {
    fn default() -> Self {
        HousekeepingSettings {
            interval: HOUSEKEEPING_INTERVAL,
            log_retention: None,
            sample_retention: DEFAULT_SAMPLE_RETENTION,
            dns_count_retention: DEFAULT_DNS_COUNT_RETENTION,
        }
    }
}
