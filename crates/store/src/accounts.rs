//! People, their accounts and the e-mailed one-time links that sign them
//! in or invite them. The server hashes every secret; this file only sees
//! hashes. Every change writes the audit log in its own transaction.
//! Sessions are in `sessions.rs`, API tokens in `tokens.rs`, the pool
//! admin's reads and writes in `admin_rows.rs`.

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

/// What a link is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkPurpose {
    SignIn,
    /// Joining `account_id` with `role`, invited by `invited_by`.
    Invite {
        account_id: i64,
        role: Role,
        invited_by: Option<i64>,
        /// For the audit log (`user:<email>`, `token:<name>`).
        actor: String,
    },
}

/// One link to store: only the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    pub token_hash: String,
    pub email: String,
    pub purpose: LinkPurpose,
    /// Unix seconds after which the link is refused.
    pub expires: i64,
}

/// Who a consumed link signed in, and where it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub user: UserRow,
    /// The account the link created (first sign-in) or joined (invite).
    pub account_id: Option<i64>,
    /// True when this sign-in created the user.
    pub new_user: bool,
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

/// Whether an unknown address may sign in and get an account of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupPolicy {
    Open,
    Closed,
}

const USER_BY_EMAIL: &str = "SELECT id, email, created_on, last_login FROM users WHERE email = $1";
const USER_BY_ID: &str = "SELECT id, email, created_on, last_login FROM users WHERE id = $1";
const USER_INSERT: &str = "INSERT INTO users (email, created_on) VALUES ($1, $2) \
     RETURNING id, email, created_on, last_login";
const USER_LOGIN: &str = "UPDATE users SET last_login = $2 WHERE id = $1";
const LINK_INSERT: &str = "INSERT INTO email_links \
     (token_hash, purpose, email, account_id, role, invited_by, created_on, expires) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const LINK_COUNT: &str = "SELECT COUNT(*) FROM email_links WHERE email = $1 AND created_on > $2";
/// Marks the link used only if it is unused and unexpired: one statement,
/// so two requests racing for one link cannot both win.
const LINK_CONSUME: &str = "UPDATE email_links SET used_on = $2 \
     WHERE token_hash = $1 AND used_on IS NULL AND expires > $2 \
     RETURNING purpose, email, account_id, role, invited_by";
const LINK_PENDING_INVITE: &str = "SELECT COUNT(*) FROM email_links \
     WHERE email = $1 AND purpose = 'invite' AND used_on IS NULL AND expires > $2";
const ACCOUNT_NAME_TAKEN: &str = "SELECT COUNT(*) FROM accounts WHERE name = $1";
const ACCOUNT_CREATE: &str = "INSERT INTO accounts (name, created_on) VALUES ($1, $2) RETURNING id";
const ACCOUNT_INFO: &str = "SELECT id, name, email, webhook, created_on, is_admin, disabled \
     FROM accounts WHERE id = $1";
