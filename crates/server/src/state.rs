//! The one piece of shared state every handler gets.

use crate::config::ServerConfig;
use crate::keys::TicketSigner;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use store::Store;

/// Shared by all handlers; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: ServerConfig,
    store: Store,
    tickets: TicketSigner,
    metrics: Metrics,
    limiter: RateLimiter,
    server_ids: Mutex<HashMap<IpAddr, i64>>,
}

/// Addresses remembered at most; past that the cache starts over.
const MAX_CACHED_SERVERS: usize = 1_000_000;

impl AppState {
    /// State for one app instance, with its own metrics and rate limiter.
    pub fn new(cfg: ServerConfig, store: Store) -> Self {
        let tickets = TicketSigner::new(&cfg.ticket_secret);
        let limiter = RateLimiter::new(&cfg.rate_limit);
        AppState {
            inner: Arc::new(Inner {
                cfg,
                store,
                tickets,
                metrics: Metrics::new(),
                limiter,
                server_ids: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn cfg(&self) -> &ServerConfig {
        &self.inner.cfg
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn tickets(&self) -> &TicketSigner {
        &self.inner.tickets
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// Remember the server ids of the addresses just handed out as work,
    /// so a submission maps addresses to ids without a query per result.
    pub fn remember_servers(&self, items: impl IntoIterator<Item = (IpAddr, i64)>) {
        let mut map = self
            .inner
            .server_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if map.len() > MAX_CACHED_SERVERS {
            map.clear();
        }
        map.extend(items);
    }

    /// The id last seen for `ip`. A hint only: callers check it against
    /// the batch record (a server removed and re-added gets a new id).
    pub fn cached_server_id(&self, ip: IpAddr) -> Option<i64> {
        let map = self
            .inner
            .server_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(&ip).copied()
    }

    /// Now, in unix seconds. The one clock read of the service: the store
    /// and scoring take time as an argument.
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}
