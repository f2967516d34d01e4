//! SQL text per dialect. Statements that both backends accept live in
//! `common` and are re-exported by both dialect modules, so the method
//! bodies in lib.rs (expanded once per backend) name `d::X` for either.
//! Placeholders are `$N` everywhere; SQLite reads them positionally.
//!
//! Bulk statements differ: SQLite takes one JSON array parameter and walks
//! it with `json_each`, PostgreSQL takes one array per column and `UNNEST`s
//! them. Either way a whole submission is a handful of prepared statements.

/// The rows a submission writes, decided by [`scoring::submission`].
pub(crate) use scoring::submission::{LogWrite, ScoreWrite};

/// `(server_id, stats_day, cur_n, cur_step, cur_rtt_n, cur_rtt, prev_n,
/// prev_step, prev_rtt_n, prev_rtt, last_error)` of one pair.
pub(crate) type WindowTuple = (
    i64,
    Option<i64>,
    i64,
    f64,
    i64,
    f64,
    i64,
    f64,
    i64,
    f64,
    Option<String>,
);

/// The window columns of `server_scores`, in [`WindowTuple`] order after
/// the server id.
macro_rules! window_cols {
    () => {
        "stats_day, cur_n, cur_step, cur_rtt_n, cur_rtt, prev_n, prev_step, prev_rtt_n, prev_rtt"
    };
}

/// A [`WindowTuple`]'s window.
pub(crate) fn window_of(t: &WindowTuple) -> scoring::PairWindow {
    use scoring::window::Sums;
    scoring::PairWindow {
        day: t.1,
        cur: Sums {
            n: t.2,
            step: t.3,
            rtt_n: t.4,
            rtt_ms: t.5,
        },
        prev: Sums {
            n: t.6,
            step: t.7,
            rtt_n: t.8,
            rtt_ms: t.9,
        },
    }
}

/// `(server_id, monitor_id, status, score, score_ts, rtt_us, monitor's global status)`.
pub(crate) type ScoreTuple = (i64, i64, String, f64, Option<i64>, Option<i64>, String);

/// `(server_id, last aggregate log score, its ts)`.
pub(crate) type ServerTuple = (i64, Option<f64>, Option<i64>);

/// One row of a server's log as read back:
/// `(id, ts, offset, step, score, monitor_id, monitor_name, rtt_us, stratum,
/// leap, refid, error, no_response)`.
pub(crate) type LogTuple = (
    i64,
    i64,
    Option<f64>,
    f64,
    f64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    bool,
);

/// A log query: `$1` server, `$2` limit, then `since` and/or the monitor.
macro_rules! log_select {
    ($filter:literal, $order:literal, $outer:literal) => {
        concat!(
            "SELECT l.id, l.ts, l.\"offset\", l.step, l.score, l.monitor_id, m.name, l.rtt, \
             l.stratum, l.leap, l.refid, l.error, l.no_response \
             FROM log_scores l LEFT JOIN monitors m ON m.id = l.monitor_id WHERE l.server_id = $1",
            $filter,
            $order
        )
    };
}

/// The same rows folded into one JSON array (see `sqlite::fetch_logs`).
/// Reals travel as 17-digit text: SQLite's JSON prints only 15 digits,
/// which would not read back the stored value exactly.
macro_rules! log_json {
    ($filter:literal, $order:literal, $outer:literal) => {
        concat!(
            "SELECT json_group_array(json_array(id, ts, \
             iif(\"offset\" IS NULL, NULL, printf('%!.17g', \"offset\")), \
             printf('%!.17g', step), printf('%!.17g', score), monitor_id, \
             name, rtt, stratum, leap, refid, error, no_response) ORDER BY ",
            $outer,
            ") FROM (",
            log_select!($filter, $order, $outer),
            ")"
        )
    };
}