const MEMBER_INSERT: &str = "INSERT INTO memberships (account_id, user_id, role, created_on) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, user_id) DO NOTHING";
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
const LINKS_DELETE_OLD: &str = "DELETE FROM email_links WHERE expires < $1";
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
    /// Stores a link (its hash only) for `link.email`; an invitation is in
    /// the audit log of its account.
    pub async fn create_email_link(&self, link: &NewLink, now: i64) -> Result<(), StoreError> {
        let email = normalize_email(&link.email)?;
        self.write(async |c| {
            let (purpose, account_id, role, invited_by) = match &link.purpose {
                LinkPurpose::SignIn => ("signin", None, None, None),
                LinkPurpose::Invite {
                    account_id,
                    role,
                    invited_by,
                    actor,
                } => {
                    record(
                        c,
                        &AuditEntry {
                            account_id: Some(*account_id),
                            actor: actor.clone(),
                            action: "member.invite",
                            subject: email.clone(),
                            detail: format!("as {}", role.as_str()),
                        },
                        now,
                    )
                    .await?;
                    (
                        "invite",
                        Some(*account_id),
                        Some(role.as_str()),
                        *invited_by,
                    )
                }
            };
            c.query(LINK_INSERT)
                .bind(&link.token_hash)
                .bind(purpose)
                .bind(&email)
                .bind(account_id)
                .bind(role)
                .bind(invited_by)
                .bind(now)
                .bind(link.expires)
                .execute()
                .await
                .map_err(|e| crate::constraint(e, || "link token".into(), || "account".into()))?;
            Ok(())
        })
        .await
    }

    /// Links of any purpose made for `email` after `since`: the per-address
    /// rate limit counts them.
    pub async fn count_links_since(&self, email: &str, since: i64) -> Result<i64, StoreError> {
        let email = normalize_email(email)?;
        self.read(async |c| {
            let (n,): (i64,) = c
                .query(LINK_COUNT)
                .bind(&email)
                .bind(since)
                .fetch_one()
                .await?;
            Ok(n)
        })
        .await
    }

    /// Honours a link once. `NotFound` when it is unknown, used or expired
    /// (one answer: the page cannot tell them apart either); `Invalid` for
    /// a sign-in of an unknown address while signup is closed and no
    /// invitation waits. A first sign-in with signup open creates the user
    /// and an account named from the address, the user its owner; an
    /// invitation adds the membership (creating the user if needed).
    pub async fn consume_email_link(
        &self,
        token_hash: &str,
        signup: SignupPolicy,
        now: i64,
    ) -> Result<SignedIn, StoreError> {
        self.write(async |c| {
            let link: Option<LinkRead> = c
                .query(LINK_CONSUME)
                .bind(token_hash)
                .bind(now)
                .fetch_optional()
                .await?;
            let Some(link) = link else {
                return Err(StoreError::NotFound(
                    "this link is unknown, expired or already used".into(),
                ));
            };
            let existing: Option<UserRow> = c
                .query(USER_BY_EMAIL)
                .bind(&link.email)
                .fetch_optional()
                .await?;
            let new_user = existing.is_none();
            let mut account_id = None;
            let user = if link.purpose == "invite" {
                let user = match existing {
                    Some(u) => u,
                    None => insert_user(c, &link.email, now).await?,
                };
                let (Some(acc), Some(role)) = (link.account_id, link.role.as_deref()) else {
                    return Err(StoreError::Corrupt("invitation without account".into()));
                };
                let role: Role = role.parse()?;
                let added = c
                    .query(MEMBER_INSERT)
                    .bind(acc)
                    .bind(user.id)
                    .bind(role.as_str())
                    .bind(now)
                    .execute()
                    .await?;
                if added > 0 {
                    record(
                        c,
                        &AuditEntry {
                            account_id: Some(acc),
                            actor: format!("user:{}", user.email),
                            action: "member.join",
                            subject: user.email.clone(),
                            detail: format!("as {}", role.as_str()),
                        },
                        now,
                    )
                    .await?;
                }
                account_id = Some(acc);
                user
            } else {
                let memberships = match &existing {
                    Some(u) => memberships_of(c, u.id).await?.len(),
                    None => 0,
                };
                let invited = {
                    let (n,): (i64,) = c
                        .query(LINK_PENDING_INVITE)
                        .bind(&link.email)
                        .bind(now)
                        .fetch_one()
                        .await?;
                    n > 0
                };
                if memberships == 0 && !invited && signup == SignupPolicy::Closed {
                    return Err(StoreError::Invalid(
                        "sign-up is closed: this address belongs to no account".into(),
                    ));
                }
                let user = match existing {
                    Some(u) => u,
                    None => insert_user(c, &link.email, now).await?,
                };
                if memberships == 0 && !invited {
                    account_id = Some(create_account_for(c, &user, now).await?);
                }
                user
            };
            c.query(USER_LOGIN)
                .bind(user.id)
                .bind(now)
                .execute()
                .await?;
            Ok(SignedIn {
                user: UserRow {
                    last_login: Some(now),
                    ..user
                },
                account_id,
                new_user,
            })
        })
        .await
    }

    /// Deletes links that expired before `before` (housekeeping; kept a
    /// while after expiry so the per-address rate limit still counts
    /// them); how many.
    pub async fn delete_old_links(&self, before: i64) -> Result<u64, StoreError> {
        self.write(async |c| Ok(c.query(LINKS_DELETE_OLD).bind(before).execute().await?))
            .await
    }

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

#[derive(sqlx::FromRow)]
struct LinkRead {
    purpose: String,
    email: String,
    account_id: Option<i64>,
    role: Option<String>,
    #[allow(dead_code)]
    invited_by: Option<i64>,
}

async fn insert_user(c: &mut Conn<'_>, email: &str, now: i64) -> Result<UserRow, StoreError> {
    Ok(c.query(USER_INSERT)
        .bind(email)
        .bind(now)
        .fetch_one()
        .await?)
}

async fn memberships_of(c: &mut Conn<'_>, user_id: i64) -> Result<Vec<MembershipRow>, StoreError> {
    Ok(c.query(MEMBERSHIPS_OF_USER)
        .bind(user_id)
        .fetch_all()
        .await?)
}

/// A new account for a first sign-in, named from the address's local part
/// (`alice`, then `alice-2`, … when taken), the user its owner.
async fn create_account_for(c: &mut Conn<'_>, user: &UserRow, now: i64) -> Result<i64, StoreError> {
    let base = account_base_name(&user.email);
    let mut name = base.clone();
    let mut n = 1;
    loop {
        let (taken,): (i64,) = c.query(ACCOUNT_NAME_TAKEN).bind(&name).fetch_one().await?;
        if taken == 0 {
            break;
        }
        n += 1;
        name = format!("{base}-{n}");
    }
    let (id,): (i64,) = c
        .query(ACCOUNT_CREATE)
        .bind(&name)
        .bind(now)
        .fetch_one()
        .await?;
    c.query(MEMBER_INSERT)
        .bind(id)
        .bind(user.id)
        .bind(Role::Owner.as_str())
        .bind(now)
        .execute()
        .await?;
    record(
        c,
        &AuditEntry {
            account_id: Some(id),
            actor: format!("user:{}", user.email),
            action: "account.create",
            subject: name,
            detail: String::new(),
        },
        now,
    )
    .await?;
    Ok(id)
}

/// The local part, kept to letters, digits, `.`, `_` and `-`.
fn account_base_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or("");
    let clean: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(40)
        .collect();
    if clean.is_empty() {
        "operator".into()
    } else {
        clean
    }
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
        assert_eq!(account_base_name("a.b+tag@example.org"), "a.btag");
        assert_eq!(account_base_name("<b>@example.org"), "b");
        assert_eq!(account_base_name("++@example.org"), "operator");
    }
}
