//! `demo`'s settings. Its variables are `POOLWATCH_DEMO_*`, so that a
//! `serve` configured on the same machine never points the demo at its
//! data or its port.

use super::{HumanDuration, Invalid, Settings, at_least};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `demo` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoSettings {
    /// Stop after this long; unset: run until Ctrl-C.
    pub duration: Option<HumanDuration>,
    pub listen: SocketAddr,
    pub dns_listen: SocketAddr,
    pub ntp_port: u16,
    /// Unset: a fresh directory under the system's temporary directory.
    pub data_dir: Option<PathBuf>,
    pub status_every: HumanDuration,
}

impl Default for DemoSettings {
    fn default() -> Self {
        DemoSettings {
            duration: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            dns_listen: SocketAddr::from(([127, 0, 0, 1], 15353)),
            ntp_port: 11123,
            data_dir: None,
            status_every: HumanDuration::secs(5),
        }
    }
}

impl Settings for DemoSettings {
    fn validate(&self) -> Result<(), Invalid> {
        if self.ntp_port == 0 {
            return Err(Invalid::new(
                "ntp_port",
                "must not be 0 (the agents need to know the servers' port)",
            ));
        }
        at_least("status_every", self.status_every, Duration::from_secs(1))
    }
}
