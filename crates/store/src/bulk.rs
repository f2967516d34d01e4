//! The statements whose binds differ by backend, not only their text:
//! the due-work and submission reads (SQLite folds their rows into one JSON
//! text, see [`Query::fetch_folded`]; id lists bind as JSON or as arrays)
//! and the bulk writes of a submission. Bulk writes differ most: SQLite
//! takes multi-row `VALUES` in chunks of [`CHUNK`] rows, PostgreSQL one
//! array per column and `UNNEST`s them. Either way a whole submission is a
//! handful of prepared statements. Each function matches the [`Conn`] once.

use crate::conn::{Conn, Query, Sql, folded, folded_json, positional_row};
use crate::sql;
use crate::sql::{LogWrite, ScoreWrite, window_cols, window_json};
use crate::submit::{Job, OwnWindowRead, PairRead, ServerRead};
use scoring::submission::Writes;
use std::sync::OnceLock;

/// The due-work query; the PostgreSQL variant adds row locks.
macro_rules! work_select {
    ($suffix:literal) => {
        concat!(
            "SELECT ss.server_id, s.ip, ss.queue_ts AS qts, ss.id AS ssid \
             FROM server_scores ss JOIN servers s ON s.id = ss.server_id \
             WHERE ss.monitor_id = $1 AND ss.status <> 'paused' AND s.ip_version = $2 \
             AND (s.deletion_on IS NULL OR s.deletion_on > $3) \
             AND (ss.queue_ts IS NULL \
                  OR (ss.status = 'active' AND ss.queue_ts <= $4) \
                  OR (ss.status = 'testing' AND ss.queue_ts <= $5) \
                  OR (ss.status = 'candidate' AND ss.queue_ts <= $6)) \
             ORDER BY ss.queue_ts ASC NULLS FIRST, ss.id LIMIT $7",
            $suffix
        )
    };
}

/// Per touched server: id and the last logged aggregate (score, ts).
/// `$hint` names the (server, monitor, ts) index for SQLite, whose planner
/// would otherwise walk the server's whole log backwards.
macro_rules! submit_servers {
    ($hint:literal, $in:literal) => {
        concat!(
            "SELECT s.id AS server_id, \
             (SELECT x.score FROM log_scores x ",
            $hint,
            " WHERE x.server_id = s.id AND x.monitor_id IS NULL \
              ORDER BY x.ts DESC, x.id DESC LIMIT 1) AS last_score, \
             (SELECT x.ts FROM log_scores x ",
            $hint,
            " WHERE x.server_id = s.id AND x.monitor_id IS NULL \
              ORDER BY x.ts DESC, x.id DESC LIMIT 1) AS last_ts \
             FROM servers s WHERE s.id ",
            $in
        )
    };
}

/// Every monitor's standing for the touched servers, for the aggregate.
/// `$which` picks the pairs: the active and testing ones plus the
/// submitting monitor's own (`$2`), or, when those cannot make an
/// aggregate, the candidates scored since `$3` (the widest window).
macro_rules! submit_scores {
    ($in:literal, $which:expr) => {
        concat!(
            "SELECT ss.server_id, ss.monitor_id, ss.status, ss.score, ss.score_ts, \
             ss.rtt AS rtt_us, m.status AS monitor_status \
             FROM server_scores ss JOIN monitors m ON m.id = ss.monitor_id WHERE ss.server_id ",
            $in,
            $which
        )
    };
}
macro_rules! trusted {
    () => {
        " AND (ss.status IN ('active', 'testing') OR ss.monitor_id = $2)"
    };
}
macro_rules! candidates {
    () => {
        " AND ss.status = 'candidate' AND ss.monitor_id <> $2 AND ss.score_ts >= $3"
    };
}

/// One due server.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Due {
    pub server_id: i64,
    pub ip: String,
}
// The first columns of WORK_SELECT and server_ips.
positional_row!(Due { server_id, ip });

