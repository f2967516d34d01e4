//! The poolwatch monitor agent: asks the central service for work, checks
//! the servers it is given (the `ntp` crate's check), and submits the best
//! sample of each. It refuses to submit while its own clock disagrees with
//! the reference servers, and loses no result: what the service cannot take
//! is spooled to disk and replayed in order.
//!
//! It never probes an address its target policy refuses, and never logs its key.

pub mod api_client;
pub mod body;
pub mod clock;
pub mod credentials;
mod live_check;
mod monitor_config;
pub mod setup;
pub mod spool;
pub mod trace_runner;
mod traces;

pub use monitor_config::config_changes;

use api::{MonitorConfig, Submission, Work};
use api_client::{Api, ApiError, labels};
use clock::ClockVerdict;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use ntp::{CheckConfig, CheckResult, ErrorCode, TargetPolicy};
use spool::{Spool, Spooled};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;
use trace_runner::{Tracer, TracerouteMode};
use traces::Traces;
use tracing::{info, warn};

/// Spooled batches older than this are dropped: their tickets have expired.
pub const SPOOL_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// How often the config is read again unless told otherwise: admins'
/// per-monitor settings reach the agent within this.
pub const CONFIG_REFRESH: Duration = Duration::from_secs(300);
const CLOCK_CACHE: Duration = Duration::from_secs(180);

/// Everything the agent needs to run.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Base URL of the central service, e.g. `https://pool.example.org`.
    pub api: String,
    pub key: String,
    pub state_dir: PathBuf,
    pub policy: TargetPolicy,
    /// Port the NTP queries go to (123, or a lab port).
    pub ntp_port: u16,
    /// Address to send queries from (the monitor's registered address).
    pub source: Option<IpAddr>,
    pub ipv4: bool,
    pub ipv6: bool,
    /// Do one batch and return.
    pub once: bool,
    /// Servers checked at the same time.
    pub concurrency: usize,
    /// Batches in flight at once (checked while earlier ones finish).
    pub pipeline: usize,
    /// How long to wait before checking the clock again after it failed.
    pub clock_retry: Duration,
    /// Backoff bounds when there is no work or the service fails.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How often the monitor's config is read again (the service's
    /// per-monitor settings are taken up for the next batch after it).
    pub config_refresh: Duration,
    /// The `family` label ("4" or "6") of this agent's metrics when the
    /// process runs one agent per address family; `None` for one `--key`.
    pub family: Option<&'static str>,
}

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("state directory {0}: {1}")]
    State(PathBuf, std::io::Error),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{0}")]
    Clock(String),
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Exponential backoff with ±30 % jitter.
struct Backoff {
    min: Duration,
    max: Duration,
    cur: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Backoff { min, max, cur: min }
    }
    fn next(&mut self) -> Duration {
        let base = self.cur;
        self.cur = (self.cur * 2).min(self.max);
        base.mul_f64(0.7 + rand::random::<f64>() * 0.6)
    }
    fn reset(&mut self) {
        self.cur = self.min;
    }
}

/// Sleep, or return early (false) when shutdown is requested.
async fn pause(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.cancelled() => false,
    }
}

fn outcome(r: &api::CheckResult) -> &'static str {
    match (&r.error, r.no_response) {
        (None, _) => "ok",
        (Some(_), true) => "timeout",
        (Some(e), false) if matches!(ErrorCode::parse(e), ErrorCode::Kiss(_)) => "kod",
        _ => "error",
    }
}

fn check_config(m: &MonitorConfig, source: Option<IpAddr>) -> CheckConfig {
    CheckConfig {
        samples: m.samples.clamp(1, 16),
        sample_interval: Duration::from_millis(m.sample_interval_ms.min(60_000)),
        timeout: Duration::from_millis(m.timeout_ms.clamp(10, 60_000)),
        source,
    }
}

