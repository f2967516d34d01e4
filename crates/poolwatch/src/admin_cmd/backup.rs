//! `poolwatch admin backup FILE`: an online copy of the SQLite store.

use crate::util::usage;
use anyhow::Result;
use std::path::Path;
use store::{Store, StoreError};

/// Refused before the store is opened: PostgreSQL has its own tool, and an
/// existing file is never overwritten.
pub fn check(out: &Path, database_url: Option<&str>) -> Result<()> {
    if database_url.is_some_and(|u| u.starts_with("postgres")) {
        return Err(usage(
            "backup copies the SQLite store; this one is PostgreSQL: use pg_dump \
             (pg_dump -Fc -f poolwatch.dump \"$POOLWATCH_DATABASE_URL\"), see docs/deploying.md",
        ));
    }
    if out.exists() {
        return Err(usage(format!(
            "{}: the file exists; give a new name (a backup never overwrites one)",
            out.display()
        )));
    }
    Ok(())
}

pub async fn backup(store: &Store, out: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    match store.backup_sqlite(out).await {
        Ok(info) => {
            println!(
                "backup {} written: {} bytes in {:.1} s, checked (PRAGMA quick_check: ok)",
                info.path.display(),
                info.bytes,
                started.elapsed().as_secs_f64()
            );
            println!(
                "also keep the ticket secret (DATA_DIR/ticket-secret): agents' tickets and \
                 access tokens are signed with it"
            );
            Ok(())
        }
        Err(StoreError::Invalid(m)) => Err(usage(m)),
        Err(e) => Err(e.into()),
    }
}
