//! A volunteer's own monitors, for the manage pages: the account's
//! monitor rows, one monitor's clock check, checks and traceroutes, the
//! servers it sees unhealthy while most other monitors see them healthy
//! (where a blind link shows first), and pause/resume by the volunteer.

use crate::audit::{self, AuditEntry};
use crate::monitors::MonitorRead;
use crate::traceroute_rows::TracerouteHop;
use crate::{MonitorClock, MonitorRow, Store, StoreError, parse_ip};
use scoring::GlobalStatus;
use std::net::IpAddr;

/// A server this monitor sees unhealthy while most of the other monitors
/// counting for it see it healthy.
#[derive(Debug, Clone, PartialEq)]
pub struct BlindSpot {
    pub server_id: i64,
    pub ip: IpAddr,
    /// This monitor's score for the server.
    pub score: f64,
    pub score_ts: i64,
    /// This monitor's error code since it last saw the server healthy ('' none).
    pub last_error: String,
    /// Other monitors counting for the server (active or testing for it,
    /// globally active or testing, with a result).
    pub others: i64,
    /// How many of them score it at or above the threshold.
    pub others_healthy: i64,
}

/// A traceroute the monitor ran, with the server's address.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorTraceroute {
    pub id: i64,
    pub server_ip: IpAddr,
    pub ts: i64,
    pub reason: String,
    pub tool: String,
    pub hops: Vec<TracerouteHop>,
    pub error: Option<String>,
}

const OF_ACCOUNT: &str = "SELECT id, name, location, ip, ip_version, account_id, status, key_hash, \
     config, last_seen, last_submit_batch, client_version, created_on FROM monitors \
     WHERE account_id = $1 ORDER BY name";
const CLOCK_ONE: &str =
    "SELECT monitor_id, ok, detail, ts FROM monitor_clock WHERE monitor_id = $1";
/// One index range per server (`log_scores_server_monitor_ts`), as
/// `Store::checks_since` walks it; CROSS JOIN keeps SQLite's order.
const CHECKS_OF: &str = "SELECT COUNT(*) FROM servers s CROSS JOIN log_scores l \
     WHERE l.server_id = s.id AND l.monitor_id = $1 AND l.ts > $2";
const TRACEROUTES_OF: &str = "SELECT t.id, s.ip, t.ts, t.reason, t.tool, t.hops, t.error \
     FROM traceroutes t JOIN servers s ON s.id = t.server_id \
     WHERE t.monitor_id = $1 ORDER BY t.ts DESC, t.id DESC LIMIT $2";
/// The monitor's own pairs below the threshold (through the
/// `(monitor_id, …)` index), each joined to the other pairs of its server
/// that count (through `server_scores_counted`): one statement, one index
/// range per server it sees unhealthy, no pass over every server.
/// Per-server paused pairs and pairs never checked say nothing and are
/// left out on both sides.
const BLIND_SPOTS: &str = "SELECT mine.server_id, s.ip, mine.score, mine.score_ts, \
     COALESCE(mine.last_error, '') AS last_error, COUNT(*) AS others, \
     SUM(CASE WHEN p.score >= $2 THEN 1 ELSE 0 END) AS others_healthy \
     FROM server_scores mine \
     JOIN servers s ON s.id = mine.server_id \
     JOIN server_scores p ON p.server_id = mine.server_id AND p.monitor_id <> mine.monitor_id \
       AND p.status <> 'candidate' AND p.status <> 'paused' AND p.score_ts IS NOT NULL \
     JOIN monitors m ON m.id = p.monitor_id AND m.status IN ('active', 'testing') \
     WHERE mine.monitor_id = $1 AND mine.status <> 'paused' \
     AND mine.score_ts IS NOT NULL AND mine.score < $2 \
     GROUP BY mine.server_id, s.ip, mine.score, mine.score_ts, mine.last_error \
     HAVING 2 * SUM(CASE WHEN p.score >= $2 THEN 1 ELSE 0 END) > COUNT(*) \
     ORDER BY others_healthy DESC, s.ip LIMIT $3";
const PAUSE: &str = "UPDATE monitors SET status = 'paused', paused_from = $2 WHERE id = $1";
const RESUME: &str = "UPDATE monitors SET status = paused_from, paused_from = NULL WHERE id = $1";
const PAUSED_FROM: &str = "SELECT paused_from FROM monitors WHERE id = $1";

#[derive(sqlx::FromRow)]
struct BlindRead {
    server_id: i64,
    ip: String,
    score: f64,
    score_ts: i64,
    last_error: String,
    others: i64,
    others_healthy: i64,
}

#[derive(sqlx::FromRow)]
struct TracerouteRead {
    id: i64,
    ip: String,
    ts: i64,
    reason: String,
    tool: String,
    hops: String,
    error: Option<String>,
}

impl Store {
    /// The account's monitors (every status), by name.
    pub async fn account_monitors(&self, account_id: i64) -> Result<Vec<MonitorRow>, StoreError> {
        self.read(async |c| {
            let rows: Vec<MonitorRead> = c.query(OF_ACCOUNT).bind(account_id).fetch_all().await?;
            rows.into_iter().map(MonitorRead::row).collect()
        })
        .await
    }

    /// The account's monitor `name`; `None` when there is none or it is
    /// another account's (the caller answers 404 to both).
    pub async fn account_monitor(
        &self,
        account_id: i64,
        name: &str,
    ) -> Result<Option<MonitorRow>, StoreError> {
        Ok(self
            .monitor_by_name(name)
            .await?
            .filter(|m| m.account_id == Some(account_id)))
    }

