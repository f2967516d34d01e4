//! SQL text. One `&'static str` per statement where both dialects accept
//! it (placeholders are `$N` everywhere; SQLite reads them positionally),
//! a [`Sql`] pair where the text differs; [`Conn`](crate::conn::Conn)
//! picks. Statements whose binds differ too (bulk writes, id lists) are in
//! `bulk.rs`.

use crate::conn::Sql;

/// The rows a submission writes, decided by [`scoring::submission`].
pub(crate) use scoring::submission::{LogWrite, ScoreWrite};

/// The 24 h window columns of `server_scores` (see `scoring::window`).
macro_rules! window_cols {
    () => {
        "stats_day, cur_n, cur_step, cur_rtt_n, cur_rtt, prev_n, prev_step, prev_rtt_n, prev_rtt"
    };
}
pub(crate) use window_cols;

/// The same columns as one nested JSON array, for folded SQLite reads
/// (see `Query::fetch_folded`), where [`WindowCols`] is one field.
macro_rules! window_json {
    () => {
        concat!("json_array(", $crate::sql::window_cols!(), ")")
    };
}
pub(crate) use window_json;

/// A pair's stored window: [`window_cols!`], flattened into the row
/// structs that read it.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct WindowCols {
    pub stats_day: Option<i64>,
    pub cur_n: i64,
    pub cur_step: f64,
    pub cur_rtt_n: i64,
    pub cur_rtt: f64,
    pub prev_n: i64,
    pub prev_step: f64,
    pub prev_rtt_n: i64,
    pub prev_rtt: f64,
}

crate::conn::positional_row!(WindowCols {
    stats_day,
    cur_n,
    cur_step,
    cur_rtt_n,
    cur_rtt,
    prev_n,
    prev_step,
    prev_rtt_n,
    prev_rtt
});

impl WindowCols {
    pub(crate) fn window(&self) -> scoring::PairWindow {
        use scoring::window::Sums;
        scoring::PairWindow {
            day: self.stats_day,
            cur: Sums {
                n: self.cur_n,
                step: self.cur_step,
                rtt_n: self.cur_rtt_n,
                rtt_ms: self.cur_rtt,
            },
            prev: Sums {
                n: self.prev_n,
                step: self.prev_step,
                rtt_n: self.prev_rtt_n,
                rtt_ms: self.prev_rtt,
            },
        }
    }
}

/// A log query: `$1` server, `$2` limit, then `since` and/or the monitor.
macro_rules! log_select {
    ($filter:literal, $order:literal) => {
        concat!(
            "SELECT l.id, l.ts, l.\"offset\", l.step, l.score, l.monitor_id, \
             m.name AS monitor_name, l.rtt AS rtt_us, \
             l.stratum, l.leap, l.refid, l.error, l.no_response \
             FROM log_scores l LEFT JOIN monitors m ON m.id = l.monitor_id WHERE l.server_id = $1",
            $filter,
            $order
        )
    };
}

/// The same rows folded into one JSON array (see `bulk::fetch_logs`).
/// Reals travel as 17-digit text: SQLite's JSON prints only 15 digits,
/// which would not read back the stored value exactly.
macro_rules! log_json {
    ($filter:literal, $order:literal, $outer:literal) => {
        concat!(
            "SELECT json_group_array(json_array(id, ts, \
             iif(\"offset\" IS NULL, NULL, printf('%!.17g', \"offset\")), \
             printf('%!.17g', step), printf('%!.17g', score), monitor_id, \
             monitor_name, rtt_us, stratum, leap, refid, error, no_response) ORDER BY ",
            $outer,
            ") FROM (",
            log_select!($filter, $order),
            ")"
        )
    };
}

/// One log query: SQLite's folded into JSON, PostgreSQL's as it is.
macro_rules! log_query {
    ($filter:literal, $order:literal, $outer:literal) => {
        Sql {
            sqlite: log_json!($filter, $order, $outer),
            pg: log_select!($filter, $order),
        }
    };
}

