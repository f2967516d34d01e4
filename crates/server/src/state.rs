//! The one piece of shared state every handler gets.

use crate::config::ServerConfig;
use crate::keys::TicketSigner;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use std::sync::Arc;
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
}

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

    /// Now, in unix seconds. The one clock read of the service: the store
    /// and scoring take time as an argument.
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}
