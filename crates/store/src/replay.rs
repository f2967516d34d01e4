//! What `poolwatch policy replay` reads (issue 15): the servers with
//! stored samples in a window, each with what scoring needs beside the
//! samples (netspeed, deletion date, zones, each monitor's status for it),
//! and the saved replay reports the admin page shows. The samples
//! themselves come per server, in key order, from [`Store::samples`], so a
//! replay never holds more than one server's window.
//!
//! Monitor statuses are today's (`server_scores`): the store keeps no
//! history of them, so history is replayed with the current statuses.

use crate::{MonitorStatus, ServerRow, Store, StoreError};
use std::collections::HashMap;

/// One server to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayServer {
    /// Its row as today (ip, netspeed, deletion date, zones).
    pub server: ServerRow,
    /// Each monitor's current status for it (`server_scores`), by monitor id.
    pub monitors: Vec<(i64, MonitorStatus)>,
}

impl ReplayServer {
    /// The monitor's status for this server; one without a row (deleted
    /// since) counts as a candidate, the least trusted.
    pub fn status(&self, monitor_id: i64) -> MonitorStatus {
        self.monitors
            .iter()
            .find(|(m, _)| *m == monitor_id)
            .map_or(MonitorStatus::Candidate, |(_, s)| *s)
    }
}

/// A saved replay report, without its body.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PolicyReportRow {
    pub id: i64,
    pub created: i64,
    pub from_ts: i64,
    pub to_ts: i64,
    /// The policies' names, comma-separated, baseline first.
    pub policies: String,
}

#[derive(sqlx::FromRow)]
struct PairStatus {
    server_id: i64,
    monitor_id: i64,
    status: String,
}

const SERVERS_WITH_SAMPLES: &str = "SELECT s.id FROM servers s WHERE EXISTS \
     (SELECT 1 FROM check_samples x WHERE x.server_id = s.id AND x.ts >= $1 AND x.ts < $2) \
     ORDER BY s.id";
const PAIR_STATUSES: &str =
    "SELECT server_id, monitor_id, status FROM server_scores ORDER BY server_id, monitor_id";

/// Reports listed on the admin page, newest first.
pub const POLICY_REPORTS_LISTED: i64 = 100;
/// A saved report's JSON is at most this long (a report lists at most
/// a bounded number of changed servers per policy, so this is generous).
pub const POLICY_REPORT_MAX_BYTES: usize = 16 << 20;

impl Store {
    /// The servers with samples in `since <= ts < until`, by id, each with
    /// its monitors' current statuses.
    pub async fn replay_servers(
        &self,
        since: i64,
        until: i64,
    ) -> Result<Vec<ReplayServer>, StoreError> {
        let (ids, pairs) = self
            .read(async |c| {
                let ids: Vec<(i64,)> = c
                    .query(SERVERS_WITH_SAMPLES)
                    .bind(since)
                    .bind(until)
                    .fetch_all()
                    .await?;
                let pairs: Vec<PairStatus> = c.query(PAIR_STATUSES).fetch_all().await?;
                Ok((ids, pairs))
            })
            .await?;
        let mut monitors: HashMap<i64, Vec<(i64, MonitorStatus)>> = HashMap::new();
        for p in pairs {
            let status = p.status.parse().map_err(|e| {
                StoreError::Invalid(format!(
                    "server_scores ({}, {}): {e}",
                    p.server_id, p.monitor_id
                ))
            })?;
            monitors
                .entry(p.server_id)
                .or_default()
                .push((p.monitor_id, status));
        }
        let wanted: std::collections::HashSet<i64> = ids.into_iter().map(|(id,)| id).collect();
        Ok(self
            .list_servers()
            .await?
            .into_iter()
            .filter(|s| wanted.contains(&s.id))
            .map(|server| ReplayServer {
                monitors: monitors.remove(&server.id).unwrap_or_default(),
                server,
            })
            .collect())
    }

    /// Saves a replay report (its JSON); its id.
    pub async fn save_policy_report(
        &self,
        row: &PolicyReportRow,
        report: &str,
    ) -> Result<i64, StoreError> {
        if report.len() > POLICY_REPORT_MAX_BYTES {
            return Err(StoreError::Invalid(format!(
                "policy report: {} bytes, at most {POLICY_REPORT_MAX_BYTES}",
                report.len()
            )));
        }
        self.write(async |c| {
            let (id,): (i64,) = c
                .query(
                    "INSERT INTO policy_reports (created, from_ts, to_ts, policies, report) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(row.created)
                .bind(row.from_ts)
                .bind(row.to_ts)
                .bind(row.policies.as_str())
                .bind(report)
                .fetch_one()
                .await?;
            Ok(id)
        })
        .await
    }

    /// The newest saved reports ([`POLICY_REPORTS_LISTED`]), newest first.
    pub async fn policy_reports(&self) -> Result<Vec<PolicyReportRow>, StoreError> {
        self.read(async |c| {
            Ok(c.query(
                "SELECT id, created, from_ts, to_ts, policies FROM policy_reports \
                 ORDER BY id DESC LIMIT $1",
            )
            .bind(POLICY_REPORTS_LISTED)
            .fetch_all()
            .await?)
        })
        .await
    }

    /// One saved report and its JSON; `None` for an unknown id.
    pub async fn policy_report(
        &self,
        id: i64,
    ) -> Result<Option<(PolicyReportRow, String)>, StoreError> {
        let row: Option<(i64, i64, i64, i64, String, String)> = self
            .read(async |c| {
                Ok(c.query(
                    "SELECT id, created, from_ts, to_ts, policies, report FROM policy_reports \
                     WHERE id = $1",
                )
                .bind(id)
                .fetch_optional()
                .await?)
            })
            .await?;
        Ok(row.map(|(id, created, from_ts, to_ts, policies, report)| {
            (
                PolicyReportRow {
                    id,
                    created,
                    from_ts,
                    to_ts,
                    policies,
                },
                report,
            )
        }))
    }
}
