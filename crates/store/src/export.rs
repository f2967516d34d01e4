//! Reads for `poolwatch admin export`: the score log of a time range, one
//! bounded page at a time, so a day of any size streams through a few
//! thousand rows of memory.
//!
//! Pages walk the log in (server, ts, id) order, one server at a time.
//! Both backends index the log by (server_id, ts, id) (SQLite's primary
//! key, PostgreSQL's `log_scores_server_ts`, kept by partitioning), and
//! neither by ts alone: a keyset on (ts, id) over all servers would read
//! and sort the whole range for every page. Per server, a page is one
//! index range; the cost is one small query per server without rows.

use crate::conn::positional_row;
use crate::{Store, StoreError};

/// One row of the score log as exported: the pool's archive fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportLogRow {
    pub id: i64,
    pub server_id: i64,
    pub ts: i64,
    pub server_ip: String,
    /// None for the aggregate (the server's score over its monitors).
    pub monitor_name: Option<String>,
    pub step: f64,
    pub score: f64,
    /// Seconds.
    pub offset: Option<f64>,
    /// Microseconds, as stored.
    pub rtt_us: Option<i64>,
    pub stratum: Option<i64>,
    pub leap: Option<i64>,
    pub refid: Option<String>,
    pub error: Option<String>,
    pub no_response: bool,
}

positional_row!(ExportLogRow {
    id,
    server_id,
    ts,
    server_ip,
    monitor_name,
    step,
    score,
    offset,
    rtt_us,
    stratum,
    leap,
    refid,
    error,
    no_response
});

/// Where a page ends: the next page starts after this row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportKey {
    pub server_id: i64,
    pub ts: i64,
    pub id: i64,
}

impl ExportLogRow {
    pub fn key(&self) -> ExportKey {
        ExportKey {
            server_id: self.server_id,
            ts: self.ts,
            id: self.id,
        }
    }
}

/// One server's rows in [$2, $3) after ($4, $5), oldest first.
const SERVER_ROWS: &str = "SELECT l.id, l.server_id, l.ts, s.ip, m.name, l.step, l.score, \
     l.\"offset\", l.rtt, l.stratum, l.leap, l.refid, l.error, l.no_response \
     FROM log_scores l JOIN servers s ON s.id = l.server_id \
     LEFT JOIN monitors m ON m.id = l.monitor_id \
     WHERE l.server_id = $1 AND l.ts >= $2 AND l.ts < $3 AND (l.ts, l.id) > ($4, $5) \
     ORDER BY l.ts, l.id LIMIT $6";

/// The next servers by id. Every log row has its server (the foreign key
/// cascades on delete), so these are all the servers a log row can have.
const NEXT_SERVERS: &str = "SELECT id FROM servers WHERE id > $1 ORDER BY id LIMIT $2";

/// Servers asked for at a time while looking for the next rows.
const SERVER_CHUNK: i64 = 500;

impl Store {
    /// Up to `limit` score log rows with `from <= ts < to`, in (server id,
    /// ts, id) order, starting after `after` (None: from the first). An
    /// empty page is the end; pass the last row's [`ExportLogRow::key`]
    /// for the next. Each page is one read; rows written meanwhile behind
    /// the key are not seen, ahead of it they are.
    pub async fn export_log_page(
        &self,
        from: i64,
        to: i64,
        after: Option<ExportKey>,
        limit: i64,
    ) -> Result<Vec<ExportLogRow>, StoreError> {
        let limit = limit.max(0);
        self.read(async |c| {
            let mut out: Vec<ExportLogRow> = Vec::new();
            let mut next_server = i64::MIN;
            if let Some(k) = after {
                out = c
                    .query(SERVER_ROWS)
                    .bind(k.server_id)
                    .bind(from)
                    .bind(to)
                    .bind(k.ts)
                    .bind(k.id)
                    .bind(limit)
                    .fetch_all()
                    .await?;
                next_server = k.server_id;
            }
            while (out.len() as i64) < limit {
                let ids: Vec<(i64,)> = c
                    .query(NEXT_SERVERS)
                    .bind(next_server)
                    .bind(SERVER_CHUNK)
                    .fetch_all()
                    .await?;
                if ids.is_empty() {
                    break;
                }
                for (server_id,) in ids {
                    next_server = server_id;
                    let rows: Vec<ExportLogRow> = c
                        .query(SERVER_ROWS)
                        .bind(server_id)
                        .bind(from)
                        .bind(to)
                        .bind(i64::MIN)
                        .bind(i64::MIN)
                        .bind(limit - out.len() as i64)
                        .fetch_all()
                        .await?;
                    out.extend(rows);
                    if out.len() as i64 >= limit {
                        break;
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}