/// Due servers, longest-waiting first. PostgreSQL locks the rows it
/// returns and skips locked ones, so concurrent callers get disjoint work.
const WORK_SELECT: Sql = Sql {
    sqlite: folded!("server_id, ip", "qts NULLS FIRST, ssid", work_select!("")),
    pg: work_select!(" FOR UPDATE OF ss SKIP LOCKED"),
};
const WORK_MARK: Sql = Sql {
    sqlite: "UPDATE server_scores SET queue_ts = $1 \
         WHERE monitor_id = $2 AND server_id IN (SELECT value FROM json_each($3))",
    pg: "UPDATE server_scores SET queue_ts = $1 WHERE monitor_id = $2 AND server_id = ANY($3)",
};

/// Up to `limit` due servers of the monitor, marked queued at `now`.
/// `cutoffs` are the last queue times still due for active, testing
/// and candidate status.
pub(crate) async fn take_due(
    c: &mut Conn<'_>,
    monitor_id: i64,
    ip_version: i64,
    now: i64,
    cutoffs: [i64; 3],
    limit: i64,
) -> Result<Vec<Due>, sqlx::Error> {
    let rows: Vec<Due> = c
        .query(WORK_SELECT)
        .bind(monitor_id)
        .bind(ip_version)
        .bind(now)
        .bind(cutoffs[0])
        .bind(cutoffs[1])
        .bind(cutoffs[2])
        .bind(limit)
        .fetch_folded()
        .await?;
    if !rows.is_empty() {
        let ids: Vec<i64> = rows.iter().map(|r| r.server_id).collect();
        c.query(WORK_MARK)
            .bind(now)
            .bind(monitor_id)
            .bind_ids(&ids)
            .execute()
            .await?;
    }
    Ok(rows)
}

/// `(id, ip)` of the given servers (unknown ids are left out), by id.
pub(crate) async fn server_ips(c: &mut Conn<'_>, ids: &[i64]) -> Result<Vec<Due>, sqlx::Error> {
    const SQL: Sql = Sql {
        sqlite: folded!(
            "server_id, ip",
            "server_id",
            "SELECT id AS server_id, ip FROM servers WHERE id IN (SELECT value FROM json_each($1))"
        ),
        pg: "SELECT id AS server_id, ip FROM servers WHERE id = ANY($1) ORDER BY id",
    };
    c.query(SQL).bind_ids(ids).fetch_folded().await
}

const SUBMIT_SERVERS: Sql = Sql {
    sqlite: folded!(
        "server_id, last_score, last_ts",
        "server_id",
        submit_servers!(
            "INDEXED BY log_scores_server_monitor_ts",
            "IN (SELECT value FROM json_each($1))"
        )
    ),
    pg: submit_servers!("", "= ANY($1)"),
};
const SUBMIT_SCORES: Sql = Sql {
    sqlite: folded!(
        "server_id, monitor_id, status, score, score_ts, rtt_us, monitor_status",
        "server_id, monitor_id",
        submit_scores!("IN (SELECT value FROM json_each($1))", trusted!())
    ),
    pg: submit_scores!("= ANY($1)", trusted!()),
};
const SUBMIT_CANDIDATES: Sql = Sql {
    sqlite: folded!(
        "server_id, monitor_id, status, score, score_ts, rtt_us, monitor_status",
        "server_id, monitor_id",
        submit_scores!("IN (SELECT value FROM json_each($1))", candidates!())
    ),
    pg: submit_scores!("= ANY($1)", candidates!()),
};

