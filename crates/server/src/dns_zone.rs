//! The pool zone for the DNS servers: built from the store (only servers
//! that pass the in-DNS rule or that the zone guard holds), served to stand-alone `poolwatch dns`
//! instances at `GET /api/dns-zone` (bearer token) and used directly by the
//! DNS server inside `serve`.

use crate::error::ApiError;
use crate::keys::hash_key;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use store::{Store, StoreError};

/// What `serve` needs to publish the zone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsZoneConfig {
    /// The pool zone, e.g. `pool.example.org`.
    pub origin: String,
    /// Name servers of the zone (relative to the origin unless they end in `.`).
    pub ns: Vec<String>,
    /// sha256 (hex) of the token `poolwatch dns` presents; `None` keeps the
    /// route closed.
    pub token_hash: Option<String>,
}

/// A seed that stays the same for one origin, so the `0`–`3` quarters do
/// not reshuffle on every refresh.
fn stable_seed(origin: &str) -> u64 {
    origin.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// The zone as it should be now.
pub async fn zone_from_store(
    store: &Store,
    cfg: &DnsZoneConfig,
    now: i64,
) -> Result<dns::ZoneData, StoreError> {
    // In DNS by score, or kept there by the zone guard.
    let guarded = store.server_dns_all().await?;
    let servers: Vec<dns::DnsServer> = store
        .list_servers()
        .await?
        .into_iter()
        .filter(|s| store::DnsMembership::for_server(s, guarded.get(&s.id), now).in_dns)
        .map(|s| dns::DnsServer {
            ip: s.ip,
            netspeed: s.netspeed.clamp(0, u32::MAX as i64) as u32,
            zones: s.zones,
        })
        .collect();
    let opts = dns::ZoneOptions {
        ns: cfg.ns.clone(),
        serial: now as u32,
        ..Default::default()
    };
    Ok(dns::build_zone(
        &cfg.origin,
        &servers,
        &opts,
        stable_seed(&cfg.origin),
    ))
}

/// `GET /api/dns-zone`: the zone as GeoDNS-style JSON, for `poolwatch dns`.
pub async fn get(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<dns::ZoneData>, ApiError> {
    let Some(cfg) = st.cfg().dns_zone.as_ref() else {
        return Err(ApiError::not_found(
            "this service publishes no DNS zone (start it with --zone)",
        ));
    };
    let Some(want) = cfg.token_hash.as_deref() else {
        return Err(ApiError::not_found(
            "no DNS token configured (--dns-token-file)",
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if hash_key(t) == want => {}
        _ => return Err(ApiError::unauthorized("a valid DNS token is required")),
    }
    let now = chrono::Utc::now().timestamp();
    Ok(Json(zone_from_store(st.store(), cfg, now).await?))
}

/// Answer DNS for the pool zone on `listener` from this store, refreshing
/// the zone every `refresh` without blocking queries, until `shutdown`;
/// UDP responses are rate-limited with `rrl`.
pub async fn run_dns(
    store: Store,
    cfg: DnsZoneConfig,
    listener: dns::DnsListener,
    geoip: Option<geo::GeoIp>,
    rrl: dns::RrlConfig,
    refresh: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let zones = dns::ZoneStore::new(&cfg.origin)
        .map_err(|e| anyhow::anyhow!("zone {}: {e}", cfg.origin))?;
    let source = {
        let (store, cfg) = (store.clone(), cfg.clone());
        move || {
            let (store, cfg) = (store.clone(), cfg.clone());
            async move { zone_from_store(&store, &cfg, chrono::Utc::now().timestamp()).await }
        }
    };
    tokio::spawn(dns::refresh_loop(
        zones.clone(),
        refresh,
        source,
        shutdown.clone().cancelled_owned(),
    ));
    listener
        .serve(
            dns::GeoDnsHandler::new(zones, geoip).with_rrl(&rrl),
            shutdown.cancelled_owned(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("DNS server: {e}"))
}
