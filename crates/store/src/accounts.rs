//! People and their accounts: users, memberships (an account always keeps
//! an owner), contacts. Every change writes the audit log in its own
//! transaction. The e-mailed links that sign people in or invite them are
//! in `links.rs`, sessions in `sessions.rs`, API tokens in `tokens.rs`,
//! the pool admin's reads and writes in `admin_rows.rs`.

use crate::audit::{AuditEntry, record};
use crate::conn::{Conn, Sql};
use crate::{Store, StoreError};

/// A person's role in an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May change members and everything else.
    Owner,
    /// May look after the servers, tokens and contacts, not the members.
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Role, StoreError> {
        match s {
            "owner" => Ok(Role::Owner),
            "member" => Ok(Role::Member),
            _ => Err(StoreError::Invalid(format!(
                "role {s:?}: expected owner or member"
            ))),
        }
    }
}

/// A person, by lower-cased e-mail.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub created_on: i64,
    pub last_login: Option<i64>,
}

/// One account of a person.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MembershipRow {
    pub account_id: i64,
    pub account_name: String,
    pub role: String,
    pub is_admin: bool,
    pub disabled: bool,
}

impl MembershipRow {
    pub fn role(&self) -> Result<Role, StoreError> {
        self.role.parse()
    }
}

/// One member of an account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct MemberRow {
    pub user_id: i64,
    pub email: String,
    pub role: String,
    pub created_on: i64,
    pub last_login: Option<i64>,
}

/// An account with the flags the manage side needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct AccountInfo {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub webhook: Option<String>,
    pub created_on: i64,
    pub is_admin: bool,
    pub disabled: bool,
}

pub(crate) const USER_BY_EMAIL: &str =
    "SELECT id, email, created_on, last_login FROM users WHERE email = $1";
const USER_BY_ID: &str = "SELECT id, email, created_on, last_login FROM users WHERE id = $1";
pub(crate) const MEMBER_INSERT: &str = "INSERT INTO memberships (account_id, user_id, role, created_on) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, user_id) DO NOTHING";
const ACCOUNT_INFO: &str = "SELECT id, name, email, webhook, created_on, is_admin, disabled \
     FROM accounts WHERE id = $1";
const MEMBERSHIPS_OF_USER: &str = "SELECT a.id AS account_id, a.name AS account_name, m.role, \
     a.is_admin, a.disabled FROM memberships m JOIN accounts a ON a.id = m.account_id \
     WHERE m.user_id = $1 ORDER BY a.name";
const MEMBERSHIP: &str = "SELECT a.id AS account_id, a.name AS account_name, m.role, \
     a.is_admin, a.disabled FROM memberships m JOIN accounts a ON a.id = m.account_id \
     WHERE m.user_id = $1 AND m.account_id = $2";
const MEMBERS: &str = "SELECT u.id AS user_id, u.email, m.role, m.created_on, u.last_login \
     FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.account_id = $1 \
     ORDER BY u.email";
const MEMBER_ROLE: &str = "SELECT role FROM memberships WHERE account_id = $1 AND user_id = $2";
const MEMBER_EMAIL: &str = "SELECT email FROM users WHERE id = $1";
const OWNERS: &str = "SELECT COUNT(*) FROM memberships WHERE account_id = $1 AND role = 'owner'";
const MEMBER_DELETE: &str = "DELETE FROM memberships WHERE account_id = $1 AND user_id = $2";
const MEMBER_SET_ROLE: &str =
    "UPDATE memberships SET role = $3 WHERE account_id = $1 AND user_id = $2";
/// Serialises owner changes of one account: on PostgreSQL two owners
/// leaving at once could otherwise each see the other still there. SQLite's
/// write transaction already holds the database lock.
const ACCOUNT_LOCK: Sql = Sql {
    sqlite: "SELECT id FROM accounts WHERE id = $1",
    pg: "SELECT id FROM accounts WHERE id = $1 FOR UPDATE",
};
const ACCOUNT_SET_CONTACTS: &str = "UPDATE accounts SET email = $2, webhook = $3 WHERE id = $1";

/// The one form an address is stored and compared in.
pub fn normalize_email(email: &str) -> Result<String, StoreError> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(e)
    } else {
        Err(StoreError::Invalid(format!(
            "email {:?}: expected an address like name@example.org",
            email.chars().take(80).collect::<String>()
        )))
    }
}

impl Store {
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        let email = normalize_email(email)?;
        self.read(async |c| Ok(c.query(USER_BY_EMAIL).bind(&email).fetch_optional().await?))
            .await
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>, StoreError> {
        self.read(async |c| Ok(c.query(USER_BY_ID).bind(id).fetch_optional().await?))
            .await
    }

    /// The accounts `user_id` belongs to, by name.
    pub async fn memberships(&self, user_id: i64) -> Result<Vec<MembershipRow>, StoreError> {
        self.read(async |c| memberships_of(c, user_id).await).await
    }

    /// `user_id`'s membership of `account_id`, if any.
    pub async fn membership(
        &self,
        user_id: i64,
        account_id: i64,
    ) -> Result<Option<MembershipRow>, StoreError> {
        self.read(async |c| {
            Ok(c.query(MEMBERSHIP)
                .bind(user_id)
                .bind(account_id)
                .fetch_optional()
                .await?)
        })
        .await
    }