/// Locks the servers (PostgreSQL: FOR NO KEY UPDATE, in id order so two
/// submitters never deadlock): concurrent submissions for the same server
/// then serialise and each aggregate sees every committed score. Taken in
/// a statement of its own, before the reads: under READ COMMITTED a later
/// statement's snapshot includes what the previous holder committed.
/// SQLite's writers are serialised by `BEGIN IMMEDIATE`: nothing to lock.
pub(crate) async fn lock_servers(c: &mut Conn<'_>, ids: &[i64]) -> Result<(), sqlx::Error> {
    if let Conn::Pg(_) = c
        && !ids.is_empty()
    {
        c.query("SELECT id FROM servers WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            .bind_ids(ids)
            .execute()
            .await?;
    }
    Ok(())
}

/// The stored state a submission needs for the touched servers (locked
/// by [`lock_servers`]).
pub(crate) async fn submit_state(
    c: &mut Conn<'_>,
    ids: &[i64],
    monitor_id: i64,
) -> Result<(Vec<ServerRead>, Vec<PairRead>), sqlx::Error> {
    let servers = c.query(SUBMIT_SERVERS).bind_ids(ids).fetch_folded().await?;
    let scores = c
        .query(SUBMIT_SCORES)
        .bind_ids(ids)
        .bind(monitor_id)
        .fetch_folded()
        .await?;
    Ok((servers, scores))
}

/// Other monitors' candidate pairs of the servers scored since `since`.
pub(crate) async fn submit_candidates(
    c: &mut Conn<'_>,
    ids: &[i64],
    monitor_id: i64,
    since: i64,
) -> Result<Vec<PairRead>, sqlx::Error> {
    c.query(SUBMIT_CANDIDATES)
        .bind_ids(ids)
        .bind(monitor_id)
        .bind(since)
        .fetch_folded()
        .await
}

/// The monitor's selector windows and last errors for the servers.
pub(crate) async fn own_windows(
    c: &mut Conn<'_>,
    monitor_id: i64,
    ids: &[i64],
) -> Result<Vec<OwnWindowRead>, sqlx::Error> {
    macro_rules! select {
        ($in:literal) => {
            concat!(
                "SELECT server_id, ",
                window_cols!(),
                ", last_error FROM server_scores WHERE monitor_id = $1 AND server_id ",
                $in
            )
        };
    }
    // SQLite: one JSON row, not a row per server: each row is a message
    // from sqlx's SQLite worker thread, and this runs in every submission.
    const SQL: Sql = Sql {
        sqlite: folded!(
            concat!("server_id, ", window_json!(), ", last_error"),
            "server_id",
            select!("IN (SELECT value FROM json_each($2))")
        ),
        pg: select!("= ANY($2)"),
    };
    c.query(SQL)
        .bind(monitor_id)
        .bind_ids(ids)
        .fetch_folded()
        .await
}

/// Rows per multi-row VALUES statement (SQLite); short chunks are padded
/// with NULL rows (filtered out) so only one statement shape is prepared.
const CHUNK: usize = 64;

/// `(?, ?, …), (…), …`: CHUNK rows of `cols` anonymous placeholders.
fn values(cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(", "));
    vec![row; CHUNK].join(", ")
}

fn chunks<T>(rows: &[T]) -> impl Iterator<Item = (usize, &[T])> {
    rows.chunks(CHUNK).enumerate().map(|(i, c)| (i * CHUNK, c))
}

/// Everything an admitted submission writes, after its decision: SQLite
/// in a few chunked statements, PostgreSQL in one ([`PG_WRITE`]).
pub(crate) async fn write_submission(
    c: &mut Conn<'_>,
    job: &Job,
    w: &Writes,
) -> Result<(), sqlx::Error> {
    match c {
        Conn::Sqlite(c) => {
            upsert_scores(c, job.monitor_id, &w.scores).await?;
            insert_logs(c, &w.logs).await?;
            crate::samples::insert(&mut Conn::Sqlite(c), job.monitor_id, &job.packed).await?;
            set_server_scores(c, job.now, &w.aggregates).await?;
            sqlx::query(sql::BATCH_MARK)
                .bind(job.batch_seq)
                .bind(job.now)
                .execute(&mut **c)
                .await?;
            sqlx::query(sql::MONITOR_SET_LAST_BATCH)
                .bind(job.monitor_id)
                .bind(job.batch_seq)
                .execute(&mut **c)
                .await?;
            Ok(())
        }
        Conn::Pg(c) => write_pg(c, job, w).await,
    }
}

