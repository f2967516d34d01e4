//! Monitor registrations (`agent setup`): an agent registers once from
//! each address family with its random secret; a volunteer accepts the
//! registration for an account by its short code, which makes the monitor
//! rows (`pending`); the agent collects its keys once; a pool admin
//! approves the monitor (`pending` → `testing`). Secrets, codes and keys
//! arrive here as hashes (see `server::keys::hash_key`).

use crate::audit::{self, AuditEntry};
use crate::conn::Conn;
use crate::monitors::{MonitorRead, insert_monitor};
use crate::{GlobalStatus, MonitorRow, NewMonitor, Store, StoreError, constraint, sql};
use std::net::IpAddr;

/// A registration as stored (never its secret or code).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RegistrationRow {
    pub id: i64,
    pub hostname: String,
    pub client_version: String,
    pub name_hint: String,
    /// Source addresses the service saw, one per family.
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub created_on: i64,
    /// Until accepted: when it can no longer be accepted. Once accepted:
    /// when its keys can no longer be collected.
    pub expires: i64,
    pub account_id: Option<i64>,
    pub accepted_on: Option<i64>,
    pub monitor_name: Option<String>,
    pub delivered_on: Option<i64>,
}

impl RegistrationRow {
    /// Accepted, or past its time: its code is spent either way.
    pub fn usable(&self, now: i64) -> bool {
        self.accepted_on.is_none() && now < self.expires
    }
}

/// What an agent sends when it registers (one family at a time).
#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub secret_hash: String,
    /// Derived from the secret by the service, so the same secret always
    /// has the same code.
    pub code_hash: String,
    pub hostname: String,
    pub client_version: String,
    pub name_hint: String,
    /// The request's source address.
    pub ip: IpAddr,
}

/// How a registration request went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// New, or the same secret from another family (its address added).
    Waiting(Box<RegistrationRow>),
    /// The secret's registration has expired: run setup again.
    Expired,
    /// The secret's registration was accepted already: nothing changes.
    Accepted,
}

/// A volunteer's acceptance of a registration for their account.
#[derive(Debug, Clone)]
pub struct Acceptance<'a> {
    pub code_hash: &'a str,
    pub account_id: i64,
    pub user_id: Option<i64>,
    /// For the audit log (`user:<email>`).
    pub actor: &'a str,
    /// The IPv4 row's name; the IPv6 row is `NAME-v6`.
    pub name: &'a str,
    pub location: &'a str,
    /// `--max-monitors-per-account`, unless the account has its own.
    pub default_limit: u32,
    /// How long the agent then has to collect its keys.
    pub collect_ttl: i64,
}

/// What the agent's status poll finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    Waiting,
    Expired,
    /// Collected before: the keys are never given out again.
    Delivered,
    /// Accepted: the monitors (family, name) whose keys are now the
    /// hashes given; this happens once.
    Now(Vec<(u8, String)>),
}

macro_rules! registration_cols {
    () => {
        "SELECT id, hostname, client_version, name_hint, ipv4, ipv6, created_on, expires, \
         account_id, accepted_on, monitor_name, delivered_on FROM monitor_registrations"
    };
}
const BY_SECRET: &str = concat!(registration_cols!(), " WHERE secret_hash = $1");
const BY_CODE: &str = concat!(registration_cols!(), " WHERE code_hash = $1");
const INSERT: &str = "INSERT INTO monitor_registrations \
     (secret_hash, code_hash, hostname, client_version, name_hint, ipv4, ipv6, created_on, expires) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
const SET_IPV4: &str = "UPDATE monitor_registrations SET ipv4 = $2 WHERE id = $1";
const SET_IPV6: &str = "UPDATE monitor_registrations SET ipv6 = $2 WHERE id = $1";
const ACCEPT: &str = "UPDATE monitor_registrations SET account_id = $2, accepted_by = $3, \
     accepted_on = $4, monitor_name = $5, location = $6, expires = $7 \
     WHERE id = $1 AND accepted_on IS NULL";
const DELIVER: &str = "UPDATE monitor_registrations SET delivered_on = $2 \
     WHERE id = $1 AND delivered_on IS NULL";
const ROWS_OF: &str = "SELECT id, ip_version, name FROM monitors WHERE registration_id = $1 \
     ORDER BY ip_version";
const SET_KEY: &str = "UPDATE monitors SET key_hash = $2 WHERE id = $1";
const ACCOUNT_LIMIT: &str = "SELECT max_monitors FROM accounts WHERE id = $1";
/// One agent is one monitor, however many family rows it has.
const ACCOUNT_MONITORS: &str = "SELECT COUNT(DISTINCT COALESCE(registration_id, -id)) \
     FROM monitors WHERE account_id = $1 AND status <> 'deleted'";
const SET_ACCOUNT_LIMIT: &str = "UPDATE accounts SET max_monitors = $2 WHERE name = $1";
const APPROVE: &str = "UPDATE monitors SET status = 'testing' WHERE status = 'pending' \
     AND (id = $1 OR registration_id = $2) RETURNING id, ip_version, name";
