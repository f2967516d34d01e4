//! What housekeeping keeps and how the log retention is written: plain
//! settings, below the job.

use std::time::Duration;

/// Time between housekeeping passes.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(3600);

/// The shortest log retention `serve` accepts: the overview's "changes in
/// the last 24 h" and the alerts' latest result per monitor read the log's
/// last day. (The selector's 24 h statistics live on the pairs, not here.)
pub const MIN_LOG_RETENTION: Duration = Duration::from_secs(2 * 86_400);

/// What housekeeping keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HousekeepingSettings {
    /// Time between passes.
    pub interval: Duration,
    /// Score log rows older than this are deleted; `None` keeps them all.
    pub log_retention: Option<Duration>,
}

impl Default for HousekeepingSettings {
    fn default() -> Self {
        HousekeepingSettings {
            interval: HOUSEKEEPING_INTERVAL,
            log_retention: None,
        }
    }
}

/// How long the score log is kept; `LogRetention(None)` keeps every row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention(pub Option<Duration>);

/// `forever` (keep every row) or a duration in hours, days or weeks of at
/// least [`MIN_LOG_RETENTION`]: `90d`, `2w`, `72h`, `1.5w`.
pub fn parse_log_retention(s: &str) -> Result<LogRetention, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("forever") {
        return Ok(LogRetention(None));
    }
    let unit = |suffix: char, secs: f64| t.strip_suffix(suffix).map(|n| (n, secs));
    let d = unit('h', 3600.0)
        .or_else(|| unit('d', 86_400.0))
        .or_else(|| unit('w', 7.0 * 86_400.0))
        .and_then(|(n, secs)| n.trim().parse::<f64>().ok().map(|v| v * secs))
        .filter(|v| v.is_finite() && (0.0..=100.0 * 365.0 * 86_400.0).contains(v))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            format!(
                "'{s}' is not a log retention: give forever or a duration such as 90d, 2w or 72h"
            )
        })?;
    if d < MIN_LOG_RETENTION {
        return Err(format!(
            "log retention {s} is too short: at least 2d (the overview and the alerts read the \
             last day of the log), or forever"
        ));
    }
    Ok(LogRetention(Some(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_retention_settings() {
        assert_eq!(parse_log_retention("forever"), Ok(LogRetention(None)));
        assert_eq!(parse_log_retention(" Forever "), Ok(LogRetention(None)));
        assert_eq!(
            parse_log_retention("90d"),
            Ok(LogRetention(Some(Duration::from_secs(90 * 86_400))))
        );
        assert_eq!(
            parse_log_retention("2d"),
            Ok(LogRetention(Some(MIN_LOG_RETENTION)))
        );
        let short = parse_log_retention("1d").unwrap_err();
        assert!(short.contains("too short"), "{short}");
        assert_eq!(
            parse_log_retention("2w"),
            Ok(LogRetention(Some(Duration::from_secs(14 * 86_400))))
        );
        assert_eq!(
            parse_log_retention("72h"),
            Ok(LogRetention(Some(Duration::from_secs(72 * 3600))))
        );
        for bad in ["", "ninety days", "-3d", "90", "d", "NaNd", "1e300d", "3m"] {
            let e = parse_log_retention(bad).unwrap_err();
            assert!(e.contains("log retention"), "{bad}: {e}");
        }
    }
}
