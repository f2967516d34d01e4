//! Work calls: the servers due for a monitor, and the batches that issue them.

use crate::bulk::{self, Due};
use crate::conn::Conn;
use crate::{BatchRow, Store, StoreError, WorkIntervals, WorkItem, parse_ip, sql};

impl Store {
    /// Up to `limit` servers due for this monitor, longest-waiting first,
    /// marked queued now, and the batch that issues them, in one
    /// transaction. Concurrent callers never get the same server: SQLite
    /// serialises writers, PostgreSQL skips locked rows. Nothing due: no
    /// batch row, `(0, [])`. `NotFound` for an unknown monitor.
    pub async fn take_work_batch(
        &self,
        monitor_id: i64,
        intervals: WorkIntervals,
        limit: i64,
        now: i64,
    ) -> Result<(i64, Vec<WorkItem>), StoreError> {
        let (seq, rows) = self
            .write(async |c| {
                let rows = due_work(c, monitor_id, intervals, limit, now).await?;
                // Nothing due: no batch row (idle monitors poll often).
                if rows.is_empty() {
                    return Ok((0, rows));
                }
                let (seq,): (i64,) = c
                    .query(sql::BATCH_INSERT)
                    .bind(monitor_id)
                    .bind(now)
                    .bind(batch_json(
                        rows.iter().map(|r| (r.server_id, r.ip.as_str())),
                    ))
                    .fetch_one()
                    .await?;
                Ok((seq, rows))
            })
            .await?;
        let items = rows.into_iter().map(Due::item).collect::<Result<_, _>>()?;
        Ok((seq, items))
    }

    pub async fn batch(&self, seq: i64) -> Result<Option<BatchRow>, StoreError> {
        let row = self
            .read(async |c| {
                let row: Option<BatchRead> =
                    c.query(sql::BATCH_GET).bind(seq).fetch_optional().await?;
                Ok(row)
            })
            .await?;
        row.map(|b| {
            // Stored as `[[id, "ip"], …]` (see `batch_json`).
            let pairs: Vec<(i64, String)> = serde_json::from_str(&b.servers)
                .map_err(|e| StoreError::Corrupt(format!("batch {} server list: {e}", b.seq)))?;
            let servers = pairs
                .into_iter()
                .map(|(id, ip)| Ok((id, parse_ip(&ip)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(BatchRow {
                seq: b.seq,
                monitor_id: b.monitor_id,
                created: b.created,
                submitted: b.submitted_at.is_some(),
                server_ids: servers.iter().map(|s| s.0).collect(),
                servers,
            })
        })
        .transpose()
    }
}

/// A batch's server list as stored: JSON `[[id, "ip"], …]`.
pub(crate) fn batch_json<'a>(rows: impl Iterator<Item = (i64, &'a str)>) -> String {
    serde_json::to_string(&rows.collect::<Vec<_>>()).expect("ids and strings always serialize")
}

/// The due work of one work call: checks the monitor, then takes up to
/// `limit` due servers (none for `limit` ≤ 0) and marks them queued.
pub(crate) async fn due_work(
    c: &mut Conn<'_>,
    monitor_id: i64,
    intervals: WorkIntervals,
    limit: i64,
    now: i64,
) -> Result<Vec<Due>, StoreError> {
    let version: Option<(i64,)> = c
        .query(sql::MONITOR_IP_VERSION)
        .bind(monitor_id)
        .fetch_optional()
        .await?;
    let Some((version,)) = version else {
        return Err(StoreError::NotFound(format!("monitor id {monitor_id}")));
    };
    if limit <= 0 {
        return Ok(Vec::new());
    }
    let cutoffs = [
        now.saturating_sub(intervals.active_s),
        now.saturating_sub(intervals.testing_s),
        now.saturating_sub(intervals.candidate_s),
    ];
    Ok(bulk::take_due(c, monitor_id, version, now, cutoffs, limit).await?)
}

impl Due {
    pub(crate) fn item(self) -> Result<WorkItem, StoreError> {
        Ok(WorkItem {
            server_id: self.server_id,
            ip: parse_ip(&self.ip)?,
        })
    }
}

/// A `batches` row as stored.
#[derive(sqlx::FromRow)]
struct BatchRead {
    seq: i64,
    monitor_id: i64,
    created: i64,
    submitted_at: Option<i64>,
    servers: String,
}
