//! Job leases, the `serve` instances seen and the secrets instances share
//! (issue 16: several `serve` processes on one database).
//!
//! A lease is one row per job. Taking and renewing are the same single
//! upsert, atomic on both backends: it writes the row only while the job
//! is free, its lease has expired or the caller already holds it, and
//! returns the holder only when that write happened. Every time here is
//! the database's own clock (unix seconds), never the caller's: instances
//! with skewed clocks still agree on who holds what. (This is the one
//! place the store reads a clock, and it is the database's.)

use crate::conn::Sql;
use crate::{Store, StoreError};

/// The database's clock in whole unix seconds, as SQL text.
macro_rules! db_now {
    (sqlite) => {
        "unixepoch()"
    };
    (pg) => {
        "FLOOR(EXTRACT(EPOCH FROM clock_timestamp()))::BIGINT"
    };
}

/// The take-or-renew upsert for the dialect whose `db_now!` arm is `$d`.
macro_rules! take_sql {
    ($d:tt) => {
        concat!(
            "INSERT INTO job_leases (job, holder, acquired_on, renewed_on, expires_on) \
             VALUES ($1, $2, ",
            db_now!($d),
            ", ",
            db_now!($d),
            ", ",
            db_now!($d),
            " + $3) \
             ON CONFLICT (job) DO UPDATE SET \
             acquired_on = CASE WHEN job_leases.holder = excluded.holder \
                 THEN job_leases.acquired_on ELSE excluded.acquired_on END, \
             holder = excluded.holder, renewed_on = excluded.renewed_on, \
             expires_on = excluded.expires_on \
             WHERE job_leases.holder = excluded.holder \
                OR job_leases.expires_on < excluded.renewed_on \
             RETURNING holder, acquired_on, renewed_on, expires_on"
        )
    };
}

const TAKE: Sql = Sql {
    sqlite: take_sql!(sqlite),
    pg: take_sql!(pg),
};

const RELEASE: &str = "DELETE FROM job_leases WHERE job = $1 AND holder = $2";

const LIST: Sql = Sql {
    sqlite: concat!(
        "SELECT job, holder, acquired_on, renewed_on, expires_on, ",
        db_now!(sqlite),
        " AS db_now FROM job_leases ORDER BY job"
    ),
    pg: concat!(
        "SELECT job, holder, acquired_on, renewed_on, expires_on, ",
        db_now!(pg),
        " AS db_now FROM job_leases ORDER BY job"
    ),
};

macro_rules! heartbeat_sql {
    ($d:tt) => {
        concat!(
            "INSERT INTO serve_instances (name, started_on, last_seen, version, draining) \
             VALUES ($1, $2, ",
            db_now!($d),
            ", $3, $4) \
             ON CONFLICT (name) DO UPDATE SET started_on = excluded.started_on, \
             last_seen = excluded.last_seen, version = excluded.version, \
             draining = excluded.draining"
        )
    };
}

const HEARTBEAT: Sql = Sql {
    sqlite: heartbeat_sql!(sqlite),
    pg: heartbeat_sql!(pg),
};

/// Instances not seen for this long are forgotten.
pub const INSTANCE_FORGET_S: i64 = 7 * 86_400;

const FORGET: Sql = Sql {
    sqlite: concat!(
        "DELETE FROM serve_instances WHERE last_seen < ",
        db_now!(sqlite),
        " - $1"
    ),
    pg: concat!(
        "DELETE FROM serve_instances WHERE last_seen < ",
        db_now!(pg),
        " - $1"
    ),
};

const INSTANCES: Sql = Sql {
    sqlite: concat!(
        "SELECT name, started_on, last_seen, version, draining, ",
        db_now!(sqlite),
        " AS db_now FROM serve_instances ORDER BY last_seen DESC, name"
    ),
    pg: concat!(
        "SELECT name, started_on, last_seen, version, draining, ",
        db_now!(pg),
        " AS db_now FROM serve_instances ORDER BY last_seen DESC, name"
    ),
};

const SECRET_INSERT: Sql = Sql {
    sqlite: concat!(
        "INSERT INTO service_secrets (name, value, created_on) VALUES ($1, $2, ",
        db_now!(sqlite),
        ") ON CONFLICT (name) DO NOTHING"
    ),
    pg: concat!(
        "INSERT INTO service_secrets (name, value, created_on) VALUES ($1, $2, ",
        db_now!(pg),
        ") ON CONFLICT (name) DO NOTHING"
    ),
};

