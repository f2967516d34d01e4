//! An account's API tokens: named, stored as the hash of the secret,
//! revocable; the last use is kept for the operator to see.

use crate::audit::{AuditEntry, record};
use crate::{Store, StoreError};

/// A token as its account sees it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub created_on: i64,
    pub last_used: Option<i64>,
    pub revoked_on: Option<i64>,
}

/// What a working token acts as.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenAuth {
    pub token_id: i64,
    pub name: String,
    pub account_id: i64,
    pub is_admin: bool,
}

/// `last_used` is written at most this often, so a busy API client costs
/// one write a minute, not one per request.
pub const TOKEN_TOUCH_S: i64 = 60;

/// Longest token name, in characters.
pub const TOKEN_NAME_MAX: usize = 100;

const INSERT: &str = "INSERT INTO api_tokens \
     (account_id, name, token_hash, created_by, created_on) VALUES ($1, $2, $3, $4, $5) \
     RETURNING id, name, created_on, last_used, revoked_on";
const LIST: &str = "SELECT id, name, created_on, last_used, revoked_on FROM api_tokens \
     WHERE account_id = $1 ORDER BY revoked_on IS NOT NULL, id DESC";
const REVOKE: &str = "UPDATE api_tokens SET revoked_on = COALESCE(revoked_on, $3) \
     WHERE id = $1 AND account_id = $2 RETURNING name";
const BY_HASH: &str = "SELECT t.id AS token_id, t.name, t.account_id, a.is_admin, \
     t.last_used FROM api_tokens t JOIN accounts a ON a.id = t.account_id \
     WHERE t.token_hash = $1 AND t.revoked_on IS NULL AND NOT a.disabled";
const TOUCH: &str = "UPDATE api_tokens SET last_used = $2 WHERE id = $1";

#[derive(sqlx::FromRow)]
struct ByHash {
    token_id: i64,
    name: String,
    account_id: i64,
    is_admin: bool,
    last_used: Option<i64>,
}

impl Store {
    /// Stores a new token of `account_id` (its hash only).
    pub async fn create_token(
        &self,
        account_id: i64,
        name: &str,
        token_hash: &str,
        created_by: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<TokenRow, StoreError> {
        let name = token_name(name)?;
        self.write(async |c| {
            let row: TokenRow = c
                .query(INSERT)
                .bind(account_id)
                .bind(name)
                .bind(token_hash)
                .bind(created_by)
                .bind(now)
                .fetch_one()
                .await
                .map_err(|e| crate::constraint(e, || "token".into(), || "account".into()))?;
            record(
                c,
                &AuditEntry {
                    account_id: Some(account_id),
                    actor: actor.into(),
                    action: "token.create",
                    subject: name.into(),
                    detail: String::new(),
                },
                now,
            )
            .await?;
            Ok(row)
        })
        .await
    }

    /// The account's tokens, live ones first, newest first.
    pub async fn tokens(&self, account_id: i64) -> Result<Vec<TokenRow>, StoreError> {
        self.read(async |c| Ok(c.query(LIST).bind(account_id).fetch_all().await?))
            .await
    }

    /// Revokes token `id` of `account_id`; `NotFound` when it is another
    /// account's (or none). Revoking twice keeps the first date.
    pub async fn revoke_token(
        &self,
        account_id: i64,
        id: i64,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let name: Option<(String,)> = c
                .query(REVOKE)
                .bind(id)
                .bind(account_id)
                .bind(now)
                .fetch_optional()
                .await?;
            let Some((name,)) = name else {
                return Err(StoreError::NotFound(format!("token {id}")));
            };
            record(
                c,
                &AuditEntry {
                    account_id: Some(account_id),
                    actor: actor.into(),
                    action: "token.revoke",
                    subject: name,
                    detail: String::new(),
                },
                now,
            )
            .await
        })
        .await
    }

    /// The account a token acts for: `None` when unknown, revoked, or its
    /// account is disabled. Records the use (see [`TOKEN_TOUCH_S`]).
    pub async fn token_auth(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<TokenAuth>, StoreError> {
        let found: Option<ByHash> = self
            .read(async |c| Ok(c.query(BY_HASH).bind(token_hash).fetch_optional().await?))
            .await?;
        let Some(t) = found else {
            return Ok(None);
        };
        if t.last_used.is_none_or(|u| now - u >= TOKEN_TOUCH_S) {
            self.write(async |c| Ok(c.query(TOUCH).bind(t.token_id).bind(now).execute().await?))
                .await?;
        }
        Ok(Some(TokenAuth {
            token_id: t.token_id,
            name: t.name,
            account_id: t.account_id,
            is_admin: t.is_admin,
        }))
    }
}

fn token_name(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > TOKEN_NAME_MAX {
        return Err(StoreError::Invalid(format!(
            "token name: 1 to {TOKEN_NAME_MAX} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "token name: no control characters".into(),
        ));
    }
    Ok(name)
}
