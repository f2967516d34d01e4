//! Client distribution: what one DNS process reports to the service about
//! the answers it sent (issue 17 item 3). Plain serde types, the body of
//! `POST /api/dns-counts` (the `/api/dns-zone` bearer token), read by the
//! service and written by `poolwatch dns`; `serve`'s own DNS hands the same
//! value to the store directly.
//!
//! A report counts only answers that were sent (not those response rate
//! limiting dropped or slipped), so a client counting the addresses in the
//! answers it got sees the same numbers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The path a [`CountReport`] is posted to (answered 200 with
/// [`CountsStored`]).
pub const COUNTS_PATH: &str = "/api/dns-counts";

/// The country key of clients that could not be located (no GeoIP
/// database, a private address, an address the database lacks).
pub const UNKNOWN_COUNTRY: &str = "-";

/// At most this many servers in one report: a longer harvest is sent as
/// several reports, each with its own `report_id`, so that a body stays
/// well under the service's cap.
pub const MAX_SERVERS_PER_REPORT: usize = 2000;

/// What one DNS process handed out over `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CountReport {
    /// Unique per report: a random id of the process plus a sequence
    /// number. A report resent after its response was lost is stored once.
    pub report_id: String,
    /// The DNS process (as `_status` names it), for the operator.
    pub instance: String,
    /// The interval counted, unix seconds. A report that failed to send is
    /// sent again unchanged (same `report_id`) with the next ones.
    pub from: i64,
    pub to: i64,
    /// Address answers sent (A, AAAA, ANY with addresses), by client
    /// country: lower-case ISO code of the location answered for, or
    /// [`UNKNOWN_COUNTRY`]. Only in the first report of a split harvest.
    #[serde(default)]
    pub answers_by_country: BTreeMap<String, u64>,
    /// Every server that was in an answer, or in a label that answered.
    #[serde(default)]
    pub servers: Vec<ServerCount>,
}

/// One server's part of a [`CountReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerCount {
    pub ip: IpAddr,
    /// Answers that included it, by client country (as
    /// [`CountReport::answers_by_country`]). An answer holds a server at
    /// most once, so this is also the number of its records sent.
    #[serde(default)]
    pub answers: BTreeMap<String, u64>,
    /// Answers of its family (A for IPv4, AAAA for IPv6) sent from the
    /// pool zones it is in (`de`, `europe`, `@`: any label of the zone, so
    /// all of `0`–`3`): the denominator of its share.
    pub zone_answers: u64,
    /// Its netspeed share of the records sent: over every label it is in,
    /// records sent from that label × its weight / the label's total
    /// weight. `answers / zone_answers` against `expected / zone_answers`
    /// says whether it got more than its netspeed asks.
    pub expected: f64,
}

/// The service's answer to a [`CountReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountsStored {
    /// False when this `report_id` was stored before (nothing added).
    pub new: bool,
    /// Servers of the report stored.
    pub servers: usize,
    /// Addresses of the report that are not servers of the pool (removed
    /// since): skipped.
    pub unknown: usize,
}