const SECRET_READ: &str = "SELECT value FROM service_secrets WHERE name = $1";

/// A lease as the take returned it (database time).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseTaken {
    pub holder: String,
    /// Since when this holder has held it without a break.
    pub acquired_on: i64,
    pub renewed_on: i64,
    pub expires_on: i64,
}

/// One lease row for the status page, with the database's time now.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseRow {
    pub job: String,
    pub holder: String,
    pub acquired_on: i64,
    pub renewed_on: i64,
    pub expires_on: i64,
    pub db_now: i64,
}

/// One `serve` instance as it last wrote itself, with the database's time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InstanceRow {
    pub name: String,
    pub started_on: i64,
    pub last_seen: i64,
    pub version: String,
    /// 1 once it began to shut down.
    pub draining: i64,
    pub db_now: i64,
}

impl Store {
    /// Take `job`'s lease for `holder`, or renew it, for `ttl_s` seconds
    /// of database time: one atomic statement that succeeds only while the
    /// job is free, its lease has expired or `holder` holds it already.
    /// `None`: another holder's lease is still running.
    pub async fn take_job_lease(
        &self,
        job: &str,
        holder: &str,
        ttl_s: i64,
    ) -> Result<Option<LeaseTaken>, StoreError> {
        if job.is_empty() || holder.is_empty() || ttl_s < 1 {
            return Err(StoreError::Invalid(
                "a lease needs a job, a holder and a ttl of at least 1 s".into(),
            ));
        }
        self.write(async |c| {
            Ok(c.query(TAKE)
                .bind(job)
                .bind(holder)
                .bind(ttl_s)
                .fetch_optional()
                .await?)
        })
        .await
    }

    /// Give `job`'s lease back if `holder` holds it (so another instance
    /// takes it at once instead of after the expiry); true if it did.
    pub async fn release_job_lease(&self, job: &str, holder: &str) -> Result<bool, StoreError> {
        self.write(async |c| Ok(c.query(RELEASE).bind(job).bind(holder).execute().await? > 0))
            .await
    }

    /// Every lease row (expired ones too), by job.
    pub async fn job_leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        self.read(async |c| Ok(c.query(LIST).fetch_all().await?))
            .await
    }

    /// Write `name`'s row of the instances seen (last seen: the database's
    /// now) and forget instances not seen for [`INSTANCE_FORGET_S`].
    pub async fn instance_heartbeat(
        &self,
        name: &str,
        started_on: i64,
        version: &str,
        draining: bool,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            c.query(HEARTBEAT)
                .bind(name)
                .bind(started_on)
                .bind(version)
                .bind(i64::from(draining))
                .execute()
                .await?;
            c.query(FORGET).bind(INSTANCE_FORGET_S).execute().await?;
            Ok(())
        })
        .await
    }

    /// The instances seen, the most recent first.
    pub async fn instances(&self) -> Result<Vec<InstanceRow>, StoreError> {
        self.read(async |c| Ok(c.query(INSTANCES).fetch_all().await?))
            .await
    }

    /// The secret named `name` every instance shares: `candidate` if no
    /// instance stored one yet (the first writer wins, also in a race),
    /// else the stored one.
    pub async fn shared_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.write(async |c| {
            c.query(SECRET_INSERT)
                .bind(name)
                .bind(candidate)
                .execute()
                .await?;
            let (value,): (Vec<u8>,) = c.query(SECRET_READ).bind(name).fetch_one().await?;
            Ok(value)
        })
        .await
    }
}

/// The migrations this build embeds, per backend (run by `Store::open`,
/// compared by [`Store::check_ready`]).
pub(crate) static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
pub(crate) static PG_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const APPLIED: &str = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";

impl Store {
    /// For `/readyz`: the database answers, and every migration of this
    /// build is applied (an instance of an older build still starting, or
    /// a database restored from before an upgrade, is not ready). `Err`
    /// names what is missing.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        let embedded = match self.backend_name() {
            "sqlite" => &SQLITE_MIGRATIONS,
            _ => &PG_MIGRATIONS,
        };
        let applied: Vec<(i64,)> = self
            .read(async |c| Ok(c.query(APPLIED).fetch_all().await?))
            .await?;
        let applied: std::collections::HashSet<i64> = applied.into_iter().map(|(v,)| v).collect();
        match embedded.iter().find(|m| !applied.contains(&m.version)) {
            Some(m) => Err(StoreError::Invalid(format!(
                "migration {} ({}) is not applied",
                m.version, m.description
            ))),
            None => Ok(()),
        }
    }
}
