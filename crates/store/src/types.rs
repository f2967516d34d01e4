//! Plain data types exchanged with the store.

use serde::Serialize;
use std::net::IpAddr;

pub use scoring::{GlobalStatus, MonitorStatus, ParseGlobalStatusError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub webhook: Option<String>,
}

/// One zone of the tree to seed (mirrors `geo::ZoneDef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSeed {
    pub name: String,
    pub parent: Option<String>,
    pub description: String,
}

/// A zone with its server counts; "active" means in DNS now
/// (`scoring::in_dns`), "registered" every server not yet deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneSummary {
    pub name: String,
    pub parent: Option<String>,
    pub description: String,
    pub dns: bool,
    pub v4_active: i64,
    pub v4_registered: i64,
    pub v6_active: i64,
    pub v6_registered: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServer {
    pub ip: IpAddr,
    /// kbit/s; 0 = monitored but never in DNS.
    pub netspeed: i64,
    pub account_id: Option<i64>,
    /// Zone names, e.g. `["de", "europe", "@"]`; each must exist.
    pub zones: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerRow {
    pub id: i64,
    pub ip: IpAddr,
    /// 4 or 6.
    pub ip_version: u8,
    pub account_id: Option<i64>,
    pub netspeed: i64,
    /// Aggregate score (recent median); 0 for a new server.
    pub score: f64,
    pub score_ts: Option<i64>,
    /// Unix seconds at 00:00 UTC of the deletion date.
    pub deletion_on: Option<i64>,
    pub created_on: i64,
    /// Zone names, sorted.
    pub zones: Vec<String>,
    /// The name the operator added it by, if a hostname.
    pub hostname: Option<String>,
    /// When its operator proved it from its own address (`/verify`).
    pub verified_on: Option<i64>,
    /// The operator's own note (their pages only).
    pub note: String,
    /// False: alerts about this server are muted.
    pub alerts_on: bool,
    /// Its account is disabled: it is out of DNS (see `DnsMembership`).
    pub account_disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMonitor {
    pub name: String,
    pub location: String,
    pub ip: IpAddr,
    pub account_id: Option<i64>,
    pub status: GlobalStatus,
    /// Hex SHA-256 of the monitor's key (the store never sees the key).
    pub key_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorRow {
    pub id: i64,
    pub name: String,
    pub location: String,
    pub ip: IpAddr,
    pub ip_version: u8,
    pub account_id: Option<i64>,
    pub status: GlobalStatus,
    #[serde(skip)]
    pub key_hash: String,
    /// Per-monitor configuration, JSON text.
    pub config: Option<String>,
    pub last_seen: Option<i64>,
    /// Sequence of the newest batch this monitor submitted.
    pub last_submit_batch: Option<i64>,
    pub client_version: Option<String>,
    pub created_on: i64,
}

/// How often a monitor re-checks a server, by its per-server status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkIntervals {
    pub active_s: i64,
    pub testing_s: i64,
    pub candidate_s: i64,
}

impl Default for WorkIntervals {
    /// The pool's: active every 9 min, testing every 45 min, candidate every 2 h.
    fn default() -> Self {
        WorkIntervals {
            active_s: 9 * 60,
            testing_s: 45 * 60,
            candidate_s: 2 * 3600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    pub server_id: i64,
    pub ip: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    pub seq: i64,
    pub monitor_id: i64,
    pub created: i64,
    pub submitted: bool,
    /// The servers issued in this batch, in issue order.
    pub server_ids: Vec<i64>,
    /// The same servers with their addresses, in issue order.
    pub servers: Vec<(i64, IpAddr)>,
}

/// One measurement as submitted by a monitor; decided on by
/// [`scoring::submission`].
pub use scoring::submission::ResultIn;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubmitOutcome {
    /// Results stored (0 for a duplicate).
    pub accepted: usize,
    /// The batch had already been submitted; nothing changed.
    pub duplicate: bool,
    /// Servers whose state as seen by this monitor changed with this batch
    /// (healthy → unhealthy, healthy again after an error, or a new error
    /// code; not a new pair's first climb): the traceroute triggers.
    pub transitions: Vec<PairTransition>,
}

/// How one monitor sees one server, and a change of it made by one
/// submission (the traceroute triggers).
pub use scoring::submission::{PairState, PairTransition};

/// Which rows of a server's log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorFilter {
    /// Aggregate rows only (`monitor_id` NULL).
    Aggregate,
    /// Aggregate and every monitor.
    All,
    /// One monitor's rows.
    Monitor(i64),
}

/// One row of `log_scores`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRow {
    pub id: i64,
    pub ts: i64,
    /// Seconds.
    pub offset: Option<f64>,
    pub step: f64,
    pub score: f64,
    /// None for the aggregate.
    pub monitor_id: Option<i64>,
    pub monitor_name: Option<String>,
    /// Seconds (microsecond resolution).
    pub rtt: Option<f64>,
    pub stratum: Option<i64>,
    pub leap: Option<i64>,
    pub refid: Option<String>,
    pub error: Option<String>,
    pub no_response: bool,
}

/// One monitor's standing for one server (`server_scores`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerMonitorRow {
    pub monitor_id: i64,
    pub name: String,
    pub location: String,
    pub monitor_status: GlobalStatus,
    pub status: MonitorStatus,
    pub score: f64,
    pub score_ts: Option<i64>,
    /// Seconds, of the last result.
    pub rtt: Option<f64>,
}
