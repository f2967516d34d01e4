//! An online copy of the SQLite database (`poolwatch admin backup`), taken
//! while `serve` keeps running. PostgreSQL has `pg_dump` for this.

use crate::conn::Conn;
use crate::{Store, StoreError};
use std::path::{Path, PathBuf};

/// What [`Store::backup_sqlite`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub bytes: u64,
}

/// `VACUUM INTO` copies the database as of one read transaction: a
/// consistent snapshot while writers go on in the WAL, and a compact file
/// (free pages left out), unlike copying the file and its WAL by hand.
const VACUUM_INTO: &str = "VACUUM INTO $1";

impl Store {
    /// Writes a consistent copy of the SQLite database to `dest` and checks
    /// the copy (`PRAGMA quick_check`) before giving it its name: the copy
    /// is made as `dest` + `.partial` and renamed only once complete and
    /// sound, so a file at `dest` is always a whole backup. `Invalid` (and
    /// nothing written) on PostgreSQL, or when `dest` exists or its
    /// directory does not.
    pub async fn backup_sqlite(&self, dest: &Path) -> Result<BackupInfo, StoreError> {
        if self.backend_name() != "sqlite" {
            return Err(StoreError::Invalid(
                "backup copies a SQLite database; for PostgreSQL use pg_dump \
                 (e.g. pg_dump -Fc -f poolwatch.dump DATABASE_URL)"
                    .into(),
            ));
        }
        if dest.exists() {
            return Err(StoreError::Invalid(format!(
                "{} exists; give a new file name (a backup never overwrites one)",
                dest.display()
            )));
        }
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(StoreError::Invalid(format!(
                "{}: no such directory",
                dir.display()
            )));
        }
        let partial = partial_name(dest);
        // A leftover of an interrupted backup is never a whole one.
        remove_if_there(&partial)?;
        let text = partial.to_str().ok_or_else(|| {
            StoreError::Invalid(format!("{}: not a UTF-8 path", partial.display()))
        })?;
        let copied = self
            .read(async |c| Ok(c.query(VACUUM_INTO).bind(text).execute().await?))
            .await;
        if let Err(e) = copied.and(check_copy(&partial).await) {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        std::fs::rename(&partial, dest).map_err(|e| io("rename the backup", &partial, e))?;
        let bytes = std::fs::metadata(dest)
            .map_err(|e| io("read the backup's size", dest, e))?
            .len();
        Ok(BackupInfo {
            path: dest.to_path_buf(),
            bytes,
        })
    }
}

fn partial_name(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn remove_if_there(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove the old partial backup", path, e)),
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    let msg = format!("cannot {what} {}: {e}", path.display());
    StoreError::Transient(sqlx::Error::Io(std::io::Error::new(e.kind(), msg)))
}

/// Opens the copy on its own, read-only, and asks SQLite whether it is
/// sound: a backup that cannot be read is found now, not on restore day.
async fn check_copy(path: &Path) -> Result<(), StoreError> {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let verdict: (String,) = Conn::Sqlite(&mut conn)
        .query("PRAGMA quick_check")
        .fetch_one()
        .await?;
    let _ = sqlx::Connection::close(conn).await;
    if verdict.0 == "ok" {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "the copy {} failed its check: {}",
            path.display(),
            verdict.0
        )))
    }
}