/// The best sample of a check as the service wants it.
pub fn result_item(ip: IpAddr, ticket: &str, r: &CheckResult) -> api::CheckResult {
    let ts = now_unix();
    let samples = sample_items(r);
    match r.best_sample() {
        Some(s) => api::CheckResult {
            ip,
            ticket: ticket.to_string(),
            ts,
            offset: s.offset,
            rtt: s.rtt,
            stratum: s.stratum,
            leap: s.leap,
            refid: s.refid.clone(),
            error: s.error.as_ref().map(|e| e.to_string()),
            no_response: s.no_response,
            samples,
        },
        None => api::CheckResult {
            ip,
            ticket: ticket.to_string(),
            ts,
            offset: None,
            rtt: None,
            stratum: None,
            leap: None,
            refid: None,
            error: Some(ErrorCode::Timeout.to_string()),
            no_response: true,
            samples,
        },
    }
}

/// Every sample of the check, as sent (issue 15): the evidence behind the
/// best one, so the service can tell rate limiting from loss. The service
/// takes at most 16; a check never has more than `samples` (≤ 16).
pub fn sample_items(r: &CheckResult) -> Vec<api::Sample> {
    let first = r.samples.first().map(|s| s.ts).unwrap_or(0.0);
    r.samples
        .iter()
        .take(16)
        .enumerate()
        .map(|(i, s)| api::Sample {
            position: i as u8,
            send_ms: ((s.ts - first).max(0.0) * 1000.0).round().min(60_000.0) as u32,
            answered: !s.no_response,
            rtt: s.rtt,
            offset: s.offset,
            stratum: s.stratum,
            leap: s.leap,
            error: s.error.as_ref().map(|e| e.to_string()),
        })
        .collect()
}

/// A batch being checked; resolves to its results.
type BatchCheck = std::pin::Pin<Box<dyn std::future::Future<Output = Submission> + Send>>;

/// What this agent did since it started; logged when it stops, so an
/// operator (or a test) can match it against the service's log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Checks made (one per server per batch).
    pub checks: u64,
    /// Results the service stored (first submission or replay).
    pub accepted: u64,
    /// Results written to the spool.
    pub spooled: u64,
    /// Results the service refused or that expired in the spool.
    pub dropped: u64,
}

/// The agent: state that lives across batches.
pub struct Agent {
    tally: Tally,
    retry_after: Option<Duration>,
    /// No replay before this: a submission was answered with `Retry-After`.
    hold: Option<Instant>,
    cfg: AgentConfig,
    api: Api,
    spool: Spool,
    shutdown: CancellationToken,
    monitor: Option<(MonitorConfig, Instant)>,
    /// The config last received (kept across re-reads), to warn about a
    /// disabled clock check once per config rather than on every read.
    last_config: Option<MonitorConfig>,
    clock: Option<(ClockVerdict, Instant)>,
    traces: Traces,
    live: live_check::LiveChecks,
}

impl Agent {
    pub fn new(cfg: AgentConfig, shutdown: CancellationToken) -> Result<Agent, AgentError> {
        let api = Api::new(&cfg.api, &cfg.key)?.with_family(cfg.family);
        let spool =
            Spool::open(&cfg.state_dir).map_err(|e| AgentError::State(cfg.state_dir.clone(), e))?;
        metrics::gauge!("poolwatch_agent_spool_depth", labels(cfg.family, &[]))
            .set(spool.depth() as f64);
        Ok(Agent {
            tally: Tally::default(),
            retry_after: None,
            hold: None,
            cfg,
            api,
            spool,
            shutdown,
            monitor: None,
            last_config: None,
            clock: None,
            traces: Traces::new(trace_runner::detect(TracerouteMode::Auto)),
            live: live_check::LiveChecks::default(),
        })
    }

    /// Trace with the tool `mode` picks (the default is `auto`).
    pub fn with_traceroute(self, mode: TracerouteMode) -> Agent {
        self.with_tracer(trace_runner::detect(mode))
    }

    /// Trace with `tracer` (tests give a fake one).
    pub fn with_tracer(mut self, tracer: Tracer) -> Agent {
        match &tracer {
            Tracer::Tools(t) => info!("traceroutes on request with {}", trace_runner::names(t)),
            Tracer::Unavailable(why) => info!("no traceroutes: {why}"),
        }
        self.traces = Traces::new(tracer);
        self
    }

