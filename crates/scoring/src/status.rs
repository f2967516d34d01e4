//! A monitor's status: its role for one server, as the selector assigns
//! it, and its global status, set by the operator.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Per-server status of a monitor; only some statuses count toward the
/// server's aggregate score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MonitorStatus {
    Candidate,
    Testing,
    Active,
    Paused,
}

impl MonitorStatus {
    /// The stored spelling, identical to the serde form.
    pub const fn as_str(self) -> &'static str {
        match self {
            MonitorStatus::Candidate => "candidate",
            MonitorStatus::Testing => "testing",
            MonitorStatus::Active => "active",
            MonitorStatus::Paused => "paused",
        }
    }
}

impl fmt::Display for MonitorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the four status names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown monitor status {0:?}")]
pub struct ParseMonitorStatusError(pub String);

impl FromStr for MonitorStatus {
    type Err = ParseMonitorStatusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Exact match only, so what parses is exactly what as_str() stores.
        match s {
            "candidate" => Ok(MonitorStatus::Candidate),
            "testing" => Ok(MonitorStatus::Testing),
            "active" => Ok(MonitorStatus::Active),
            "paused" => Ok(MonitorStatus::Paused),
            _ => Err(ParseMonitorStatusError(s.to_string())),
        }
    }
}

/// A monitor's global (not per-server) status (`monitors.status`), set by
/// the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GlobalStatus {
    Pending,
    Testing,
    Active,
    Paused,
    Deleted,
}

impl GlobalStatus {
    /// The stored spelling, identical to the serde form.
    pub const fn as_str(self) -> &'static str {
        match self {
            GlobalStatus::Pending => "pending",
            GlobalStatus::Testing => "testing",
            GlobalStatus::Active => "active",
            GlobalStatus::Paused => "paused",
            GlobalStatus::Deleted => "deleted",
        }
    }

    /// Whether the monitor measures at all (may be active or testing).
    pub const fn measures(self) -> bool {
        matches!(self, GlobalStatus::Active | GlobalStatus::Testing)
    }
}

impl fmt::Display for GlobalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the five global status names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown monitor status {0:?} (expected pending, testing, active, paused or deleted)")]
pub struct ParseGlobalStatusError(pub String);

impl FromStr for GlobalStatus {
    type Err = ParseGlobalStatusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(GlobalStatus::Pending),
            "testing" => Ok(GlobalStatus::Testing),
            "active" => Ok(GlobalStatus::Active),
            "paused" => Ok(GlobalStatus::Paused),
            "deleted" => Ok(GlobalStatus::Deleted),
            _ => Err(ParseGlobalStatusError(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        use MonitorStatus::*;
        for (st, name) in [
            (Candidate, "candidate"),
            (Testing, "testing"),
            (Active, "active"),
            (Paused, "paused"),
        ] {
            assert_eq!(st.as_str(), name);
            assert_eq!(st.to_string(), name);
            assert_eq!(name.parse::<MonitorStatus>(), Ok(st));
        }
    }

    #[test]
    fn rejects_unknown() {
        for bad in ["", "Active", "deleted", " active"] {
            let e = bad.parse::<MonitorStatus>().unwrap_err();
            assert_eq!(e, ParseMonitorStatusError(bad.to_string()));
        }
    }
}