/// A submission's writes as one PostgreSQL statement of data-modifying
/// CTEs (each round trip over the network costs more than the statement):
/// the monitor's scores, the log rows, the samples, the servers'
/// aggregates, the batch marked and the monitor's last batch. The CTEs
/// touch different tables, so none needs to see another's rows.
const PG_WRITE: &str = concat!(
    "WITH s AS (INSERT INTO server_scores \
     (monitor_id, server_id, status, score, score_ts, rtt, ",
    window_cols!(),
    ", last_error) \
     SELECT $1, u.server_id, 'candidate', u.score, u.ts, u.rtt, u.d, u.cn, u.cs, \
     u.crn, u.cr, u.pn, u.ps, u.prn, u.pr, u.le \
     FROM UNNEST($4::bigint[], $5::float8[], $6::bigint[], $7::bigint[], \
     $8::bigint[], $9::bigint[], $10::float8[], $11::bigint[], $12::float8[], \
     $13::bigint[], $14::float8[], $15::bigint[], $16::float8[], $17::text[]) \
     AS u(server_id, score, ts, rtt, d, cn, cs, crn, cr, pn, ps, prn, pr, le) \
     ON CONFLICT (server_id, monitor_id) DO UPDATE SET \
     score = excluded.score, score_ts = excluded.score_ts, rtt = excluded.rtt, \
     stats_day = excluded.stats_day, cur_n = excluded.cur_n, \
     cur_step = excluded.cur_step, cur_rtt_n = excluded.cur_rtt_n, \
     cur_rtt = excluded.cur_rtt, prev_n = excluded.prev_n, \
     prev_step = excluded.prev_step, prev_rtt_n = excluded.prev_rtt_n, \
     prev_rtt = excluded.prev_rtt, last_error = excluded.last_error), \
     l AS (INSERT INTO log_scores (server_id, monitor_id, ts, step, score, \"offset\", rtt, \
     stratum, leap, refid, error, no_response) \
     SELECT * FROM UNNEST($18::bigint[], $19::bigint[], $20::bigint[], $21::float8[], \
     $22::float8[], $23::float8[], $24::bigint[], $25::bigint[], $26::bigint[], $27::text[], \
     $28::text[], $29::bool[])), \
     x AS (INSERT INTO check_samples (server_id, ts, monitor_id, data) \
     SELECT u.s, u.t, $1, u.d FROM UNNEST($30::bigint[], $31::bigint[], $32::bytea[]) \
     AS u(s, t, d) ON CONFLICT DO NOTHING), \
     v AS (UPDATE servers SET score = v.score, score_ts = $2 \
     FROM UNNEST($33::bigint[], $34::float8[]) AS v(id, score) WHERE servers.id = v.id), \
     b AS (UPDATE batches SET submitted_at = $2 WHERE seq = $3) \
     UPDATE monitors SET last_submit_batch = CASE WHEN last_submit_batch IS NULL \
     OR last_submit_batch < $3 THEN $3 ELSE last_submit_batch END WHERE id = $1"
);

async fn write_pg(c: &mut sqlx::PgConnection, job: &Job, w: &Writes) -> Result<(), sqlx::Error> {
    macro_rules! col {
        ($rows:expr, $($f:tt).+) => {
            $rows.iter().map(|r| r.$($f).+.clone()).collect::<Vec<_>>()
        };
    }
    let (scores, logs, packed) = (&w.scores, &w.logs, &job.packed);
    sqlx::query(PG_WRITE)
        .bind(job.monitor_id)
        .bind(job.now)
        .bind(job.batch_seq)
        .bind(col!(scores, server_id))
        .bind(col!(scores, score))
        .bind(col!(scores, score_ts))
        .bind(col!(scores, rtt_us))
        .bind(col!(scores, window.day))
        .bind(col!(scores, window.cur.n))
        .bind(col!(scores, window.cur.step))
        .bind(col!(scores, window.cur.rtt_n))
        .bind(col!(scores, window.cur.rtt_ms))
        .bind(col!(scores, window.prev.n))
        .bind(col!(scores, window.prev.step))
        .bind(col!(scores, window.prev.rtt_n))
        .bind(col!(scores, window.prev.rtt_ms))
        .bind(col!(scores, last_error))
        .bind(col!(logs, server_id))
        .bind(col!(logs, monitor_id))
        .bind(col!(logs, ts))
        .bind(col!(logs, step))
        .bind(col!(logs, score))
        .bind(col!(logs, offset))
        .bind(col!(logs, rtt_us))
        .bind(col!(logs, stratum))
        .bind(col!(logs, leap))
        .bind(col!(logs, refid))
        .bind(col!(logs, error))
        .bind(col!(logs, no_response))
        .bind(col!(packed, server_id))
        .bind(col!(packed, ts))
        .bind(col!(packed, data))
        .bind(w.aggregates.iter().map(|a| a.0).collect::<Vec<_>>())
        .bind(w.aggregates.iter().map(|a| a.1).collect::<Vec<_>>())
        .execute(c)
        .await?;
    Ok(())
}