/// The six log queries (filter × order), built with `$m`.
macro_rules! log_queries {
    ($m:ident) => {
        pub const LOG_ALL_DESC: &str = $m!(
            "",
            " ORDER BY l.ts DESC, l.id DESC LIMIT $2",
            "ts DESC, id DESC"
        );
        pub const LOG_ALL_ASC: &str =
            $m!(" AND l.ts > $3", " ORDER BY l.ts, l.id LIMIT $2", "ts, id");
        pub const LOG_AGG_DESC: &str = $m!(
            " AND l.monitor_id IS NULL",
            " ORDER BY l.ts DESC, l.id DESC LIMIT $2",
            "ts DESC, id DESC"
        );
        pub const LOG_AGG_ASC: &str = $m!(
            " AND l.monitor_id IS NULL AND l.ts > $3",
            " ORDER BY l.ts, l.id LIMIT $2",
            "ts, id"
        );
        pub const LOG_MON_DESC: &str = $m!(
            " AND l.monitor_id = $3",
            " ORDER BY l.ts DESC, l.id DESC LIMIT $2",
            "ts DESC, id DESC"
        );
        pub const LOG_MON_ASC: &str = $m!(
            " AND l.monitor_id = $4 AND l.ts > $3",
            " ORDER BY l.ts, l.id LIMIT $2",
            "ts, id"
        );
    };
}

pub(crate) mod common {
    pub const ACCOUNT_INSERT: &str =
        "INSERT INTO accounts (name) VALUES ($1) ON CONFLICT (name) DO NOTHING";
    pub const ACCOUNT_ID: &str = "SELECT id FROM accounts WHERE name = $1";
    pub const ACCOUNT_BY_NAME: &str =
        "SELECT id, name, email, webhook FROM accounts WHERE name = $1";
    pub const ACCOUNT_SET_CONTACT: &str =
        "UPDATE accounts SET email = $2, webhook = $3 WHERE name = $1";

    pub const ZONE_UPSERT: &str = "INSERT INTO zones (name, description, dns) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET description = excluded.description";
    pub const ZONE_ID: &str = "SELECT id FROM zones WHERE name = $1";
    pub const ZONE_SET_PARENT: &str = "UPDATE zones SET parent_id = $2 WHERE name = $1";
    pub const ZONE_LIST: &str = "SELECT z.id, z.name, p.name, z.description, z.dns \
         FROM zones z LEFT JOIN zones p ON p.id = z.parent_id ORDER BY z.name";
    pub const ZONE_MEMBERS: &str = "SELECT sz.zone_id, s.ip_version, s.score, s.netspeed, s.deletion_on, \
         d.in_dns, d.held FROM server_zones sz JOIN servers s ON s.id = sz.server_id \
         LEFT JOIN server_dns d ON d.server_id = s.id";

    pub const SERVER_INSERT: &str = "INSERT INTO servers \
         (ip, ip_version, account_id, netspeed, score, created_on) \
         VALUES ($1, $2, $3, $4, 0, $5) RETURNING id";
    pub const SERVER_ZONE_INSERT: &str =
        "INSERT INTO server_zones (server_id, zone_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
    /// Every monitor starts as a candidate for every server of its IP
    /// version; the selector promotes from there.
    pub const SERVER_SCORES_FOR_SERVER: &str = "INSERT INTO server_scores \
         (monitor_id, server_id, status, score) \
         SELECT id, $1, 'candidate', 0 FROM monitors \
         WHERE ip_version = $2 AND status <> 'deleted' \
         ON CONFLICT (server_id, monitor_id) DO NOTHING";
    pub const SERVER_SCORES_FOR_MONITOR: &str = "INSERT INTO server_scores \
         (monitor_id, server_id, status, score) \
         SELECT $1, id, 'candidate', 0 FROM servers WHERE ip_version = $2 \
         ON CONFLICT (server_id, monitor_id) DO NOTHING";
    macro_rules! server_cols {
        () => {
            "SELECT id, ip, ip_version, account_id, netspeed, score, \
             score_ts, deletion_on, created_on FROM servers"
        };
    }
    pub const SERVER_BY_IP: &str = concat!(server_cols!(), " WHERE ip = $1");
    pub const SERVER_BY_ID: &str = concat!(server_cols!(), " WHERE id = $1");
    pub const SERVER_ALL: &str = concat!(server_cols!(), " ORDER BY id");
    pub const SERVER_ZONES_OF: &str = "SELECT sz.server_id, z.name FROM server_zones sz \
         JOIN zones z ON z.id = sz.zone_id WHERE sz.server_id = $1 ORDER BY z.name";
    pub const SERVER_ZONES_ALL: &str = "SELECT sz.server_id, z.name FROM server_zones sz \
         JOIN zones z ON z.id = sz.zone_id ORDER BY sz.server_id, z.name";
    pub const SERVER_SET_NETSPEED: &str = "UPDATE servers SET netspeed = $2 WHERE ip = $1";
    pub const SERVER_SET_DELETION: &str = "UPDATE servers SET deletion_on = $2 WHERE ip = $1";

