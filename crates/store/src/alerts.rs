//! Alerts to a server's account: which servers can be alerted (their
//! account has an e-mail address or a webhook), the alert state per server,
//! every message sent, and the evidence a message carries (what each
//! monitor saw last and its latest traceroute).
//!
//! The decisions (when to send what) are the server crate's; this module
//! only reads and writes the rows.

use crate::{MonitorStatus, Store, StoreError, parse_ip, parse_status, us_to_s};
use std::net::IpAddr;
use std::str::FromStr;

/// What an alert says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// The server's score fell below 10.
    Down,
    /// It is still below 10.
    Reminder,
    /// It is back at 10 or more.
    Recovered,
}

/// `as_str` (the stored spelling, identical to the serde form), `Display`
/// and `FromStr` of a stored word enum; `$what` names it in the error.
macro_rules! stored_words {
    ($ty:ident, $what:literal, $expected:literal, { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $word,)+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($ty::$variant),)+
                    _ => Err(StoreError::Invalid(format!(
                        concat!("unknown ", $what, " {:?} (expected ", $expected, ")"),
                        s
                    ))),
                }
            }
        }
    };
}

stored_words!(AlertKind, "alert kind", "down, reminder or recovered", {
    Down => "down",
    Reminder => "reminder",
    Recovered => "recovered",
});

/// How an alert went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertChannel {
    Email,
    Webhook,
}

stored_words!(AlertChannel, "alert channel", "email or webhook", {
    Email => "email",
    Webhook => "webhook",
});

/// The `alert_state` row of one server. A server without a row has never
/// been seen up by the alerter (and is not alerted).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AlertState {
    /// Since when its score has been below 10 (None: it is up).
    pub down_since: Option<i64>,
    /// When the last alert went out (at least one channel delivered it).
    pub last_sent_at: Option<i64>,
    /// What that alert said.
    pub last_kind: Option<AlertKind>,
    /// Reminders sent since the last down alert.
    pub reminders: i64,
}

/// A server whose account can be alerted, with what the alerter needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertTarget {
    pub server_id: i64,
    pub ip: IpAddr,
    /// The aggregate score and when it was computed (None: never scored).
    pub score: f64,
    pub score_ts: Option<i64>,
    pub deletion_on: Option<i64>,
    pub account: String,
    /// Non-empty or None.
    pub email: Option<String>,
    pub webhook: Option<String>,
    /// None: no `alert_state` row yet.
    pub state: Option<AlertState>,
    /// The newest row of `alerts` for the server (any outcome).
    pub last_attempt_at: Option<i64>,
}

/// One delivery attempt, to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub server_id: i64,
    pub ts: i64,
    pub kind: AlertKind,
    pub channel: AlertChannel,
    /// The e-mail address or webhook URL.
    pub target: String,
    pub ok: bool,
    pub error: Option<String>,
    /// What was sent (the e-mail text or the webhook JSON).
    pub body: String,
}

/// A recorded attempt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub server_id: i64,
    pub ts: i64,
    pub kind: AlertKind,
    pub channel: AlertChannel,
    pub target: String,
    pub ok: bool,
    pub error: Option<String>,
    pub body: String,
}

/// What one monitor last saw of a server.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MonitorEvidence {
    pub monitor_id: i64,
    pub name: String,
    pub location: String,
    /// The monitor's status for this server.
    pub status: MonitorStatus,
    pub score: f64,
    pub score_ts: Option<i64>,
    /// The latest result (None when the monitor has none for the server).
    pub ts: Option<i64>,
    pub offset: Option<f64>,
    /// Seconds.
    pub rtt: Option<f64>,
    pub error: Option<String>,
    pub no_response: bool,
}

/// The newest traceroute of one monitor towards a server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct TracerouteEvidence {
    pub monitor_id: i64,
    pub monitor: String,
    pub ts: i64,
    pub reason: String,
    pub tool: String,
    /// JSON text as the monitor sent it.
    pub hops: String,
    pub error: Option<String>,
}

/// The facts an alert carries.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AlertEvidence {
    /// Active first, then testing, candidate and paused; by name within.
    pub monitors: Vec<MonitorEvidence>,
    /// By monitor name.
    pub traceroutes: Vec<TracerouteEvidence>,
}

const TARGETS: &str = "SELECT s.id AS server_id, s.ip, s.score, s.score_ts, s.deletion_on, \
     a.name AS account, a.email, a.webhook, st.server_id AS state_row, st.down_since, \
     st.last_sent_at, st.last_kind, st.reminders, \
     (SELECT MAX(al.ts) FROM alerts al WHERE al.server_id = s.id) AS last_attempt_at \
     FROM servers s JOIN accounts a ON a.id = s.account_id \
     LEFT JOIN alert_state st ON st.server_id = s.id \
     WHERE s.alerts_on AND ((a.email IS NOT NULL AND a.email <> '') \
       OR (a.webhook IS NOT NULL AND a.webhook <> '')) \
     ORDER BY s.id";

