//! Throw-away databases for the store tests: a SQLite file in a temporary
//! directory, or a fresh PostgreSQL database (`pw_test_<random>`) created on
//! the server named by `POOLWATCH_TEST_PG_URL` and dropped afterwards.

#![allow(dead_code)]

use std::path::Path;
use store::Store;
use tempfile::TempDir;

pub const PG_ENV: &str = "POOLWATCH_TEST_PG_URL";

/// An active monitor named `name` sending from `addr`, with a key hash
/// unique to the name.
pub fn monitor(name: &str, addr: &str) -> store::NewMonitor {
    store::NewMonitor {
        name: name.into(),
        location: "Test Lab".into(),
        ip: addr.parse().unwrap(),
        account_id: None,
        status: store::GlobalStatus::Active,
        key_hash: format!("{:0>64}", name.len().to_string() + name),
    }
}

/// The global zone `@`, the one every store test's servers sit in.
pub async fn seed_global(s: &Store) {
    s.seed_zones(&[store::ZoneSeed {
        name: "@".into(),
        parent: None,
        description: "Global".into(),
    }])
    .await
    .unwrap();
}

/// A good result: 1 ms off, 12.5 ms round trip, stratum 2.
pub fn good_result(server_id: i64, ts: i64) -> store::ResultIn {
    store::ResultIn {
        server_id,
        ts,
        offset: Some(0.001),
        rtt: Some(0.0125),
        stratum: Some(2),
        leap: Some(0),
        refid: Some("GPS".into()),
        error: None,
        no_response: false,
    }
}

/// Adds a server at `ip` in `zone` (netspeed 1000, no account) at `now`;
/// its id.
pub async fn add_server_in(s: &Store, ip: &str, zone: &str, now: i64) -> i64 {
    let row = s
        .add_server(
            store::NewServer {
                ip: ip.parse().expect("a test address"),
                netspeed: 1000,
                account_id: None,
                zones: vec![zone.into()],
            },
            now,
        )
        .await
        .unwrap();
    row.id
}

/// A store under test plus what is needed to reopen it.
pub struct TestDb {
    pub store: Store,
    /// `None` for the default SQLite file under `dir`.
    pub url: Option<String>,
    pub dir: TempDir,
    _drop: Option<PgDropGuard>,
}

impl TestDb {
    /// Runs raw SQL (one or more statements) on the test database behind
    /// the store's back: scores or rows set by hand instead of through
    /// hundreds of results.
    pub async fn exec(&self, sql: &str) {
        let q = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()));
        match &self.url {
            Some(url) => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                    .await
                    .unwrap();
                q.execute(&mut c).await.unwrap();
            }
            None => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.dir.path().join("poolwatch.db"))
                    .busy_timeout(std::time::Duration::from_secs(10));
                let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&opts)
                    .await
                    .unwrap();
                q.execute(&mut c).await.unwrap();
            }
        }
    }

    /// One integer from raw SQL on the test database (sizes, counts).
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        let q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()));
        match &self.url {
            Some(url) => {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
                    .await
                    .unwrap();
                q.fetch_one(&mut c).await.unwrap()
            }
            None => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.dir.path().join("poolwatch.db"))
                    .busy_timeout(std::time::Duration::from_secs(10));
                let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&opts)
                    .await
                    .unwrap();
                let q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()));
                q.fetch_one(&mut c).await.unwrap()
            }
        }
    }

    /// A store opened on an [`empty_postgres`] database, dropped with it.
    pub fn wrap(store: Store, db: EmptyPg, dir: TempDir) -> TestDb {
        TestDb {
            store,
            url: Some(db.url),
            dir,
            _drop: Some(db.drop),
        }
    }

    /// Opens the same database again (running migrations again).
    pub async fn reopen(&self) -> Store {
        Store::open(self.url.as_deref(), self.dir.path())
            .await
            .expect("reopen")
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(None, dir.path()).await.expect("open sqlite");
    TestDb {
        store,
        url: None,
        dir,
        _drop: None,
    }
}

/// `None` (after saying so) when no PostgreSQL is configured; under CI a
/// missing configuration is a failure, so PostgreSQL is never skipped there.
pub async fn postgres() -> Option<TestDb> {
    let EmptyPg { url, drop } = empty_postgres().await?;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(Some(&url), dir.path())
        .await
        .expect("open postgres");
    Some(TestDb {
        store,
        url: Some(url),
        dir,
        _drop: Some(drop),
    })
}

/// A fresh PostgreSQL database with no tables (dropped with the value).
pub struct EmptyPg {
    pub url: String,
    drop: PgDropGuard,
}

/// A new empty database (`pw_test_<random>`), before any migration; `None`
/// as [`postgres`] says.
pub async fn empty_postgres() -> Option<EmptyPg> {
    let admin = match std::env::var(PG_ENV) {
        Ok(u) if !u.is_empty() => u,
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("{PG_ENV} must be set when CI is set: PostgreSQL tests may not be skipped");
            }
            eprintln!("skipped: {PG_ENV} not set");
            return None;
        }
    };
    let name = format!("pw_test_{:016x}", rand::random::<u64>());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect to POOLWATCH_TEST_PG_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = sqlx::Connection::close(conn).await;
    let url = with_database(&admin, &name);
    Some(EmptyPg {
        url,
        drop: PgDropGuard { admin, name },
    })
}

/// The admin URL with its database name replaced.
fn with_database(url: &str, db: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{host_part}/{db}{query}")
}

/// Drops the test database, even when the test panicked.
struct PgDropGuard {
    admin: String,
    name: String,
}

impl Drop for PgDropGuard {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // A fresh thread and runtime: Drop may run inside a runtime that is
        // shutting down (or on a panic path), where we cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Instantiates each named `async fn NAME(db: &TestDb)` once per backend:
/// `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::common::sqlite().await;
                    super::$name(&db).await;
                    db.store.close().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(db) = $crate::common::postgres().await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.store.close().await;
                }
            }
        )*
    };
}