    pub const MONITOR_INSERT: &str = "INSERT INTO monitors \
         (name, location, ip, ip_version, account_id, status, key_hash, created_on) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
    macro_rules! monitor_cols {
        () => {
            "SELECT id, name, location, ip, ip_version, account_id, status, key_hash, config, \
             last_seen, last_submit_batch, client_version, created_on FROM monitors"
        };
    }
    pub const MONITOR_BY_KEY: &str = concat!(monitor_cols!(), " WHERE key_hash = $1");
    pub const MONITOR_BY_NAME: &str = concat!(monitor_cols!(), " WHERE name = $1");
    pub const MONITOR_BY_ID: &str = concat!(monitor_cols!(), " WHERE id = $1");
    pub const MONITOR_ALL: &str = concat!(monitor_cols!(), " ORDER BY id");
    pub const MONITOR_SET_STATUS: &str =
        "UPDATE monitors SET status = $2 WHERE name = $1 RETURNING id, ip_version";
    pub const MONITOR_SET_CONFIG: &str = "UPDATE monitors SET config = $2 WHERE name = $1";
    pub const MONITOR_SET_KEY: &str = "UPDATE monitors SET key_hash = $2 WHERE name = $1";
    pub const MONITOR_TOUCH: &str = "UPDATE monitors SET last_seen = $2, \
         client_version = COALESCE($3, client_version) WHERE id = $1";
    pub const MONITOR_IP_VERSION: &str = "SELECT ip_version FROM monitors WHERE id = $1";
    pub const MONITOR_SET_LAST_BATCH: &str = "UPDATE monitors SET last_submit_batch = \
         CASE WHEN last_submit_batch IS NULL OR last_submit_batch < $2 THEN $2 \
         ELSE last_submit_batch END WHERE id = $1";

    pub const SERVER_SCORE_SET_STATUS: &str =
        "UPDATE server_scores SET status = $3 WHERE server_id = $1 AND monitor_id = $2";

    pub const BATCH_INSERT: &str =
        "INSERT INTO batches (monitor_id, created, servers) VALUES ($1, $2, $3) RETURNING seq";
    pub const BATCH_GET: &str =
        "SELECT seq, monitor_id, created, submitted_at, servers FROM batches WHERE seq = $1";
    pub const MONITOR_LAST_BATCH: &str = "SELECT last_submit_batch FROM monitors WHERE id = $1";
    pub const BATCH_MARK: &str = "UPDATE batches SET submitted_at = $2 WHERE seq = $1";

    pub const SERVER_MONITORS: &str = "SELECT ss.monitor_id, m.name, m.location, m.status, \
         ss.status, ss.score, ss.score_ts, ss.rtt FROM server_scores ss \
         JOIN monitors m ON m.id = ss.monitor_id WHERE ss.server_id = $1 ORDER BY m.name";