    /// Run until shutdown (or one batch with `once`); returns what it did.
    pub async fn run(mut self) -> Result<Tally, AgentError> {
        let res = self.run_loop().await;
        if self.cfg.once && !self.shutdown.is_cancelled() {
            // One batch: let its traceroutes and live checks finish (each
            // has a timeout).
            while self.traces.tasks.join_next().await.is_some() {}
            while self.live.tasks.join_next().await.is_some() {}
        } else {
            self.traces.tasks.abort_all();
            self.live.tasks.abort_all();
        }
        let t = self.tally;
        info!(
            checks = t.checks,
            accepted = t.accepted,
            spooled = t.spooled,
            dropped = t.dropped,
            spool_depth = self.spool.depth(),
            "agent stopped: {} checks made, {} results accepted by the service, {} spooled, {} dropped",
            t.checks,
            t.accepted,
            t.spooled,
            t.dropped
        );
        res.map(|()| t)
    }

    async fn run_loop(&mut self) -> Result<(), AgentError> {
        let mut backoff = Backoff::new(self.cfg.backoff_min, self.cfg.backoff_max);
        // Batches being checked, oldest first. They are submitted strictly in
        // the order they were handed out: the service refuses a batch older
        // than one it already has.
        let mut inflight: FuturesOrdered<BatchCheck> = FuturesOrdered::new();
        let depth = if self.cfg.once {
            1
        } else {
            self.cfg.pipeline.max(1)
        };
        loop {
            while self.traces.tasks.try_join_next().is_some() {}
            let stopping = self.shutdown.is_cancelled();
            if stopping && inflight.is_empty() {
                break;
            }
            if !stopping
                && inflight.is_empty()
                && let Some(until) = self.hold.take()
            {
                // Nothing in flight, so waiting stalls no check.
                pause(
                    until.saturating_duration_since(Instant::now()),
                    &self.shutdown,
                )
                .await;
                continue;
            }
            if !stopping && inflight.len() < depth {
                match self.next_batch(inflight.is_empty()).await {
                    Ok(Some(check)) => {
                        inflight.push_back(check);
                        continue;
                    }
                    Ok(None) if inflight.is_empty() => {
                        if self.cfg.once {
                            return Ok(());
                        }
                        // No work: wait as the service asks, within our bounds.
                        let d = self.retry_after.take().unwrap_or_else(|| backoff.next());
                        pause(d.min(self.cfg.backoff_max), &self.shutdown).await;
                        continue;
                    }
                    Err(e) if inflight.is_empty() => {
                        if self.cfg.once {
                            return Err(e);
                        }
                        let d = match &e {
                            AgentError::Clock(_) => self.cfg.clock_retry,
                            // Not sooner than the service asked (a 503 while
                            // its database is full), within our bounds.
                            AgentError::Api(a) => backoff.next().max(
                                a.retry_after()
                                    .unwrap_or_default()
                                    .min(self.cfg.backoff_max),
                            ),
                            _ => backoff.next(),
                        };
                        warn!("{e}; retrying in {:.1}s", d.as_secs_f64());
                        pause(d, &self.shutdown).await;
                        continue;
                    }
                    // Work is in flight: finish it before trying again.
                    Ok(None) | Err(_) => {}
                }
            }
            if let Some(results) = inflight.next().await {
                backoff.reset();
                self.tally.checks += results.results.len() as u64;
                self.submit_or_spool(results).await;
                if self.cfg.once {
                    return Ok(());
                }
            }
        }
        info!("shutting down");
        Ok(())
    }

    /// Config, spool replay (only with nothing in flight, to keep batches in
    /// order), clock check, then ask for work. `Ok(None)` when there is none.
    async fn next_batch(&mut self, idle: bool) -> Result<Option<BatchCheck>, AgentError> {
        let monitor = self.monitor_config().await?;
        if idle {
            self.replay().await?;
        }
        self.clock_check(&monitor).await?;
        let work = self
            .api
            .work(monitor.batch_size)
            .await
            .inspect_err(|_| self.monitor = None)?;
        self.start_traceroutes(&work.traceroutes);
        let target = live_check::Target {
            policy: self.cfg.policy,
            port: self.cfg.ntp_port,
            ipv4: self.cfg.ipv4,
            ipv6: self.cfg.ipv6,
        };
        let cfg = check_config(&monitor, self.cfg.source);
        self.live
            .start(&self.api, target, &cfg, &work.live_checks, &self.shutdown);
        if work.servers.is_empty() {
            self.retry_after = Some(Duration::from_secs(work.retry_after_s));
            return Ok(None);
        }
        Ok(Some(self.check_batch(&monitor, &work)))
    }

