//! What the monitor selector reads and writes: every (server, monitor)
//! pair's status and 24 h window, the status changes and their log.

use crate::conn::{Conn, Sql, folded, positional_row};
use crate::sql::{WindowCols, window_cols, window_json};
use crate::{MonitorStatus, Store, StoreError, parse_ip, parse_status};
use scoring::PairWindow;
use std::net::IpAddr;

/// One monitor's standing for the server being selected for.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectorPair {
    pub monitor_id: i64,
    pub status: MonitorStatus,
    /// Results of the last 24 h (see `scoring::window`).
    pub window: PairWindow,
}

/// One server with every monitor known for it.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectorInput {
    pub server_id: i64,
    pub ip: IpAddr,
    pub account_id: Option<i64>,
    /// By monitor id.
    pub pairs: Vec<SelectorPair>,
}

/// A status change to apply, with the reason to log.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectorChange {
    pub server_id: i64,
    pub monitor_id: i64,
    pub from: MonitorStatus,
    pub to: MonitorStatus,
    pub reason: String,
}

/// One logged change.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectorLogRow {
    pub ts: i64,
    pub monitor_id: i64,
    pub monitor_name: String,
    pub from: MonitorStatus,
    pub to: MonitorStatus,
    pub reason: String,
}

/// One pair as stored: its status and window.
#[derive(serde::Deserialize)]
struct PairRow {
    server_id: i64,
    monitor_id: i64,
    status: String,
    window: WindowCols,
}
// In `pairs_cols!` order; read per pair in every selector pass.
positional_row!(PairRow { server_id, monitor_id, status, window(WindowCols) });

