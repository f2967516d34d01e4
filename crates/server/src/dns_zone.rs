//! The pool zone for the DNS servers: built from the store (only servers
//! that pass the in-DNS rule or that the zone guard holds), served to stand-alone `poolwatch dns`
//! instances at `GET /api/dns-zone` (bearer token) and used directly by the
//! DNS server inside `serve`.

use crate::error::ApiError;
use crate::jobs::{Job, JobName};
use crate::keys::hash_key;
use crate::state::{AppState, Clock};
use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

pub(crate) mod settings;
pub use settings::DnsZoneConfig;

/// A seed that stays the same for one origin, so the `0`–`3` quarters do
/// not reshuffle on every refresh.
fn stable_seed(origin: &str) -> u64 {
    origin.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// The zone as it should be now, with the vendor zones as aliases.
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
    let vendors = store
        .vendors()
        .await?
        .into_iter()
        .map(|v| dns::Vendor {
            name: v.name,
            zone: v.zone,
        })
        .collect();
    let opts = dns::ZoneOptions {
        ns: cfg.ns.clone(),
        serial: now as u32,
        ipv6_everywhere: cfg.ipv6_everywhere,
        vendors,
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
    let cfg = dns_token(&st, &headers)?;
    Ok(Json(zone_from_store(st.store(), cfg, st.now()).await?))
}

/// The zone settings when `headers` carry the DNS token (`--dns-token-file`,
/// compared by hash): the `poolwatch dns` routes' one check.
pub(crate) fn dns_token<'a>(
    st: &'a AppState,
    headers: &HeaderMap,
) -> Result<&'a DnsZoneConfig, ApiError> {
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
    Ok(cfg)
}

/// What the DNS server inside `serve` answers from and how.
#[derive(Clone)]
pub struct DnsJob {
    pub store: Store,
    pub zone: DnsZoneConfig,
    pub geoip: Option<geo::GeoIp>,
    /// UDP response rate limit.
    pub rrl: dns::RrlConfig,
    /// Time between zone refreshes from the store.
    pub refresh: Duration,
    /// Time between storing the answer counts (`--dns-count-interval`,
    /// `dns_counts::record_loop`); zero: not stored.
    pub count_interval: Duration,
    pub clock: Clock,
}

impl DnsJob {
    /// The DNS server as a background job of `serve`, on `listener` (bound
    /// by the caller, so a busy port is refused at start). A restart after
    /// a failure binds the same address again.
    pub fn job(self, listener: dns::DnsListener) -> Job {
        let addr: Option<SocketAddr> = listener.local_addr().ok();
        let first = Arc::new(Mutex::new(Some(listener)));
        Job::new(JobName::Dns, move |stop| {
            let (this, first) = (self.clone(), first.clone());
            async move {
                let taken = first.lock().unwrap_or_else(|e| e.into_inner()).take();
                let listener = match taken {
                    Some(l) => l,
                    None => {
                        let addr = addr.context("the DNS listener had no address")?;
                        dns::DnsListener::bind(addr)
                            .await
                            .with_context(|| format!("cannot listen for DNS on {addr}"))?
                    }
                };
                run_dns(this, listener, stop).await
            }
        })
    }
}

/// Answer DNS for the pool zone on `listener` from the job's store,
/// refreshing the zone every `refresh` without blocking queries and
/// storing the answer counts every `count_interval` (and once more when
/// stopping: the answers of the last interval are kept), until `shutdown`;
/// UDP responses are rate-limited with `rrl`.
pub async fn run_dns(
    job: DnsJob,
    listener: dns::DnsListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let DnsJob {
        store,
        zone: cfg,
        geoip,
        rrl,
        refresh,
        count_interval,
        clock,
    } = job;
    let zones = dns::ZoneStore::new(&cfg.origin)
        .map_err(|e| anyhow::anyhow!("zone {}: {e}", cfg.origin))?;
    let source = {
        let (store, cfg, clock) = (store.clone(), cfg.clone(), clock.clone());
        move || {
            let (store, cfg, now) = (store.clone(), cfg.clone(), clock.now());
            async move { zone_from_store(&store, &cfg, now).await }
        }
    };
    tokio::spawn(dns::refresh_loop(
        zones.clone(),
        refresh,
        source,
        shutdown.clone().cancelled_owned(),
    ));
    let handler = dns::GeoDnsHandler::new(zones, geoip).with_rrl(&rrl);
    // The counts are stored directly (no HTTP): the loop's last harvest
    // runs after the listener has stopped, so it holds the last answers.
    // Interval 0 (`--dns-count-interval off`): nothing stored.
    let counts = handler.counts();
    let counting = CancellationToken::new();
    let recorder = (!count_interval.is_zero()).then(|| {
        tokio::spawn(crate::dns_counts::record_loop(
            store,
            clock.clone(),
            count_interval,
            move || counts.harvest(clock.now()),
            counting.clone(),
        ))
    });
    let served = listener
        .serve(handler, shutdown.cancelled_owned())
        .await
        .map_err(|e| anyhow::anyhow!("DNS server: {e}"));
    counting.cancel();
    if let Some(recorder) = recorder {
        let _ = recorder.await;
    }
    served
}
