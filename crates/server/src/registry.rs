//! `/api/v1/servers`, `/api/v1/servers/{ip}` and `/api/v1/zones`: what is
//! in the pool and whether DNS hands it out.

use crate::error::ApiError;
use crate::logfmt;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use std::net::IpAddr;
use store::{DnsMembership, ServerDns, ServerRow};

/// A server as the public API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    pub ip: String,
    pub ip_version: u8,
    /// Aggregate score, one decimal.
    pub score: f64,
    pub score_ts: Option<i64>,
    /// Handed out by DNS now (score ≥ 10, netspeed > 0, not leaving; or
    /// held by the zone guard).
    pub in_dns: bool,
    /// In DNS only because the zone guard holds it (its score is below 10
    /// but a monitor still sees it good while its zone loses many servers).
    pub held_by_guard: bool,
    /// kbit/s.
    pub netspeed: i64,
    pub zones: Vec<String>,
    /// `YYYY-MM-DD`, when a deletion is scheduled.
    pub deletion_on: Option<String>,
}

impl ServerInfo {
    /// `dns` is the server's `server_dns` row, if the zone guard wrote one.
    pub fn new(s: &ServerRow, dns: Option<&ServerDns>, now: i64) -> Self {
        let m = DnsMembership::for_server(s, dns, now);
        ServerInfo {
            ip: s.ip.to_string(),
            ip_version: s.ip_version,
            score: (s.score * 10.0).round() / 10.0,
            score_ts: s.score_ts,
            in_dns: m.in_dns,
            held_by_guard: m.held,
            netspeed: s.netspeed,
            zones: s.zones.clone(),
            deletion_on: s
                .deletion_on
                .and_then(|d| logfmt::timestamp(d).get(..10).map(str::to_string)),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ServerList {
    pub servers: Vec<ServerInfo>,
}

/// `GET /api/v1/servers`.
pub async fn list_servers(State(st): State<AppState>) -> Result<Json<ServerList>, ApiError> {
    let now = st.now();
    let dns = st.store().server_dns_all().await?;
    let servers = st
        .store()
        .list_servers()
        .await?
        .iter()
        .map(|s| ServerInfo::new(s, dns.get(&s.id), now))
        .collect();
    Ok(Json(ServerList { servers }))
}

/// A monitor's standing for one server.
#[derive(Debug, Serialize)]
pub struct ServerMonitor {
    pub id: i64,
    pub name: String,
    pub location: String,
    /// candidate, testing, active or paused, for this server.
    pub status: String,
    pub score: f64,
    pub score_ts: Option<i64>,
    /// Milliseconds, of the last result.
    pub rtt: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ServerDetail {
    #[serde(flatten)]
    pub server: ServerInfo,
    pub monitors: Vec<ServerMonitor>,
}

/// `GET /api/v1/servers/{ip}`.
pub async fn server(
    State(st): State<AppState>,
    Path(ip): Path<String>,
) -> Result<Json<ServerDetail>, ApiError> {
    let not_found = || ApiError::not_found("server not found");
    let ip: IpAddr = ip.parse().map_err(|_| not_found())?;
    let s = st.store().server_by_ip(ip).await?.ok_or_else(not_found)?;
    let monitors = st
        .store()
        .server_monitors(s.id)
        .await?
        .into_iter()
        .map(|m| ServerMonitor {
            id: m.monitor_id,
            name: m.name,
            location: m.location,
            status: m.status.to_string(),
            score: (m.score * 10.0).round() / 10.0,
            score_ts: m.score_ts,
            rtt: m.rtt.map(|s| s * 1000.0),
        })
        .collect();
    let dns = st.store().server_dns(s.id).await?;
    Ok(Json(ServerDetail {
        server: ServerInfo::new(&s, dns.as_ref(), st.now()),
        monitors,
    }))
}

/// Server counts of one zone for one IP version.
#[derive(Debug, Serialize)]
pub struct ZoneCounts {
    /// In DNS now.
    pub active: i64,
    /// Registered and not deleted.
    pub registered: i64,
}

#[derive(Debug, Serialize)]
pub struct ZoneInfo {
    pub name: String,
    pub parent: Option<String>,
    pub description: String,
    pub dns: bool,
    pub v4: ZoneCounts,
    pub v6: ZoneCounts,
}

#[derive(Debug, Serialize)]
pub struct ZoneList {
    pub zones: Vec<ZoneInfo>,
}

/// `GET /api/v1/zones`.
pub async fn zones(State(st): State<AppState>) -> Result<Json<ZoneList>, ApiError> {
    let zones = st
        .store()
        .zone_list(st.now())
        .await?
        .into_iter()
        .map(|z| ZoneInfo {
            name: z.name,
            parent: z.parent,
            description: z.description,
            dns: z.dns,
            v4: ZoneCounts {
                active: z.v4_active,
                registered: z.v4_registered,
            },
            v6: ZoneCounts {
                active: z.v6_active,
                registered: z.v6_registered,
            },
        })
        .collect();
    Ok(Json(ZoneList { zones }))
}
