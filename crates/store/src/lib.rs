//! poolwatch's storage: schema, embedded migrations and every query, for
//! SQLite (default, one file, WAL) and PostgreSQL, behind one cheap-clone
//! [`Store`] handle. Scoring arithmetic comes from the `scoring` crate; this
//! crate only applies it inside transactions.
//!
//! It must not do HTTP, hashing of keys, ticket signing or authorisation
//! (the server crate's job), must not read clocks (callers pass `now` in
//! unix seconds) and must never log or return a database password.

mod bulk;
mod conn;
mod error;
mod sql;
mod submit;
mod types;

pub use error::StoreError;
pub use types::*;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use bulk::{Due, LogRead};
use conn::Conn;

/// Handle over the database; clones share the connection pools.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite {
        /// One connection: SQLite allows a single writer, so writers queue
        /// here instead of spinning on the file lock.
        write: SqlitePool,
        read: SqlitePool,
    },
    Postgres(PgPool),
}

impl Store {
    /// Runs `body` on a connection of the read pool.
    async fn read<T>(
        &self,
        body: impl AsyncFnOnce(&mut Conn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.inner {
            Backend::Sqlite { read, .. } => {
                let mut c = read.acquire().await?;
                body(&mut Conn::Sqlite(&mut c)).await
            }
            Backend::Postgres(pool) => {
                let mut c = pool.acquire().await?;
                body(&mut Conn::Pg(&mut c)).await
            }
        }
    }

    /// Runs `body` in one write transaction: committed when it returns
    /// `Ok`, rolled back on `Err` (see [`finish`]).
    async fn write<T>(
        &self,
        body: impl AsyncFnOnce(&mut Conn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.inner {
            Backend::Sqlite { write, .. } => {
                // IMMEDIATE takes the write lock up front, so another
                // process (the admin CLI) waits on busy_timeout instead of
                // failing a read-then-write upgrade. The pool has one
                // connection: writers of this process queue there.
                let mut tx = write.begin_with("BEGIN IMMEDIATE").await?;
                let r = body(&mut Conn::Sqlite(&mut tx)).await;
                finish(tx, r).await
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let r = body(&mut Conn::Pg(&mut tx)).await;
                finish(tx, r).await
            }
        }
    }
}

/// Ends `tx` as `r` says. When COMMIT or ROLLBACK itself fails (SQLite
/// rolls a transaction back by itself after SQLITE_FULL or an I/O error,
/// so sqlx's own ROLLBACK then fails too), the connection stays marked as
/// inside a transaction; [`release_check`] closes it on its way back to
/// the pool instead of letting every later BEGIN fail on it.
async fn finish<DB: sqlx::Database, T>(
    tx: sqlx::Transaction<'static, DB>,
    r: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match r {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            // Dropping also rolls back; an explicit rollback returns the
            // connection clean right away. Its own failure adds nothing.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// Settings of [`Store::open_with`]; the default is no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Largest size the SQLite database file may grow to (its WAL apart),
    /// in bytes; writes that need more fail as a full disk would, with a
    /// transient error. Never below the file's size at opening. Ignored for
    /// PostgreSQL.
    pub sqlite_max_bytes: Option<u64>,
}

/// Applies [`StoreOptions::sqlite_max_bytes`] to a new SQLite connection:
/// `max_page_count` is per connection and counted in pages.
async fn limit_size(
    c: &mut sqlx::SqliteConnection,
    max_bytes: Option<u64>,
) -> Result<(), sqlx::Error> {
    let Some(max) = max_bytes else {
        return Ok(());
    };
    let (page,): (i64,) = sqlx::query_as("PRAGMA page_size")
        .fetch_one(&mut *c)
        .await?;
    let pages = (max / page.max(1) as u64).max(1);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA max_page_count = {pages}"
    )))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Pool hook (`after_release`) on every pool: a connection that comes back
/// still inside a transaction is closed, never reused. That happens when a
/// COMMIT or ROLLBACK failed (see [`finish`]) or when a future was dropped
/// mid-transaction and the rollback sqlx queued failed. Costs nothing on a
/// clean connection.
fn release_check<C: sqlx::Connection>(
    c: &mut C,
    _: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if !c.is_in_transaction() {
            return Ok(true);
        }
        // A dropped transaction's rollback may still be queued on the
        // connection (SQLite runs it on its worker thread); a ping waits
        // for it.
        c.ping().await?;
        if c.is_in_transaction() {
            tracing::warn!(
                "a database connection came back inside a transaction its ROLLBACK could not end; closed it"
            );
            return Ok(false);
        }
        Ok(true)
    })
}