    async fn clock_check(&mut self, m: &MonitorConfig) -> Result<(), AgentError> {
        if let Some((v, at)) = &self.clock
            && at.elapsed() < CLOCK_CACHE
            && v.ok
        {
            return Ok(());
        }
        let cfg = CheckConfig {
            samples: 2,
            sample_interval: Duration::from_millis(500),
            ..check_config(m, self.cfg.source)
        };
        let v = clock::check_clock(
            &m.reference_servers,
            self.cfg.ntp_port,
            self.cfg.policy,
            &cfg,
        )
        .await;
        metrics::gauge!("poolwatch_agent_clock_ok", labels(self.cfg.family, &[])).set(if v.ok {
            1.0
        } else {
            0.0
        });
        metrics::gauge!(
            "poolwatch_agent_clock_check_timestamp_seconds",
            labels(self.cfg.family, &[])
        )
        .set(now_unix() as f64);
        let summary = v.summary();
        let ok = v.ok;
        // With nothing to check against, `note_reference_servers` warned.
        let changed = v.checked > 0 && self.clock.as_ref().is_none_or(|(old, _)| old.ok != ok);
        self.clock = Some((v, Instant::now()));
        if let Err(e) = self.api.report_clock(ok, &summary).await {
            tracing::debug!("cannot report the clock check: {e}");
        }
        if ok {
            if changed {
                info!("{summary}");
            }
            Ok(())
        } else {
            Err(AgentError::Clock(format!("not submitting: {summary}")))
        }
    }

    fn family_enabled(&self, ip: &IpAddr) -> bool {
        match ip {
            IpAddr::V4(_) => self.cfg.ipv4,
            IpAddr::V6(_) => self.cfg.ipv6,
        }
    }