async fn upsert_scores(
    c: &mut sqlx::SqliteConnection,
    monitor_id: i64,
    rows: &[ScoreWrite],
) -> Result<(), sqlx::Error> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql: &'static str = SQL.get_or_init(|| {
        format!(
            "INSERT INTO server_scores (monitor_id, server_id, status, score, score_ts, rtt, \
             {}, last_error) \
             SELECT ?, column1, 'candidate', column2, column3, column4, column5, column6, \
             column7, column8, column9, column10, column11, column12, column13, column14 \
             FROM (VALUES {}) \
             WHERE column1 IS NOT NULL \
             ON CONFLICT (server_id, monitor_id) DO UPDATE SET \
             score = excluded.score, score_ts = excluded.score_ts, rtt = excluded.rtt, \
             stats_day = excluded.stats_day, cur_n = excluded.cur_n, \
             cur_step = excluded.cur_step, cur_rtt_n = excluded.cur_rtt_n, \
             cur_rtt = excluded.cur_rtt, prev_n = excluded.prev_n, \
             prev_step = excluded.prev_step, prev_rtt_n = excluded.prev_rtt_n, \
             prev_rtt = excluded.prev_rtt, last_error = excluded.last_error",
            window_cols!(),
            values(14)
        )
    });
    for (_, chunk) in chunks(rows) {
        let mut q = sqlx::query(sql).bind(monitor_id);
        for r in chunk {
            let w = &r.window;
            q = q
                .bind(r.server_id)
                .bind(r.score)
                .bind(r.score_ts)
                .bind(r.rtt_us)
                .bind(w.day)
                .bind(w.cur.n)
                .bind(w.cur.step)
                .bind(w.cur.rtt_n)
                .bind(w.cur.rtt_ms)
                .bind(w.prev.n)
                .bind(w.prev.step)
                .bind(w.prev.rtt_n)
                .bind(w.prev.rtt_ms)
                .bind(&r.last_error);
        }
        for _ in chunk.len()..CHUNK {
            q = q
                .bind(None::<i64>)
                .bind(None::<f64>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<f64>)
                .bind(None::<i64>)
                .bind(None::<f64>)
                .bind(None::<i64>)
                .bind(None::<f64>)
                .bind(None::<i64>)
                .bind(None::<f64>)
                .bind(None::<String>);
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

async fn insert_logs(c: &mut sqlx::SqliteConnection, rows: &[LogWrite]) -> Result<(), sqlx::Error> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql: &'static str = SQL.get_or_init(|| {
        // Ids continue log_seq in submission order (column1 is the
        // row's position); the writer lock makes read-then-bump safe.
        format!(
            "INSERT INTO log_scores (id, server_id, monitor_id, ts, step, score, \"offset\", \
             rtt, stratum, leap, refid, error, no_response) \
             SELECT (SELECT next_id FROM log_seq WHERE id = 1) + column1, column2, column3, \
             column4, column5, column6, column7, column8, column9, column10, column11, \
             column12, column13 FROM (VALUES {}) WHERE column1 IS NOT NULL",
            values(13)
        )
    });
    if rows.is_empty() {
        return Ok(());
    }
    for (start, chunk) in chunks(rows) {
        let mut q = sqlx::query(sql);
        for (k, r) in chunk.iter().enumerate() {
            q = q
                .bind((start + k + 1) as i64)
                .bind(r.server_id)
                .bind(r.monitor_id)
                .bind(r.ts)
                .bind(r.step)
                .bind(r.score)
                .bind(r.offset)
                .bind(r.rtt_us)
                .bind(r.stratum)
                .bind(r.leap)
                .bind(r.refid.as_deref())
                .bind(r.error.as_deref())
                .bind(r.no_response);
        }
        for _ in chunk.len()..CHUNK {
            for _ in 0..13 {
                q = q.bind(None::<i64>);
            }
        }
        q.execute(&mut *c).await?;
    }
    sqlx::query("UPDATE log_seq SET next_id = next_id + $1, log_rows = log_rows + $1 WHERE id = 1")
        .bind(rows.len() as i64)
        .execute(&mut *c)
        .await?;
    Ok(())
}