/// The six log queries (filter × order).
pub const LOG_ALL_DESC: Sql = log_query!(
    "",
    " ORDER BY l.ts DESC, l.id DESC LIMIT $2",
    "ts DESC, id DESC"
);
pub const LOG_ALL_ASC: Sql =
    log_query!(" AND l.ts > $3", " ORDER BY l.ts, l.id LIMIT $2", "ts, id");
pub const LOG_AGG_DESC: Sql = log_query!(
    " AND l.monitor_id IS NULL",
    " ORDER BY l.ts DESC, l.id DESC LIMIT $2",
    "ts DESC, id DESC"
);
pub const LOG_AGG_ASC: Sql = log_query!(
    " AND l.monitor_id IS NULL AND l.ts > $3",
    " ORDER BY l.ts, l.id LIMIT $2",
    "ts, id"
);
pub const LOG_MON_DESC: Sql = log_query!(
    " AND l.monitor_id = $3",
    " ORDER BY l.ts DESC, l.id DESC LIMIT $2",
    "ts DESC, id DESC"
);
pub const LOG_MON_ASC: Sql = log_query!(
    " AND l.monitor_id = $4 AND l.ts > $3",
    " ORDER BY l.ts, l.id LIMIT $2",
    "ts, id"
);

/// Servers, monitors and log rows for /metrics, at a cost that does not
/// grow with the log. SQLite keeps the log's count in log_seq (migration
/// 0005). PostgreSQL takes the id range, two probes of the primary key: an
/// estimate (ids of rolled back inserts count too) that follows every
/// write at once, where a kept count would make every batch update one row
/// (see BENCHMARKS.md).
pub const METRIC_COUNTS: Sql = Sql {
    sqlite: "SELECT (SELECT COUNT(*) FROM servers), \
         (SELECT COUNT(*) FROM monitors), (SELECT log_rows FROM log_seq WHERE id = 1)",
    pg: "SELECT (SELECT COUNT(*) FROM servers), \
         (SELECT COUNT(*) FROM monitors), \
         (SELECT COALESCE(MAX(id) - MIN(id) + 1, 0) FROM log_scores)",
};
/// Takes rows deleted by housekeeping (its only delete of log rows) off
/// SQLite's kept count; PostgreSQL keeps none.
pub const LOG_ROWS_DELETED: &str = "UPDATE log_seq SET log_rows = log_rows - $1 WHERE id = 1";

/// The batch being submitted; PostgreSQL locks it (SQLite's writers are
/// serialised by `BEGIN IMMEDIATE`).
pub const BATCH_LOCK: Sql = Sql {
    sqlite: "SELECT monitor_id, submitted_at FROM batches WHERE seq = $1",
    pg: "SELECT monitor_id, submitted_at FROM batches WHERE seq = $1 FOR UPDATE",
};
/// The monitor's newest submitted batch, locked on PostgreSQL so one
/// monitor's submissions serialise and none can slip in out of order.
pub const MONITOR_LAST_BATCH_LOCK: Sql = Sql {
    sqlite: MONITOR_LAST_BATCH,
    pg: "SELECT last_submit_batch FROM monitors WHERE id = $1 FOR NO KEY UPDATE",
};

pub const ACCOUNT_INSERT: &str =
    "INSERT INTO accounts (name) VALUES ($1) ON CONFLICT (name) DO NOTHING";
pub const ACCOUNT_ID: &str = "SELECT id FROM accounts WHERE name = $1";
pub const ACCOUNT_BY_NAME: &str = "SELECT id, name, email, webhook FROM accounts WHERE name = $1";
pub const ACCOUNT_SET_CONTACT: &str =
    "UPDATE accounts SET email = $2, webhook = $3 WHERE name = $1";

pub const ZONE_UPSERT: &str = "INSERT INTO zones (name, description, dns) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET description = excluded.description";
pub const ZONE_ID: &str = "SELECT id FROM zones WHERE name = $1";
pub const ZONE_SET_PARENT: &str = "UPDATE zones SET parent_id = $2 WHERE name = $1";
pub const ZONE_LIST: &str = "SELECT z.id, z.name, p.name AS parent, z.description, z.dns \
     FROM zones z LEFT JOIN zones p ON p.id = z.parent_id ORDER BY z.name";
