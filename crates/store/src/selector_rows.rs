//! What the monitor selector reads and writes: every (server, monitor)
//! pair's status and 24 h window, the status changes and their log.

use crate::sql::{WindowTuple, window_of};
use crate::{Backend, MonitorStatus, Store, StoreError, finish, parse_status};
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

/// `(server_id, monitor_id, status, window…)`.
type PairTuple = (
    i64,
    i64,
    String,
    Option<i64>,
    i64,
    f64,
    i64,
    f64,
    i64,
    f64,
    i64,
    f64,
);

/// `(id, ip, account_id)`.
type ServerHead = (i64, String, Option<i64>);

const SERVERS: &str =
    "SELECT id, ip, account_id FROM servers WHERE id >= $1 AND id <= $2 ORDER BY id";
const MAX_ID: &str = "SELECT COALESCE(MAX(id), 0) FROM servers";
const SERVER_ONE: &str = "SELECT id, ip, account_id FROM servers WHERE id = $1";
macro_rules! pairs_cols {
    () => {
        "server_id, monitor_id, status, stats_day, cur_n, cur_step, cur_rtt_n, cur_rtt, \
         prev_n, prev_step, prev_rtt_n, prev_rtt"
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
    (candidates_pg) => {
        " WHERE server_id = ANY($1) AND status = 'candidate'"
    };
    (candidates_sqlite) => {
        " WHERE server_id IN (SELECT value FROM json_each($1)) AND status = 'candidate'"
    };
}
macro_rules! pairs_pg {
    ($w:tt) => {
        concat!(
            "SELECT ",
            pairs_cols!(),
            " FROM server_scores",
            pairs_where!($w),
            " ORDER BY server_id, monitor_id"
        )
    };
}
/// SQLite: the rows folded into one JSON text, much cheaper to decode than
/// one sqlx row per pair (see `fetch_logs`).
macro_rules! pairs_sqlite {
    ($w:tt) => {
        concat!(
            "SELECT COALESCE(json_group_array(json_array(",
            pairs_cols!(),
            ")), '[]') FROM (SELECT ",
            pairs_cols!(),
            " FROM server_scores",
            pairs_where!($w),
            " ORDER BY server_id, monitor_id)"
        )
    };
}
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
const LOG: &str = "SELECT l.ts, l.monitor_id, m.name, l.from_status, l.to_status, l.reason \
     FROM selector_log l JOIN monitors m ON m.id = l.monitor_id \
     WHERE l.server_id = $1 ORDER BY l.ts DESC, l.id DESC LIMIT $2";

fn pair(t: PairTuple) -> Result<(i64, SelectorPair), StoreError> {
    let w: WindowTuple = (t.0, t.3, t.4, t.5, t.6, t.7, t.8, t.9, t.10, t.11, None);
    Ok((
        t.0,
        SelectorPair {
            monitor_id: t.1,
            status: parse_status(&t.2)?,
            window: window_of(&w),
        },
    ))
}

fn parse_ip(s: &str) -> Result<IpAddr, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("stored server ip {s:?}")))
}

/// Which pairs a read returns.
#[derive(Clone, Copy)]
enum Which {
    All,
    Counted,
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
        let (servers, pairs): (Vec<ServerHead>, Vec<PairTuple>) = read!(self, |c, _d| {
            let servers: Vec<ServerHead> = sqlx::query_as(SERVERS)
                .bind(lo)
                .bind(hi)
                .fetch_all(&mut *c)
                .await?;
            let (Some(first), Some(last)) = (servers.first(), servers.last()) else {
                return Ok((servers, Vec::new()));
            };
            let (lo, hi) = (first.0, last.0);
            let pairs = c.fetch(Which::Counted, lo, hi).await?;
            Ok((servers, pairs))
        })?;
        assemble(servers, pairs)
    }

    /// The highest server id (0 without servers).
    pub async fn max_server_id(&self) -> Result<i64, StoreError> {
        read!(self, |c, _d| {
            let (id,): (i64,) = sqlx::query_as(MAX_ID).fetch_one(&mut *c).await?;
            Ok(id)
        })
    }

    /// One server's selector input, `None` for an unknown id.
    pub async fn selector_input(
        &self,
        server_id: i64,
    ) -> Result<Option<SelectorInput>, StoreError> {
        let (servers, pairs) = read!(self, |c, _d| {
            let servers: Vec<ServerHead> = sqlx::query_as(SERVER_ONE)
                .bind(server_id)
                .fetch_all(&mut *c)
                .await?;
            let pairs = c.fetch(Which::All, server_id, server_id).await?;
            Ok((servers, pairs))
        })?;
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
        let rows = read!(self, |c, _d| Ok(c.candidates(server_ids).await?))?;
        rows.into_iter().map(pair).collect()
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
        write_tx!(self, |c, _d| {
            let done: std::collections::HashSet<(i64, i64)> =
                c.update(changes).await?.into_iter().collect();
            let applied: Vec<&SelectorChange> = changes
                .iter()
                .filter(|ch| done.contains(&(ch.server_id, ch.monitor_id)))
                .collect();
            c.log(&applied, now).await?;
            Ok(applied.len())
        })
    }

    /// The newest `limit` selector changes for a server, newest first.
    pub async fn selector_log(
        &self,
        server_id: i64,
        limit: i64,
    ) -> Result<Vec<SelectorLogRow>, StoreError> {
        let rows: Vec<(i64, i64, String, String, String, String)> = read!(self, |c, _d| {
            Ok(sqlx::query_as(LOG)
                .bind(server_id)
                .bind(limit.max(0))
                .fetch_all(&mut *c)
                .await?)
        })?;
        rows.into_iter()
            .map(|(ts, monitor_id, monitor_name, from, to, reason)| {
                Ok(SelectorLogRow {
                    ts,
                    monitor_id,
                    monitor_name,
                    from: parse_status(&from)?,
                    to: parse_status(&to)?,
                    reason,
                })
            })
            .collect()
    }
}