    fn check_batch(&self, m: &MonitorConfig, work: &Work) -> BatchCheck {
        let cfg = check_config(m, self.cfg.source);
        let mut jobs = Vec::with_capacity(work.servers.len());
        for s in &work.servers {
            let ip: IpAddr = match s.ip.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    warn!("service sent an unparseable address {:?}; skipped", s.ip);
                    continue;
                }
            };
            if let Err(e) = self.cfg.policy.check(ip) {
                warn!("{e}; skipped");
                metrics::counter!(
                    "poolwatch_agent_skipped_total",
                    labels(self.cfg.family, &[("reason", "refused")])
                )
                .increment(1);
                continue;
            }
            if !self.family_enabled(&ip) {
                metrics::counter!(
                    "poolwatch_agent_skipped_total",
                    labels(self.cfg.family, &[("reason", "family disabled")])
                )
                .increment(1);
                continue;
            }
            jobs.push((s.clone(), ip, SocketAddr::new(ip, self.cfg.ntp_port)));
        }
        let (stop, family) = (self.shutdown.clone(), self.cfg.family);
        let checks = jobs.into_iter().map(move |(s, ip, addr)| {
            let stop = stop.clone();
            async move {
                let r = ntp::check_until(s.ip.clone(), addr, &cfg, stop.cancelled_owned()).await;
                let sent = r.samples.len() as u64;
                let received = r.samples.iter().filter(|s| s.packet.is_some()).count() as u64;
                metrics::counter!("poolwatch_agent_ntp_queries_total", labels(family, &[]))
                    .increment(sent);
                metrics::counter!("poolwatch_agent_ntp_bytes_sent_total", labels(family, &[]))
                    .increment(sent * 48);
                metrics::counter!(
                    "poolwatch_agent_ntp_bytes_received_total",
                    labels(family, &[])
                )
                .increment(received * 48);
                let item = result_item(ip, &s.ticket, &r);
                metrics::counter!(
                    "poolwatch_agent_checks_total",
                    labels(family, &[("outcome", outcome(&item))])
                )
                .increment(1);
                item
            }
        });
        let (concurrency, batch_id) = (self.cfg.concurrency.max(1), work.batch_id.clone());
        Box::pin(async move {
            let results: Vec<api::CheckResult> = futures::stream::iter(checks)
                .buffer_unordered(concurrency)
                .collect()
                .await;
            Submission { batch_id, results }
        })
    }

    async fn submit_or_spool(&mut self, results: Submission) {
        if results.results.is_empty() {
            return;
        }
        // Older batches wait in the spool: this one must not overtake them.
        let submitted = if self.spool.depth() > 0 {
            Err(ApiError::Unreachable(
                "older batches are still spooled".into(),
            ))
        } else {
            self.api.submit(&results).await
        };
        match submitted {
            Ok(r) => {
                self.tally.accepted += r.accepted;
                metrics::gauge!(
                    "poolwatch_agent_last_submit_timestamp_seconds",
                    labels(self.cfg.family, &[])
                )
                .set(now_unix() as f64);
                info!(
                    "batch {}: {} result(s) accepted",
                    results.batch_id, r.accepted
                );
            }
            Err(e) if e.is_transient() => {
                if let Some(ra) = e.retry_after() {
                    self.hold = Some(Instant::now() + ra.min(self.cfg.backoff_max));
                }
                let n = results.results.len();
                let id = results.batch_id.clone();
                match self.spool.push(&Spooled {
                    spooled_at: now_unix(),
                    results,
                }) {
                    Ok(()) => {
                        self.tally.spooled += n as u64;
                        warn!("batch {id}: {e}; {n} result(s) spooled")
                    }
                    Err(io) => tracing::error!(
                        "batch {id}: {e}; and cannot spool: {io}; {n} result(s) lost"
                    ),
                }
                metrics::gauge!("poolwatch_agent_spool_depth", labels(self.cfg.family, &[]))
                    .set(self.spool.depth() as f64);
            }
            Err(e) => {
                self.stale_config(&e);
                self.drop_batch(&results, &e.to_string())
            }
        }
    }

    fn drop_batch(&mut self, results: &Submission, why: &str) {
        self.tally.dropped += results.results.len() as u64;
        warn!("batch {} dropped: {why}", results.batch_id);
        metrics::counter!(
            "poolwatch_agent_results_dropped_total",
            labels(self.cfg.family, &[])
        )
        .increment(results.results.len() as u64);
    }

    /// Submit spooled batches oldest first. Stops (with an error) at the first
    /// one the service cannot take yet; drops ones it refuses or that are too old.
    async fn replay(&mut self) -> Result<(), AgentError> {
        let mut pending = self
            .spool
            .load()
            .map_err(|e| AgentError::State(self.cfg.state_dir.clone(), e))?;
        if pending.is_empty() {
            return Ok(());
        }
        info!("replaying {} spooled batch(es)", pending.len());
        let mut result = Ok(());
        while let Some(first) = pending.first() {
            if now_unix() - first.spooled_at > SPOOL_MAX_AGE.as_secs() as i64 {
                self.drop_batch(&first.results, "older than 24 h, its tickets have expired");
            } else {
                match self.api.submit(&first.results).await {
                    Ok(r) => {
                        self.tally.accepted += r.accepted;
                        metrics::gauge!(
                            "poolwatch_agent_last_submit_timestamp_seconds",
                            labels(self.cfg.family, &[])
                        )
                        .set(now_unix() as f64);
                        info!(
                            "spooled batch {}: {} accepted{}",
                            first.results.batch_id,
                            r.accepted,
                            if r.duplicate { " (already stored)" } else { "" }
                        );
                    }
                    Err(e) if e.is_transient() => {
                        result = Err(e.into());
                        break;
                    }
                    Err(e) => self.drop_batch(&first.results, &e.to_string()),
                }
            }
            pending.remove(0);
            self.spool
                .rewrite(&pending)
                .map_err(|e| AgentError::State(self.cfg.state_dir.clone(), e))?;
        }
        metrics::gauge!("poolwatch_agent_spool_depth", labels(self.cfg.family, &[]))
            .set(pending.len() as f64);
        result
    }
}
