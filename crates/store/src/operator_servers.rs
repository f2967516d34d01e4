//! Servers as their operators see them: an account's own servers, adding
//! one under the pool's rules, and the settings an operator may change.
//! Every change is scoped to the account (another account's server is
//! `NotFound`, as if it did not exist) and writes the audit log in the
//! same transaction. The policy that needs no database (public address,
//! the pool's netspeed choices, the deletion date) is the server crate's.

use crate::audit::{self, AuditEntry};
use crate::conn::Conn;
use crate::registry::{ServerRead, insert_server, with_zones};
use crate::sql::server_cols;
use crate::{NewServer, ServerRow, Store, StoreError};
use std::net::IpAddr;

/// The account limits an add is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddLimits {
    /// Servers one account may have.
    pub max_servers: i64,
    /// Unverified servers an account may have before it must verify.
    pub max_unverified: i64,
}

/// A server an operator adds (the live check passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorAdd {
    pub account_id: i64,
    pub ip: IpAddr,
    /// The hostname it was added by, if any.
    pub hostname: Option<String>,
    pub netspeed: i64,
    pub zones: Vec<String>,
}

/// What an add did.
#[derive(Debug, Clone, PartialEq)]
pub enum Added {
    New(ServerRow),
    /// The account's own server, scheduled for deletion: the deletion was
    /// cancelled instead.
    Readded(ServerRow),
}

/// What may be added: `Readd` when the address is the account's own
/// server scheduled for deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddCheck {
    New,
    Readd,
}

const BY_ACCOUNT_IP: &str = concat!(server_cols!(), " WHERE s.account_id = $1 AND s.ip = $2");
const OWNER: &str = "SELECT account_id, deletion_on FROM servers WHERE ip = $1";
const COUNTS: &str = "SELECT COUNT(*), COALESCE(SUM(CASE WHEN verified_on IS NULL THEN 1 ELSE 0 END), 0) \
     FROM servers WHERE account_id = $1";
const SET_HOSTNAME: &str = "UPDATE servers SET hostname = $2 WHERE id = $1";
const SET_NETSPEED: &str = "UPDATE servers SET netspeed = $2 WHERE id = $1";
const SET_DELETION: &str = "UPDATE servers SET deletion_on = $2 WHERE id = $1";
const SET_ALERTS: &str = "UPDATE servers SET alerts_on = $2 WHERE id = $1";
const SET_NOTE: &str = "UPDATE servers SET note = $2 WHERE id = $1";
const DUE: &str = "SELECT id, ip, account_id FROM servers \
     WHERE deletion_on IS NOT NULL AND deletion_on <= $1 ORDER BY id";
const DELETE: &str = "DELETE FROM servers WHERE id = $1";

#[derive(sqlx::FromRow)]
struct Owner {
    account_id: Option<i64>,
    deletion_on: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct DueRead {
    id: i64,
    ip: String,
    account_id: Option<i64>,
}

/// The pool's rules for adding `ip` to `account_id`, read in the caller's
/// transaction; `Conflict` with the operator's explanation when refused.
async fn add_check(
    c: &mut Conn<'_>,
    account_id: i64,
    ip: IpAddr,
    limits: AddLimits,
) -> Result<AddCheck, StoreError> {
    let ip = ip.to_canonical();
    let owner: Option<Owner> = c.query(OWNER).bind(ip.to_string()).fetch_optional().await?;
    match owner {
        Some(o) if o.account_id == Some(account_id) && o.deletion_on.is_some() => {
            return Ok(AddCheck::Readd);
        }
        Some(o) if o.account_id == Some(account_id) => {
            return Err(StoreError::Conflict(format!(
                "{ip} is already in the pool, and already yours"
            )));
        }
        Some(_) => {
            return Err(StoreError::Conflict(format!(
                "{ip} is already in the pool, registered by another account; \
                 write to the pool's admins if it is yours"
            )));
        }
        None => {}
    }
    let (total, unverified): (i64, i64) = c.query(COUNTS).bind(account_id).fetch_one().await?;
    if total >= limits.max_servers {
        return Err(StoreError::Conflict(format!(
            "this account has {total} servers, the most one account may have ({})",
            limits.max_servers
        )));
    }
    if unverified >= limits.max_unverified {
        return Err(StoreError::Conflict(format!(
            "verify your servers before adding more: this account has {unverified} unverified \
             (at most {} allowed)",
            limits.max_unverified
        )));
    }
    Ok(AddCheck::New)
}

/// The account's server at `ip`, in the caller's transaction; `NotFound`
/// for another account's (or no) server.
async fn owned(c: &mut Conn<'_>, account_id: i64, ip: IpAddr) -> Result<ServerRow, StoreError> {
    let ip = ip.to_canonical();
    let row: Option<ServerRead> = c
        .query(BY_ACCOUNT_IP)
        .bind(account_id)
        .bind(ip.to_string())
        .fetch_optional()
        .await?;
    with_zones(c, row)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("server {ip}")))
}

