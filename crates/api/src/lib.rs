//! The monitor API's messages, defined once for the agent and the service:
//! plain serde types, one per JSON body, and the paths they travel on.
//! Changing a field here changes both sides, or neither compiles.
//!
//! No I/O and no validation: the service checks bodies (limits, control
//! characters, ranges) in its extractor and handlers; unknown fields are
//! ignored by both sides so agents and services can be upgraded apart.
//! Where a field is optional on input it is because the service accepts it
//! missing; serialization always writes every field.
//!
//! [`dns_counts`] holds the one message of the DNS servers (their answer
//! counts), kept here so that the store can read it without the DNS crate.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub mod dns_counts;

/// The version in every path below (`/api/v1/monitor/…`).
pub const API_VERSION: &str = "v1";

/// `GET`: the monitor's [`MonitorConfig`].
pub const CONFIG_PATH: &str = "/api/v1/monitor/config";
/// `POST` a [`WorkRequest`], answered with [`Work`].
pub const WORK_PATH: &str = "/api/v1/monitor/work";
/// `POST` a [`Submission`], answered with [`Accepted`].
pub const RESULTS_PATH: &str = "/api/v1/monitor/results";
/// `POST` a [`ClockReport`], answered with 204 and no body.
pub const CLOCK_PATH: &str = "/api/v1/monitor/clock";
/// `POST` a [`TracerouteSubmission`], answered with [`TracerouteStored`].
pub const TRACEROUTE_PATH: &str = "/api/v1/monitor/traceroute";
/// `POST` a [`LiveCheckReport`], answered with 204 and no body.
pub const LIVE_CHECK_PATH: &str = "/api/v1/monitor/live-check";
/// `POST` (no body) with the long-lived key, answered with an
/// [`AccessToken`] for every other route.
pub const TOKEN_PATH: &str = "/api/v1/monitor/token";

/// `POST` a [`Registration`] (no key), answered with [`Registered`]:
/// `agent setup`, once from each address family.
pub const REGISTER_PATH: &str = "/api/v1/monitor/register";
/// `POST` a [`RegistrationPoll`] (no key), answered with
/// [`RegistrationStatus`].
pub const REGISTER_STATUS_PATH: &str = "/api/v1/monitor/register/status";

/// The most servers in one batch: the service never hands out more, and
/// the agent sizes its read cap for `work` answers by at most this many.
pub const MAX_BATCH_SIZE: u32 = 1000;

/// `GET /api/v1/monitor/config` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub name: String,
    /// The monitor's registered address (checks should come from it).
    pub ip: String,
    pub samples: u32,
    pub sample_interval_ms: u64,
    pub timeout_ms: u64,
    /// Servers the agent checks its own clock against; empty: no check.
    pub reference_servers: Vec<String>,
    /// Servers per `work` answer (1–[`MAX_BATCH_SIZE`]).
    pub batch_size: u32,
}

/// `POST /api/v1/monitor/work` body: `{}` or none. Nothing is asked yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkRequest {}

/// `POST /api/v1/monitor/work` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// Opaque to the agent; fixed-width digits, so later batches sort
    /// later both as text and as numbers. Empty when there is no work.
    pub batch_id: String,
    pub servers: Vec<WorkServer>,
    /// When to ask again: 0 right after a batch, more when idle.
    pub retry_after_s: u64,
    /// Traceroutes the service asks for (also in idle answers); each goes
    /// back as a [`TracerouteSubmission`].
    #[serde(default)]
    pub traceroutes: Vec<TraceRequest>,
    /// Live checks of addresses an operator wants to add (also in idle
    /// answers); each is checked once and goes back as a
    /// [`LiveCheckReport`].
    #[serde(default)]
    pub live_checks: Vec<LiveCheckRequest>,
}

/// One server to check, with the ticket to return with its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkServer {
    pub ip: String,
    pub ticket: String,
}

/// A traceroute the service wants from this monitor, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRequest {
    pub ip: String,
    pub reason: String,
}

/// A live check the service wants from this monitor: one check of `ip`,
/// reported under `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveCheckRequest {
    /// Opaque to the agent.
    pub id: String,
    pub ip: String,
}

/// `POST /api/v1/monitor/live-check` body: a [`CheckResult`] without a
/// ticket, for the request `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveCheckReport {
    pub id: String,
    pub ip: IpAddr,
    pub ts: i64,
    #[serde(default)]
    pub offset: Option<f64>,
    #[serde(default)]
    pub rtt: Option<f64>,
    #[serde(default)]
    pub stratum: Option<u8>,
    #[serde(default)]
    pub leap: Option<u8>,
    #[serde(default)]
    pub refid: Option<String>,
    /// The KoD code or socket error.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub no_response: bool,
}

/// `POST /api/v1/monitor/results` body; also the unit of the agent's spool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub batch_id: String,
    pub results: Vec<CheckResult>,
}

