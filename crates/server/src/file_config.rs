//! The `--config FILE.toml` of `poolwatch serve`: the same settings as the
//! flags, each optional. Flags and `POOLWATCH_*` variables override it.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! metrics_listen = "127.0.0.1:9122"   # /metrics here only (404 on listen)
//! data_dir = "/var/lib/poolwatch"
//! database_url = "postgres://poolwatch@db/poolwatch"
//! geoip = "/usr/share/GeoIP/GeoLite2-Country.mmdb"
//! log_format = "json"
//! samples = 4
//! sample_interval = "2s"
//! timeout = "3s"
//! batch_size = 10
//! interval_active = "9m"
//! interval_testing = "45m"
//! interval_candidate = "2h"
//! reference_servers = ["time.example.net", "192.0.2.123"]
//! ticket_secret_file = "/etc/poolwatch/ticket-secret"
//! zone_guard = 0.1            # or "off", or "10%"
//! log_retention = "forever"  # or "90d": older score log rows are deleted
//! public_url = "https://pool.example.org"
//!
//! [http]
//! header_timeout = "10s"
//! idle_timeout = "5s"
//! max_connections = 4096
//! max_connections_per_client = 32
//! shutdown_grace = "10s"
//!
//! [rate_limit]
//! per_second = 20
//! burst = 40
//! trusted_proxies = ["10.0.0.0/8"]
//!
//! [alerts]
//! smtp_url = "smtp://127.0.0.1:25"   # or "smtps://USER:PASSWORD@mail.example.org"
//! # smtp_ca = "/etc/poolwatch/relay-ca.pem"
//! from = "Pool <alerts@pool.example.org>"
//! interval = "1h"
//! check = "60s"
//! reminder = "24h"
//! max_reminders = 5
//!
//! [dns_rrl]                   # DNS response rate limiting (UDP)
//! rate = 200                  # responses per second per prefix; 0 = off
//! slip = 2
//! ipv4_prefix = 24
//! ipv6_prefix = 64
//! size = 1000000
//!
//! [selector]
//! enabled = true              # false: as --no-selector
//! interval = "10m"
//! active = 7
//! testing = 5
//! min_testing = 9
//! min_active = 32
//! candidate_budget = 8000
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Everything `serve` reads from its TOML file. Unknown keys are an error,
/// so a typo does not silently fall back to a default.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    /// As `--sqlite-max-size`: "20G", "500M".
    pub sqlite_max_size: Option<String>,
    pub geoip: Option<PathBuf>,
    pub log_format: Option<String>,
    pub samples: Option<u32>,
    /// Durations are strings as on the command line: "2s", "500ms", "9m".
    pub sample_interval: Option<String>,
    pub timeout: Option<String>,
    pub batch_size: Option<u32>,
    pub interval_active: Option<String>,
    pub interval_testing: Option<String>,
    pub interval_candidate: Option<String>,
    pub reference_servers: Option<Vec<String>>,
    pub ticket_secret_file: Option<PathBuf>,
    /// The zone guard: a share (`0.1`, `"10%"`) or `"off"`; see
    /// `crate::zone_guard_job::parse_zone_guard`.
    pub zone_guard: Option<toml::Value>,
    /// `"forever"` or a duration such as `"90d"`; see
    /// `crate::housekeeping_job::parse_log_retention`.
    pub log_retention: Option<String>,
    #[serde(default)]
    pub http: FileHttp,
    #[serde(default)]
    pub rate_limit: FileRateLimit,
    /// Base URL the public reaches the service at (links in alerts).
    pub public_url: Option<String>,
    #[serde(default)]
    pub alerts: FileAlerts,
    #[serde(default)]
    pub selector: FileSelector,
    #[serde(default)]
    pub dns_rrl: FileDnsRrl,
}

/// `[dns_rrl]`: the `--dns-rrl-*` flags.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDnsRrl {
    pub rate: Option<u32>,
    pub slip: Option<u32>,
    pub ipv4_prefix: Option<u8>,
    pub ipv6_prefix: Option<u8>,
    pub size: Option<usize>,
}

/// `[selector]`: the `--selector-*` and `--no-selector` flags.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSelector {
    /// `false` turns the selector off, as `--no-selector`.
    pub enabled: Option<bool>,
    pub interval: Option<String>,
    pub active: Option<usize>,
    pub testing: Option<usize>,
    pub min_testing: Option<u32>,
    pub min_active: Option<u32>,
    pub candidate_budget: Option<usize>,
}

/// `[alerts]`: the `--smtp-url`, `--alert-*` flags.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAlerts {
    pub smtp_url: Option<String>,
    pub smtp_ca: Option<PathBuf>,
    pub from: Option<String>,
    pub interval: Option<String>,
    pub check: Option<String>,
    pub reminder: Option<String>,
    pub max_reminders: Option<u32>,
}

/// `[http]`: the `--header-timeout`, `--idle-timeout`, `--max-connections*`
/// and `--shutdown-grace` flags.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHttp {
    pub header_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_client: Option<usize>,
    pub shutdown_grace: Option<String>,
}

/// `[rate_limit]`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRateLimit {
    pub per_second: Option<f64>,
    pub burst: Option<f64>,
    pub trusted_proxies: Option<Vec<String>>,
}

impl FileConfig {
    /// Read and parse `path`; the error names the file and the key.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parse TOML text.
    pub fn parse(text: &str) -> Result<FileConfig, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let doc = include_str!("file_config.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let c = FileConfig::parse(&example).unwrap();
        assert_eq!(c.listen.as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(c.metrics_listen.as_deref(), Some("127.0.0.1:9122"));
        assert_eq!(c.http.idle_timeout.as_deref(), Some("5s"));
        assert_eq!(c.http.max_connections_per_client, Some(32));
        assert_eq!(c.samples, Some(4));
        assert_eq!(c.rate_limit.burst, Some(40.0));
        assert_eq!(c.alerts.max_reminders, Some(5));
        assert_eq!(c.selector.enabled, Some(true));
        assert_eq!(c.selector.interval.as_deref(), Some("10m"));
        assert_eq!(c.selector.candidate_budget, Some(8000));
        assert_eq!(c.public_url.as_deref(), Some("https://pool.example.org"));
        assert_eq!(c.reference_servers.unwrap().len(), 2);
        assert_eq!(c.zone_guard, Some(toml::Value::Float(0.1)));
        assert_eq!(c.log_retention.as_deref(), Some("forever"));
        assert_eq!(c.dns_rrl.rate, Some(200));
        assert_eq!(c.dns_rrl.ipv6_prefix, Some(64));
    }

    #[test]
    fn rejects_typos() {
        let e = FileConfig::parse("listn = \"x\"").unwrap_err();
        assert!(e.to_string().contains("listn"), "{e}");
        assert_eq!(FileConfig::parse("").unwrap(), FileConfig::default());
    }
}