    pub const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM servers), \
         (SELECT COUNT(*) FROM monitors), (SELECT COUNT(*) FROM log_scores)";
}

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
            "SELECT s.id, \
             (SELECT x.score FROM log_scores x ",
            $hint,
            " WHERE x.server_id = s.id AND x.monitor_id IS NULL \
              ORDER BY x.ts DESC, x.id DESC LIMIT 1) AS sc, \
             (SELECT x.ts FROM log_scores x ",
            $hint,
            " WHERE x.server_id = s.id AND x.monitor_id IS NULL \
              ORDER BY x.ts DESC, x.id DESC LIMIT 1) AS st \
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
            "SELECT ss.server_id, ss.monitor_id, ss.status, ss.score, ss.score_ts, ss.rtt, \
             m.status AS mstatus \
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

pub(crate) mod sqlite {
    pub use super::common::*;

    /// Servers, monitors and log rows for /metrics: the log's count is kept
    /// in log_seq (migration 0005), so this costs the same at any log size.
    pub const METRIC_COUNTS: &str = "SELECT (SELECT COUNT(*) FROM servers), \
         (SELECT COUNT(*) FROM monitors), (SELECT log_rows FROM log_seq WHERE id = 1)";
    /// Takes rows deleted by housekeeping (its only delete of log rows) off
    /// the kept count.
    pub const LOG_ROWS_DELETED: Option<&str> =
        Some("UPDATE log_seq SET log_rows = log_rows - $1 WHERE id = 1");
    use super::{LogWrite, ScoreTuple, ScoreWrite, ServerTuple, WindowTuple};
    use sqlx::SqliteConnection;
    use std::sync::OnceLock;

    log_queries!(log_json);

    /// Runs one of the `LOG_*` queries. SQLite hands rows to sqlx one by
    /// one through a channel (~2 µs each); folding 10,000 rows into one
    /// JSON text and parsing that costs about a third less, which matters
    /// for the 10,000-row CSV.
    pub async fn fetch_logs(
        c: &mut SqliteConnection,
        sql: &'static str,
        server_id: i64,
        limit: i64,
        third: Option<i64>,
        fourth: Option<i64>,
    ) -> Result<Vec<super::LogTuple>, sqlx::Error> {
        type Json = (
            i64,
            i64,
            Option<String>,
            String,
            String,
            Option<i64>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<String>,
            i64,
        );
        let mut q = sqlx::query_as::<_, (String,)>(sql)
            .bind(server_id)
            .bind(limit);
        if let Some(v) = third {
            q = q.bind(v);
        }
        if let Some(v) = fourth {
            q = q.bind(v);
        }
        let (json,) = q.fetch_one(c).await?;
        let rows: Vec<Json> =
            serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let real = |s: &str| -> Result<f64, sqlx::Error> {
            s.parse()
                .map_err(|e: std::num::ParseFloatError| sqlx::Error::Decode(Box::new(e)))
        };
        rows.into_iter()
            .map(|r| {
                Ok((
                    r.0,
                    r.1,
                    r.2.as_deref().map(real).transpose()?,
                    real(&r.3)?,
                    real(&r.4)?,
                    r.5,
                    r.6,
                    r.7,
                    r.8,
                    r.9,
                    r.10,
                    r.11,
                    r.12 != 0,
                ))
            })
            .collect()
    }