mod web;
pub use web::ScoreCrossing;
mod zone_history;
pub use zone_history::ZoneCountRow;
mod monitor_clock;
pub use monitor_clock::MonitorClock;
mod guard;
pub use guard::{
    DnsMembership, GUARD_WINDOW_S, GuardDetail, GuardEventRow, GuardRun, HeldServer, MonitorSaw,
    SEEN_GOOD_WITHIN_S, ServerDns, ZoneGuardStat,
};
mod prune;
pub use prune::{BATCH_KEEP_S, HOUSEKEEPING_CHUNK, Housekeeping};
mod selector_rows;
pub use selector_rows::{SelectorChange, SelectorInput, SelectorLogRow, SelectorPair};
mod traceroute_rows;
pub use traceroute_rows::{
    TRACEROUTE_MAX_PENDING, TRACEROUTE_REQUEST_INTERVAL_S, TRACEROUTE_RETAKE_S, TRACEROUTE_STALE_S,
    TracerouteHop, TracerouteIn, TracerouteRow,
};
mod alerts;
pub use alerts::{
    AlertChannel, AlertEvidence, AlertKind, AlertRow, AlertState, AlertTarget, MonitorEvidence,
    NewAlert, TracerouteEvidence,
};

const SQLITE_FILE: &str = "poolwatch.db";
const SQLITE_READERS: u32 = 4;
const PG_CONNECTIONS: u32 = 16;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const STATEMENT_CACHE: usize = 256;