    /// The status a volunteer's pause keeps for resuming; `None` when the
    /// monitor is not paused by its volunteer.
    pub async fn monitor_paused_from(
        &self,
        monitor_id: i64,
    ) -> Result<Option<GlobalStatus>, StoreError> {
        let from: Option<(Option<String>,)> = self
            .read(async |c| {
                Ok(c.query(PAUSED_FROM)
                    .bind(monitor_id)
                    .fetch_optional()
                    .await?)
            })
            .await?;
        Ok(from
            .and_then(|(f,)| f)
            .and_then(|f| f.parse::<GlobalStatus>().ok())
            .filter(|s| s.measures()))
    }

    /// The monitor's last reported clock check, if any.
    pub async fn monitor_clock(&self, monitor_id: i64) -> Result<Option<MonitorClock>, StoreError> {
        self.read(async |c| Ok(c.query(CLOCK_ONE).bind(monitor_id).fetch_optional().await?))
            .await
    }

    /// Results the monitor logged after `since`.
    pub async fn monitor_checks_since(
        &self,
        monitor_id: i64,
        since: i64,
    ) -> Result<i64, StoreError> {
        self.read(async |c| {
            Ok(c.query(CHECKS_OF)
                .bind(monitor_id)
                .bind(since)
                .fetch_one::<(i64,)>()
                .await?
                .0)
        })
        .await
    }

    /// The newest `limit` traceroutes the monitor ran, newest first.
    pub async fn monitor_traceroutes(
        &self,
        monitor_id: i64,
        limit: i64,
    ) -> Result<Vec<MonitorTraceroute>, StoreError> {
        let rows: Vec<TracerouteRead> = self
            .read(async |c| {
                Ok(c.query(TRACEROUTES_OF)
                    .bind(monitor_id)
                    .bind(limit.max(0))
                    .fetch_all()
                    .await?)
            })
            .await?;
        rows.into_iter()
            .map(|t| {
                let hops = serde_json::from_str(&t.hops)
                    .map_err(|e| StoreError::Corrupt(format!("traceroute {}: hops: {e}", t.id)))?;
                Ok(MonitorTraceroute {
                    id: t.id,
                    server_ip: parse_ip(&t.ip)?,
                    ts: t.ts,
                    reason: t.reason,
                    tool: t.tool,
                    hops,
                    error: t.error,
                })
            })
            .collect()
    }

    /// The servers `monitor_id` scores below `threshold` while more than
    /// half of the other monitors counting for them score them at or above
    /// it: most agreeing first, at most `limit`.
    pub async fn monitor_blind_spots(
        &self,
        monitor_id: i64,
        threshold: f64,
        limit: i64,
    ) -> Result<Vec<BlindSpot>, StoreError> {
        let rows: Vec<BlindRead> = self
            .read(async |c| {
                Ok(c.query(BLIND_SPOTS)
                    .bind(monitor_id)
                    .bind(threshold)
                    .bind(limit.max(0))
                    .fetch_all()
                    .await?)
            })
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(BlindSpot {
                    server_id: r.server_id,
                    ip: parse_ip(&r.ip)?,
                    score: r.score,
                    score_ts: r.score_ts,
                    last_error: r.last_error,
                    others: r.others,
                    others_healthy: r.others_healthy,
                })
            })
            .collect()
    }

    /// The volunteer pauses (`pause`) or resumes their monitor `name`.
    /// Pause: from active or testing, which resuming restores. Resume: only
    /// a pause of the volunteer's own (an admin's pause, pending and
    /// deleted stay as they are). Another account's monitor: `NotFound`;
    /// a status that does not allow it: `Invalid`. Audit `monitor.pause` /
    /// `monitor.resume`.
    pub async fn set_account_monitor_paused(
        &self,
        account_id: i64,
        name: &str,
        pause: bool,
        actor: &str,
        now: i64,
    ) -> Result<MonitorRow, StoreError> {
        self.write(async |c| {
            let m = c
                .query(crate::sql::MONITOR_BY_NAME)
                .bind(name)
                .fetch_optional::<MonitorRead>()
                .await?
                .map(MonitorRead::row)
                .transpose()?
                .filter(|m| m.account_id == Some(account_id))
                .ok_or_else(|| StoreError::NotFound(format!("monitor {name:?}")))?;
            let (action, to) = if pause {
                if !m.status.measures() {
                    return Err(StoreError::Invalid(format!(
                        "status: monitor {name} is {}; only an active or testing monitor can be paused",
                        m.status
                    )));
                }
                c.query(PAUSE)
                    .bind(m.id)
                    .bind(m.status.as_str())
                    .execute()
                    .await?;
                ("monitor.pause", GlobalStatus::Paused)
            } else {
                let (from,): (Option<String>,) =
                    c.query(PAUSED_FROM).bind(m.id).fetch_one().await?;
                let to = from.as_deref().and_then(|s| s.parse::<GlobalStatus>().ok());
                let to = match (m.status, to) {
                    (GlobalStatus::Paused, Some(to)) if to.measures() => to,
                    (GlobalStatus::Paused, _) => {
                        return Err(StoreError::Invalid(format!(
                            "status: monitor {name} was paused by the pool's admins; ask them to resume it"
                        )));
                    }
                    (s, _) => {
                        return Err(StoreError::Invalid(format!(
                            "status: monitor {name} is {s}, not paused; it cannot be resumed"
                        )));
                    }
                };
                c.query(RESUME).bind(m.id).execute().await?;
                ("monitor.resume", to)
            };
            let entry = AuditEntry {
                account_id: Some(account_id),
                actor: actor.to_string(),
                action,
                subject: m.name.clone(),
                detail: format!("{} → {to}", m.status),
            };
            audit::record(c, &entry, now).await?;
            Ok(MonitorRow { status: to, ..m })
        })
        .await
    }
}
