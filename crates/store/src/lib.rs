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
mod group_commit;
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
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use conn::Conn;

/// Handle over the database; clones share the connection pools.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Backend,
    /// PostgreSQL's submissions wait here to be committed together.
    groups: std::sync::Arc<group_commit::Groups>,
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

mod audit;
pub use audit::{AuditEntry, AuditRow};
mod accounts;
pub use accounts::{AccountInfo, MemberRow, MembershipRow, Role, UserRow, normalize_email};
mod links;
pub use links::{LinkInfo, LinkPurpose, NewLink, SignedIn, SignupPolicy};
mod sessions;
pub use sessions::{SESSION_TOUCH_S, SessionLimits, SessionRow};
mod tokens;
pub use tokens::{TOKEN_NAME_MAX, TOKEN_TOUCH_S, TokenAuth, TokenRow};
mod admin_rows;
pub use admin_rows::{AccountHit, SEARCH_LIMIT, ServerHit};
mod data;
mod dns_counts;
pub use dns_counts::{
    DNS_COUNT_BUCKET_S, DnsCountryCount, DnsServerCounts, DnsShareRow, dns_count_hour,
};
mod export;
pub use export::{ExportKey, ExportLogRow};
mod monitors;
mod registry;
pub use registry::ACCOUNT_NAME_MAX;
#[doc(hidden)]
pub mod testing;
mod web;
mod work;
pub use web::ScoreCrossing;
mod zone_history;
pub use zone_history::ZoneCountRow;
mod vendors;
pub use vendors::{VENDOR_NOTE_MAX, VendorRow};
mod monitor_clock;
pub use monitor_clock::MonitorClock;
mod monitor_view;
pub use monitor_view::{BlindSpot, MonitorTraceroute};
mod guard;
pub use guard::{
    DnsMembership, GUARD_WINDOW_S, GuardDetail, GuardEventRow, GuardRun, HeldServer, MonitorSaw,
    SEEN_GOOD_WITHIN_S, ServerDns, ZoneGuardStat,
};
mod backup;
pub use backup::BackupInfo;
mod partitions;
pub use partitions::{
    DDL_LOCK_TIMEOUT, LOG_MONTHS_AHEAD, LOG_TABLE, PartitionState, PartitionedTable,
    SAMPLE_DAYS_AHEAD, SAMPLES_TABLE,
};
mod prune;
mod replay;
pub use replay::{POLICY_REPORT_MAX_BYTES, POLICY_REPORTS_LISTED, PolicyReportRow, ReplayServer};
mod samples;
pub use prune::{BATCH_KEEP_S, HOUSEKEEPING_CHUNK, Housekeeping};
pub use samples::{
    CheckSamples, ERRORS as SAMPLE_ERRORS, MAX_SAMPLES, SampleRow, decode as decode_samples,
    encode as encode_samples,
};
mod selector_rows;
pub use selector_rows::{SelectorChange, SelectorInput, SelectorLogRow, SelectorPair};
mod traceroute_rows;
pub use traceroute_rows::{
    TRACEROUTE_MAX_PENDING, TRACEROUTE_REQUEST_INTERVAL_S, TRACEROUTE_RETAKE_S, TRACEROUTE_STALE_S,
    TracerouteHop, TracerouteIn, TracerouteRow,
};
mod operator_servers;
mod registrations;
mod verification;
pub use operator_servers::{AddCheck, AddLimits, Added, OperatorAdd};
pub use registrations::{Acceptance, Collected, NewRegistration, Registered, RegistrationRow};
mod live_checks;
pub use live_checks::{
    LIVE_CHECK_KEEP_S, LIVE_CHECK_MONITORS, LIVE_CHECK_SEEN_S, LIVE_CHECK_TTL_S, LiveCheckAnswer,
    LiveCheckMonitor, LiveCheckRow,
};
mod leases;
pub use leases::{INSTANCE_FORGET_S, InstanceRow, LeaseRow, LeaseTaken};
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
        leases::SQLITE_MIGRATIONS.run(&write).await.map_err(|e| {
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
            groups: Default::default(),
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
        leases::PG_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|e| StoreError::Open(scrub(format!("cannot migrate {shown}: {e}"))))?;
        Ok(Store {
            inner: Backend::Postgres(pool),
            groups: Default::default(),
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

    // ----------------------------------------------------------------- results

    /// Scores and stores one submitted batch atomically: per result
    /// the step, the monitor's new score and a log row; per touched server
    /// the recomputed aggregate (and its log row when it is worth one). A
    /// batch already submitted changes nothing (`duplicate`). `NotFound` for
    /// an unknown batch, `Invalid` (nothing stored) when the batch is
    /// another monitor's or a result names an unknown server, `Conflict`
    /// (nothing stored) when the monitor already submitted a newer batch.
    /// On PostgreSQL the submissions waiting at the same moment share one
    /// transaction, each with its own outcome (see `group_commit.rs`); the
    /// call returns after the commit that holds its rows.
    pub async fn submit_results(
        &self,
        monitor_id: i64,
        batch_seq: i64,
        results: &[ResultIn],
        now: i64,
    ) -> Result<SubmitOutcome, StoreError> {
        self.submit_results_with_samples(monitor_id, batch_seq, results, &[], now)
            .await
    }

    /// [`submit_results`](Self::submit_results) that also stores every
    /// sample of each check, in the same transaction: `samples[i]` goes
    /// with `results[i]` (missing or empty: none, as from an older agent).
    pub async fn submit_results_with_samples(
        &self,
        monitor_id: i64,
        batch_seq: i64,
        results: &[ResultIn],
        samples: &[Vec<SampleRow>],
        now: i64,
    ) -> Result<SubmitOutcome, StoreError> {
        // Encoded (and checked) before the transaction: a bad sample
        // stores nothing and holds no lock.
        let job = submit::Job::new(monitor_id, batch_seq, results, samples, now)?;
        match &self.inner {
            Backend::Postgres(pool) => self.groups.submit(self, pool, job).await,
            Backend::Sqlite { .. } => self.write(async |c| submit::single(c, &job).await).await,
        }
    }
}

fn ip_version(ip: IpAddr) -> i64 {
    if ip.is_ipv4() { 4 } else { 6 }
}

fn parse_ip(s: &str) -> Result<IpAddr, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("stored address {s:?} is not an IP")))
}

fn parse_global(s: &str) -> Result<GlobalStatus, StoreError> {
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