#[derive(sqlx::FromRow)]
struct ServerHead {
    id: i64,
    ip: String,
    account_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct LogRead {
    ts: i64,
    monitor_id: i64,
    monitor_name: String,
    from_status: String,
    to_status: String,
    reason: String,
}

/// A pair a change was applied to.
#[derive(sqlx::FromRow, PartialEq, Eq, Hash)]
struct Changed {
    server_id: i64,
    monitor_id: i64,
}

const SERVERS: &str =
    "SELECT id, ip, account_id FROM servers WHERE id >= $1 AND id <= $2 ORDER BY id";
const MAX_ID: &str = "SELECT COALESCE(MAX(id), 0) FROM servers";
const SERVER_ONE: &str = "SELECT id, ip, account_id FROM servers WHERE id = $1";
macro_rules! pairs_cols {
    () => {
        concat!("server_id, monitor_id, status, ", window_cols!())
    };
}
/// Which pairs of the servers `$1..=$2` (by id range) or `$1` (a list) to read.
macro_rules! pairs_where {
    (all) => {
        " WHERE server_id >= $1 AND server_id <= $2"
    };
    // Must repeat the partial index's predicate to use it.
    (counted) => {
        " WHERE server_id >= $1 AND server_id <= $2 AND status <> 'candidate'"
    };
}
macro_rules! pairs_select {
    ($where:expr) => {
        concat!(
            "SELECT ",
            pairs_cols!(),
            " FROM server_scores",
            $where,
            " ORDER BY server_id, monitor_id"
        )
    };
}
/// SQLite folds the rows into one JSON text, much cheaper to decode than
/// one sqlx row per pair (see `Query::fetch_folded`).
macro_rules! pairs {
    ($sqlite_where:expr, $pg_where:expr) => {
        Sql {
            sqlite: folded!(
                concat!("server_id, monitor_id, status, ", window_json!()),
                "server_id, monitor_id",
                pairs_select!($sqlite_where)
            ),
            pg: pairs_select!($pg_where),
        }
    };
}
const PAIRS_ALL: Sql = pairs!(pairs_where!(all), pairs_where!(all));
const PAIRS_COUNTED: Sql = pairs!(pairs_where!(counted), pairs_where!(counted));
const PAIRS_CANDIDATES: Sql = pairs!(
    " WHERE server_id IN (SELECT value FROM json_each($1)) AND status = 'candidate'",
    " WHERE server_id = ANY($1) AND status = 'candidate'"
);
/// Each change `[server_id, monitor_id, from, to]` applied only where the
/// pair still has `from`; returns the pairs changed.
const UPDATE_SQLITE: &str = "UPDATE server_scores SET status = json_extract(j.value, '$[3]') \
     FROM json_each($1) AS j \
     WHERE server_scores.server_id = json_extract(j.value, '$[0]') \
     AND server_scores.monitor_id = json_extract(j.value, '$[1]') \
     AND server_scores.status = json_extract(j.value, '$[2]') \
     RETURNING server_scores.server_id, server_scores.monitor_id";
const UPDATE_PG: &str = "UPDATE server_scores AS ss SET status = u.to_s \
     FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS u(sid, mid, from_s, to_s) \
     WHERE ss.server_id = u.sid AND ss.monitor_id = u.mid AND ss.status = u.from_s \
     RETURNING ss.server_id, ss.monitor_id";
/// Log rows `[server_id, monitor_id, from, to, reason]`, all at `$2`.
const LOG_INSERT_SQLITE: &str = "INSERT INTO selector_log \
     (server_id, monitor_id, ts, from_status, to_status, reason) \
     SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'), $2, \
     json_extract(j.value, '$[2]'), json_extract(j.value, '$[3]'), json_extract(j.value, '$[4]') \
     FROM json_each($1) AS j";
const LOG_INSERT_PG: &str = "INSERT INTO selector_log \
     (server_id, monitor_id, ts, from_status, to_status, reason) \
     SELECT u.sid, u.mid, $6, u.from_s, u.to_s, u.reason \
     FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[]) \
     AS u(sid, mid, from_s, to_s, reason)";
const LOG: &str = "SELECT l.ts, l.monitor_id, m.name AS monitor_name, l.from_status, l.to_status, l.reason \
     FROM selector_log l JOIN monitors m ON m.id = l.monitor_id \
     WHERE l.server_id = $1 ORDER BY l.ts DESC, l.id DESC LIMIT $2";

impl PairRow {
    fn pair(self) -> Result<(i64, SelectorPair), StoreError> {
        Ok((
            self.server_id,
            SelectorPair {
                monitor_id: self.monitor_id,
                status: parse_status(&self.status)?,
                window: self.window.window(),
            },
        ))
    }
}

impl Store {
    /// The servers with ids from `lo` to `hi`, in id order, each with its
    /// active, testing and paused pairs — not the candidates, which
    /// [`Store::selector_candidates`] adds for the servers that need them.
    /// A full pass walks id ranges up to [`Store::max_server_id`].
    pub async fn selector_inputs(
        &self,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<SelectorInput>, StoreError> {
        let (servers, pairs) = self
            .read(async |c| {
                let servers: Vec<ServerHead> =
                    c.query(SERVERS).bind(lo).bind(hi).fetch_all().await?;
                let (Some(first), Some(last)) = (servers.first(), servers.last()) else {
                    return Ok((servers, Vec::new()));
                };
                let (lo, hi) = (first.id, last.id);
                let pairs = c
                    .query(PAIRS_COUNTED)
                    .bind(lo)
                    .bind(hi)
                    .fetch_folded()
                    .await?;
                Ok((servers, pairs))
            })
            .await?;
        assemble(servers, pairs)
    }

    /// The highest server id (0 without servers).
    pub async fn max_server_id(&self) -> Result<i64, StoreError> {
        self.read(async |c| {
            let (id,): (i64,) = c.query(MAX_ID).fetch_one().await?;
            Ok(id)
        })
        .await
    }

    /// One server's selector input, `None` for an unknown id.
    pub async fn selector_input(
        &self,
        server_id: i64,
    ) -> Result<Option<SelectorInput>, StoreError> {
        let (servers, pairs) = self
            .read(async |c| {
                let servers: Vec<ServerHead> =
                    c.query(SERVER_ONE).bind(server_id).fetch_all().await?;
                let pairs = c
                    .query(PAIRS_ALL)
                    .bind(server_id)
                    .bind(server_id)
                    .fetch_folded()
                    .await?;
                Ok((servers, pairs))
            })
            .await?;
        Ok(assemble(servers, pairs)?.into_iter().next())
    }

    /// The candidate pairs of the given servers, as `(server_id, pair)` in
    /// server and monitor order.
    pub async fn selector_candidates(
        &self,
        server_ids: &[i64],
    ) -> Result<Vec<(i64, SelectorPair)>, StoreError> {
        if server_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<PairRow> = self
            .read(async |c| {
                Ok(c.query(PAIRS_CANDIDATES)
                    .bind_ids(server_ids)
                    .fetch_folded()
                    .await?)
            })
            .await?;
        rows.into_iter().map(PairRow::pair).collect()
    }

    /// Applies changes in one transaction, each only if the pair still has
    /// its `from` status (a change made meanwhile wins), and logs each one
    /// applied. Returns how many were applied.
    pub async fn apply_selector_changes(
        &self,
        changes: &[SelectorChange],
        now: i64,
    ) -> Result<usize, StoreError> {
        if changes.is_empty() {
            return Ok(0);
        }
        self.write(async |c| {
            let done: std::collections::HashSet<Changed> =
                update(c, changes).await?.into_iter().collect();
            let applied: Vec<&SelectorChange> = changes
                .iter()
                .filter(|ch| {
                    done.contains(&Changed {
                        server_id: ch.server_id,
                        monitor_id: ch.monitor_id,
                    })
                })
                .collect();
            log(c, &applied, now).await?;
            Ok(applied.len())
        })
        .await
    }

    /// The newest `limit` selector changes for a server, newest first.
    pub async fn selector_log(
        &self,
        server_id: i64,
        limit: i64,
    ) -> Result<Vec<SelectorLogRow>, StoreError> {
        let rows: Vec<LogRead> = self
            .read(async |c| {
                Ok(c.query(LOG)
                    .bind(server_id)
                    .bind(limit.max(0))
                    .fetch_all()
                    .await?)
            })
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(SelectorLogRow {
                    ts: r.ts,
                    monitor_id: r.monitor_id,
                    monitor_name: r.monitor_name,
                    from: parse_status(&r.from_status)?,
                    to: parse_status(&r.to_status)?,
                    reason: r.reason,
                })
            })
            .collect()
    }
}