const PRUNE: &str = "DELETE FROM monitor_registrations WHERE expires < $1 AND accepted_on IS NULL";

/// A monitor row of a registration.
#[derive(sqlx::FromRow)]
struct FamilyRow {
    id: i64,
    ip_version: i64,
    name: String,
}

#[derive(sqlx::FromRow)]
struct Limit {
    max_monitors: Option<i64>,
}

/// The registration whose secret (`BY_SECRET`) or code (`BY_CODE`) has
/// this hash.
async fn by(
    c: &mut Conn<'_>,
    query: &'static str,
    hash: &str,
) -> Result<Option<RegistrationRow>, StoreError> {
    Ok(c.query(query).bind(hash).fetch_optional().await?)
}

/// The placeholder key hash of a row until its agent collects its keys:
/// not hex, so no key hashes to it, and unique per registration and family.
fn uncollected(registration_id: i64, family: i64) -> String {
    format!("uncollected:{registration_id}:{family}")
}

impl Store {
    /// Records a registration from `new.ip`, or adds that address (its
    /// family's) to the registration with the same secret. Expires at
    /// `expires`.
    pub async fn register_monitor(
        &self,
        new: NewRegistration,
        now: i64,
        expires: i64,
    ) -> Result<Registered, StoreError> {
        let ip = new.ip.to_canonical();
        self.write(async |c| {
            let id = match by(c, BY_SECRET, &new.secret_hash).await? {
                Some(r) if r.accepted_on.is_some() => return Ok(Registered::Accepted),
                Some(r) if now >= r.expires => return Ok(Registered::Expired),
                Some(r) => r.id,
                None => {
                    let (id,): (i64,) = c
                        .query(INSERT)
                        .bind(&new.secret_hash)
                        .bind(&new.code_hash)
                        .bind(&new.hostname)
                        .bind(&new.client_version)
                        .bind(&new.name_hint)
                        .bind(None::<String>)
                        .bind(None::<String>)
                        .bind(now)
                        .bind(expires)
                        .fetch_one()
                        .await
                        .map_err(|e| {
                            constraint(
                                e,
                                || "registration code in use; register again".into(),
                                || "registration".into(),
                            )
                        })?;
                    id
                }
            };
            let set = if ip.is_ipv4() { SET_IPV4 } else { SET_IPV6 };
            c.query(set).bind(id).bind(ip.to_string()).execute().await?;
            let row = by(c, BY_SECRET, &new.secret_hash).await?;
            row.map(|r| Registered::Waiting(Box::new(r)))
                .ok_or_else(|| StoreError::Corrupt(format!("registration {id} vanished")))
        })
        .await
    }

    /// The registration with this code, in any state.
    pub async fn registration_by_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<RegistrationRow>, StoreError> {
        self.read(async |c| by(c, BY_CODE, code_hash).await).await
    }

    /// Accepts the registration for `a.account_id`: one `pending` monitor
    /// row per family it was seen from (`NAME`, `NAME-v6`), the
    /// registration marked (its code spent), audit `monitor.accept`; one
    /// transaction. `NotFound`: no such code; `Conflict`: accepted or
    /// expired, a name taken, or the account at its monitor limit.
    pub async fn accept_registration(
        &self,
        a: Acceptance<'_>,
        now: i64,
    ) -> Result<Vec<MonitorRow>, StoreError> {
        self.write(async |c| {
            let Some(r) = by(c, BY_CODE, a.code_hash).await? else {
                return Err(StoreError::NotFound("registration code".into()));
            };
            if !r.usable(now) {
                return Err(StoreError::Conflict(
                    "this registration was accepted already or has expired; run `poolwatch agent setup` again".into(),
                ));
            }
            let own: Option<Limit> = c.query(ACCOUNT_LIMIT).bind(a.account_id).fetch_optional().await?;
            let limit = own
                .and_then(|l| l.max_monitors)
                .unwrap_or(i64::from(a.default_limit));
            let (have,): (i64,) = c.query(ACCOUNT_MONITORS).bind(a.account_id).fetch_one().await?;
            if have + 1 > limit {
                return Err(StoreError::Conflict(format!(
                    "this account has {have} monitor(s), its limit is {limit}: delete one first, or ask the pool's admins for more"
                )));
            }
            let mut ids = Vec::new();
            for (family, addr) in [(4, &r.ipv4), (6, &r.ipv6)] {
                let Some(addr) = addr else { continue };
                let name = if family == 4 {
                    a.name.to_string()
                } else {
                    format!("{}-v6", a.name)
                };
                let new = NewMonitor {
                    name,
                    location: a.location.to_string(),
                    ip: crate::parse_ip(addr)?,
                    account_id: Some(a.account_id),
                    status: GlobalStatus::Pending,
                    key_hash: uncollected(r.id, family),
                };
                ids.push(insert_monitor(c, &new, Some(r.id), now).await?);
            }
            let n = c
                .query(ACCEPT)
                .bind(r.id)
                .bind(a.account_id)
                .bind(a.user_id)
                .bind(now)
                .bind(a.name)
                .bind(a.location)
                .bind(now + a.collect_ttl)
                .execute()
                .await?;
            if n == 0 {
                return Err(StoreError::Conflict("this registration was accepted already".into()));
            }
            let detail = [("IPv4", &r.ipv4), ("IPv6", &r.ipv6)]
                .iter()
                .filter_map(|(f, a)| a.as_ref().map(|a| format!("{f} {a}")))
                .collect::<Vec<_>>()
                .join(", ");
            let e = AuditEntry {
                account_id: Some(a.account_id),
                actor: a.actor.to_string(),
                action: "monitor.accept",
                subject: a.name.to_string(),
                detail: format!("{detail}; host {:?}, {}", r.hostname, r.client_version),
            };
            audit::record(c, &e, now).await?;
            let mut rows = Vec::new();
            for id in ids {
                let row: MonitorRead = c.query(sql::MONITOR_BY_ID).bind(id).fetch_one().await?;
                rows.push(row.row()?);
            }
            Ok(rows)
        })
        .await
    }

