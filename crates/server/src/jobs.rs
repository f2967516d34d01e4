//! The one place that starts, names, supervises and stops the background
//! jobs of `serve` (selector, housekeeping, alerts, zone counts, the clock
//! check warning, the zone guard, DNS).
//!
//! A [`Job`] is a name from a closed set and a `run(stop)` future. [`Jobs`]
//! runs each under a supervisor: a run that fails or panics is logged,
//! counted (`poolwatch_job_failures_total{job,kind}`) and started again
//! after a capped exponential back-off; a run that returns `Ok` by itself
//! is done. On shutdown every job's token is cancelled and the runner waits
//! a bounded time before dropping what is left. Before each run the
//! [`JobGate`] is asked; that is where a job is kept to one instance (the
//! lease gate, `leases.rs`): the gate may cancel a run's token later, when
//! the job must stop here (its lease is lost), and the runner then waits
//! [`LOST_GRACE`] at most before dropping the run, and asks the gate again.
//! This module knows nothing of the app: it must stay a leaf.

use futures::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Every background job of `serve`: a closed set, so the metric label
/// cannot grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobName {
    Selector,
    Housekeeping,
    Alerts,
    ZoneCounts,
    ClockCheckWarning,
    ZoneGuard,
    Dns,
    Heartbeat,
}

impl JobName {
    pub const ALL: [JobName; 8] = [
        JobName::Selector,
        JobName::Housekeeping,
        JobName::Alerts,
        JobName::ZoneCounts,
        JobName::ClockCheckWarning,
        JobName::ZoneGuard,
        JobName::Dns,
        JobName::Heartbeat,
    ];

    /// The name in logs and in the `job` label.
    pub fn as_str(self) -> &'static str {
        match self {
            JobName::Selector => "selector",
            JobName::Housekeeping => "housekeeping",
            JobName::Alerts => "alerts",
            JobName::ZoneCounts => "zone_counts",
            JobName::ClockCheckWarning => "clock_check_warning",
            JobName::ZoneGuard => "zone_guard",
            JobName::Dns => "dns",
            JobName::Heartbeat => "heartbeat",
        }
    }

    /// True for the jobs that must run on one instance at a time when
    /// several `serve` share a database (two selectors would fight, two
    /// alert jobs would mail twice). The clock check warning, DNS and the
    /// instance's heartbeat are about this process, so every one runs them.
    pub fn is_singleton(self) -> bool {
        match self {
            JobName::Selector
            | JobName::Housekeeping
            | JobName::Alerts
            | JobName::ZoneCounts
            | JobName::ZoneGuard => true,
            JobName::ClockCheckWarning | JobName::Dns | JobName::Heartbeat => false,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a run ended badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Error,
    Panic,
}

impl FailureKind {
    /// The `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Error => "error",
            FailureKind::Panic => "panic",
        }
    }
}

/// Failed runs per job and kind, and which jobs run here now (under the
/// gate's permit), read by `/metrics` at scrape time.
#[derive(Debug, Default)]
pub struct JobStats {
    errors: [AtomicU64; JobName::ALL.len()],
    panics: [AtomicU64; JobName::ALL.len()],
    held: [AtomicBool; JobName::ALL.len()],
}

impl JobStats {
    /// True while a run of `job` holds the gate's permit on this instance
    /// (with the lease gate: while this instance holds the job's lease).
    pub fn holds(&self, job: JobName) -> bool {
        self.held[job.index()].load(Ordering::Relaxed)
    }

    fn set_held(&self, job: JobName, held: bool) {
        self.held[job.index()].store(held, Ordering::Relaxed);
    }