    /// Folds a query's rows into one JSON array text (see `fetch_logs`).
    macro_rules! json_rows {
        ($cols:literal, $order:literal, $inner:expr) => {
            concat!(
                "SELECT json_group_array(json_array(",
                $cols,
                ") ORDER BY ",
                $order,
                ") FROM (",
                $inner,
                ")"
            )
        };
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(
        q: sqlx::query::QueryAs<'_, sqlx::Sqlite, (String,), sqlx::sqlite::SqliteArguments>,
        c: &mut SqliteConnection,
    ) -> Result<T, sqlx::Error> {
        let (json,) = q.fetch_one(c).await?;
        serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }

    const WORK_SELECT: &str =
        json_rows!("server_id, ip", "qts NULLS FIRST, ssid", work_select!(""));
    const WORK_MARK: &str = "UPDATE server_scores SET queue_ts = $1 \
         WHERE monitor_id = $2 AND server_id IN (SELECT value FROM json_each($3))";
    pub const BATCH_LOCK: &str = "SELECT monitor_id, submitted_at FROM batches WHERE seq = $1";
    const SUBMIT_SERVERS: &str = json_rows!(
        "id, sc, st",
        "id",
        submit_servers!(
            "INDEXED BY log_scores_server_monitor_ts",
            "IN (SELECT value FROM json_each($1))"
        )
    );
    const SUBMIT_SCORES: &str = json_rows!(
        "server_id, monitor_id, status, score, score_ts, rtt, mstatus",
        "server_id, monitor_id",
        submit_scores!("IN (SELECT value FROM json_each($1))", trusted!())
    );
    const SUBMIT_CANDIDATES: &str = json_rows!(
        "server_id, monitor_id, status, score, score_ts, rtt, mstatus",
        "server_id, monitor_id",
        submit_scores!("IN (SELECT value FROM json_each($1))", candidates!())
    );

    /// Up to `limit` due servers of the monitor, marked queued at `now`.
    /// `cutoffs` are the last queue times still due for active, testing
    /// and candidate status.
    pub async fn take_due(
        c: &mut SqliteConnection,
        monitor_id: i64,
        ip_version: i64,
        now: i64,
        cutoffs: [i64; 3],
        limit: i64,
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let q = sqlx::query_as(WORK_SELECT)
            .bind(monitor_id)
            .bind(ip_version)
            .bind(now)
            .bind(cutoffs[0])
            .bind(cutoffs[1])
            .bind(cutoffs[2])
            .bind(limit);
        let rows: Vec<(i64, String)> = fetch_json(q, &mut *c).await?;
        if !rows.is_empty() {
            let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
            sqlx::query(WORK_MARK)
                .bind(now)
                .bind(monitor_id)
                .bind(ids_json(&ids))
                .execute(&mut *c)
                .await?;
        }
        Ok(rows)
    }

    /// `(id, ip)` of the given servers (unknown ids are left out).
    pub async fn server_ips(
        c: &mut SqliteConnection,
        ids: &[i64],
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        const SQL: &str = json_rows!(
            "id, ip",
            "id",
            "SELECT id, ip FROM servers WHERE id IN (SELECT value FROM json_each($1))"
        );
        fetch_json(sqlx::query_as(SQL).bind(ids_json(ids)), c).await
    }

    /// The monitor's newest submitted batch (writers are serialised).
    pub const MONITOR_LAST_BATCH_LOCK: &str = MONITOR_LAST_BATCH;

    /// The stored state a submission needs for the touched servers.
    /// Writers are serialised by `BEGIN IMMEDIATE`, so nothing to lock.
    pub async fn submit_state(
        c: &mut SqliteConnection,
        ids: &[i64],
        monitor_id: i64,
    ) -> Result<(Vec<ServerTuple>, Vec<ScoreTuple>), sqlx::Error> {
        let ids = ids_json(ids);
        let servers = fetch_json(sqlx::query_as(SUBMIT_SERVERS).bind(&ids), &mut *c).await?;
        let q = sqlx::query_as(SUBMIT_SCORES).bind(&ids).bind(monitor_id);
        let scores = fetch_json(q, &mut *c).await?;
        Ok((servers, scores))
    }

    /// Other monitors' candidate pairs of the servers scored since `since`.
    pub async fn submit_candidates(
        c: &mut SqliteConnection,
        ids: &[i64],
        monitor_id: i64,
        since: i64,
    ) -> Result<Vec<ScoreTuple>, sqlx::Error> {
        let q = sqlx::query_as(SUBMIT_CANDIDATES)
            .bind(ids_json(ids))
            .bind(monitor_id)
            .bind(since);
        fetch_json(q, c).await
    }

    /// The monitor's selector windows and last errors for the servers.
    pub async fn own_windows(
        c: &mut SqliteConnection,
        monitor_id: i64,
        ids: &[i64],
    ) -> Result<Vec<WindowTuple>, sqlx::Error> {
        // One JSON row, not a row per server: each row is a message from
        // sqlx's SQLite worker thread, and this runs in every submission.
        const SQL: &str = json_rows!(
            "server_id, stats_day, cur_n, cur_step, cur_rtt_n, cur_rtt, prev_n, prev_step, \
             prev_rtt_n, prev_rtt, last_error",
            "server_id",
            concat!(
                "SELECT server_id, ",
                window_cols!(),
                ", last_error FROM server_scores WHERE monitor_id = $1 \
                 AND server_id IN (SELECT value FROM json_each($2))"
            )
        );
        fetch_json(sqlx::query_as(SQL).bind(monitor_id).bind(ids_json(ids)), c).await
    }

    fn ids_json(v: &[i64]) -> String {
        serde_json::to_string(v).expect("integers always serialize")
    }

    /// Rows per multi-row VALUES statement; short chunks are padded with
    /// NULL rows (filtered out) so only one statement shape is prepared.
    const CHUNK: usize = 64;

    /// `(?, ?, …), (…), …`: CHUNK rows of `cols` anonymous placeholders.
    fn values(cols: usize) -> String {
        let row = format!("({})", vec!["?"; cols].join(", "));
        vec![row; CHUNK].join(", ")
    }

    fn chunks<T>(rows: &[T]) -> impl Iterator<Item = (usize, &[T])> {
        rows.chunks(CHUNK).enumerate().map(|(i, c)| (i * CHUNK, c))
    }

    pub async fn upsert_scores(
        c: &mut SqliteConnection,
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

    pub async fn insert_logs(
        c: &mut SqliteConnection,
        rows: &[LogWrite],
    ) -> Result<(), sqlx::Error> {
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
        sqlx::query(
            "UPDATE log_seq SET next_id = next_id + $1, log_rows = log_rows + $1 WHERE id = 1",
        )
        .bind(rows.len() as i64)
        .execute(&mut *c)
        .await?;
        Ok(())
    }

    pub async fn set_server_scores(
        c: &mut SqliteConnection,
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
}

pub(crate) mod pg {
    pub use super::common::*;

    /// Servers, monitors and log rows for /metrics. The log's count is the
    /// id range, two probes of the primary key: an estimate (ids of rolled
    /// back inserts count too) that follows every write at once, where a
    /// kept count would make every batch update one row (see BENCHMARKS.md).
    pub const METRIC_COUNTS: &str = "SELECT (SELECT COUNT(*) FROM servers), \
         (SELECT COUNT(*) FROM monitors), \
         (SELECT COALESCE(MAX(id) - MIN(id) + 1, 0) FROM log_scores)";
    /// No kept count to update.
    pub const LOG_ROWS_DELETED: Option<&str> = None;
    use super::{LogWrite, ScoreTuple, ScoreWrite, ServerTuple, WindowTuple};
    use sqlx::PgConnection;

    log_queries!(log_select);

    /// Runs one of the `LOG_*` queries.
    pub async fn fetch_logs(
        c: &mut PgConnection,
        sql: &'static str,
        server_id: i64,
        limit: i64,
        third: Option<i64>,
        fourth: Option<i64>,
    ) -> Result<Vec<super::LogTuple>, sqlx::Error> {
        let mut q = sqlx::query_as(sql).bind(server_id).bind(limit);
        if let Some(v) = third {
            q = q.bind(v);
        }
        if let Some(v) = fourth {
            q = q.bind(v);
        }
        q.fetch_all(c).await
    }

    /// Locked rows are skipped, so concurrent callers get disjoint work.
    const WORK_SELECT: &str = work_select!(" FOR UPDATE OF ss SKIP LOCKED");
    const WORK_MARK: &str = "UPDATE server_scores SET queue_ts = $1 \
         WHERE monitor_id = $2 AND server_id = ANY($3)";
    pub const BATCH_LOCK: &str =
        "SELECT monitor_id, submitted_at FROM batches WHERE seq = $1 FOR UPDATE";
    const SUBMIT_SERVERS: &str = submit_servers!("", "= ANY($1)");
    const SUBMIT_SCORES: &str = submit_scores!("= ANY($1)", trusted!());
    const SUBMIT_CANDIDATES: &str = submit_scores!("= ANY($1)", candidates!());

    /// Up to `limit` due servers of the monitor, marked queued at `now`.
    pub async fn take_due(
        c: &mut PgConnection,
        monitor_id: i64,
        ip_version: i64,
        now: i64,
        cutoffs: [i64; 3],
        limit: i64,
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let rows: Vec<(i64, String, Option<i64>, i64)> = sqlx::query_as(WORK_SELECT)
            .bind(monitor_id)
            .bind(ip_version)
            .bind(now)
            .bind(cutoffs[0])
            .bind(cutoffs[1])
            .bind(cutoffs[2])
            .bind(limit)
            .fetch_all(&mut *c)
            .await?;
        if !rows.is_empty() {
            let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
            sqlx::query(WORK_MARK)
                .bind(now)
                .bind(monitor_id)
                .bind(ids)
                .execute(&mut *c)
                .await?;
        }
        Ok(rows.into_iter().map(|r| (r.0, r.1)).collect())
    }

    /// `(id, ip)` of the given servers (unknown ids are left out).
    pub async fn server_ips(
        c: &mut PgConnection,
        ids: &[i64],
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        sqlx::query_as("SELECT id, ip FROM servers WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(c)
            .await
    }

    /// The monitor's newest submitted batch, locked so one monitor's
    /// submissions serialise and none can slip in out of order.
    pub const MONITOR_LAST_BATCH_LOCK: &str =
        "SELECT last_submit_batch FROM monitors WHERE id = $1 FOR NO KEY UPDATE";

    /// The stored state a submission needs for the touched servers. The
    /// servers are locked first (FOR NO KEY UPDATE, in id order so two
    /// submissions never deadlock): concurrent submissions for the same
    /// server then serialise and each aggregate sees every committed score.
    pub async fn submit_state(
        c: &mut PgConnection,
        ids: &[i64],
        monitor_id: i64,
    ) -> Result<(Vec<ServerTuple>, Vec<ScoreTuple>), sqlx::Error> {
        sqlx::query("SELECT id FROM servers WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            .bind(ids)
            .execute(&mut *c)
            .await?;
        let servers = sqlx::query_as(SUBMIT_SERVERS)
            .bind(ids)
            .fetch_all(&mut *c)
            .await?;
        let scores = sqlx::query_as(SUBMIT_SCORES)
            .bind(ids)
            .bind(monitor_id)
            .fetch_all(&mut *c)
            .await?;
        Ok((servers, scores))
    }

    /// Other monitors' candidate pairs of the servers scored since `since`.
    pub async fn submit_candidates(
        c: &mut PgConnection,
        ids: &[i64],
        monitor_id: i64,
        since: i64,
    ) -> Result<Vec<ScoreTuple>, sqlx::Error> {
        sqlx::query_as(SUBMIT_CANDIDATES)
            .bind(ids)
            .bind(monitor_id)
            .bind(since)
            .fetch_all(c)
            .await
    }

    /// The monitor's selector windows and last errors for the servers.
    pub async fn own_windows(
        c: &mut PgConnection,
        monitor_id: i64,
        ids: &[i64],
    ) -> Result<Vec<WindowTuple>, sqlx::Error> {
        const SQL: &str = concat!(
            "SELECT server_id, ",
            window_cols!(),
            ", last_error FROM server_scores WHERE monitor_id = $1 AND server_id = ANY($2)"
        );
        sqlx::query_as(SQL)
            .bind(monitor_id)
            .bind(ids)
            .fetch_all(c)
            .await
    }

    pub async fn upsert_scores(
        c: &mut PgConnection,
        monitor_id: i64,
        rows: &[ScoreWrite],
    ) -> Result<(), sqlx::Error> {
        let server: Vec<i64> = rows.iter().map(|r| r.server_id).collect();
        let score: Vec<f64> = rows.iter().map(|r| r.score).collect();
        let ts: Vec<i64> = rows.iter().map(|r| r.score_ts).collect();
        let rtt: Vec<Option<i64>> = rows.iter().map(|r| r.rtt_us).collect();
        macro_rules! w {
            ($($f:tt).+) => {
                rows.iter().map(|r| r.window.$($f).+).collect::<Vec<_>>()
            };
        }
        let last_error: Vec<&str> = rows.iter().map(|r| r.last_error.as_str()).collect();
        sqlx::query(concat!(
            "INSERT INTO server_scores \
             (monitor_id, server_id, status, score, score_ts, rtt, ",
            window_cols!(),
            ", last_error) \
             SELECT $1, u.server_id, 'candidate', u.score, u.ts, u.rtt, u.d, u.cn, u.cs, \
             u.crn, u.cr, u.pn, u.ps, u.prn, u.pr, u.le \
             FROM UNNEST($2::bigint[], $3::float8[], $4::bigint[], $5::bigint[], \
             $6::bigint[], $7::bigint[], $8::float8[], $9::bigint[], $10::float8[], \
             $11::bigint[], $12::float8[], $13::bigint[], $14::float8[], $15::text[]) \
             AS u(server_id, score, ts, rtt, d, cn, cs, crn, cr, pn, ps, prn, pr, le) \
             ON CONFLICT (server_id, monitor_id) DO UPDATE SET \
             score = excluded.score, score_ts = excluded.score_ts, rtt = excluded.rtt, \
             stats_day = excluded.stats_day, cur_n = excluded.cur_n, \
             cur_step = excluded.cur_step, cur_rtt_n = excluded.cur_rtt_n, \
             cur_rtt = excluded.cur_rtt, prev_n = excluded.prev_n, \
             prev_step = excluded.prev_step, prev_rtt_n = excluded.prev_rtt_n, \
             prev_rtt = excluded.prev_rtt, last_error = excluded.last_error",
        ))
        .bind(monitor_id)
        .bind(server)
        .bind(score)
        .bind(ts)
        .bind(rtt)
        .bind(w!(day))
        .bind(w!(cur.n))
        .bind(w!(cur.step))
        .bind(w!(cur.rtt_n))
        .bind(w!(cur.rtt_ms))
        .bind(w!(prev.n))
        .bind(w!(prev.step))
        .bind(w!(prev.rtt_n))
        .bind(w!(prev.rtt_ms))
        .bind(last_error)
        .execute(c)
        .await?;
        Ok(())
    }

    pub async fn insert_logs(c: &mut PgConnection, rows: &[LogWrite]) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        macro_rules! col {
            ($f:ident) => {
                rows.iter().map(|r| r.$f.clone()).collect::<Vec<_>>()
            };
        }
        sqlx::query(
            "INSERT INTO log_scores (server_id, monitor_id, ts, step, score, \"offset\", rtt, \
             stratum, leap, refid, error, no_response) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::float8[], \
             $5::float8[], $6::float8[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], \
             $11::text[], $12::bool[])",
        )
        .bind(col!(server_id))
        .bind(col!(monitor_id))
        .bind(col!(ts))
        .bind(col!(step))
        .bind(col!(score))
        .bind(col!(offset))
        .bind(col!(rtt_us))
        .bind(col!(stratum))
        .bind(col!(leap))
        .bind(col!(refid))
        .bind(col!(error))
        .bind(col!(no_response))
        .execute(c)
        .await?;
        Ok(())
    }

    pub async fn set_server_scores(
        c: &mut PgConnection,
        now: i64,
        rows: &[(i64, f64)],
    ) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let id: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let score: Vec<f64> = rows.iter().map(|r| r.1).collect();
        sqlx::query(
            "UPDATE servers SET score = v.score, score_ts = $1 \
             FROM UNNEST($2::bigint[], $3::float8[]) AS v(id, score) WHERE servers.id = v.id",
        )
        .bind(now)
        .bind(id)
        .bind(score)
        .execute(c)
        .await?;
        Ok(())
    }
}
