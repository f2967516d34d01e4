//! `dns`'s settings, and the `[dns_rrl]` section it shares with `serve`.
//!
//! ```toml
//! api = "https://pool.example.org"
//! token_file = "/etc/poolwatch/dns.token"
//! zone = ["pool.example.org", "pool.example.net"]   # or one name: zone = "pool.example.org"
//! listen = "[::]:53"
//! geoip = "/usr/share/GeoIP/GeoLite2-Country.mmdb"
//! refresh = "30s"
//! count_interval = "1m"        # or "off"
//! metrics_listen = "127.0.0.1:9124"
//! log_format = "json"
//!
//! [dns_rrl]
//! rate = 200
//! ```

use super::{HumanDuration, Invalid, LogFormat, Settings, at_least};
use dns::RrlConfig;
use serde::{Deserialize, Deserializer, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `dns` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSettings {
    pub api: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub zone_file: Option<PathBuf>,
    /// The names answered for (one zone under each; the first is the one
    /// logged and metered as "the" zone).
    #[serde(deserialize_with = "one_or_many")]
    pub zone: Vec<String>,
    pub listen: SocketAddr,
    pub geoip: Option<PathBuf>,
    pub refresh: HumanDuration,
    /// How often answer counts are sent to `api`; 0 (or "off"): never.
    #[serde(deserialize_with = "duration_or_off")]
    pub count_interval: HumanDuration,
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub dns_rrl: RrlSection,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            api: None,
            token: None,
            token_file: None,
            zone_file: None,
            zone: Vec::new(),
            listen: SocketAddr::from(([0, 0, 0, 0], 53)),
            geoip: None,
            refresh: HumanDuration::secs(30),
            count_interval: HumanDuration::secs(60),
            metrics_listen: None,
            log_format: LogFormat::Text,
            dns_rrl: RrlSection::default(),
        }
    }
}

impl Settings for DnsSettings {
    fn validate(&self) -> Result<(), Invalid> {
        if self.zone.is_empty() || self.zone.iter().any(|z| z.trim().is_empty()) {
            return Err(Invalid::new(
                "zone",
                "give the zone to answer for, e.g. --zone pool.example.org (repeat it for more names)",
            ));
        }
        // With both, the zone comes from the file and the counts go to `api`.
        if self.api.is_none() && self.zone_file.is_none() {
            return Err(Invalid::new("api", "give --api URL or --zone-file FILE"));
        }
        if let Some(api) = &self.api {
            http_url("api", api)?;
        }
        if self.token.is_some() && self.token_file.is_some() {
            return Err(Invalid::new(
                "token",
                "give --token or --token-file, not both",
            ));
        }
        at_least("refresh", self.refresh, Duration::from_millis(100))?;
        count_interval("count_interval", self.count_interval)?;
        self.dns_rrl.validate()
    }
}

/// How often a DNS process hands over its answer counts (`poolwatch dns
/// --count-interval`, `serve --dns-count-interval`): 1 s to 1 h, or 0
/// (`off`): never.
pub(crate) fn count_interval(key: &str, every: HumanDuration) -> Result<(), Invalid> {
    if every.0 > Duration::from_secs(3600) {
        return Err(Invalid::new(
            key,
            format!("{every} is too long: at most 1h (or off)"),
        ));
    }
    if every.0.is_zero() {
        return Ok(());
    }
    at_least(key, every, Duration::from_secs(1))
}

/// A duration, or `off` (the same as 0).
pub(crate) fn duration_or_off<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<HumanDuration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Text(String),
        Other(HumanDuration),
    }
    match Text::deserialize(d)? {
        Text::Text(t) if t.trim().eq_ignore_ascii_case("off") => Ok(HumanDuration::secs(0)),
        Text::Text(t) => t.parse().map_err(serde::de::Error::custom),
        Text::Other(h) => Ok(h),
    }
}

/// A list of names, or one name alone (`zone = "pool.example.org"`, as
/// before the key took a list).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a name or a list of names")]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(name) => vec![name],
        OneOrMany::Many(names) => names,
    })
}

/// Refuse a URL at `key` that is not http:// or https://.
pub fn http_url(key: &str, url: &str) -> Result<(), Invalid> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(());
    }
    Err(Invalid::new(
        key,
        format!("must be an http:// or https:// URL, not {url:?}"),
    ))
}

/// `[dns_rrl]`: DNS response rate limiting (the `--dns-rrl-*` flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RrlSection {
    pub rate: u32,
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub size: usize,
}

impl Default for RrlSection {
    /// NSD's.
    fn default() -> Self {
        let d = RrlConfig::default();
        RrlSection {
            rate: d.rate,
            slip: d.slip,
            ipv4_prefix: d.ipv4_prefix,
            ipv6_prefix: d.ipv6_prefix,
            size: d.size,
        }
    }
}

impl RrlSection {
    pub fn config(&self) -> RrlConfig {
        RrlConfig {
            rate: self.rate,
            slip: self.slip,
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
            size: self.size,
        }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        self.config()
            .validate()
            .map_err(|(field, msg)| Invalid::new(format!("dns_rrl.{field}"), msg))
    }
}