    fn count(&self, job: JobName, kind: FailureKind) {
        let by = match kind {
            FailureKind::Error => &self.errors,
            FailureKind::Panic => &self.panics,
        };
        by[job.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Failed runs of `job` so far that ended as `kind`.
    pub fn failures(&self, job: JobName, kind: FailureKind) -> u64 {
        let by = match kind {
            FailureKind::Error => &self.errors,
            FailureKind::Panic => &self.panics,
        };
        by[job.index()].load(Ordering::Relaxed)
    }
}

/// One run of a job; returns when `stop` is cancelled (`Ok`), when its
/// work is done for good (`Ok`), or when it fails (`Err`, or a panic).
pub type JobRun = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// A named background job: a factory of runs, called again on restart.
pub struct Job {
    name: JobName,
    run: Box<dyn FnMut(CancellationToken) -> JobRun + Send>,
}

impl Job {
    /// `run` is called for each run with a token cancelled at shutdown
    /// (and when the run ends, so whatever it spawned stops with it).
    pub fn new<F, Fut>(name: JobName, mut run: F) -> Job
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Job {
            name,
            run: Box::new(move |stop| Box::pin(run(stop))),
        }
    }

    pub fn name(&self) -> JobName {
        self.name
    }
}

/// A boxed future of a gate.
pub type GateFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a gate hands a run it allows; the runner gives it back with
/// [`Permit::release`] when the run ends. Dropped without a release (the
/// run was aborted), whatever the gate tied to it stops on its own drop.
pub struct Permit {
    release: Option<Box<dyn FnOnce() -> GateFuture<'static, ()> + Send>>,
}

impl Permit {
    /// A permit with nothing to give back.
    pub fn free() -> Permit {
        Permit { release: None }
    }

    /// A permit that runs `release` when the run ends.
    pub fn with_release(
        release: impl FnOnce() -> GateFuture<'static, ()> + Send + 'static,
    ) -> Permit {
        Permit {
            release: Some(Box::new(release)),
        }
    }

    /// Give it back (e.g. delete the lease so another instance takes the
    /// job at once).
    pub async fn release(mut self) {
        if let Some(r) = self.release.take() {
            r().await;
        }
    }
}

/// Asked before every run of a job: the hook for running a job on one
/// instance only (the lease gate). `None` means "not here, not now": the
/// runner asks again after [`Jobs::with_gate`]'s recheck. `Some(permit)`:
/// run now; the gate may cancel `run` (the token the run gets) later, when
/// the job must stop here (its lease is lost).
pub trait JobGate: Send + Sync + 'static {
    fn acquire(&self, job: JobName, run: CancellationToken) -> GateFuture<'_, Option<Permit>>;
}

/// The default gate: every job runs on every instance (one process on
/// SQLite, kept alone by its data directory's lock).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysRun;

impl JobGate for AlwaysRun {
    fn acquire(&self, _job: JobName, _run: CancellationToken) -> GateFuture<'_, Option<Permit>> {
        Box::pin(std::future::ready(Some(Permit::free())))
    }
}

/// How long a run whose permit the gate took back (a lost lease) may take
/// to stop before the runner drops it: it may not go on working beside
/// the instance that took the job over.
pub const LOST_GRACE: Duration = Duration::from_secs(3);

/// Capped exponential back-off between a failed run and the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure; doubled after each failure in a row.
    pub first: Duration,
    /// The longest wait. A run that lasted at least this long resets the
    /// doubling: its failure counts as the first.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }
}

/// The running jobs of one service.
pub struct Jobs {
    stop: CancellationToken,
    gate: Arc<dyn JobGate>,
    gate_recheck: Duration,
    backoff: Backoff,
    stats: Arc<JobStats>,
    tasks: Vec<(JobName, JoinHandle<()>)>,
}

impl Jobs {
    /// No jobs yet; failures are counted in `stats`.
    pub fn new(stats: Arc<JobStats>) -> Jobs {
        Jobs {
            stop: CancellationToken::new(),
            gate: Arc::new(AlwaysRun),
            gate_recheck: Duration::from_secs(30),
            backoff: Backoff::default(),
            stats,
            tasks: Vec::new(),
        }
    }

