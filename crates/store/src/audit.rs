//! The audit log: who changed what in an account. Every manage action
//! writes one entry in the transaction that makes the change, through
//! [`record`], so the log never claims a change that did not happen.

use crate::conn::Conn;
use crate::{Store, StoreError};

/// One entry to write. `action` comes from a closed set of names
/// (`server.add`, `member.invite`, …): the pages translate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The account changed; `None` for a pool-wide admin action.
    pub account_id: Option<i64>,
    /// `user:<email>`, `token:<name>`, `admin:<email>` or `system`.
    pub actor: String,
    pub action: &'static str,
    /// What it was done to: an address, an e-mail, a token name.
    pub subject: String,
    /// More, for people ("netspeed 1500 → 25000").
    pub detail: String,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub account_id: Option<i64>,
    pub ts: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

const INSERT: &str = "INSERT INTO audit_log (account_id, ts, actor, action, subject, detail) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const OF_ACCOUNT: &str = "SELECT id, account_id, ts, actor, action, subject, detail \
     FROM audit_log WHERE account_id = $1 ORDER BY id DESC LIMIT $2";

/// Writes `e` on `c`, inside the caller's transaction.
pub(crate) async fn record(c: &mut Conn<'_>, e: &AuditEntry, now: i64) -> Result<(), StoreError> {
    c.query(INSERT)
        .bind(e.account_id)
        .bind(now)
        .bind(&e.actor)
        .bind(e.action)
        .bind(&e.subject)
        .bind(&e.detail)
        .execute()
        .await?;
    Ok(())
}

impl Store {
    /// Writes one entry on its own (for actions with no other write).
    pub async fn audit(&self, e: &AuditEntry, now: i64) -> Result<(), StoreError> {
        self.write(async |c| record(c, e, now).await).await
    }

    /// The newest `limit` entries of an account, newest first.
    pub async fn audit_log(
        &self,
        account_id: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.read(async |c| {
            Ok(c.query(OF_ACCOUNT)
                .bind(account_id)
                .bind(limit)
                .fetch_all()
                .await?)
        })
        .await
    }
}