async fn set_server_scores(
    c: &mut sqlx::SqliteConnection,
    now: i64,
    rows: &[(i64, f64)],
) -> Result<(), sqlx::Error> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql: &'static str = SQL.get_or_init(|| {
        format!(
            "UPDATE servers SET score = v.column2, score_ts = ? FROM (VALUES {}) AS v \
             WHERE servers.id = v.column1",
            values(2)
        )
    });
    for (_, chunk) in chunks(rows) {
        let mut q = sqlx::query(sql).bind(now);
        for r in chunk {
            q = q.bind(r.0).bind(r.1);
        }
        for _ in chunk.len()..CHUNK {
            q = q.bind(None::<i64>).bind(None::<f64>);
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

/// One row of a server's log as read back (`LogRow` with `rtt` in µs).
#[derive(Debug)]
pub(crate) struct LogRead {
    pub id: i64,
    pub ts: i64,
    pub offset: Option<f64>,
    pub step: f64,
    pub score: f64,
    pub monitor_id: Option<i64>,
    pub monitor_name: Option<String>,
    pub rtt_us: Option<i64>,
    pub stratum: Option<i64>,
    pub leap: Option<i64>,
    pub refid: Option<String>,
    pub error: Option<String>,
    pub no_response: bool,
}

// In `sql::log_select!`'s column order.
positional_row!(LogRead {
    id,
    ts,
    offset,
    step,
    score,
    monitor_id,
    monitor_name,
    rtt_us,
    stratum,
    leap,
    refid,
    error,
    no_response
});

/// [`LogRead`] as SQLite's JSON folds it: reals as 17-digit text (see
/// `sql::log_json`), the flag as 0/1.
#[derive(serde::Deserialize)]
struct LogJson {
    id: i64,
    ts: i64,
    offset: Option<String>,
    step: String,
    score: String,
    monitor_id: Option<i64>,
    monitor_name: Option<String>,
    rtt_us: Option<i64>,
    stratum: Option<i64>,
    leap: Option<i64>,
    refid: Option<String>,
    error: Option<String>,
    no_response: i64,
}

impl LogJson {
    fn read(self) -> Result<LogRead, sqlx::Error> {
        let real = |s: &str| -> Result<f64, sqlx::Error> {
            s.parse()
                .map_err(|e: std::num::ParseFloatError| sqlx::Error::Decode(Box::new(e)))
        };
        Ok(LogRead {
            id: self.id,
            ts: self.ts,
            offset: self.offset.as_deref().map(real).transpose()?,
            step: real(&self.step)?,
            score: real(&self.score)?,
            monitor_id: self.monitor_id,
            monitor_name: self.monitor_name,
            rtt_us: self.rtt_us,
            stratum: self.stratum,
            leap: self.leap,
            refid: self.refid,
            error: self.error,
            no_response: self.no_response != 0,
        })
    }
}

/// Runs one of the `sql::LOG_*` queries, binding `third` and `fourth`
/// when given. On SQLite folding 10,000 rows into one JSON text and
/// parsing that costs about a third less than reading them row by row,
/// which matters for the 10,000-row CSV.
pub(crate) async fn fetch_logs(
    c: &mut Conn<'_>,
    sql: Sql,
    server_id: i64,
    limit: i64,
    third: Option<i64>,
    fourth: Option<i64>,
) -> Result<Vec<LogRead>, sqlx::Error> {
    let mut q: Query<'_> = c.query(sql).bind(server_id).bind(limit);
    if let Some(v) = third {
        q = q.bind(v);
    }
    if let Some(v) = fourth {
        q = q.bind(v);
    }
    match q {
        Query::Sqlite(c, q) => {
            let rows: Vec<LogJson> = folded_json(c, q).await?;
            rows.into_iter().map(LogJson::read).collect()
        }
        q @ Query::Pg(..) => q.fetch_all().await,
    }
}