/// `netspeed` is 0 for a disabled account's servers: out of DNS, as if
/// monitoring only.
pub const ZONE_MEMBERS: &str = "SELECT sz.zone_id, s.ip_version, s.score, \
     CASE WHEN a.disabled THEN 0 ELSE s.netspeed END AS netspeed, s.deletion_on, \
     d.in_dns, d.held FROM server_zones sz JOIN servers s ON s.id = sz.server_id \
     LEFT JOIN accounts a ON a.id = s.account_id \
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
/// A server with its operator's settings and whether its account is
/// disabled (a disabled account's servers are out of DNS).
macro_rules! server_cols {
    () => {
        "SELECT s.id, s.ip, s.ip_version, s.account_id, s.netspeed, s.score, \
         s.score_ts, s.deletion_on, s.created_on, s.hostname, s.verified_on, s.note, \
         s.alerts_on, COALESCE(a.disabled, FALSE) AS account_disabled \
         FROM servers s LEFT JOIN accounts a ON a.id = s.account_id"
    };
}
pub(crate) use server_cols;
pub const SERVER_BY_IP: &str = concat!(server_cols!(), " WHERE s.ip = $1");
pub const SERVER_BY_ID: &str = concat!(server_cols!(), " WHERE s.id = $1");
pub const SERVER_ALL: &str = concat!(server_cols!(), " ORDER BY s.id");
pub const SERVER_OF_ACCOUNT: &str =
    concat!(server_cols!(), " WHERE s.account_id = $1 ORDER BY s.id");
pub const SERVER_ZONES_OF_ACCOUNT: &str = "SELECT sz.server_id, z.name FROM server_zones sz \
     JOIN zones z ON z.id = sz.zone_id JOIN servers s ON s.id = sz.server_id \
     WHERE s.account_id = $1 ORDER BY z.name";
pub const SERVER_DNS_OF_ACCOUNT: &str = "SELECT d.server_id, d.in_dns, d.held, d.in_since, \
     d.left_at FROM server_dns d JOIN servers s ON s.id = d.server_id WHERE s.account_id = $1";
pub const SERVER_ZONES_OF: &str = "SELECT sz.server_id, z.name FROM server_zones sz \
     JOIN zones z ON z.id = sz.zone_id WHERE sz.server_id = $1 ORDER BY z.name";
pub const SERVER_ZONES_ALL: &str = "SELECT sz.server_id, z.name FROM server_zones sz \
     JOIN zones z ON z.id = sz.zone_id ORDER BY sz.server_id, z.name";
pub const SERVER_SET_NETSPEED: &str = "UPDATE servers SET netspeed = $2 WHERE ip = $1";
pub const SERVER_SET_DELETION: &str = "UPDATE servers SET deletion_on = $2 WHERE ip = $1";

pub const MONITOR_INSERT: &str = "INSERT INTO monitors \
     (name, location, ip, ip_version, account_id, status, key_hash, created_on, registration_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
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
/// An admin's status change also ends a volunteer's pause (see
/// `Store::set_account_monitor_paused`): the admin's word is the last.
pub const MONITOR_SET_STATUS: &str =
    "UPDATE monitors SET status = $2, paused_from = NULL WHERE name = $1 RETURNING id, ip_version";
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

pub const SERVER_MONITORS: &str = "SELECT ss.monitor_id, m.name, m.location, \
     m.status AS monitor_status, ss.status, ss.score, ss.score_ts, ss.rtt AS rtt_us \
     FROM server_scores ss \
     JOIN monitors m ON m.id = ss.monitor_id WHERE ss.server_id = $1 ORDER BY m.name";

pub const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM servers), \
     (SELECT COUNT(*) FROM monitors), (SELECT COUNT(*) FROM log_scores)";