/// The statements whose shape differs by dialect.
trait SelectorSql {
    async fn fetch(
        &mut self,
        which: Which,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<PairTuple>, sqlx::Error>;
    async fn candidates(&mut self, ids: &[i64]) -> Result<Vec<PairTuple>, sqlx::Error>;
    async fn update(&mut self, changes: &[SelectorChange]) -> Result<Vec<(i64, i64)>, sqlx::Error>;
    async fn log(&mut self, changes: &[&SelectorChange], now: i64) -> Result<(), sqlx::Error>;
}

impl SelectorSql for sqlx::SqliteConnection {
    async fn fetch(
        &mut self,
        which: Which,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<PairTuple>, sqlx::Error> {
        let sql = match which {
            Which::All => pairs_sqlite!(all),
            Which::Counted => pairs_sqlite!(counted),
        };
        let (json,): (String,) = sqlx::query_as(sql)
            .bind(lo)
            .bind(hi)
            .fetch_one(self)
            .await?;
        serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }

    async fn candidates(&mut self, ids: &[i64]) -> Result<Vec<PairTuple>, sqlx::Error> {
        let ids = serde_json::to_string(ids).expect("integers serialize");
        let (json,): (String,) = sqlx::query_as(pairs_sqlite!(candidates_sqlite))
            .bind(ids)
            .fetch_one(self)
            .await?;
        serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }

    async fn update(&mut self, changes: &[SelectorChange]) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        let rows: Vec<_> = changes
            .iter()
            .map(|c| serde_json::json!([c.server_id, c.monitor_id, c.from.as_str(), c.to.as_str()]))
            .collect();
        sqlx::query_as(UPDATE_SQLITE)
            .bind(serde_json::Value::Array(rows).to_string())
            .fetch_all(self)
            .await
    }

    async fn log(&mut self, changes: &[&SelectorChange], now: i64) -> Result<(), sqlx::Error> {
        if changes.is_empty() {
            return Ok(());
        }
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
            .execute(self)
            .await?;
        Ok(())
    }
}

impl SelectorSql for sqlx::PgConnection {
    async fn fetch(
        &mut self,
        which: Which,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<PairTuple>, sqlx::Error> {
        let sql = match which {
            Which::All => pairs_pg!(all),
            Which::Counted => pairs_pg!(counted),
        };
        sqlx::query_as(sql).bind(lo).bind(hi).fetch_all(self).await
    }

    async fn candidates(&mut self, ids: &[i64]) -> Result<Vec<PairTuple>, sqlx::Error> {
        sqlx::query_as(pairs_pg!(candidates_pg))
            .bind(ids)
            .fetch_all(self)
            .await
    }

    async fn update(&mut self, changes: &[SelectorChange]) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        sqlx::query_as(UPDATE_PG)
            .bind(changes.iter().map(|c| c.server_id).collect::<Vec<_>>())
            .bind(changes.iter().map(|c| c.monitor_id).collect::<Vec<_>>())
            .bind(changes.iter().map(|c| c.from.as_str()).collect::<Vec<_>>())
            .bind(changes.iter().map(|c| c.to.as_str()).collect::<Vec<_>>())
            .fetch_all(self)
            .await
    }

    async fn log(&mut self, changes: &[&SelectorChange], now: i64) -> Result<(), sqlx::Error> {
        if changes.is_empty() {
            return Ok(());
        }
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
            .execute(self)
            .await?;
        Ok(())
    }
}

fn assemble(
    servers: Vec<ServerHead>,
    pairs: Vec<PairTuple>,
) -> Result<Vec<SelectorInput>, StoreError> {
    let mut out: Vec<SelectorInput> = servers
        .into_iter()
        .map(|(server_id, ip, account_id)| {
            Ok(SelectorInput {
                server_id,
                ip: parse_ip(&ip)?,
                account_id,
                pairs: Vec::new(),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    // Both lists are in server id order: walk them together.
    let mut i = 0;
    for t in pairs {
        let (server_id, p) = pair(t)?;
        while i < out.len() && out[i].server_id < server_id {
            i += 1;
        }
        if i < out.len() && out[i].server_id == server_id {
            out[i].pairs.push(p);
        }
    }
    Ok(out)
}