    /// The members of an account, by e-mail.
    pub async fn members(&self, account_id: i64) -> Result<Vec<MemberRow>, StoreError> {
        self.read(async |c| Ok(c.query(MEMBERS).bind(account_id).fetch_all().await?))
            .await
    }

    pub async fn account_info(&self, account_id: i64) -> Result<Option<AccountInfo>, StoreError> {
        self.read(async |c| {
            Ok(c.query(ACCOUNT_INFO)
                .bind(account_id)
                .fetch_optional()
                .await?)
        })
        .await
    }

    /// Removes `user_id` from the account (a member removed, or leaving).
    /// `NotFound` when not a member; `Conflict` (nothing changed) when it
    /// would leave the account without an owner.
    pub async fn remove_member(
        &self,
        account_id: i64,
        user_id: i64,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let (role, email) = member_for_change(c, account_id, user_id).await?;
            if role == Role::Owner {
                keep_an_owner(c, account_id).await?;
            }
            c.query(MEMBER_DELETE)
                .bind(account_id)
                .bind(user_id)
                .execute()
                .await?;
            let own = actor == format!("user:{email}");
            record(
                c,
                &AuditEntry {
                    account_id: Some(account_id),
                    actor: actor.into(),
                    action: if own { "member.leave" } else { "member.remove" },
                    subject: email,
                    detail: String::new(),
                },
                now,
            )
            .await
        })
        .await
    }

    /// Sets a member's role. `NotFound` when not a member; `Conflict` when
    /// it would demote the last owner.
    pub async fn set_member_role(
        &self,
        account_id: i64,
        user_id: i64,
        role: Role,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let (old, email) = member_for_change(c, account_id, user_id).await?;
            if old == role {
                return Ok(());
            }
            if old == Role::Owner {
                keep_an_owner(c, account_id).await?;
            }
            c.query(MEMBER_SET_ROLE)
                .bind(account_id)
                .bind(user_id)
                .bind(role.as_str())
                .execute()
                .await?;
            record(
                c,
                &AuditEntry {
                    account_id: Some(account_id),
                    actor: actor.into(),
                    action: "member.role",
                    subject: email,
                    detail: format!("{} → {}", old.as_str(), role.as_str()),
                },
                now,
            )
            .await
        })
        .await
    }

    /// Sets (or clears) the account's alert contacts, with an audit entry.
    pub async fn set_contacts(
        &self,
        account_id: i64,
        email: Option<&str>,
        webhook: Option<&str>,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let email = email.map(normalize_email).transpose()?;
        self.write(async |c| {
            let n = c
                .query(ACCOUNT_SET_CONTACTS)
                .bind(account_id)
                .bind(email.as_deref())
                .bind(webhook)
                .execute()
                .await?;
            crate::touched(n, || format!("account {account_id}"))?;
            record(
                c,
                &AuditEntry {
                    account_id: Some(account_id),
                    actor: actor.into(),
                    action: "account.contacts",
                    subject: String::new(),
                    detail: format!(
                        "e-mail {}, webhook {}",
                        email.as_deref().unwrap_or("none"),
                        if webhook.is_some() { "set" } else { "none" }
                    ),
                },
                now,
            )
            .await
        })
        .await
    }
}

pub(crate) async fn memberships_of(
    c: &mut Conn<'_>,
    user_id: i64,
) -> Result<Vec<MembershipRow>, StoreError> {
    Ok(c.query(MEMBERSHIPS_OF_USER)
        .bind(user_id)
        .fetch_all()
        .await?)
}

/// The member's role and e-mail, with the account locked for the change.
async fn member_for_change(
    c: &mut Conn<'_>,
    account_id: i64,
    user_id: i64,
) -> Result<(Role, String), StoreError> {
    let not_member = || StoreError::NotFound(format!("member {user_id}"));
    let locked: Option<(i64,)> = c
        .query(ACCOUNT_LOCK)
        .bind(account_id)
        .fetch_optional()
        .await?;
    if locked.is_none() {
        return Err(not_member());
    }
    let role: Option<(String,)> = c
        .query(MEMBER_ROLE)
        .bind(account_id)
        .bind(user_id)
        .fetch_optional()
        .await?;
    let Some((role,)) = role else {
        return Err(not_member());
    };
    let (email,): (String,) = c.query(MEMBER_EMAIL).bind(user_id).fetch_one().await?;
    Ok((role.parse()?, email))
}

/// `Conflict` unless the account has another owner besides the one changing.
async fn keep_an_owner(c: &mut Conn<'_>, account_id: i64) -> Result<(), StoreError> {
    let (owners,): (i64,) = c.query(OWNERS).bind(account_id).fetch_one().await?;
    if owners <= 1 {
        return Err(StoreError::Conflict(
            "an account must keep at least one owner: make another member owner first".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_names() {
        assert_eq!(
            normalize_email(" Alice@Example.ORG ").unwrap(),
            "alice@example.org"
        );
        for bad in [
            "",
            "alice",
            "@example.org",
            "a@b",
            "a b@example.org",
            "a@b@c.org",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
