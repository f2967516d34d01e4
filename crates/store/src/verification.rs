//! Ownership verification: a request from an unverified server's own
//! address gets a one-time token (stored as its hash, see
//! `server::keys::hash_key`); opening its URL while signed in to the
//! server's account marks the server verified, once.

use crate::audit::{self, AuditEntry};
use crate::conn::Conn;
use crate::{ServerRow, Store, StoreError};
use std::net::IpAddr;

const UNVERIFIED_BY_IP: &str = "SELECT id, account_id FROM servers \
     WHERE ip = $1 AND verified_on IS NULL AND account_id IS NOT NULL";
const INSERT: &str = "INSERT INTO server_verifications (token_hash, server_id, created_on, expires) \
     VALUES ($1, $2, $3, $4)";
const TOKEN: &str = "SELECT v.server_id, v.expires, v.used_on, s.ip, s.account_id \
     FROM server_verifications v JOIN servers s ON s.id = v.server_id WHERE v.token_hash = $1";
const USE: &str =
    "UPDATE server_verifications SET used_on = $2 WHERE token_hash = $1 AND used_on IS NULL";
const VERIFY: &str = "UPDATE servers SET verified_on = $2 WHERE id = $1";
const PRUNE: &str = "DELETE FROM server_verifications WHERE expires < $1";

#[derive(sqlx::FromRow)]
struct TokenRead {
    server_id: i64,
    expires: i64,
    used_on: Option<i64>,
    ip: String,
    account_id: Option<i64>,
}

/// The token's server if it is `account_id`'s and the token usable:
/// `NotFound` for no such token or another account's server (as if it did
/// not exist), `Conflict` when used or expired.
async fn usable(
    c: &mut Conn<'_>,
    account_id: i64,
    token_hash: &str,
    now: i64,
) -> Result<TokenRead, StoreError> {
    let t: Option<TokenRead> = c.query(TOKEN).bind(token_hash).fetch_optional().await?;
    let Some(t) = t.filter(|t| t.account_id == Some(account_id)) else {
        return Err(StoreError::NotFound("verification link".into()));
    };
    if t.used_on.is_some() {
        return Err(StoreError::Conflict(
            "this verification link was used already; request a new one with /verify".into(),
        ));
    }
    if now >= t.expires {
        return Err(StoreError::Conflict(
            "this verification link has expired; request a new one with /verify".into(),
        ));
    }
    Ok(t)
}

impl Store {
    /// A new verification token for the unverified operator server at
    /// `ip`, valid until `expires`; the server's id. `NotFound` when no
    /// unverified operator server has that address (nothing stored).
    pub async fn create_server_verification(
        &self,
        ip: IpAddr,
        token_hash: &str,
        now: i64,
        expires: i64,
    ) -> Result<i64, StoreError> {
        let ip = ip.to_canonical();
        self.write(async |c| {
            let row: Option<(i64, Option<i64>)> = c
                .query(UNVERIFIED_BY_IP)
                .bind(ip.to_string())
                .fetch_optional()
                .await?;
            let Some((id, _)) = row else {
                return Err(StoreError::NotFound(format!(
                    "{ip} is not a server waiting for verification"
                )));
            };
            c.query(INSERT)
                .bind(token_hash)
                .bind(id)
                .bind(now)
                .bind(expires)
                .execute()
                .await?;
            Ok(id)
        })
        .await
    }

    /// The server a verification token would verify for `account_id`,
    /// without using it (the confirm page). Errors as
    /// [`Store::verify_server`].
    pub async fn verification_server(
        &self,
        account_id: i64,
        token_hash: &str,
        now: i64,
    ) -> Result<IpAddr, StoreError> {
        let t = self
            .read(async |c| usable(c, account_id, token_hash, now).await)
            .await?;
        crate::parse_ip(&t.ip)
    }

    /// Use a verification token: the server is verified, the token spent,
    /// audit `server.verify`, in one transaction. `NotFound`: no such
    /// token, or another account's server; `Conflict`: used or expired.
    pub async fn verify_server(
        &self,
        account_id: i64,
        token_hash: &str,
        actor: &str,
        now: i64,
    ) -> Result<ServerRow, StoreError> {
        let id = self
            .write(async |c| {
                let t = usable(c, account_id, token_hash, now).await?;
                let n = c.query(USE).bind(token_hash).bind(now).execute().await?;
                if n == 0 {
                    return Err(StoreError::Conflict(
                        "this verification link was used already".into(),
                    ));
                }
                c.query(VERIFY)
                    .bind(t.server_id)
                    .bind(now)
                    .execute()
                    .await?;
                let e = AuditEntry {
                    account_id: Some(account_id),
                    actor: actor.to_string(),
                    action: "server.verify",
                    subject: t.ip.clone(),
                    detail: String::new(),
                };
                audit::record(c, &e, now).await?;
                Ok(t.server_id)
            })
            .await?;
        self.server_by_id_row(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("server {id} vanished")))
    }

    /// Housekeeping: delete tokens expired before `before`; how many.
    pub async fn prune_server_verifications(&self, before: i64) -> Result<u64, StoreError> {
        self.write(async |c| Ok(c.query(PRUNE).bind(before).execute().await?))
            .await
    }

    async fn server_by_id_row(&self, id: i64) -> Result<Option<ServerRow>, StoreError> {
        self.read(async |c| {
            let row = c
                .query(crate::sql::SERVER_BY_ID)
                .bind(id)
                .fetch_optional()
                .await?;
            crate::registry::with_zones(c, row).await
        })
        .await
    }
}