fn entry(
    account_id: i64,
    actor: &str,
    action: &'static str,
    ip: IpAddr,
    detail: String,
) -> AuditEntry {
    AuditEntry {
        account_id: Some(account_id),
        actor: actor.to_string(),
        action,
        subject: ip.to_string(),
        detail,
    }
}

impl Store {
    /// Whether `account_id` may add `ip` now (nothing written): the same
    /// rules [`Store::add_operator_server`] applies, for refusing before a
    /// live check is made.
    pub async fn check_operator_add(
        &self,
        account_id: i64,
        ip: IpAddr,
        limits: AddLimits,
    ) -> Result<AddCheck, StoreError> {
        self.read(async |c| add_check(c, account_id, ip, limits).await)
            .await
    }

    /// Add a server for an operator, under the pool's rules (checked again
    /// here, in the transaction that adds): not already in the pool (the
    /// account's own server scheduled for deletion is re-added by
    /// cancelling the deletion), the account under `max_servers` and under
    /// `max_unverified` unverified servers. Refused → `Conflict`, nothing
    /// written. Audit `server.add` (or `server.readd`).
    pub async fn add_operator_server(
        &self,
        a: &OperatorAdd,
        limits: AddLimits,
        actor: &str,
        now: i64,
    ) -> Result<Added, StoreError> {
        self.write(
            async |c| match add_check(c, a.account_id, a.ip, limits).await? {
                AddCheck::Readd => {
                    let s = owned(c, a.account_id, a.ip).await?;
                    c.query(SET_DELETION)
                        .bind(s.id)
                        .bind(None::<i64>)
                        .execute()
                        .await?;
                    let e = entry(
                        a.account_id,
                        actor,
                        "server.readd",
                        s.ip,
                        "deletion cancelled".into(),
                    );
                    audit::record(c, &e, now).await?;
                    Ok(Added::Readded(owned(c, a.account_id, a.ip).await?))
                }
                AddCheck::New => {
                    let new = NewServer {
                        ip: a.ip,
                        netspeed: a.netspeed,
                        account_id: Some(a.account_id),
                        zones: a.zones.clone(),
                    };
                    let id = insert_server(c, &new, now).await?;
                    c.query(SET_HOSTNAME)
                        .bind(id)
                        .bind(a.hostname.as_deref())
                        .execute()
                        .await?;
                    let detail = format!(
                        "zones {}; netspeed {} kbit{}",
                        a.zones.join(" "),
                        a.netspeed,
                        a.hostname
                            .as_deref()
                            .map(|h| format!("; hostname {h}"))
                            .unwrap_or_default()
                    );
                    audit::record(
                        c,
                        &entry(
                            a.account_id,
                            actor,
                            "server.add",
                            a.ip.to_canonical(),
                            detail,
                        ),
                        now,
                    )
                    .await?;
                    Ok(Added::New(owned(c, a.account_id, a.ip).await?))
                }
            },
        )
        .await
    }

