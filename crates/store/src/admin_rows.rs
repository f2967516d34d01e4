//! The pool admin's side of accounts: flags, search, moving a server.

use crate::audit::{AuditEntry, record};
use crate::{Store, StoreError};

/// An account found by search.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct AccountHit {
    pub id: i64,
    pub name: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub servers: i64,
    pub members: i64,
}

/// A server found by search.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ServerHit {
    pub id: i64,
    pub ip: String,
    pub hostname: Option<String>,
    pub account_id: Option<i64>,
    pub account_name: Option<String>,
}

/// Most hits a search returns.
pub const SEARCH_LIMIT: i64 = 50;

const SET_ADMIN: &str = "UPDATE accounts SET is_admin = $2 WHERE name = $1 RETURNING id";
const SET_DISABLED: &str = "UPDATE accounts SET disabled = $2 WHERE name = $1 RETURNING id";
/// `$1` is a LIKE pattern with `\` as escape; lower() on both sides so
/// SQLite and PostgreSQL match alike. Members' addresses match too.
const SEARCH_ACCOUNTS: &str = "SELECT a.id, a.name, a.is_admin, a.disabled, \
     (SELECT COUNT(*) FROM servers s WHERE s.account_id = a.id) AS servers, \
     (SELECT COUNT(*) FROM memberships m WHERE m.account_id = a.id) AS members \
     FROM accounts a WHERE lower(a.name) LIKE $1 ESCAPE '\\' \
     OR EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id \
                WHERE m.account_id = a.id AND u.email LIKE $1 ESCAPE '\\') \
     ORDER BY a.name LIMIT $2";
const SEARCH_SERVERS: &str = "SELECT s.id, s.ip, s.hostname, s.account_id, \
     a.name AS account_name FROM servers s LEFT JOIN accounts a ON a.id = s.account_id \
     WHERE s.ip LIKE $1 ESCAPE '\\' OR lower(COALESCE(s.hostname, '')) LIKE $1 ESCAPE '\\' \
     OR lower(COALESCE(a.name, '')) LIKE $1 ESCAPE '\\' ORDER BY s.id LIMIT $2";
const SERVER_ACCOUNT: &str = "SELECT s.ip, s.account_id, a.name AS account_name FROM servers s \
     LEFT JOIN accounts a ON a.id = s.account_id WHERE s.id = $1";
const ACCOUNT_ID: &str = "SELECT id FROM accounts WHERE name = $1";
const SERVER_MOVE: &str = "UPDATE servers SET account_id = $2 WHERE id = $1";

impl Store {
    /// Sets an account's admin and/or disabled flag by name; `NotFound`
    /// when no such account. Each change is in the account's audit log.
    pub async fn set_account_flags(
        &self,
        name: &str,
        is_admin: Option<bool>,
        disabled: Option<bool>,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            for (sql, value, on, off) in [
                (SET_ADMIN, is_admin, "account.admin", "account.unadmin"),
                (SET_DISABLED, disabled, "account.disable", "account.enable"),
            ] {
                let Some(v) = value else { continue };
                let id: Option<(i64,)> = c.query(sql).bind(name).bind(v).fetch_optional().await?;
                let Some((id,)) = id else {
                    return Err(StoreError::NotFound(format!("account {name:?}")));
                };
                record(
                    c,
                    &AuditEntry {
                        account_id: Some(id),
                        actor: actor.into(),
                        action: if v { on } else { off },
                        subject: name.into(),
                        detail: String::new(),
                    },
                    now,
                )
                .await?;
            }
            Ok(())
        })
        .await
    }

    /// Accounts whose name or a member's address contains `text`
    /// (case-insensitive), at most [`SEARCH_LIMIT`].
    pub async fn search_accounts(&self, text: &str) -> Result<Vec<AccountHit>, StoreError> {
        let pattern = like_pattern(text);
        self.read(async |c| {
            Ok(c.query(SEARCH_ACCOUNTS)
                .bind(&pattern)
                .bind(SEARCH_LIMIT)
                .fetch_all()
                .await?)
        })
        .await
    }

    /// Servers whose address, hostname or account name contains `text`.
    pub async fn search_servers(&self, text: &str) -> Result<Vec<ServerHit>, StoreError> {
        let pattern = like_pattern(text);
        self.read(async |c| {
            Ok(c.query(SEARCH_SERVERS)
                .bind(&pattern)
                .bind(SEARCH_LIMIT)
                .fetch_all()
                .await?)
        })
        .await
    }

    /// Gives server `server_id` to the account `to`; written in both
    /// accounts' audit logs. `NotFound` for an unknown server or account.
    pub async fn move_server(
        &self,
        server_id: i64,
        to: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let from: Option<(String, Option<i64>, Option<String>)> = c
                .query(SERVER_ACCOUNT)
                .bind(server_id)
                .fetch_optional()
                .await?;
            let Some((ip, from_id, from_name)) = from else {
                return Err(StoreError::NotFound(format!("server {server_id}")));
            };
            let to_id: Option<(i64,)> = c.query(ACCOUNT_ID).bind(to).fetch_optional().await?;
            let Some((to_id,)) = to_id else {
                return Err(StoreError::NotFound(format!("account {to:?}")));
            };
            c.query(SERVER_MOVE)
                .bind(server_id)
                .bind(to_id)
                .execute()
                .await?;
            let detail = format!("{} → {to}", from_name.as_deref().unwrap_or("no account"));
            let mut accounts = vec![Some(to_id)];
            if let Some(f) = from_id
                && f != to_id
            {
                accounts.push(Some(f));
            }
            for account_id in accounts {
                record(
                    c,
                    &AuditEntry {
                        account_id,
                        actor: actor.into(),
                        action: "server.move",
                        subject: ip.clone(),
                        detail: detail.clone(),
                    },
                    now,
                )
                .await?;
            }
            Ok(())
        })
        .await
    }
}

/// `%text%`, lower-cased, with LIKE's own characters escaped.
fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for ch in text.trim().to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}
