//! Accounts, zones and servers: what the operator registers.

use crate::conn::Conn;
use crate::{
    AccountRow, DnsMembership, NewServer, ServerDns, ServerRow, Store, StoreError, ZoneSeed,
    ZoneSummary, constraint, ip_version, non_empty, parse_ip, sql, touched,
};
use std::collections::HashMap;
use std::net::IpAddr;

/// Longest account name.
pub const ACCOUNT_NAME_MAX: usize = 100;

impl Store {
    /// The id of the account `name`, created if missing. A name is at
    /// most [`ACCOUNT_NAME_MAX`] characters without control characters
    /// (it is shown on every manage page and in the audit log).
    pub async fn ensure_account(&self, name: &str) -> Result<i64, StoreError> {
        let name = non_empty("account name", name)?;
        if name.chars().count() > ACCOUNT_NAME_MAX || name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "account name: 1 to {ACCOUNT_NAME_MAX} characters, no control characters"
            )));
        }
        self.write(async |c| {
            c.query(sql::ACCOUNT_INSERT).bind(name).execute().await?;
            let (id,): (i64,) = c.query(sql::ACCOUNT_ID).bind(name).fetch_one().await?;
            Ok(id)
        })
        .await
    }

    pub async fn account_by_name(&self, name: &str) -> Result<Option<AccountRow>, StoreError> {
        self.read(async |c| {
            Ok(c.query(sql::ACCOUNT_BY_NAME)
                .bind(name)
                .fetch_optional()
                .await?)
        })
        .await
    }

    /// Sets (or clears, with `None`) the account's alert contacts.
    pub async fn set_account_contact(
        &self,
        name: &str,
        email: Option<&str>,
        webhook: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let n = c
                .query(sql::ACCOUNT_SET_CONTACT)
                .bind(name)
                .bind(email)
                .bind(webhook)
                .execute()
                .await?;
            touched(n, || format!("account {name:?}"))
        })
        .await
    }

    // ------------------------------------------------------------------- zones

    /// Creates missing zones and updates descriptions and parents; running it
    /// again with the same tree changes nothing. A parent must be in the list
    /// or already stored.
    pub async fn seed_zones(&self, zones: &[ZoneSeed]) -> Result<(), StoreError> {
        for z in zones {
            non_empty("zone name", &z.name)?;
        }
        self.write(async |c| {
            for z in zones {
                c.query(sql::ZONE_UPSERT)
                    .bind(&z.name)
                    .bind(&z.description)
                    .bind(z.name != ".")
                    .execute()
                    .await?;
            }
            for z in zones {
                let parent_id: Option<i64> = match &z.parent {
                    None => None,
                    Some(p) => {
                        let id: Option<(i64,)> =
                            c.query(sql::ZONE_ID).bind(p).fetch_optional().await?;
                        match id {
                            Some((id,)) => Some(id),
                            None => {
                                return Err(StoreError::Invalid(format!(
                                    "zone {:?}: unknown parent zone {p:?}",
                                    z.name
                                )));
                            }
                        }
                    }
                };
                c.query(sql::ZONE_SET_PARENT)
                    .bind(&z.name)
                    .bind(parent_id)
                    .execute()
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// Every zone, sorted by name, with its registered servers (not past
    /// their deletion date) and active ones (in DNS now).
    pub async fn zone_list(&self, now: i64) -> Result<Vec<ZoneSummary>, StoreError> {
        let (zones, members) = self
            .read(async |c| {
                let zones: Vec<ZoneRead> = c.query(sql::ZONE_LIST).fetch_all().await?;
                let members: Vec<MemberRead> = c.query(sql::ZONE_MEMBERS).fetch_all().await?;
                Ok((zones, members))
            })
            .await?;
        let mut counts: HashMap<i64, [i64; 4]> = HashMap::new();
        for m in members {
            if m.deletion_on.is_some_and(|d| d <= now) {
                continue;
            }
            // In DNS by score, or kept there by the zone guard.
            let stored = m.in_dns.map(|in_dns| ServerDns {
                server_id: 0,
                in_dns,
                held: m.held.unwrap_or(false),
                in_since: None,
                left_at: None,
            });
            let active =
                DnsMembership::of(m.score, m.netspeed, m.deletion_on, stored.as_ref(), now).in_dns;
            let e = counts.entry(m.zone_id).or_default();
            let base = if m.ip_version == 6 { 2 } else { 0 };
            e[base + 1] += 1;
            if active {
                e[base] += 1;
            }
        }
        Ok(zones
            .into_iter()
            .map(|z| {
                let [v4_active, v4_registered, v6_active, v6_registered] =
                    counts.get(&z.id).copied().unwrap_or_default();
                ZoneSummary {
                    name: z.name,
                    parent: z.parent,
                    description: z.description,
                    dns: z.dns,
                    v4_active,
                    v4_registered,
                    v6_active,
                    v6_registered,
                }
            })
            .collect())
    }

    // ----------------------------------------------------------------- servers

    /// Registers a server in the named zones and makes every non-deleted
    /// monitor of its IP version active for it. `Conflict` if the address
    /// exists, `Invalid` for an unknown zone or a negative netspeed.
    pub async fn add_server(&self, new: NewServer, now: i64) -> Result<ServerRow, StoreError> {
        if new.netspeed < 0 {
            return Err(StoreError::Invalid(format!(
                "netspeed {} must not be negative",
                new.netspeed
            )));
        }
        self.write(async |c| {
            let id = insert_server(c, &new, now).await?;
            let row = c.query(sql::SERVER_BY_ID).bind(id).fetch_one().await?;
            let row = with_zones(c, Some(row)).await?;
            row.ok_or_else(|| StoreError::Corrupt(format!("server {id} vanished")))
        })
        .await
    }

    pub async fn server_by_ip(&self, ip: IpAddr) -> Result<Option<ServerRow>, StoreError> {
        let ip_text = ip.to_canonical().to_string();
        self.read(async |c| {
            let row = c
                .query(sql::SERVER_BY_IP)
                .bind(&ip_text)
                .fetch_optional()
                .await?;
            with_zones(c, row).await
        })
        .await
    }

    /// Every server (including those past their deletion date), by id.
    pub async fn list_servers(&self) -> Result<Vec<ServerRow>, StoreError> {
        let (rows, zones) = self
            .read(async |c| {
                let rows: Vec<ServerRead> = c.query(sql::SERVER_ALL).fetch_all().await?;
                let zones: Vec<ZoneName> = c.query(sql::SERVER_ZONES_ALL).fetch_all().await?;
                Ok((rows, zones))
            })
            .await?;
        let mut by_server: HashMap<i64, Vec<String>> = HashMap::new();
        for z in zones {
            by_server.entry(z.server_id).or_default().push(z.name);
        }
        rows.into_iter()
            .map(|r| {
                let z = by_server.remove(&r.id).unwrap_or_default();
                r.row(z)
            })
            .collect()
    }

    /// The servers of one account, by id, each with its in-DNS state
    /// (`DnsMembership::for_server` decides with it): three reads however
    /// many servers it has.
    pub async fn account_servers(
        &self,
        account_id: i64,
    ) -> Result<Vec<(ServerRow, Option<ServerDns>)>, StoreError> {
        let (rows, zones, dns) = self
            .read(async |c| {
                let rows: Vec<ServerRead> = c
                    .query(sql::SERVER_OF_ACCOUNT)
                    .bind(account_id)
                    .fetch_all()
                    .await?;
                let zones: Vec<ZoneName> = c
                    .query(sql::SERVER_ZONES_OF_ACCOUNT)
                    .bind(account_id)
                    .fetch_all()
                    .await?;
                let dns: Vec<ServerDns> = c
                    .query(sql::SERVER_DNS_OF_ACCOUNT)
                    .bind(account_id)
                    .fetch_all()
                    .await?;
                Ok((rows, zones, dns))
            })
            .await?;
        let mut by_server: HashMap<i64, Vec<String>> = HashMap::new();
        for z in zones {
            by_server.entry(z.server_id).or_default().push(z.name);
        }
        let mut dns: HashMap<i64, ServerDns> = dns.into_iter().map(|d| (d.server_id, d)).collect();
        rows.into_iter()
            .map(|r| {
                let z = by_server.remove(&r.id).unwrap_or_default();
                let d = dns.remove(&r.id);
                Ok((r.row(z)?, d))
            })
            .collect()
    }

    /// Sets the DNS weight in kbit/s (0: monitored, never in DNS).
    pub async fn set_netspeed(&self, ip: IpAddr, kbit: i64) -> Result<(), StoreError> {
        if kbit < 0 {
            return Err(StoreError::Invalid(format!(
                "netspeed {kbit} must not be negative"
            )));
        }
        let ip_text = ip.to_canonical().to_string();
        self.write(async |c| {
            let n = c
                .query(sql::SERVER_SET_NETSPEED)
                .bind(&ip_text)
                .bind(kbit)
                .execute()
                .await?;
            touched(n, || format!("server {ip_text}"))
        })
        .await
    }

    /// Schedules (unix seconds of the day, 00:00 UTC) or cancels deletion.
    pub async fn set_deletion(&self, ip: IpAddr, on: Option<i64>) -> Result<(), StoreError> {
        let ip_text = ip.to_canonical().to_string();
        self.write(async |c| {
            let n = c
                .query(sql::SERVER_SET_DELETION)
                .bind(&ip_text)
                .bind(on)
                .execute()
                .await?;
            touched(n, || format!("server {ip_text}"))
        })
        .await
    }
}

/// Inserts a server in its zones, with every non-deleted monitor of its IP
/// version as a candidate, inside the caller's transaction; its id.
pub(crate) async fn insert_server(
    c: &mut Conn<'_>,
    new: &NewServer,
    now: i64,
) -> Result<i64, StoreError> {
    let ip = new.ip.to_canonical();
    let ip_text = ip.to_string();
    let version = ip_version(ip);
    let mut zone_ids = Vec::with_capacity(new.zones.len());
    for z in &new.zones {
        let id: Option<(i64,)> = c.query(sql::ZONE_ID).bind(z).fetch_optional().await?;
        match id {
            Some((id,)) => zone_ids.push(id),
            None => return Err(StoreError::Invalid(format!("unknown zone {z:?}"))),
        }
    }
    let (id,): (i64,) = c
        .query(sql::SERVER_INSERT)
        .bind(&ip_text)
        .bind(version)
        .bind(new.account_id)
        .bind(new.netspeed)
        .bind(now)
        .fetch_one()
        .await
        .map_err(|e| {
            constraint(
                e,
                || format!("server {ip_text} already exists"),
                || format!("account {:?} does not exist", new.account_id),
            )
        })?;
    for z in zone_ids {
        c.query(sql::SERVER_ZONE_INSERT)
            .bind(id)
            .bind(z)
            .execute()
            .await?;
    }
    c.query(sql::SERVER_SCORES_FOR_SERVER)
        .bind(id)
        .bind(version)
        .execute()
        .await?;
    Ok(id)
}

/// A `servers` row as stored (`ServerRow` without its zones).
#[derive(sqlx::FromRow)]
pub(crate) struct ServerRead {
    id: i64,
    ip: String,
    ip_version: i64,
    account_id: Option<i64>,
    netspeed: i64,
    score: f64,
    score_ts: Option<i64>,
    deletion_on: Option<i64>,
    created_on: i64,
    hostname: Option<String>,
    verified_on: Option<i64>,
    note: String,
    alerts_on: bool,
    account_disabled: bool,
}

impl ServerRead {
    fn row(self, zones: Vec<String>) -> Result<ServerRow, StoreError> {
        Ok(ServerRow {
            id: self.id,
            ip: parse_ip(&self.ip)?,
            ip_version: self.ip_version as u8,
            account_id: self.account_id,
            netspeed: self.netspeed,
            score: self.score,
            score_ts: self.score_ts,
            deletion_on: self.deletion_on,
            created_on: self.created_on,
            zones,
            hostname: self.hostname,
            verified_on: self.verified_on,
            note: self.note,
            alerts_on: self.alerts_on,
            account_disabled: self.account_disabled,
        })
    }
}

/// The server of `row` (if any) with its zones.
pub(crate) async fn with_zones(
    c: &mut Conn<'_>,
    row: Option<ServerRead>,
) -> Result<Option<ServerRow>, StoreError> {
    let Some(row) = row else { return Ok(None) };
    let zones: Vec<ZoneName> = c
        .query(sql::SERVER_ZONES_OF)
        .bind(row.id)
        .fetch_all()
        .await?;
    row.row(zones.into_iter().map(|z| z.name).collect())
        .map(Some)
}

/// One zone of a server.
#[derive(sqlx::FromRow)]
struct ZoneName {
    server_id: i64,
    name: String,
}

#[derive(sqlx::FromRow)]
struct ZoneRead {
    id: i64,
    name: String,
    parent: Option<String>,
    description: String,
    dns: bool,
}

/// A server of a zone, with what decides whether it is in DNS.
#[derive(sqlx::FromRow)]
struct MemberRead {
    zone_id: i64,
    ip_version: i64,
    score: f64,
    netspeed: i64,
    deletion_on: Option<i64>,
    in_dns: Option<bool>,
    held: Option<bool>,
}