    /// Ask `gate` before each run; a job it refuses is asked about again
    /// every `recheck`.
    pub fn with_gate(mut self, gate: impl JobGate, recheck: Duration) -> Jobs {
        self.gate = Arc::new(gate);
        self.gate_recheck = recheck;
        self
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Jobs {
        self.backoff = backoff;
        self
    }

    /// Start `job` under supervision.
    pub fn start(&mut self, job: Job) {
        let name = job.name;
        let sup = Supervisor {
            stop: self.stop.clone(),
            gate: self.gate.clone(),
            gate_recheck: self.gate_recheck,
            backoff: self.backoff,
            stats: self.stats.clone(),
        };
        self.tasks.push((name, tokio::spawn(sup.run(job))));
    }

    /// Cancel every job, wait up to `grace` for all of them, then drop
    /// (abort) those still running.
    pub async fn shutdown(self, grace: Duration) {
        self.stop.cancel();
        let deadline = Instant::now() + grace;
        for (name, mut task) in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::warn!(job = name.as_str(), "job did not stop in time; dropping it");
                task.abort();
            }
        }
    }
}

struct Supervisor {
    stop: CancellationToken,
    gate: Arc<dyn JobGate>,
    gate_recheck: Duration,
    backoff: Backoff,
    stats: Arc<JobStats>,
}

impl Supervisor {
    async fn run(self, mut job: Job) {
        let name = job.name.as_str();
        let mut in_a_row = 0u32;
        while !self.stop.is_cancelled() {
            let run_stop = self.stop.child_token();
            let permit = tokio::select! {
                _ = self.stop.cancelled() => return,
                p = self.gate.acquire(job.name, run_stop.clone()) => p,
            };
            let Some(permit) = permit else {
                if self.sleep(self.gate_recheck).await {
                    return;
                }
                continue;
            };
            self.stats.set_held(job.name, true);
            let started = Instant::now();
            let ended = self.run_once(&mut job, &run_stop).await;
            // Taken back by the gate, not by shutdown: not a failure, and
            // not the job's end either; ask the gate again.
            let lost = run_stop.is_cancelled() && !self.stop.is_cancelled();
            run_stop.cancel();
            self.stats.set_held(job.name, false);
            permit.release().await;
            if lost {
                tracing::warn!(
                    job = name,
                    "job stopped: no longer allowed here (lease lost)"
                );
                if self.sleep(self.gate_recheck).await {
                    return;
                }
                continue;
            }
            let kind = match ended {
                None => continue,
                Some(Ok(Ok(()))) => {
                    tracing::debug!(job = name, "job finished");
                    return;
                }
                Some(Ok(Err(e))) => {
                    tracing::warn!(job = name, error = %format!("{e:#}"), "job failed");
                    FailureKind::Error
                }
                Some(Err(panic)) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(job = name, panic = %what, "job panicked");
                    FailureKind::Panic
                }
            };
            self.stats.count(job.name, kind);
            if started.elapsed() >= self.backoff.max {
                in_a_row = 0;
            }
            in_a_row = in_a_row.saturating_add(1);
            let wait = self.backoff.delay(in_a_row);
            tracing::info!(job = name, wait_s = wait.as_secs_f64(), "restarting job");
            if self.sleep(wait).await {
                return;
            }
        }
    }

    /// One run, until it ends; `None` when the gate took the permit back
    /// and the run did not stop within [`LOST_GRACE`] (it is dropped).
    async fn run_once(
        &self,
        job: &mut Job,
        run_stop: &CancellationToken,
    ) -> Option<std::thread::Result<anyhow::Result<()>>> {
        let run = AssertUnwindSafe((job.run)(run_stop.clone())).catch_unwind();
        let overdue = async {
            run_stop.cancelled().await;
            if self.stop.is_cancelled() {
                // Shutdown: `Jobs::shutdown` bounds the wait.
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(LOST_GRACE).await;
        };
        tokio::select! {
            ended = run => Some(ended),
            _ = overdue => {
                tracing::warn!(job = job.name.as_str(), "job ignored the lost lease; dropping it");
                None
            }
        }
    }

    /// Sleep `d`; true when stopped meanwhile.
    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