    /// The account's server at `ip`; `None` for another account's.
    pub async fn account_server(
        &self,
        account_id: i64,
        ip: IpAddr,
    ) -> Result<Option<ServerRow>, StoreError> {
        match self.read(async |c| owned(c, account_id, ip).await).await {
            Ok(s) => Ok(Some(s)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Set the account's server's netspeed (the caller checked it is one
    /// of the pool's choices). An unverified server may not go above
    /// `unverified_max`: `Invalid` naming the field. Audit `server.netspeed`.
    pub async fn set_account_server_netspeed(
        &self,
        account_id: i64,
        ip: IpAddr,
        kbit: i64,
        unverified_max: i64,
        actor: &str,
        now: i64,
    ) -> Result<ServerRow, StoreError> {
        self.write(async |c| {
            let s = owned(c, account_id, ip).await?;
            if s.verified_on.is_none() && kbit > unverified_max {
                return Err(StoreError::Invalid(format!(
                    "netspeed: verify {} before raising its netspeed above {unverified_max} kbit",
                    s.ip
                )));
            }
            c.query(SET_NETSPEED)
                .bind(s.id)
                .bind(kbit)
                .execute()
                .await?;
            let detail = format!("{} → {kbit} kbit", s.netspeed);
            audit::record(
                c,
                &entry(account_id, actor, "server.netspeed", s.ip, detail),
                now,
            )
            .await?;
            owned(c, account_id, ip).await
        })
        .await
    }

    /// Schedule (`Some`, 00:00 UTC of the day; the caller checked it is far
    /// enough ahead) or cancel (`None`) the deletion of the account's
    /// server. Audit `server.delete` / `server.delete_cancel`.
    pub async fn set_account_server_deletion(
        &self,
        account_id: i64,
        ip: IpAddr,
        on: Option<i64>,
        actor: &str,
        now: i64,
    ) -> Result<ServerRow, StoreError> {
        self.write(async |c| {
            let s = owned(c, account_id, ip).await?;
            if on.is_none() && s.deletion_on.is_none() {
                return Err(StoreError::Conflict(format!(
                    "deletion: {} is not scheduled for deletion",
                    s.ip
                )));
            }
            c.query(SET_DELETION).bind(s.id).bind(on).execute().await?;
            let (action, detail) = match on {
                Some(d) => ("server.delete", format!("on {d}")),
                None => ("server.delete_cancel", String::new()),
            };
            audit::record(c, &entry(account_id, actor, action, s.ip, detail), now).await?;
            owned(c, account_id, ip).await
        })
        .await
    }

    /// Turn alerts about the account's server on or off. Audit `server.alerts`.
    pub async fn set_account_server_alerts(
        &self,
        account_id: i64,
        ip: IpAddr,
        on: bool,
        actor: &str,
        now: i64,
    ) -> Result<ServerRow, StoreError> {
        self.write(async |c| {
            let s = owned(c, account_id, ip).await?;
            c.query(SET_ALERTS).bind(s.id).bind(on).execute().await?;
            let detail = if on { "on" } else { "off" }.to_string();
            audit::record(
                c,
                &entry(account_id, actor, "server.alerts", s.ip, detail),
                now,
            )
            .await?;
            owned(c, account_id, ip).await
        })
        .await
    }

    /// Set the operator's note on the account's server (the caller bounds
    /// its length). Audit `server.note`.
    pub async fn set_account_server_note(
        &self,
        account_id: i64,
        ip: IpAddr,
        note: &str,
        actor: &str,
        now: i64,
    ) -> Result<ServerRow, StoreError> {
        self.write(async |c| {
            let s = owned(c, account_id, ip).await?;
            c.query(SET_NOTE).bind(s.id).bind(note).execute().await?;
            audit::record(
                c,
                &entry(account_id, actor, "server.note", s.ip, note.to_string()),
                now,
            )
            .await?;
            owned(c, account_id, ip).await
        })
        .await
    }

    /// Housekeeping: remove the servers whose deletion date has come (work
    /// stopped handing them out on that date), each in its own transaction
    /// with an audit entry (`system`, `server.remove`); how many.
    pub async fn remove_due_servers(&self, now: i64) -> Result<u64, StoreError> {
        let due: Vec<DueRead> = self
            .read(async |c| Ok(c.query(DUE).bind(now).fetch_all().await?))
            .await?;
        let mut removed = 0;
        for d in due {
            self.write(async |c| {
                let n = c.query(DELETE).bind(d.id).execute().await?;
                if n > 0
                    && let Some(account_id) = d.account_id
                {
                    let e = AuditEntry {
                        account_id: Some(account_id),
                        actor: "system".into(),
                        action: "server.remove",
                        subject: d.ip.clone(),
                        detail: "deletion date reached".into(),
                    };
                    audit::record(c, &e, now).await?;
                }
                removed += n;
                Ok(())
            })
            .await?;
        }
        Ok(removed)
    }
}
