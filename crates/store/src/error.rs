//! The store's error type.

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
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}