/// Applies the changes whose pair still has `from`; the pairs changed.
/// SQLite reads the changes from one JSON parameter, PostgreSQL from one
/// array per column.
async fn update(c: &mut Conn<'_>, changes: &[SelectorChange]) -> Result<Vec<Changed>, sqlx::Error> {
    match c {
        Conn::Sqlite(c) => {
            let rows: Vec<_> = changes
                .iter()
                .map(|c| {
                    serde_json::json!([c.server_id, c.monitor_id, c.from.as_str(), c.to.as_str()])
                })
                .collect();
            sqlx::query_as(UPDATE_SQLITE)
                .bind(serde_json::Value::Array(rows).to_string())
                .fetch_all(&mut **c)
                .await
        }
        Conn::Pg(c) => {
            sqlx::query_as(UPDATE_PG)
                .bind(changes.iter().map(|c| c.server_id).collect::<Vec<_>>())
                .bind(changes.iter().map(|c| c.monitor_id).collect::<Vec<_>>())
                .bind(changes.iter().map(|c| c.from.as_str()).collect::<Vec<_>>())
                .bind(changes.iter().map(|c| c.to.as_str()).collect::<Vec<_>>())
                .fetch_all(&mut **c)
                .await
        }
    }
}

/// Logs the applied changes, all at `now`.
async fn log(c: &mut Conn<'_>, changes: &[&SelectorChange], now: i64) -> Result<(), sqlx::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    match c {
        Conn::Sqlite(c) => {
            let rows: Vec<_> = changes
                .iter()
                .map(|c| {
                    serde_json::json!([
                        c.server_id,
                        c.monitor_id,
                        c.from.as_str(),
                        c.to.as_str(),
                        c.reason
                    ])
                })
                .collect();
            sqlx::query(LOG_INSERT_SQLITE)
                .bind(serde_json::Value::Array(rows).to_string())
                .bind(now)
                .execute(&mut **c)
                .await?;
        }
        Conn::Pg(c) => {
            sqlx::query(LOG_INSERT_PG)
                .bind(changes.iter().map(|c| c.server_id).collect::<Vec<_>>())
                .bind(changes.iter().map(|c| c.monitor_id).collect::<Vec<_>>())
                .bind(changes.iter().map(|c| c.from.as_str()).collect::<Vec<_>>())
                .bind(changes.iter().map(|c| c.to.as_str()).collect::<Vec<_>>())
                .bind(
                    changes
                        .iter()
                        .map(|c| c.reason.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(now)
                .execute(&mut **c)
                .await?;
        }
    }
    Ok(())
}

fn assemble(
    servers: Vec<ServerHead>,
    pairs: Vec<PairRow>,
) -> Result<Vec<SelectorInput>, StoreError> {
    let mut out: Vec<SelectorInput> = servers
        .into_iter()
        .map(|s| {
            Ok(SelectorInput {
                server_id: s.id,
                ip: parse_ip(&s.ip)?,
                account_id: s.account_id,
                pairs: Vec::new(),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    // Both lists are in server id order: walk them together.
    let mut i = 0;
    for t in pairs {
        let (server_id, p) = t.pair()?;
        while i < out.len() && out[i].server_id < server_id {
            i += 1;
        }
        if i < out.len() && out[i].server_id == server_id {
            out[i].pairs.push(p);
        }
    }
    Ok(out)
}
