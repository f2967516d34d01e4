//! Housekeeping: deletes what the service no longer needs, in small
//! transactions so a pass never holds the writer for long.
//!
//! - Batches (one row per work call, with its server list) are only needed
//!   until their results come back. An agent drops spooled results after
//!   24 h, so a batch older than [`BATCH_KEEP_S`] can never be submitted:
//!   without pruning they are the fastest-growing table (a monitor takes
//!   thousands of batches a day).
//! - Score log rows older than the operator's retention, if one is set.
//!   The default keeps every row, like the pool's own archive does. On
//!   PostgreSQL whole partitions past the cutoff are dropped first
//!   (`crate::partitions`); row deletes remove the rest.

use crate::conn::Dialect;
use crate::{Store, StoreError};

/// Batches are kept this long (twice the agent's 24 h spool limit).
pub const BATCH_KEEP_S: i64 = 48 * 3600;

/// Rows deleted per transaction.
pub const HOUSEKEEPING_CHUNK: i64 = 5_000;

/// What one housekeeping pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Housekeeping {
    pub batches: u64,
    pub log_rows: u64,
    /// Live checks expired over a day ago ([`Store::prune_live_checks`]).
    pub live_checks: u64,
    /// Servers whose deletion date came ([`Store::remove_due_servers`]).
    pub servers: u64,
    /// Checks whose samples passed the sample retention
    /// ([`Store::prune_samples`]).
    pub samples: u64,
    /// DNS count rows (buckets and report ids) past the DNS count
    /// retention ([`Store::prune_dns_counts`]).
    pub dns_counts: u64,
}

const BATCHES_DELETE: &str = "DELETE FROM batches WHERE seq IN \
     (SELECT seq FROM batches WHERE created < $1 ORDER BY created LIMIT $2)";
/// The servers with a log row before the cutoff: one index probe each on
/// the read side, so a pass writes only where there is something to delete.
const SERVERS_WITH_OLD_LOG: &str = "SELECT s.id FROM servers s WHERE EXISTS \
     (SELECT 1 FROM log_scores l WHERE l.server_id = s.id AND l.ts < $1) ORDER BY s.id";
/// One server's oldest rows before the cutoff: its log is one range of the
/// (server_id, ts, id) key on both backends.
const LOG_DELETE: &str = "DELETE FROM log_scores WHERE (server_id, ts, id) IN \
     (SELECT server_id, ts, id FROM log_scores WHERE server_id = $1 AND ts < $2 \
      ORDER BY ts LIMIT $3)";

impl Store {
    /// Deletes batches created before `batches_before` and, when
    /// `log_before` is given, score log rows (monitors' and aggregate)
    /// with `ts` before it; at most `chunk` rows per transaction.
    /// Per-monitor scores, server scores and everything else stay.
    pub async fn housekeep(
        &self,
        batches_before: i64,
        log_before: Option<i64>,
        chunk: i64,
    ) -> Result<Housekeeping, StoreError> {
        if chunk < 1 {
            return Err(StoreError::Invalid(format!(
                "housekeeping chunk {chunk}: give at least 1"
            )));
        }
        let mut done = Housekeeping {
            batches: self
                .delete_chunked(BATCHES_DELETE, None, batches_before, chunk)
                .await?,
            log_rows: 0,
            live_checks: 0,
            servers: 0,
            samples: 0,
            dns_counts: 0,
        };
        if let Some(before) = log_before {
            // PostgreSQL: whole months first; the rows below are then only
            // the boundary month's (crate::partitions).
            done.log_rows += self
                .drop_expired_partitions(crate::LOG_TABLE, before)
                .await?;
            let ids: Vec<(i64,)> = self
                .read(async |c| {
                    Ok(c.query(SERVERS_WITH_OLD_LOG)
                        .bind(before)
                        .fetch_all()
                        .await?)
                })
                .await?;
            for (id,) in ids {
                done.log_rows += self
                    .delete_chunked(LOG_DELETE, Some(id), before, chunk)
                    .await?;
            }
        }
        Ok(done)
    }

    /// Runs `sql` (binding `server`, if any, then `before` and `chunk`)
    /// until it deletes fewer than `chunk` rows; returns the total.
    async fn delete_chunked(
        &self,
        sql: &'static str,
        server: Option<i64>,
        before: i64,
        chunk: i64,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = self
                .write(async |c| {
                    let mut q = c.query(sql);
                    if let Some(id) = server {
                        q = q.bind(id);
                    }
                    let n = q.bind(before).bind(chunk).execute().await?;
                    // The kept log count (SQLite), in the same transaction.
                    if sql == LOG_DELETE && c.dialect() == Dialect::Sqlite {
                        c.query(crate::sql::LOG_ROWS_DELETED)
                            .bind(n as i64)
                            .execute()
                            .await?;
                    }
                    Ok(n)
                })
                .await?;
            total += n;
            if n < chunk as u64 {
                return Ok(total);
            }
        }
    }
}
