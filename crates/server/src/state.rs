//! The one piece of shared state every handler gets.

use crate::config::ServerConfig;
use crate::http::HttpStats;
use crate::jobs::JobStats;
use crate::keys::{AccessTokens, TicketSigner};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use store::Store;

/// Where the service reads the time. `System` in service; tests fix it so
/// that what they assert (24 h windows over UTC-day buckets, "today",
/// "within 20 min") does not depend on the hour they happen to run at.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// Unix seconds, moved only by [`Clock::set`].
    Fixed(Arc<AtomicI64>),
}

impl Clock {
    /// A clock standing at `now` (unix seconds).
    pub fn fixed(now: i64) -> Clock {
        Clock::Fixed(Arc::new(AtomicI64::new(now)))
    }

    /// Moves a fixed clock (every state sharing it sees the new time); a
    /// system clock cannot be moved and ignores this.
    pub fn set(&self, now: i64) {
        if let Clock::Fixed(t) = self {
            t.store(now, Ordering::Relaxed);
        }
    }

    /// Now, in unix seconds.
    pub fn now(&self) -> i64 {
        match self {
            Clock::System => chrono::Utc::now().timestamp(),
            Clock::Fixed(t) => t.load(Ordering::Relaxed),
        }
    }
}

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
    access_tokens: AccessTokens,
    metrics: Metrics,
    limiter: RateLimiter,
    signin_limiter: RateLimiter,
    /// Live checks (server adds) per account, see `manage::servers_ops`.
    add_limiter: RateLimiter<i64>,
    /// Monitor registrations per client (`registration`).
    register_limiter: RateLimiter,
    /// Registration-code look-ups per client and per account
    /// (`manage::monitor_enrol`): guessing is slow.
    code_limiter: RateLimiter,
    code_account_limiter: RateLimiter<i64>,
    clock: Clock,
    http: Arc<HttpStats>,
    jobs: Arc<JobStats>,
    draining: crate::health::Draining,
}

impl AppState {
    /// State for one app instance, with its own metrics and rate limiter.
    pub fn new(cfg: ServerConfig, store: Store) -> Self {
        Self::with_clock(cfg, store, Clock::System)
    }

    /// Like [`AppState::new`], reading the time from `clock`.
    pub fn with_clock(cfg: ServerConfig, store: Store, clock: Clock) -> Self {
        let tickets = TicketSigner::new(&cfg.ticket_secret);
        let access_tokens = AccessTokens::new(&cfg.ticket_secret);
        let limiter = RateLimiter::new(&cfg.rate_limit);
        let signin_limiter = RateLimiter::new(&crate::manage::signin::client_limit(&cfg));
        let add_limiter = RateLimiter::new(&crate::manage::servers_ops::add_limit());
        let register_limiter = RateLimiter::new(&crate::registration::register_limit());
        let code_limiter = RateLimiter::new(&crate::registration::code_limit());
        let code_account_limiter = RateLimiter::new(&crate::registration::code_limit());
        AppState {
            inner: Arc::new(Inner {
                cfg,
                store,
                tickets,
                access_tokens,
                metrics: Metrics::new(),
                limiter,
                signin_limiter,
                add_limiter,
                register_limiter,
                code_limiter,
                code_account_limiter,
                clock,
                http: Arc::default(),
                jobs: Arc::default(),
                draining: Default::default(),
            }),
        }
    }

    pub fn cfg(&self) -> &ServerConfig {
        &self.inner.cfg
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Server adds (live checks) per account.
    pub fn add_limiter(&self) -> &RateLimiter<i64> {
        &self.inner.add_limiter
    }

    /// Monitor registrations per client.
    pub fn register_limiter(&self) -> &RateLimiter {
        &self.inner.register_limiter
    }

    /// Registration-code look-ups per client.
    pub fn code_limiter(&self) -> &RateLimiter {
        &self.inner.code_limiter
    }

    /// Registration-code look-ups per account.
    pub fn code_account_limiter(&self) -> &RateLimiter<i64> {
        &self.inner.code_account_limiter
    }

    pub fn tickets(&self) -> &TicketSigner {
        &self.inner.tickets
    }

    /// Signs and checks the monitors' access tokens.
    pub fn access_tokens(&self) -> &AccessTokens {
        &self.inner.access_tokens
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// Connections of this app's listeners (open, refused by a cap).
    /// Sign-in requests per client (see `manage::signin`).
    pub fn signin_limiter(&self) -> &RateLimiter {
        &self.inner.signin_limiter
    }

    pub fn http_stats(&self) -> &Arc<HttpStats> {
        &self.inner.http
    }

    /// Failed runs of the background jobs (the runner counts them here).
    pub fn job_stats(&self) -> &Arc<JobStats> {
        &self.inner.jobs
    }

    /// Raised first on shutdown: `/readyz` answers 503 from then on.
    pub fn draining(&self) -> &crate::health::Draining {
        &self.inner.draining
    }

    /// The clock, for jobs that read the time without the whole state.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Now, in unix seconds. The one clock read of the service: the store
    /// and scoring take time as an argument.
    pub fn now(&self) -> i64 {
        self.inner.clock.now()
    }
}