impl Store {
    /// Opens (creating if needed) and migrates the database: `None` is the
    /// SQLite file `<data_dir>/poolwatch.db`, `postgres://…` PostgreSQL,
    /// `sqlite:PATH` another SQLite file.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Store, StoreError> {
        Self::open_with(database_url, data_dir, &StoreOptions::default()).await
    }

    /// [`Store::open`] with operator settings.
    pub async fn open_with(
        database_url: Option<&str>,
        data_dir: &Path,
        options: &StoreOptions,
    ) -> Result<Store, StoreError> {
        match database_url {
            None => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    StoreError::Open(format!(
                        "cannot create data directory {}: {e}",
                        data_dir.display()
                    ))
                })?;
                Self::open_sqlite(&data_dir.join(SQLITE_FILE), options).await
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::open_pg(url).await
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url.trim_start_matches("sqlite:");
                let path = path.strip_prefix("//").unwrap_or(path);
                let path = path.split('?').next().unwrap_or(path);
                if path.is_empty() || path == ":memory:" {
                    return Err(StoreError::Invalid(format!(
                        "database URL {url}: give a file path (sqlite:PATH)"
                    )));
                }
                let path = Path::new(path);
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Open(format!("cannot create directory {}: {e}", dir.display()))
                    })?;
                }
                Self::open_sqlite(path, options).await
            }
            Some(url) => Err(StoreError::Invalid(format!(
                "unsupported database URL {}: expected postgres://… or sqlite:PATH",
                redact_url(url)
            ))),
        }
    }

    async fn open_sqlite(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .statement_cache_capacity(STATEMENT_CACHE)
            // Statement sub-journals (every upsert or FK-checked insert in a
            // transaction writes one) stay in memory instead of a temp file.
            .pragma("temp_store", "memory")
            // 32 MiB page cache per connection (the default is 8 MiB).
            .pragma("cache_size", "-32768");
        let what = |e: &dyn std::fmt::Display| {
            StoreError::Open(format!(
                "cannot open SQLite database {}: {e}",
                path.display()
            ))
        };
        let max_bytes = options.sqlite_max_bytes;
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |c, _| Box::pin(limit_size(c, max_bytes)))
            .after_release(release_check)
            .connect_with(opts.clone())
            .await
            .map_err(|e| what(&e))?;
        sqlx::migrate!("migrations/sqlite")
            .run(&write)
            .await
            .map_err(|e| {
                StoreError::Open(format!(
                    "cannot migrate SQLite database {}: {e}",
                    path.display()
                ))
            })?;
        let read = SqlitePoolOptions::new()
            .max_connections(SQLITE_READERS)
            .after_release(release_check)
            .connect_with(opts)
            .await
            .map_err(|e| what(&e))?;
        Ok(Store {
            inner: Backend::Sqlite { write, read },
        })
    }

    async fn open_pg(url: &str) -> Result<Store, StoreError> {
        let shown = redact_url(url);
        let scrub = |msg: String| match url_password(url) {
            Some(pw) if !pw.is_empty() => msg.replace(pw, "***"),
            _ => msg,
        };
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(scrub(format!("bad PostgreSQL URL {shown}: {e}"))))?;
        let opts = opts.statement_cache_capacity(STATEMENT_CACHE);
        // One plain connection first: a wrong host, port or password fails
        // at once with the server's reason instead of after the pool's
        // retries until its acquire timeout.
        let probe = sqlx::PgConnection::connect_with(&opts)
            .await
            .map_err(|e| StoreError::Open(scrub(format!("cannot connect to {shown}: {e}"))))?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(PG_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .after_release(release_check)
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Open(scrub(format!("cannot connect to {shown}: {e}"))))?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Open(scrub(format!("cannot migrate {shown}: {e}"))))?;
        Ok(Store {
            inner: Backend::Postgres(pool),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.inner {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        match &self.inner {
            Backend::Sqlite { write, read } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    // ---------------------------------------------------------------- accounts

    /// The id of the account `name`, created if missing.
    pub async fn ensure_account(&self, name: &str) -> Result<i64, StoreError> {
        let name = non_empty("account name", name)?;
        self.write(async |c| {
            c.query(sql::ACCOUNT_INSERT).bind(name).execute().await?;
            let (id,): (i64,) = c.query(sql::ACCOUNT_ID).bind(name).fetch_one().await?;
            Ok(id)
        })
        .await
    }

    pub async fn account_by_name(&self, name: &str) -> Result<Option<AccountRow>, StoreError> {
        self.read(async |c| {
            let row: Option<(i64, String, Option<String>, Option<String>)> = c
                .query(sql::ACCOUNT_BY_NAME)
                .bind(name)
                .fetch_optional()
                .await?;
            Ok(row.map(|(id, name, email, webhook)| AccountRow {
                id,
                name,
                email,
                webhook,
            }))
        })
        .await
    }

    /// Sets (or clears, with `None`) the account's alert contacts.
    pub async fn set_account_contact(
        &self,
        name: &str,
        email: Option<&str>,
        webhook: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let n = c
                .query(sql::ACCOUNT_SET_CONTACT)
                .bind(name)
                .bind(email)
                .bind(webhook)
                .execute()
                .await?;
            touched(n, || format!("account {name:?}"))
        })
        .await
    }

    // ------------------------------------------------------------------- zones

    /// Creates missing zones and updates descriptions and parents; running it
    /// again with the same tree changes nothing. A parent must be in the list
    /// or already stored.
    pub async fn seed_zones(&self, zones: &[ZoneSeed]) -> Result<(), StoreError> {
        for z in zones {
            non_empty("zone name", &z.name)?;
        }
        self.write(async |c| {
            for z in zones {
                c.query(sql::ZONE_UPSERT)
                    .bind(&z.name)
                    .bind(&z.description)
                    .bind(z.name != ".")
                    .execute()
                    .await?;
            }
            for z in zones {
                let parent_id: Option<i64> = match &z.parent {
                    None => None,
                    Some(p) => {
                        let id: Option<(i64,)> =
                            c.query(sql::ZONE_ID).bind(p).fetch_optional().await?;
                        match id {
                            Some((id,)) => Some(id),
                            None => {
                                return Err(StoreError::Invalid(format!(
                                    "zone {:?}: unknown parent zone {p:?}",
                                    z.name
                                )));
                            }
                        }
                    }
                };
                c.query(sql::ZONE_SET_PARENT)
                    .bind(&z.name)
                    .bind(parent_id)
                    .execute()
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// Every zone, sorted by name, with its registered servers (not past
    /// their deletion date) and active ones (in DNS now).
    pub async fn zone_list(&self, now: i64) -> Result<Vec<ZoneSummary>, StoreError> {
        type ZoneTuple = (i64, String, Option<String>, String, bool);
        type MemberTuple = (i64, i64, f64, i64, Option<i64>, Option<bool>, Option<bool>);
        let (zones, members) = self
            .read(async |c| {
                let zones: Vec<ZoneTuple> = c.query(sql::ZONE_LIST).fetch_all().await?;
                let members: Vec<MemberTuple> = c.query(sql::ZONE_MEMBERS).fetch_all().await?;
                Ok((zones, members))
            })
            .await?;
        let mut counts: HashMap<i64, [i64; 4]> = HashMap::new();
        for (zone_id, ip_version, score, netspeed, deletion_on, in_dns, held) in members {
            if deletion_on.is_some_and(|d| d <= now) {
                continue;
            }
            // In DNS by score, or kept there by the zone guard.
            let stored = in_dns.map(|in_dns| ServerDns {
                server_id: 0,
                in_dns,
                held: held.unwrap_or(false),
                in_since: None,
                left_at: None,
            });
            let active =
                DnsMembership::of(score, netspeed, deletion_on, stored.as_ref(), now).in_dns;
            let e = counts.entry(zone_id).or_default();
            let base = if ip_version == 6 { 2 } else { 0 };
            e[base + 1] += 1;
            if active {
                e[base] += 1;
            }
        }
        Ok(zones
            .into_iter()
            .map(|(id, name, parent, description, dns)| {
                let [v4_active, v4_registered, v6_active, v6_registered] =
                    counts.get(&id).copied().unwrap_or_default();
                ZoneSummary {
                    name,
                    parent,
                    description,
                    dns,
                    v4_active,
                    v4_registered,
                    v6_active,
                    v6_registered,
                }
            })
            .collect())
    }

    // ----------------------------------------------------------------- servers

    /// Registers a server in the named zones and makes every non-deleted
    /// monitor of its IP version active for it. `Conflict` if the address
    /// exists, `Invalid` for an unknown zone or a negative netspeed.
    pub async fn add_server(&self, new: NewServer, now: i64) -> Result<ServerRow, StoreError> {
        if new.netspeed < 0 {
            return Err(StoreError::Invalid(format!(
                "netspeed {} must not be negative",
                new.netspeed
            )));
        }
        let ip = new.ip.to_canonical();
        let ip_text = ip.to_string();
        let version = ip_version(ip);
        self.write(async |c| {
            let mut zone_ids = Vec::with_capacity(new.zones.len());
            for z in &new.zones {
                let id: Option<(i64,)> = c.query(sql::ZONE_ID).bind(z).fetch_optional().await?;
                match id {
                    Some((id,)) => zone_ids.push(id),
                    None => return Err(StoreError::Invalid(format!("unknown zone {z:?}"))),
                }
            }
            let (id,): (i64,) = c
                .query(sql::SERVER_INSERT)
                .bind(&ip_text)
                .bind(version)
                .bind(new.account_id)
                .bind(new.netspeed)
                .bind(now)
                .fetch_one()
                .await
                .map_err(|e| {
                    constraint(
                        e,
                        || format!("server {ip_text} already exists"),
                        || format!("account {:?} does not exist", new.account_id),
                    )
                })?;
            for z in zone_ids {
                c.query(sql::SERVER_ZONE_INSERT)
                    .bind(id)
                    .bind(z)
                    .execute()
                    .await?;
            }
            c.query(sql::SERVER_SCORES_FOR_SERVER)
                .bind(id)
                .bind(version)
                .execute()
                .await?;
            let row: ServerTuple = c.query(sql::SERVER_BY_ID).bind(id).fetch_one().await?;
            let zones: Vec<(i64, String)> =
                c.query(sql::SERVER_ZONES_OF).bind(id).fetch_all().await?;
            server_row(row, zones.into_iter().map(|z| z.1).collect())
        })
        .await
    }

    pub async fn server_by_ip(&self, ip: IpAddr) -> Result<Option<ServerRow>, StoreError> {
        let ip_text = ip.to_canonical().to_string();
        self.read(async |c| {
            let row: Option<ServerTuple> = c
                .query(sql::SERVER_BY_IP)
                .bind(&ip_text)
                .fetch_optional()
                .await?;
            let Some(row) = row else { return Ok(None) };
            let zones: Vec<(i64, String)> = c
                .query(sql::SERVER_ZONES_OF)
                .bind(row.0)
                .fetch_all()
                .await?;
            server_row(row, zones.into_iter().map(|z| z.1).collect()).map(Some)
        })
        .await
    }

    pub async fn server_by_id(&self, id: i64) -> Result<Option<ServerRow>, StoreError> {
        self.read(async |c| {
            let row: Option<ServerTuple> =
                c.query(sql::SERVER_BY_ID).bind(id).fetch_optional().await?;
            let Some(row) = row else { return Ok(None) };
            let zones: Vec<(i64, String)> = c
                .query(sql::SERVER_ZONES_OF)
                .bind(row.0)
                .fetch_all()
                .await?;
            server_row(row, zones.into_iter().map(|z| z.1).collect()).map(Some)
        })
        .await
    }

    /// Every server (including those past their deletion date), by id.
    pub async fn list_servers(&self) -> Result<Vec<ServerRow>, StoreError> {
        let (rows, zones) = self
            .read(async |c| {
                let rows: Vec<ServerTuple> = c.query(sql::SERVER_ALL).fetch_all().await?;
                let zones: Vec<(i64, String)> = c.query(sql::SERVER_ZONES_ALL).fetch_all().await?;
                Ok((rows, zones))
            })
            .await?;
        let mut by_server: HashMap<i64, Vec<String>> = HashMap::new();
        for (sid, name) in zones {
            by_server.entry(sid).or_default().push(name);
        }
        rows.into_iter()
            .map(|r| {
                let z = by_server.remove(&r.0).unwrap_or_default();
                server_row(r, z)
            })
            .collect()
    }

    /// Sets the DNS weight in kbit/s (0: monitored, never in DNS).
    pub async fn set_netspeed(&self, ip: IpAddr, kbit: i64) -> Result<(), StoreError> {
        if kbit < 0 {
            return Err(StoreError::Invalid(format!(
                "netspeed {kbit} must not be negative"
            )));
        }
        let ip_text = ip.to_canonical().to_string();
        self.write(async |c| {
            let n = c
                .query(sql::SERVER_SET_NETSPEED)
                .bind(&ip_text)
                .bind(kbit)
                .execute()
                .await?;
            touched(n, || format!("server {ip_text}"))
        })
        .await
    }

    /// Schedules (unix seconds of the day, 00:00 UTC) or cancels deletion.
    pub async fn set_deletion(&self, ip: IpAddr, on: Option<i64>) -> Result<(), StoreError> {
        let ip_text = ip.to_canonical().to_string();
        self.write(async |c| {
            let n = c
                .query(sql::SERVER_SET_DELETION)
                .bind(&ip_text)
                .bind(on)
                .execute()
                .await?;
            touched(n, || format!("server {ip_text}"))
        })
        .await
    }

    // ---------------------------------------------------------------- monitors

    /// Registers a monitor, active for every server of its IP version.
    /// `Conflict` on a duplicate name or key hash.
    pub async fn add_monitor(&self, new: NewMonitor, now: i64) -> Result<MonitorRow, StoreError> {
        non_empty("monitor name", &new.name)?;
        non_empty("key hash", &new.key_hash)?;
        let ip = new.ip.to_canonical();
        let version = ip_version(ip);
        self.write(async |c| {
            let exists: Option<MonitorTuple> = c
                .query(sql::MONITOR_BY_NAME)
                .bind(&new.name)
                .fetch_optional()
                .await?;
            if exists.is_some() {
                return Err(StoreError::Conflict(format!(
                    "monitor {:?} already exists",
                    new.name
                )));
            }
            let (id,): (i64,) = c
                .query(sql::MONITOR_INSERT)
                .bind(&new.name)
                .bind(&new.location)
                .bind(ip.to_string())
                .bind(version)
                .bind(new.account_id)
                .bind(new.status.as_str())
                .bind(&new.key_hash)
                .bind(now)
                .fetch_one()
                .await
                .map_err(|e| {
                    constraint(
                        e,
                        || "monitor key already in use".to_string(),
                        || format!("account {:?} does not exist", new.account_id),
                    )
                })?;
            if new.status != MonitorGlobalStatus::Deleted {
                c.query(sql::SERVER_SCORES_FOR_MONITOR)
                    .bind(id)
                    .bind(version)
                    .execute()
                    .await?;
            }
            let row: MonitorTuple = c.query(sql::MONITOR_BY_ID).bind(id).fetch_one().await?;
            monitor_row(row)
        })
        .await
    }

    pub async fn monitor_by_key_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<MonitorRow>, StoreError> {
        self.read(async |c| {
            let row: Option<MonitorTuple> = c
                .query(sql::MONITOR_BY_KEY)
                .bind(key_hash)
                .fetch_optional()
                .await?;
            row.map(monitor_row).transpose()
        })
        .await
    }

    pub async fn monitor_by_name(&self, name: &str) -> Result<Option<MonitorRow>, StoreError> {
        self.read(async |c| {
            let row: Option<MonitorTuple> = c
                .query(sql::MONITOR_BY_NAME)
                .bind(name)
                .fetch_optional()
                .await?;
            row.map(monitor_row).transpose()
        })
        .await
    }

    pub async fn monitor_by_id(&self, id: i64) -> Result<Option<MonitorRow>, StoreError> {
        self.read(async |c| {
            let row: Option<MonitorTuple> = c
                .query(sql::MONITOR_BY_ID)
                .bind(id)
                .fetch_optional()
                .await?;
            row.map(monitor_row).transpose()
        })
        .await
    }

    /// Every monitor (deleted ones too), by id.
    pub async fn list_monitors(&self) -> Result<Vec<MonitorRow>, StoreError> {
        self.read(async |c| {
            let rows: Vec<MonitorTuple> = c.query(sql::MONITOR_ALL).fetch_all().await?;
            rows.into_iter().map(monitor_row).collect()
        })
        .await
    }

    /// Changes a monitor's global status. A monitor brought back from
    /// `deleted` gets its missing per-server rows.
    pub async fn set_monitor_status(
        &self,
        name: &str,
        status: MonitorGlobalStatus,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let row: Option<(i64, i64)> = c
                .query(sql::MONITOR_SET_STATUS)
                .bind(name)
                .bind(status.as_str())
                .fetch_optional()
                .await?;
            let Some((id, version)) = row else {
                return Err(StoreError::NotFound(format!("monitor {name:?}")));
            };
            if status != MonitorGlobalStatus::Deleted {
                c.query(sql::SERVER_SCORES_FOR_MONITOR)
                    .bind(id)
                    .bind(version)
                    .execute()
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// Sets or clears the monitor's configuration (JSON text).
    pub async fn set_monitor_config(
        &self,
        name: &str,
        config: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some(cfg) = config {
            serde_json::from_str::<serde_json::Value>(cfg)
                .map_err(|e| StoreError::Invalid(format!("monitor config is not JSON: {e}")))?;
        }
        self.write(async |c| {
            let n = c
                .query(sql::MONITOR_SET_CONFIG)
                .bind(name)
                .bind(config)
                .execute()
                .await?;
            touched(n, || format!("monitor {name:?}"))
        })
        .await
    }

    /// Replaces the monitor's key hash: the old key stops working at once.
    /// `NotFound` for an unknown name, `Conflict` if another monitor has
    /// this hash.
    pub async fn set_monitor_key_hash(&self, name: &str, key_hash: &str) -> Result<(), StoreError> {
        self.write(async |c| {
            let n = c
                .query(sql::MONITOR_SET_KEY)
                .bind(name)
                .bind(key_hash)
                .execute()
                .await
                .map_err(|e| {
                    constraint(
                        e,
                        || "another monitor has this key".into(),
                        || "monitor key".into(),
                    )
                })?;
            touched(n, || format!("monitor {name:?}"))
        })
        .await
    }

    /// Records that the monitor was seen now (and its client version).
    pub async fn touch_monitor(
        &self,
        id: i64,
        now: i64,
        client_version: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let n = c
                .query(sql::MONITOR_TOUCH)
                .bind(id)
                .bind(now)
                .bind(client_version)
                .execute()
                .await?;
            touched(n, || format!("monitor id {id}"))
        })
        .await
    }

    /// Sets one monitor's per-server status (the selector's decision).
    pub async fn set_server_score_status(
        &self,
        server_id: i64,
        monitor_id: i64,
        status: MonitorStatus,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let n = c
                .query(sql::SERVER_SCORE_SET_STATUS)
                .bind(server_id)
                .bind(monitor_id)
                .bind(status.as_str())
                .execute()
                .await?;
            touched(n, || {
                format!("server id {server_id} / monitor id {monitor_id}")
            })
        })
        .await
    }

    // -------------------------------------------------------------------- work

    /// Up to `limit` servers due for this monitor, longest-waiting first,
    /// and marks them queued now. Concurrent callers never get the same
    /// server: SQLite serialises writers, PostgreSQL skips locked rows.
    pub async fn take_work(
        &self,
        monitor_id: i64,
        intervals: WorkIntervals,
        limit: i64,
        now: i64,
    ) -> Result<Vec<WorkItem>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let rows = self
            .write(async |c| due_work(c, monitor_id, intervals, limit, now).await)
            .await?;
        rows.into_iter().map(Due::item).collect()
    }

    /// `take_work` and `create_batch` in one transaction: the due servers
    /// and the batch that issues them. A batch is created even when no
    /// work is due (then empty).
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

    /// Remembers which servers were issued to the monitor; returns the
    /// batch's sequence number (global, strictly increasing). `NotFound`
    /// for an unknown monitor, `Invalid` for an unknown server.
    pub async fn create_batch(
        &self,
        monitor_id: i64,
        server_ids: &[i64],
        now: i64,
    ) -> Result<i64, StoreError> {
        self.write(async |c| {
            let found: HashMap<i64, String> = bulk::server_ips(c, server_ids)
                .await?
                .into_iter()
                .map(|d| (d.server_id, d.ip))
                .collect();
            let mut rows = Vec::with_capacity(server_ids.len());
            for id in server_ids {
                match found.get(id) {
                    Some(ip) => rows.push((*id, ip.as_str())),
                    None => return Err(StoreError::Invalid(format!("unknown server id {id}"))),
                }
            }
            let (seq,): (i64,) = c
                .query(sql::BATCH_INSERT)
                .bind(monitor_id)
                .bind(now)
                .bind(batch_json(rows.iter().copied()))
                .fetch_one()
                .await
                .map_err(|e| {
                    if is_fk_violation(&e) {
                        StoreError::NotFound(format!("monitor id {monitor_id}"))
                    } else {
                        StoreError::from(e)
                    }
                })?;
            Ok(seq)
        })
        .await
    }

    pub async fn batch(&self, seq: i64) -> Result<Option<BatchRow>, StoreError> {
        let row = self
            .read(async |c| {
                let row: Option<(i64, i64, i64, Option<i64>, String)> =
                    c.query(sql::BATCH_GET).bind(seq).fetch_optional().await?;
                Ok(row)
            })
            .await?;
        row.map(|(seq, monitor_id, created, submitted_at, json)| {
            let pairs: Vec<(i64, String)> = serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("batch {seq} server list: {e}")))?;
            let servers = pairs
                .into_iter()
                .map(|(id, ip)| Ok((id, parse_ip(&ip)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(BatchRow {
                seq,
                monitor_id,
                created,
                submitted: submitted_at.is_some(),
                server_ids: servers.iter().map(|s| s.0).collect(),
                servers,
            })
        })
        .transpose()
    }

    /// Deletes batches created before `created_before` (submitted or not);
    /// returns how many. A deleted batch can no longer be submitted
    /// (`NotFound`). Replay protection does not depend on them: it rests
    /// on `monitors.last_submit_batch`. The running service prunes them
    /// with [`housekeep`](Self::housekeep).
    pub async fn prune_batches(&self, created_before: i64) -> Result<u64, StoreError> {
        Ok(self
            .housekeep(created_before, None, HOUSEKEEPING_CHUNK)
            .await?
            .batches)
    }

    // ----------------------------------------------------------------- results

    /// Scores and stores one submitted batch in one transaction: per result
    /// the step, the monitor's new score and a log row; per touched server
    /// the recomputed aggregate (and its log row when it is worth one). A
    /// batch already submitted changes nothing (`duplicate`). `NotFound` for
    /// an unknown batch, `Invalid` (nothing stored) when the batch is
    /// another monitor's or a result names an unknown server, `Conflict`
    /// (nothing stored) when the monitor already submitted a newer batch.
    pub async fn submit_results(
        &self,
        monitor_id: i64,
        batch_seq: i64,
        results: &[ResultIn],
        now: i64,
    ) -> Result<SubmitOutcome, StoreError> {
        let mut touched: Vec<i64> = results.iter().map(|r| r.server_id).collect();
        touched.sort_unstable();
        touched.dedup();
        self.write(async |c| {
            let batch: Option<(i64, Option<i64>)> = c
                .query(sql::BATCH_LOCK)
                .bind(batch_seq)
                .fetch_optional()
                .await?;
            let Some((owner, submitted_at)) = batch else {
                return Err(StoreError::NotFound(format!("batch {batch_seq}")));
            };
            if owner != monitor_id {
                return Err(StoreError::Invalid(format!(
                    "batch {batch_seq} does not belong to monitor {monitor_id}"
                )));
            }
            if submitted_at.is_some() {
                return Ok(SubmitOutcome {
                    accepted: 0,
                    duplicate: true,
                    transitions: Vec::new(),
                });
            }
            let last: Option<(Option<i64>,)> = c
                .query(sql::MONITOR_LAST_BATCH_LOCK)
                .bind(monitor_id)
                .fetch_optional()
                .await?;
            if let Some((Some(last),)) = last
                && batch_seq < last
            {
                return Err(StoreError::Conflict(format!(
                    "batch {batch_seq} is older than batch {last}, already submitted"
                )));
            }
            let mut writes = scoring::submission::Writes::default();
            if !touched.is_empty() {
                let (servers, scores) = bulk::submit_state(c, &touched, monitor_id).await?;
                let mut pairs = submit::pairs(scores)?;
                let need = scoring::submission::needs_candidates(monitor_id, &touched, &pairs, now);
                if !need.is_empty() {
                    let since = now - scoring::WINDOW_WIDEST_S;
                    let candidates = bulk::submit_candidates(c, &need, monitor_id, since).await?;
                    pairs.extend(submit::pairs(candidates)?);
                }
                let before = scoring::submission::Before {
                    servers: submit::servers(servers),
                    pairs,
                    windows: submit::windows(bulk::own_windows(c, monitor_id, &touched).await?),
                };
                writes = scoring::submission::decide(monitor_id, results, &touched, before, now)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                bulk::upsert_scores(c, monitor_id, &writes.scores).await?;
                bulk::insert_logs(c, &writes.logs).await?;
                bulk::set_server_scores(c, now, &writes.aggregates).await?;
            }
            c.query(sql::BATCH_MARK)
                .bind(batch_seq)
                .bind(now)
                .execute()
                .await?;
            c.query(sql::MONITOR_SET_LAST_BATCH)
                .bind(monitor_id)
                .bind(batch_seq)
                .execute()
                .await?;
            Ok(SubmitOutcome {
                accepted: writes.accepted,
                duplicate: false,
                transitions: writes.transitions,
            })
        })
        .await
    }

    // -------------------------------------------------------------------- data

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
        type Tuple = (
            i64,
            String,
            String,
            String,
            String,
            f64,
            Option<i64>,
            Option<i64>,
        );
        let rows = self
            .read(async |c| {
                let rows: Vec<Tuple> = c
                    .query(sql::SERVER_MONITORS)
                    .bind(server_id)
                    .fetch_all()
                    .await?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(
                |(monitor_id, name, location, mstatus, status, score, score_ts, rtt)| {
                    Ok(ServerMonitorRow {
                        monitor_id,
                        name,
                        location,
                        monitor_status: parse_global(&mstatus)?,
                        status: parse_status(&status)?,
                        score,
                        score_ts,
                        rtt: rtt.map(us_to_s),
                    })
                },
            )
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
    /// from the id range (PostgreSQL), see `sql::*::METRIC_COUNTS`.
    pub async fn metric_counts(&self) -> Result<(i64, i64, i64), StoreError> {
        self.read(async |c| {
            let r: (i64, i64, i64) = c.query(sql::METRIC_COUNTS).fetch_one().await?;
            Ok(r)
        })
        .await
    }
}

type ServerTuple = (
    i64,
    String,
    i64,
    Option<i64>,
    i64,
    f64,
    Option<i64>,
    Option<i64>,
    i64,
);

fn server_row(t: ServerTuple, zones: Vec<String>) -> Result<ServerRow, StoreError> {
    let (id, ip, ip_version, account_id, netspeed, score, score_ts, deletion_on, created_on) = t;
    Ok(ServerRow {
        id,
        ip: parse_ip(&ip)?,
        ip_version: ip_version as u8,
        account_id,
        netspeed,
        score,
        score_ts,
        deletion_on,
        created_on,
        zones,
    })
}

type MonitorTuple = (
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
);

fn monitor_row(t: MonitorTuple) -> Result<MonitorRow, StoreError> {
    let (
        id,
        name,
        location,
        ip,
        ip_version,
        account_id,
        status,
        key_hash,
        config,
        last_seen,
        last_submit_batch,
        client_version,
        created_on,
    ) = t;
    Ok(MonitorRow {
        id,
        name,
        location,
        ip: parse_ip(&ip)?,
        ip_version: ip_version as u8,
        account_id,
        status: parse_global(&status)?,
        key_hash,
        config,
        last_seen,
        last_submit_batch,
        client_version,
        created_on,
    })
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

/// A batch's server list as stored: JSON `[[id, "ip"], …]`.
fn batch_json<'a>(rows: impl Iterator<Item = (i64, &'a str)>) -> String {
    serde_json::to_string(&rows.collect::<Vec<_>>()).expect("ids and strings always serialize")
}

/// The due work of one work call: checks the monitor, then takes up to
/// `limit` due servers (none for `limit` ≤ 0) and marks them queued.
async fn due_work(
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
    fn item(self) -> Result<WorkItem, StoreError> {
        Ok(WorkItem {
            server_id: self.server_id,
            ip: parse_ip(&self.ip)?,
        })
    }
}

fn ip_version(ip: IpAddr) -> i64 {
    if ip.is_ipv4() { 4 } else { 6 }
}

fn parse_ip(s: &str) -> Result<IpAddr, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("stored address {s:?} is not an IP")))
}

fn parse_global(s: &str) -> Result<MonitorGlobalStatus, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("stored monitor status {s:?}")))
}