const STATE_UPSERT: &str = "INSERT INTO alert_state (server_id, down_since, last_sent_at, last_kind, reminders) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (server_id) DO UPDATE SET \
     down_since = excluded.down_since, last_sent_at = excluded.last_sent_at, \
     last_kind = excluded.last_kind, reminders = excluded.reminders";

const INSERT_ALERT: &str = "INSERT INTO alerts (server_id, ts, kind, channel, target, ok, error, body) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";

const FOR_SERVER: &str = "SELECT id, server_id, ts, kind, channel, target, ok, error, body \
     FROM alerts WHERE server_id = $1 ORDER BY ts DESC, id DESC LIMIT $2";

const MONITORS: &str = "SELECT ss.monitor_id, m.name, m.location, ss.status, ss.score, ss.score_ts \
     FROM server_scores ss JOIN monitors m ON m.id = ss.monitor_id \
     WHERE ss.server_id = $1 AND m.status <> 'deleted' ORDER BY m.name";

const LATEST_RESULT: &str = "SELECT ts, \"offset\", rtt, error, no_response FROM log_scores \
     WHERE server_id = $1 AND monitor_id = $2 ORDER BY ts DESC, id DESC LIMIT 1";

const TRACEROUTES: &str = "SELECT t.monitor_id, m.name AS monitor, t.ts, t.reason, t.tool, t.hops, t.error \
     FROM traceroutes t JOIN monitors m ON m.id = t.monitor_id \
     WHERE t.server_id = $1 AND t.ts >= $2 AND t.id = (SELECT t2.id FROM traceroutes t2 \
       WHERE t2.server_id = t.server_id AND t2.monitor_id = t.monitor_id \
       ORDER BY t2.ts DESC, t2.id DESC LIMIT 1) \
     ORDER BY m.name";

/// A server with an alert contact, its account and alert state.
#[derive(sqlx::FromRow)]
struct TargetRead {
    server_id: i64,
    ip: String,
    score: f64,
    score_ts: Option<i64>,
    deletion_on: Option<i64>,
    account: String,
    email: Option<String>,
    webhook: Option<String>,
    /// `alert_state.server_id`: NULL when the server has no state row.
    state_row: Option<i64>,
    down_since: Option<i64>,
    last_sent_at: Option<i64>,
    last_kind: Option<String>,
    reminders: Option<i64>,
    last_attempt_at: Option<i64>,
}

/// An `alerts` row as stored.
#[derive(sqlx::FromRow)]
struct AlertRead {
    id: i64,
    server_id: i64,
    ts: i64,
    kind: String,
    channel: String,
    target: String,
    ok: bool,
    error: Option<String>,
    body: String,
}

/// A monitor's standing for the server.
#[derive(sqlx::FromRow)]
struct MonitorRead {
    monitor_id: i64,
    name: String,
    location: String,
    status: String,
    score: f64,
    score_ts: Option<i64>,
}

/// A monitor's latest result for the server.
#[derive(sqlx::FromRow)]
struct ResultRead {
    ts: i64,
    offset: Option<f64>,
    rtt: Option<i64>,
    error: Option<String>,
    no_response: bool,
}

