//! The zone being served, swapped whole when new data arrives, and the
//! loop that refreshes it from a caller-supplied source.

use crate::counts::Shared;
use crate::model::ZoneData;
use crate::zone::{Zone, ZoneError};
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current zone, shared by every query and the refresh loop. Cheap to
/// clone.
///
/// Queries take the read lock only long enough to clone an `Arc` (tens of
/// nanoseconds); a refresh builds the new [`Zone`] outside the lock and
/// holds the write lock only to swap the pointer, so queries never wait
/// for a load.
#[derive(Clone)]
pub struct ZoneStore {
    /// The zone's names, lower case, without the final dot, as given.
    origins: Arc<[String]>,
    current: Arc<RwLock<Option<Arc<Zone>>>>,
    /// The answer counts of every zone it loads (kept across loads).
    counts: Arc<Shared>,
}

impl ZoneStore {
    /// An empty store for `origin` (queries get SERVFAIL until a zone is
    /// loaded). Fails if `origin` is not a domain name.
    pub fn new(origin: &str) -> Result<ZoneStore, ZoneError> {
        ZoneStore::with_origins(&[origin])
    }

    /// An empty store whose zones answer under each of `origins` (see
    /// [`Zone::with_origins`]). Fails if one is not a domain name, one is
    /// given twice, or none is given.
    pub fn with_origins<S: AsRef<str>>(origins: &[S]) -> Result<ZoneStore, ZoneError> {
        // Check the names now rather than at the first load.
        Zone::with_origins(origins, &empty())?;
        Ok(ZoneStore {
            origins: origins
                .iter()
                .map(|o| o.as_ref().trim().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            current: Arc::new(RwLock::new(None)),
            counts: Arc::default(),
        })
    }

    /// The (first) zone name, lower case, without the final dot.
    pub fn origin(&self) -> &str {
        &self.origins[0]
    }

    /// Every zone name, as given, lower case, without the final dot.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    pub(crate) fn counts(&self) -> &Arc<Shared> {
        &self.counts
    }

    /// The zone queries are answered from, if one was loaded.
    pub fn current(&self) -> Option<Arc<Zone>> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads `data` and makes it current; on error the old zone stays.
    pub fn load(&self, data: &ZoneData) -> Result<Arc<Zone>, ZoneError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut zone = Zone::counted(&self.origins, data, &self.counts)?;
        zone.loaded_at = now as i64;
        let zone = Arc::new(zone);
        let old = {
            let mut g = match self.current.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            g.replace(zone.clone())
        };
        // The old zone is freed here, outside the lock.
        drop(old);
        metrics::gauge!("poolwatch_dns_zone_serial").set(f64::from(zone.serial()));
        metrics::gauge!("poolwatch_dns_zone_servers").set(zone.server_count() as f64);
        metrics::gauge!("poolwatch_dns_zone_loaded_timestamp_seconds").set(now);
        Ok(zone)
    }
}

fn empty() -> ZoneData {
    ZoneData {
        serial: 0,
        ttl: crate::model::DEFAULT_TTL,
        max_hosts: crate::model::DEFAULT_MAX_HOSTS,
        contact: None,
        data: Default::default(),
    }
}

/// Refreshes `store` from `source` now and then every `every`, until
/// `shutdown` resolves.
///
/// `source` is called for each refresh: inside `poolwatch serve` it builds
/// the zone from the store ([`crate::build_zone`]); stand-alone it fetches
/// the service's JSON ([`ApiSource`]). When it fails, or returns data that
/// does not load, the last good zone keeps being served and the failure is
/// logged (once per outage at warn level, with the count of failures in
/// `poolwatch_dns_zone_refresh_failures_total`).
pub async fn refresh_loop<F, Fut, E>(
    store: ZoneStore,
    every: Duration,
    mut source: F,
    shutdown: impl Future<Output = ()>,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ZoneData, E>>,
    E: Display,
{
    let mut failing = false;
    let mut interval = tokio::time::interval(every.max(Duration::from_millis(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = interval.tick() => {}
        }
        let result = tokio::select! {
            _ = &mut shutdown => return,
            r = source() => r.map_err(|e| e.to_string()),
        };
        let outcome = result.and_then(|data| store.load(&data).map_err(|e| e.to_string()));
        match outcome {
            Ok(zone) => {
                if failing {
                    tracing::info!(serial = zone.serial(), "zone refresh works again");
                } else {
                    tracing::debug!(
                        serial = zone.serial(),
                        servers = zone.server_count(),
                        "zone refreshed"
                    );
                }
                failing = false;
            }
            Err(error) => {
                metrics::counter!("poolwatch_dns_zone_refresh_failures_total").increment(1);
                let serving = store
                    .current()
                    .map_or("nothing (SERVFAIL)".to_string(), |z| {
                        format!("serial {}", z.serial())
                    });
                if failing {
                    tracing::debug!(%error, "zone refresh failed again; serving {serving}");
                } else {
                    tracing::warn!(%error, "zone refresh failed; still serving {serving}");
                }
                failing = true;
            }
        }
    }
}

/// Why the zone could not be fetched from the service.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach {url}: {error}")]
    Unreachable { url: String, error: String },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url} sent zone data that is not valid JSON: {error}")]
    Invalid { url: String, error: String },
}

/// Fetches `GET {api}/api/dns-zone` with a bearer token.
#[derive(Clone)]
pub struct ApiSource {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl ApiSource {
    /// A source for the service at `api` (`http://…` or `https://…`).
    pub fn new(api: &str, token: &str) -> Result<ApiSource, FetchError> {
        // One process-wide TLS provider; ignore "already installed".
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = format!("{}/api/dns-zone", api.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .user_agent(concat!("poolwatch-dns/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| FetchError::Unreachable {
                url: url.clone(),
                error: e.to_string(),
            })?;
        Ok(ApiSource {
            http,
            url,
            token: token.to_string(),
        })
    }

    /// The URL fetched.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetches and parses the zone once.
    pub async fn fetch(&self) -> Result<ZoneData, FetchError> {
        let unreachable = |e: reqwest::Error| FetchError::Unreachable {
            url: self.url.clone(),
            error: e.to_string(),
        };
        let resp = self
            .http
            .get(&self.url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(FetchError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
            });
        }
        ZoneData::from_json(&body).map_err(|e| FetchError::Invalid {
            url: self.url.clone(),
            error: e.to_string(),
        })
    }
}
