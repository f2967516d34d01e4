//! The agent's `--config FILE.toml`: the same settings as the flags, each
//! optional; flags and `POOLWATCH_*` variables override it.
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
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Everything the agent reads from its TOML file. Unknown keys are an error
/// so that a typo does not silently fall back to a default.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    pub api: Option<String>,
    pub key: Option<String>,
    pub key_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub allow_private: Option<bool>,
    pub lab: Option<bool>,
    pub ntp_port: Option<u16>,
    pub source_addr: Option<String>,
    pub metrics_listen: Option<String>,
    pub ipv4: Option<bool>,
    pub ipv6: Option<bool>,
    pub log_format: Option<String>,
    pub concurrency: Option<usize>,
    /// `auto`, `mtr`, `traceroute` or `off`.
    pub traceroute: Option<String>,
}

impl AgentFile {
    /// Read and parse `path`; the error names the file and the key.
    pub fn load(path: &Path) -> Result<AgentFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_unknown_keys() {
        let f: AgentFile =
            toml::from_str("api = \"http://x\"\nipv6 = false\nntp_port = 11123").unwrap();
        assert_eq!(f.api.as_deref(), Some("http://x"));
        assert_eq!(f.ipv6, Some(false));
        assert_eq!(f.ntp_port, Some(11123));
        assert!(toml::from_str::<AgentFile>("apii = 1").is_err());
    }
}