fn parse_status(s: &str) -> Result<MonitorStatus, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("stored server score status {s:?}")))
}

fn us_to_s(us: i64) -> f64 {
    us as f64 / 1e6
}

fn non_empty<'a>(what: &str, s: &'a str) -> Result<&'a str, StoreError> {
    if s.trim().is_empty() {
        Err(StoreError::Invalid(format!("{what} must not be empty")))
    } else {
        Ok(s)
    }
}

/// `NotFound(what())` when a write touched no row.
fn touched(rows: u64, what: impl FnOnce() -> String) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::NotFound(what()))
    } else {
        Ok(())
    }
}

fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

/// Unique violations become `Conflict`, foreign-key violations `Invalid`.
fn constraint(
    e: sqlx::Error,
    unique: impl FnOnce() -> String,
    foreign: impl FnOnce() -> String,
) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(unique()),
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::Invalid(foreign()),
        _ => StoreError::from(e),
    }
}

/// The URL with its password replaced by `***`, for messages.
fn redact_url(url: &str) -> String {
    match url_password_range(url) {
        Some((a, b)) => format!("{}***{}", &url[..a], &url[b..]),
        None => url.to_string(),
    }
}

fn url_password(url: &str) -> Option<&str> {
    url_password_range(url).map(|(a, b)| &url[a..b])
}

/// Byte range of the password in `scheme://user:password@host/…`.
fn url_password_range(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let end_auth = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..end_auth].rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some((start + colon + 1, start + at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@host:5432/db"),
            "postgres://u:***@host:5432/db"
        );
        assert_eq!(redact_url("postgres://u@host/db"), "postgres://u@host/db");
        assert_eq!(
            redact_url("postgres://host/db?x=a@b"),
            "postgres://host/db?x=a@b"
        );
        assert_eq!(url_password("postgres://u:p@ss@h/d"), Some("p@ss"));
    }
}