/// One check's best sample. `offset` and `rtt` are seconds; `ts` unix
/// seconds when the check finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub ip: IpAddr,
    pub ticket: String,
    pub ts: i64,
    #[serde(default)]
    pub offset: Option<f64>,
    #[serde(default)]
    pub rtt: Option<f64>,
    #[serde(default)]
    pub stratum: Option<u8>,
    #[serde(default)]
    pub leap: Option<u8>,
    #[serde(default)]
    pub refid: Option<String>,
    /// The KoD code or socket error.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub no_response: bool,
    /// Every sample of the check, in the order sent (issue 15). Absent
    /// from older agents; the service then stores the result alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<Sample>,
}

/// One query of a check (`CheckResult::samples`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// 0-based, consecutive: the n-th query sent.
    pub position: u8,
    /// When the query was sent, milliseconds after the check's first query.
    pub send_ms: u32,
    /// A reply came (a KoD reply counts as answered).
    pub answered: bool,
    /// Seconds.
    #[serde(default)]
    pub rtt: Option<f64>,
    /// Server clock minus ours, seconds.
    #[serde(default)]
    pub offset: Option<f64>,
    #[serde(default)]
    pub stratum: Option<u8>,
    #[serde(default)]
    pub leap: Option<u8>,
    /// The KoD code or socket error, as in `CheckResult::error`.
    #[serde(default)]
    pub error: Option<String>,
}

/// `POST /api/v1/monitor/results` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    pub accepted: u64,
    /// The batch had been submitted before; nothing changed.
    pub duplicate: bool,
}

/// `POST /api/v1/monitor/clock` body: the agent's latest clock sanity check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockReport {
    pub ok: bool,
    /// One line, e.g. "2 of 3 reference server(s) disagree with our clock (…)".
    pub detail: String,
}

/// `POST /api/v1/monitor/traceroute` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracerouteSubmission {
    pub ip: IpAddr,
    /// Unix seconds when it was run.
    pub ts: i64,
    /// `mtr`, `traceroute`, or `none` when the agent has neither.
    pub tool: String,
    #[serde(default)]
    pub hops: Vec<Hop>,
    /// Why there are no hops (no tool, the tool failed or timed out).
    #[serde(default)]
    pub error: Option<String>,
}

/// One hop: `ip` null when no probe with this TTL was answered; `rtt_ms`
/// one entry per answered probe, of `sent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    /// Any integer on the wire, so the service can name a bad one (1..=64).
    pub ttl: i64,
    #[serde(default)]
    pub ip: Option<IpAddr>,
    #[serde(default)]
    pub rtt_ms: Vec<f64>,
    #[serde(default)]
    pub sent: u32,
}

/// `POST /api/v1/monitor/traceroute` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracerouteStored {
    pub stored: bool,
}

/// `POST /api/v1/monitor/token` answer: a short-lived access token to
/// send instead of the key (`Authorization: Bearer <token>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessToken {
    pub token: String,
    /// Seconds it stays valid from now.
    pub expires_in: u64,
}

/// `POST /api/v1/monitor/register` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The agent's random 256-bit registration secret, 64 hex digits; the
    /// same for both families. It polls with it; never shown to people.
    pub secret: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub client_version: String,
    /// The name the agent suggests (`agent setup --name`); may be empty.
    #[serde(default)]
    pub name_hint: String,
}

/// `POST /api/v1/monitor/register` answer: the same for both families.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// The short code the volunteer opens (in `url`) or types.
    pub code: String,
    /// Where the volunteer accepts the registration, signed in.
    pub url: String,
    /// Seconds until the registration can no longer be accepted.
    pub expires_in: u64,
}

/// `POST /api/v1/monitor/register/status` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationPoll {
    pub secret: String,
}

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationState {
    /// Not accepted yet: poll again in a few seconds.
    Waiting,
    /// Accepted: the credentials are in this answer, and never again.
    Accepted,
    /// The credentials were collected by an earlier poll.
    Delivered,
    /// Not accepted in time: run setup again.
    Expired,
}

/// `POST /api/v1/monitor/register/status` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationStatus {
    pub state: RegistrationState,
    /// Only in the one `accepted` answer: one per address family.
    #[serde(default)]
    pub credentials: Vec<MonitorCredential>,
}

/// One monitor's key, as delivered once to `agent setup`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorCredential {
    /// 4 or 6.
    pub family: u8,
    pub name: String,
    pub key: String,
}

/// Never prints the key.
impl std::fmt::Debug for MonitorCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorCredential")
            .field("family", &self.family)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_carries_the_version() {
        for p in [
            CONFIG_PATH,
            WORK_PATH,
            RESULTS_PATH,
            CLOCK_PATH,
            TRACEROUTE_PATH,
            LIVE_CHECK_PATH,
            TOKEN_PATH,
            REGISTER_PATH,
            REGISTER_STATUS_PATH,
        ] {
            let prefix = format!("/api/{API_VERSION}/monitor/");
            assert!(p.starts_with(&prefix), "{p}");
        }
    }
}
