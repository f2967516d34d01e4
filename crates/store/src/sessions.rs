//! Sign-in sessions: stored by the hash of their random id, ended by idle
//! time, by age, or by signing out (one, or every session of a person).

use crate::{Store, StoreError};

/// A live session, with its person.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: i64,
    pub email: String,
    /// The picked account; `None` until the person picks one.
    pub account_id: Option<i64>,
    pub csrf_hash: String,
    pub created_on: i64,
    pub last_seen: i64,
}

/// How long sessions live, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Ends when unused this long.
    pub idle_s: i64,
    /// Ends this long after sign-in.
    pub max_age_s: i64,
}

/// `last_seen` is written at most this often: a page view is not worth a
/// write, and the idle limit is counted in hours.
pub const SESSION_TOUCH_S: i64 = 60;

const INSERT: &str = "INSERT INTO sessions \
     (id_hash, user_id, account_id, csrf_hash, created_on, last_seen) \
     VALUES ($1, $2, $3, $4, $5, $5)";
const ONLY_ACCOUNT: &str = "SELECT account_id FROM memberships WHERE user_id = $1";
const GET: &str = "SELECT s.id_hash, s.user_id, u.email, s.account_id, s.csrf_hash, \
     s.created_on, s.last_seen FROM sessions s JOIN users u ON u.id = s.user_id \
     WHERE s.id_hash = $1";
const TOUCH: &str = "UPDATE sessions SET last_seen = $2 WHERE id_hash = $1";
const DELETE: &str = "DELETE FROM sessions WHERE id_hash = $1";
const DELETE_OF_USER: &str = "DELETE FROM sessions WHERE user_id = $1";
const PICK: &str = "UPDATE sessions SET account_id = $2 WHERE id_hash = $1 AND EXISTS \
     (SELECT 1 FROM memberships m WHERE m.user_id = sessions.user_id AND m.account_id = $2)";
const DELETE_EXPIRED: &str = "DELETE FROM sessions WHERE last_seen <= $1 OR created_on <= $2";

impl Store {
    /// Starts a session for `user_id`. `account_id` is the account to act
    /// for (the one a link created or joined); when `None` and the person
    /// belongs to exactly one account, that one.
    pub async fn create_session(
        &self,
        id_hash: &str,
        csrf_hash: &str,
        user_id: i64,
        account_id: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let account_id = match account_id {
                Some(a) => Some(a),
                None => {
                    let all: Vec<(i64,)> = c.query(ONLY_ACCOUNT).bind(user_id).fetch_all().await?;
                    match all.as_slice() {
                        [(only,)] => Some(*only),
                        _ => None,
                    }
                }
            };
            c.query(INSERT)
                .bind(id_hash)
                .bind(user_id)
                .bind(account_id)
                .bind(csrf_hash)
                .bind(now)
                .execute()
                .await
                .map_err(|e| crate::constraint(e, || "session id".into(), || "user".into()))?;
            Ok(())
        })
        .await
    }

    /// The live session with this id hash, its `last_seen` moved to `now`
    /// (at most every [`SESSION_TOUCH_S`]). An expired session is deleted
    /// and `None`.
    pub async fn session(
        &self,
        id_hash: &str,
        limits: SessionLimits,
        now: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        let found: Option<SessionRow> = self
            .read(async |c| Ok(c.query(GET).bind(id_hash).fetch_optional().await?))
            .await?;
        let Some(s) = found else {
            return Ok(None);
        };
        let expired = now - s.last_seen >= limits.idle_s || now - s.created_on >= limits.max_age_s;
        if expired {
            self.write(async |c| Ok(c.query(DELETE).bind(id_hash).execute().await?))
                .await?;
            return Ok(None);
        }
        if now - s.last_seen >= SESSION_TOUCH_S {
            self.write(async |c| Ok(c.query(TOUCH).bind(id_hash).bind(now).execute().await?))
                .await?;
        }
        Ok(Some(SessionRow {
            last_seen: now.max(s.last_seen),
            ..s
        }))
    }

    /// Makes the session act for `account_id`: `NotFound` unless its person
    /// is a member (another account's id looks like no account at all).
    pub async fn pick_account(&self, id_hash: &str, account_id: i64) -> Result<(), StoreError> {
        self.write(async |c| {
            let n = c
                .query(PICK)
                .bind(id_hash)
                .bind(account_id)
                .execute()
                .await?;
            crate::touched(n, || format!("account {account_id}"))
        })
        .await
    }

    /// Ends one session (signing out); no error when already gone.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.write(async |c| Ok(c.query(DELETE).bind(id_hash).execute().await?))
            .await?;
        Ok(())
    }

    /// Ends every session of a person (sign out everywhere); how many.
    pub async fn delete_sessions_of(&self, user_id: i64) -> Result<u64, StoreError> {
        self.write(async |c| Ok(c.query(DELETE_OF_USER).bind(user_id).execute().await?))
            .await
    }

    /// Deletes sessions past either limit (housekeeping); how many.
    pub async fn delete_expired_sessions(
        &self,
        limits: SessionLimits,
        now: i64,
    ) -> Result<u64, StoreError> {
        self.write(async |c| {
            Ok(c.query(DELETE_EXPIRED)
                .bind(now - limits.idle_s)
                .bind(now - limits.max_age_s)
                .execute()
                .await?)
        })
        .await
    }
}
