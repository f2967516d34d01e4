//! The e-mailed one-time links that sign people in or invite them into an
//! account. The server hashes every token; this file only sees hashes.
//! Using a link is one statement (`LINK_CONSUME`), so it works once.

use crate::accounts::{
    MEMBER_INSERT, Role, USER_BY_EMAIL, UserRow, memberships_of, normalize_email,
};
use crate::audit::{AuditEntry, record};
use crate::conn::Conn;
use crate::{Store, StoreError};

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

/// A usable link, as its page describes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkInfo {
    /// `signin` or `invite`.
    pub purpose: String,
    pub email: String,
    /// The invited role.
    pub role: Option<String>,
    /// The account an invitation joins.
    pub account_name: Option<String>,
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

/// Whether an unknown address may sign in and get an account of its own
/// (`serve --signup open|closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupPolicy {
    /// First sign-in of an unknown address creates an account (the pool's way).
    #[default]
    Open,
    /// Only addresses already members of an account (or invited) may sign in.
    Closed,
}

const USER_INSERT: &str = "INSERT INTO users (email, created_on) VALUES ($1, $2) \
     RETURNING id, email, created_on, last_login";
const USER_LOGIN: &str = "UPDATE users SET last_login = $2 WHERE id = $1";
const LINK_INSERT: &str = "INSERT INTO email_links \
     (token_hash, purpose, email, account_id, role, invited_by, created_on, expires) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const LINK_PEEK: &str = "SELECT l.purpose, l.email, l.role, a.name AS account_name \
     FROM email_links l LEFT JOIN accounts a ON a.id = l.account_id \
     WHERE l.token_hash = $1 AND l.used_on IS NULL AND l.expires > $2";
const LINK_COUNT: &str = "SELECT COUNT(*) FROM email_links WHERE email = $1 AND created_on > $2";
/// Marks the link used only if it is unused and unexpired: one statement,
/// so two requests racing for one link cannot both win.
const LINK_CONSUME: &str = "UPDATE email_links SET used_on = $2 \
     WHERE token_hash = $1 AND used_on IS NULL AND expires > $2 \
     RETURNING purpose, email, account_id, role, invited_by";
const LINK_PENDING_INVITE: &str = "SELECT COUNT(*) FROM email_links \
     WHERE email = $1 AND purpose = 'invite' AND used_on IS NULL AND expires > $2";
/// No row when the name is taken: the caller tries the next one. One
/// statement, so two first sign-ins racing for a name cannot both get it.
const ACCOUNT_CREATE: &str = "INSERT INTO accounts (name, created_on) VALUES ($1, $2) \
     ON CONFLICT (name) DO NOTHING RETURNING id";
const LINKS_DELETE_OLD: &str = "DELETE FROM email_links WHERE expires < $1";

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

    /// What a usable link would do, without using it (the link's page says
    /// it before the button); `None` when unknown, used or expired.
    pub async fn peek_email_link(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<LinkInfo>, StoreError> {
        self.read(async |c| {
            Ok(c.query(LINK_PEEK)
                .bind(token_hash)
                .bind(now)
                .fetch_optional()
                .await?)
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

/// A new user. Two links of one new address used at the same moment:
/// the second fails with `Conflict` and is rolled back, its link still
/// usable, rather than making a second account.
async fn insert_user(c: &mut Conn<'_>, email: &str, now: i64) -> Result<UserRow, StoreError> {
    c.query(USER_INSERT)
        .bind(email)
        .bind(now)
        .fetch_one()
        .await
        .map_err(|e| {
            crate::constraint(
                e,
                || "this address was signing in twice at once: use the link again".into(),
                || "user".into(),
            )
        })
}

/// A new account for a first sign-in, named from the address's local part
/// (`alice`, then `alice-2`, … when taken), the user its owner.
async fn create_account_for(c: &mut Conn<'_>, user: &UserRow, now: i64) -> Result<i64, StoreError> {
    let base = account_base_name(&user.email);
    let mut name = base.clone();
    let mut n = 1;
    let id = loop {
        let made: Option<(i64,)> = c
            .query(ACCOUNT_CREATE)
            .bind(&name)
            .bind(now)
            .fetch_optional()
            .await?;
        if let Some((id,)) = made {
            break id;
        }
        n += 1;
        name = format!("{base}-{n}");
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        assert_eq!(account_base_name("a.b+tag@example.org"), "a.btag");
        assert_eq!(account_base_name("<b>@example.org"), "b");
        assert_eq!(account_base_name("++@example.org"), "operator");
    }
}