fn non_blank(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn corrupt_kind(s: &str) -> StoreError {
    StoreError::Corrupt(format!("stored alert kind {s:?}"))
}

fn status_rank(s: MonitorStatus) -> u8 {
    match s {
        MonitorStatus::Active => 0,
        MonitorStatus::Testing => 1,
        MonitorStatus::Candidate => 2,
        MonitorStatus::Paused => 3,
    }
}

impl Store {
    /// Every server whose account has an e-mail address or a webhook, with
    /// its score and alert state, by server id; not the servers whose
    /// operator muted them (`alerts_on` false). Servers scheduled for
    /// deletion are included (`deletion_on`); the caller decides.
    pub async fn alert_targets(&self) -> Result<Vec<AlertTarget>, StoreError> {
        let rows: Vec<TargetRead> = self
            .read(async |c| Ok(c.query(TARGETS).fetch_all().await?))
            .await?;
        rows.into_iter()
            .map(|t| {
                let state = match t.state_row {
                    None => None,
                    Some(_) => Some(AlertState {
                        down_since: t.down_since,
                        last_sent_at: t.last_sent_at,
                        last_kind: t
                            .last_kind
                            .as_deref()
                            .map(|k| k.parse().map_err(|_| corrupt_kind(k)))
                            .transpose()?,
                        reminders: t.reminders.unwrap_or(0),
                    }),
                };
                Ok(AlertTarget {
                    server_id: t.server_id,
                    ip: parse_ip(&t.ip)?,
                    score: t.score,
                    score_ts: t.score_ts,
                    deletion_on: t.deletion_on,
                    account: t.account,
                    email: non_blank(t.email),
                    webhook: non_blank(t.webhook),
                    state,
                    last_attempt_at: t.last_attempt_at,
                })
            })
            .collect()
    }

    /// Write a server's alert state (creating its row). `NotFound` for an
    /// unknown server.
    pub async fn save_alert_state(
        &self,
        server_id: i64,
        state: &AlertState,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            c.query(STATE_UPSERT)
                .bind(server_id)
                .bind(state.down_since)
                .bind(state.last_sent_at)
                .bind(state.last_kind.map(AlertKind::as_str))
                .bind(state.reminders)
                .execute()
                .await
                .map_err(|e| not_found_fk(e, server_id))?;
            Ok(())
        })
        .await
    }

    /// Record one delivery attempt; returns its id. `NotFound` for an
    /// unknown server.
    pub async fn record_alert(&self, a: &NewAlert) -> Result<i64, StoreError> {
        let error = a.error.as_deref().filter(|e| !e.is_empty());
        self.write(async |c| {
            let (id,): (i64,) = c
                .query(INSERT_ALERT)
                .bind(a.server_id)
                .bind(a.ts)
                .bind(a.kind.as_str())
                .bind(a.channel.as_str())
                .bind(&a.target)
                .bind(a.ok)
                .bind(error)
                .bind(&a.body)
                .fetch_one()
                .await
                .map_err(|e| not_found_fk(e, a.server_id))?;
            Ok(id)
        })
        .await
    }

    /// A server's recorded alert attempts, newest first, at most `limit`.
    pub async fn alerts_for_server(
        &self,
        server_id: i64,
        limit: i64,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let rows: Vec<AlertRead> = self
            .read(async |c| {
                Ok(c.query(FOR_SERVER)
                    .bind(server_id)
                    .bind(limit.max(0))
                    .fetch_all()
                    .await?)
            })
            .await?;
        rows.into_iter()
            .map(|a| {
                Ok(AlertRow {
                    id: a.id,
                    server_id: a.server_id,
                    ts: a.ts,
                    kind: a.kind.parse().map_err(|_| corrupt_kind(&a.kind))?,
                    channel: a.channel.parse().map_err(|_| {
                        StoreError::Corrupt(format!("stored alert channel {:?}", a.channel))
                    })?,
                    target: a.target,
                    ok: a.ok,
                    error: a.error,
                    body: a.body,
                })
            })
            .collect()
    }

    /// What each (non-deleted) monitor of the server last saw, and the
    /// newest traceroute per monitor taken at or after `traceroutes_since`.
    pub async fn alert_evidence(
        &self,
        server_id: i64,
        traceroutes_since: i64,
    ) -> Result<AlertEvidence, StoreError> {
        let (mons, results, trs) = self
            .read(async |c| {
                let mons: Vec<MonitorRead> = c.query(MONITORS).bind(server_id).fetch_all().await?;
                let mut results: Vec<Option<ResultRead>> = Vec::with_capacity(mons.len());
                for m in &mons {
                    results.push(
                        c.query(LATEST_RESULT)
                            .bind(server_id)
                            .bind(m.monitor_id)
                            .fetch_optional()
                            .await?,
                    );
                }
                let trs: Vec<TracerouteEvidence> = c
                    .query(TRACEROUTES)
                    .bind(server_id)
                    .bind(traceroutes_since)
                    .fetch_all()
                    .await?;
                Ok((mons, results, trs))
            })
            .await?;
        let mut monitors = Vec::with_capacity(mons.len());
        for (m, r) in mons.into_iter().zip(results) {
            let (ts, offset, rtt, error, no_response) = match r {
                Some(r) => (
                    Some(r.ts),
                    r.offset,
                    r.rtt.map(us_to_s),
                    r.error,
                    r.no_response,
                ),
                None => (None, None, None, None, false),
            };
            monitors.push(MonitorEvidence {
                monitor_id: m.monitor_id,
                name: m.name,
                location: m.location,
                status: parse_status(&m.status)?,
                score: m.score,
                score_ts: m.score_ts,
                ts,
                offset,
                rtt,
                error,
                no_response,
            });
        }
        // Stable: names are already sorted.
        monitors.sort_by_key(|m| status_rank(m.status));
        Ok(AlertEvidence {
            monitors,
            traceroutes: trs,
        })
    }
}

fn not_found_fk(e: sqlx::Error, server_id: i64) -> StoreError {
    if crate::is_fk_violation(&e) {
        StoreError::NotFound(format!("server id {server_id}"))
    } else {
        StoreError::from(e)
    }
}
