//! `agent`'s settings.
//!
//! ```toml
//! api = "https://pool.example.org"
//! key_file = "/etc/poolwatch/agent.key"
//! state_dir = "/var/lib/poolwatch-agent"
//! metrics_listen = "127.0.0.1:9123"
//! source_addr = "198.51.100.7"
//! ipv6 = false
//! concurrency = 100
//! log_format = "json"
//! traceroute = "auto"
//! config_refresh = "5m"
//! ```
//!
//! Without `key` and `key_file` the agent reads `credentials.json` in
//! `state_dir` (written by `agent setup`) and runs one loop per identity
//! in it, its `api` included unless `api` is set here.

use super::dns::http_url;
use super::{HumanDuration, Invalid, LogFormat, Settings, at_least};
use agent::trace_runner::TracerouteMode;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Everything `agent` can be told (but `--once`, a way of running).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    pub api: Option<String>,
    pub key: Option<String>,
    pub key_file: Option<PathBuf>,
    /// Unset: `$STATE_DIRECTORY` (systemd), else `./poolwatch-agent-state`.
    pub state_dir: Option<PathBuf>,
    pub allow_private: bool,
    pub lab: bool,
    pub ntp_port: u16,
    pub source_addr: Option<IpAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub ipv4: bool,
    pub ipv6: bool,
    pub log_format: LogFormat,
    pub concurrency: u32,
    pub pipeline: u16,
    pub clock_retry: HumanDuration,
    pub backoff_min: HumanDuration,
    pub backoff_max: HumanDuration,
    pub traceroute: TraceTool,
    pub config_refresh: HumanDuration,
}

/// `--traceroute`: which tool answers the service's traceroute requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceTool {
    Auto,
    Mtr,
    Traceroute,
    Off,
}

impl From<TraceTool> for TracerouteMode {
    fn from(t: TraceTool) -> TracerouteMode {
        match t {
            TraceTool::Auto => TracerouteMode::Auto,
            TraceTool::Mtr => TracerouteMode::Mtr,
            TraceTool::Traceroute => TracerouteMode::Traceroute,
            TraceTool::Off => TracerouteMode::Off,
        }
    }
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            api: None,
            key: None,
            key_file: None,
            state_dir: None,
            allow_private: false,
            lab: false,
            ntp_port: 123,
            source_addr: None,
            metrics_listen: None,
            ipv4: true,
            ipv6: true,
            log_format: LogFormat::Text,
            concurrency: 100,
            pipeline: 4,
            clock_retry: HumanDuration::secs(180),
            backoff_min: HumanDuration::secs(3),
            backoff_max: HumanDuration::secs(120),
            traceroute: TraceTool::Auto,
            config_refresh: HumanDuration(agent::CONFIG_REFRESH),
        }
    }
}

impl Settings for AgentSettings {
    fn validate(&self) -> Result<(), Invalid> {
        let keyed = self.key.is_some() || self.key_file.is_some();
        match &self.api {
            // Credentials from `agent setup` name their service.
            None if keyed => return Err(Invalid::new("api", "no --api URL given")),
            None => {}
            Some(api) => http_url("api", api)?,
        }
        match (&self.key, &self.key_file) {
            (Some(_), Some(_)) => {
                return Err(Invalid::new("key", "give --key or --key-file, not both"));
            }
            (Some(k), None) if k.trim().is_empty() => {
                return Err(Invalid::new("key", "the monitor key is empty"));
            }
            _ => {}
        }
        if !(1..=100_000).contains(&self.concurrency) {
            return Err(Invalid::new("concurrency", "must be between 1 and 100000"));
        }
        if !(1..=64).contains(&self.pipeline) {
            return Err(Invalid::new("pipeline", "must be between 1 and 64"));
        }
        at_least("clock_retry", self.clock_retry, Duration::from_millis(100))?;
        at_least("backoff_min", self.backoff_min, Duration::from_millis(10))?;
        at_least(
            "config_refresh",
            self.config_refresh,
            Duration::from_millis(100),
        )?;
        Ok(())
    }
}
