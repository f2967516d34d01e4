//! Read-only queries for the public web pages: recent in/out-of-DNS
//! changes and per-monitor check counts. Both walk `log_scores` server by
//! server through its indexes, so their cost follows the rows inside the
//! time window, not the size of the whole log.

use crate::conn::Sql;
use crate::{Store, StoreError};
use std::net::IpAddr;

/// One aggregate log row where a server's score crossed a threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreCrossing {
    pub server_id: i64,
    pub ip: IpAddr,
    pub ts: i64,
    /// Aggregate score after the change.
    pub score: f64,
    /// The previously logged aggregate score.
    pub previous: f64,
}

/// The window's rows are reached server by server through the log's
/// indexes; SQLite's planner, left alone, scans the whole log instead, so
/// its variants fix the join order (`CROSS JOIN`) and the index.
const CROSSINGS: Sql = Sql {
    sqlite: "SELECT s.id AS server_id, s.ip, l.ts, l.score, l.step FROM servers s \
     CROSS JOIN log_scores l INDEXED BY log_scores_server_monitor_ts \
     WHERE l.server_id = s.id AND l.monitor_id IS NULL AND l.ts > $1 \
     AND ((l.score >= $2) <> (l.score - l.step >= $2)) \
     ORDER BY l.ts DESC, l.id DESC LIMIT $3",
    pg: "SELECT s.id AS server_id, s.ip, l.ts, l.score, l.step FROM servers s \
     JOIN log_scores l ON l.server_id = s.id \
     WHERE l.monitor_id IS NULL AND l.ts > $1 \
     AND ((l.score >= $2) <> (l.score - l.step >= $2)) \
     ORDER BY l.ts DESC, l.id DESC LIMIT $3",
};

/// Both planners walk each server's `(server_id, ts, …)` range here.
const CHECKS_SINCE: &str = "SELECT l.monitor_id, COUNT(*) FROM servers s \
     CROSS JOIN log_scores l \
     WHERE l.server_id = s.id AND l.ts > $1 AND l.monitor_id IS NOT NULL \
     GROUP BY l.monitor_id";

#[derive(sqlx::FromRow)]
struct CrossingRead {
    server_id: i64,
    ip: String,
    ts: i64,
    score: f64,
    step: f64,
}

impl Store {
    /// Aggregate log rows after `since` where the score went from below
    /// `threshold` to at least it or back, newest first, at most `limit`.
    pub async fn score_crossings(
        &self,
        since: i64,
        threshold: f64,
        limit: i64,
    ) -> Result<Vec<ScoreCrossing>, StoreError> {
        let rows: Vec<CrossingRead> = self
            .read(async |c| {
                Ok(c.query(CROSSINGS)
                    .bind(since)
                    .bind(threshold)
                    .bind(limit.max(0))
                    .fetch_all()
                    .await?)
            })
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ScoreCrossing {
                    server_id: r.server_id,
                    ip: crate::parse_ip(&r.ip)?,
                    ts: r.ts,
                    score: r.score,
                    previous: r.score - r.step,
                })
            })
            .collect()
    }

    /// Monitor results logged after `since`, per monitor id (monitors
    /// without any are absent).
    pub async fn checks_since(&self, since: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        self.read(async |c| Ok(c.query(CHECKS_SINCE).bind(since).fetch_all().await?))
            .await
    }
}
