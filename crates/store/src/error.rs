//! The store's error type, and which database failures are transient.

/// Errors of every store operation. Messages never contain a password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A unique name, address or key already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request is not acceptable; nothing was stored.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database could not be opened or migrated.
    #[error("{0}")]
    Open(String),
    /// A stored value cannot be read back (e.g. an unknown status).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The database cannot do this now but may later, with nothing stored
    /// (disk full, I/O error, busy or locked, pool timeout, lost
    /// connection, statement timeout, serialization failure): the same
    /// request is worth retrying once the cause is gone.
    #[error("database temporarily unavailable: {0}")]
    Transient(sqlx::Error),
    #[error("database error: {0}")]
    Db(sqlx::Error),
}

impl StoreError {
    /// True when retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
}

/// Every sqlx error passes here, so the classification has one place.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_transient(&e) {
            StoreError::Transient(e)
        } else {
            StoreError::Db(e)
        }
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    use sqlx::error::DatabaseError as _;
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => {
            if let Some(s) = d.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                s.code().is_some_and(|c| sqlite_transient(&c))
            } else {
                d.code().is_some_and(|c| pg_transient(&c))
            }
        }
        _ => false,
    }
}

/// SQLite result codes (the primary code is the low byte of the extended
/// one): BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN, PROTOCOL.
fn sqlite_transient(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 7 | 10 | 13 | 14 | 15))
}

/// PostgreSQL SQLSTATEs: connection exceptions (08), serialization failure
/// and deadlock (40001, 40P01), insufficient resources such as disk_full
/// (53), lock not available (55P03), query canceled by statement_timeout
/// and server shutdown (57014, 57P01-57P03), system/I/O errors (58), idle
/// session timeouts (25P03, 57P05).
fn pg_transient(sqlstate: &str) -> bool {
    let class = sqlstate.get(..2).unwrap_or("");
    matches!(class, "08" | "53" | "58")
        || matches!(
            sqlstate,
            "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "57P05" | "25P03"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        // SQLITE_FULL, SQLITE_IOERR_WRITE (778), SQLITE_BUSY_SNAPSHOT (517)
        for c in ["13", "778", "517", "5", "6"] {
            assert!(sqlite_transient(c), "{c}");
        }
        // SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_ERROR, SQLITE_CORRUPT
        for c in ["2067", "1", "11", "x"] {
            assert!(!sqlite_transient(c), "{c}");
        }
        for c in ["53100", "08006", "57014", "40001", "40P01", "58030"] {
            assert!(pg_transient(c), "{c}");
        }
        for c in ["23505", "23503", "22021", "42P01", ""] {
            assert!(!pg_transient(c), "{c}");
        }
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_transient());
    }
}