    /// The agent's poll. Once accepted, the first poll sets the monitors'
    /// keys to `key_hash_v4` / `key_hash_v6` and marks the registration
    /// delivered, in one transaction; every later poll gets `Delivered`.
    /// `NotFound` for an unknown secret.
    pub async fn collect_registration(
        &self,
        secret_hash: &str,
        key_hash_v4: &str,
        key_hash_v6: &str,
        now: i64,
    ) -> Result<Collected, StoreError> {
        self.write(async |c| {
            let Some(r) = by(c, BY_SECRET, secret_hash).await? else {
                return Err(StoreError::NotFound("registration".into()));
            };
            if r.delivered_on.is_some() {
                return Ok(Collected::Delivered);
            }
            if now >= r.expires {
                return Ok(Collected::Expired);
            }
            if r.accepted_on.is_none() {
                return Ok(Collected::Waiting);
            }
            // Two polls at once: only one marks it, the other sees 0 rows.
            if c.query(DELIVER).bind(r.id).bind(now).execute().await? == 0 {
                return Ok(Collected::Delivered);
            }
            let rows: Vec<FamilyRow> = c.query(ROWS_OF).bind(r.id).fetch_all().await?;
            let mut out = Vec::new();
            for m in rows {
                let hash = if m.ip_version == 4 {
                    key_hash_v4
                } else {
                    key_hash_v6
                };
                c.query(SET_KEY).bind(m.id).bind(hash).execute().await?;
                out.push((m.ip_version as u8, m.name));
            }
            Ok(Collected::Now(out))
        })
        .await
    }

    /// A pool admin approves a `pending` monitor: it and the other family
    /// row of its registration become `testing` (the selector promotes
    /// them), with their per-server rows; audit `monitor.approve`. The
    /// names approved. `NotFound`: no such monitor; `Invalid`: not pending.
    pub async fn approve_monitor(
        &self,
        name: &str,
        actor: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.write(async |c| {
            let m: Option<MonitorRead> = c
                .query(sql::MONITOR_BY_NAME)
                .bind(name)
                .fetch_optional()
                .await?;
            let Some(m) = m else {
                return Err(StoreError::NotFound(format!("monitor {name:?}")));
            };
            let m = m.row()?;
            if m.status != GlobalStatus::Pending {
                return Err(StoreError::Invalid(format!(
                    "monitor {name} is {}, not pending: only pending monitors are approved",
                    m.status
                )));
            }
            let reg: Option<(Option<i64>,)> = c
                .query("SELECT registration_id FROM monitors WHERE id = $1")
                .bind(m.id)
                .fetch_optional()
                .await?;
            let reg = reg.and_then(|r| r.0);
            let rows: Vec<FamilyRow> = c.query(APPROVE).bind(m.id).bind(reg).fetch_all().await?;
            let mut names = Vec::new();
            for r in rows {
                c.query(sql::SERVER_SCORES_FOR_MONITOR)
                    .bind(r.id)
                    .bind(r.ip_version)
                    .execute()
                    .await?;
                let e = AuditEntry {
                    account_id: m.account_id,
                    actor: actor.to_string(),
                    action: "monitor.approve",
                    subject: r.name.clone(),
                    detail: "pending → testing".into(),
                };
                audit::record(c, &e, now).await?;
                names.push(r.name);
            }
            names.sort();
            Ok(names)
        })
        .await
    }

    /// Sets an account's own monitor limit (`None`: the service's
    /// default). `NotFound` for an unknown account.
    pub async fn set_account_max_monitors(
        &self,
        account: &str,
        max: Option<u32>,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let n = c
                .query(SET_ACCOUNT_LIMIT)
                .bind(account)
                .bind(max.map(i64::from))
                .execute()
                .await?;
            crate::touched(n, || format!("account {account:?}"))
        })
        .await
    }

    /// Housekeeping: deletes registrations never accepted that expired
    /// before `before`; how many.
    pub async fn prune_registrations(&self, before: i64) -> Result<u64, StoreError> {
        self.write(async |c| Ok(c.query(PRUNE).bind(before).execute().await?))
            .await
    }
}
