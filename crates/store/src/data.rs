//! Reads for the data API and pages: a server's log, its monitors, counts.

use crate::bulk::{self, LogRead};
use crate::{
    LogRow, MonitorFilter, ServerMonitorRow, Store, StoreError, parse_global, parse_status, sql,
    us_to_s,
};

impl Store {
    /// A server's log: newest first, or with `since` the rows with
    /// `ts > since` oldest first; at most `limit` rows.
    pub async fn log_rows(
        &self,
        server_id: i64,
        filter: MonitorFilter,
        limit: i64,
        since: Option<i64>,
    ) -> Result<Vec<LogRow>, StoreError> {
        let limit = limit.max(0);
        let monitor = match filter {
            MonitorFilter::Monitor(m) => Some(m),
            _ => None,
        };
        // `since` (if any) is $3, then the monitor id.
        let (third, fourth) = match since {
            Some(s) => (Some(s), monitor),
            None => (monitor, None),
        };
        let rows = self
            .read(async |c| {
                let query = match (filter, since) {
                    (MonitorFilter::All, None) => sql::LOG_ALL_DESC,
                    (MonitorFilter::All, Some(_)) => sql::LOG_ALL_ASC,
                    (MonitorFilter::Aggregate, None) => sql::LOG_AGG_DESC,
                    (MonitorFilter::Aggregate, Some(_)) => sql::LOG_AGG_ASC,
                    (MonitorFilter::Monitor(_), None) => sql::LOG_MON_DESC,
                    (MonitorFilter::Monitor(_), Some(_)) => sql::LOG_MON_ASC,
                };
                Ok(bulk::fetch_logs(c, query, server_id, limit, third, fourth).await?)
            })
            .await?;
        Ok(rows.into_iter().map(log_row).collect())
    }

    /// Every monitor's standing for the server, by monitor name.
    pub async fn server_monitors(
        &self,
        server_id: i64,
    ) -> Result<Vec<ServerMonitorRow>, StoreError> {
        let rows: Vec<MonitorScoreRead> = self
            .read(async |c| {
                Ok(c.query(sql::SERVER_MONITORS)
                    .bind(server_id)
                    .fetch_all()
                    .await?)
            })
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ServerMonitorRow {
                    monitor_id: r.monitor_id,
                    name: r.name,
                    location: r.location,
                    monitor_status: parse_global(&r.monitor_status)?,
                    status: parse_status(&r.status)?,
                    score: r.score,
                    score_ts: r.score_ts,
                    rtt: r.rtt_us.map(us_to_s),
                })
            })
            .collect()
    }

    /// (servers, monitors, log rows), exact: `COUNT(*)` over the whole log
    /// (tests, benchmarks); metrics use [`Store::metric_counts`].
    pub async fn counts(&self) -> Result<(i64, i64, i64), StoreError> {
        self.read(async |c| {
            let r: (i64, i64, i64) = c.query(sql::COUNTS).fetch_one().await?;
            Ok(r)
        })
        .await
    }

    /// Servers, monitors and score log rows for metrics, at a cost that does
    /// not grow with the log: the log's count is kept (SQLite) or estimated
    /// from the id range (PostgreSQL), see `sql::METRIC_COUNTS`.
    pub async fn metric_counts(&self) -> Result<(i64, i64, i64), StoreError> {
        self.read(async |c| {
            let r: (i64, i64, i64) = c.query(sql::METRIC_COUNTS).fetch_one().await?;
            Ok(r)
        })
        .await
    }
}

fn log_row(r: LogRead) -> LogRow {
    LogRow {
        id: r.id,
        ts: r.ts,
        offset: r.offset,
        step: r.step,
        score: r.score,
        monitor_id: r.monitor_id,
        monitor_name: r.monitor_name,
        rtt: r.rtt_us.map(us_to_s),
        stratum: r.stratum,
        leap: r.leap,
        refid: r.refid,
        error: r.error,
        no_response: r.no_response,
    }
}

/// One monitor's standing for a server, as stored.
#[derive(sqlx::FromRow)]
struct MonitorScoreRead {
    monitor_id: i64,
    name: String,
    location: String,
    monitor_status: String,
    status: String,
    score: f64,
    score_ts: Option<i64>,
    rtt_us: Option<i64>,
}
