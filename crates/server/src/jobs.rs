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
//! [`JobGate`] is asked; that is where a job can be kept to one instance.
//! This module knows nothing of the app: it must stay a leaf.

use futures::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

impl JobName {
    pub const ALL: [JobName; 7] = [
        JobName::Selector,
        JobName::Housekeeping,
        JobName::Alerts,
        JobName::ZoneCounts,
        JobName::ClockCheckWarning,
        JobName::ZoneGuard,
        JobName::Dns,
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

/// Failed runs per job and kind, read by `/metrics` at scrape time.
#[derive(Debug, Default)]
pub struct JobStats {
    errors: [AtomicU64; JobName::ALL.len()],
    panics: [AtomicU64; JobName::ALL.len()],
}

impl JobStats {
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

/// Asked before every run of a job. The hook for running a job on one
/// instance only (e.g. behind a database lock); `false` means "not here,
/// not now": the runner asks again after [`Jobs::with_gate`]'s recheck.
pub trait JobGate: Send + Sync + 'static {
    fn should_run(&self, job: JobName) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

/// The default gate: every job runs on every instance.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysRun;

impl JobGate for AlwaysRun {
    fn should_run(&self, _job: JobName) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(std::future::ready(true))
    }
}

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

/// How long shutdown waits for the jobs to stop before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
            let allowed = tokio::select! {
                _ = self.stop.cancelled() => return,
                ok = self.gate.should_run(job.name) => ok,
            };
            if !allowed {
                if self.sleep(self.gate_recheck).await {
                    return;
                }
                continue;
            }
            let run_stop = self.stop.child_token();
            let started = Instant::now();
            let ended = AssertUnwindSafe((job.run)(run_stop.clone()))
                .catch_unwind()
                .await;
            run_stop.cancel();
            let kind = match ended {
                Ok(Ok(())) => {
                    tracing::debug!(job = name, "job finished");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(job = name, error = %format!("{e:#}"), "job failed");
                    FailureKind::Error
                }
                Err(panic) => {
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

    /// Sleep `d`; true when stopped meanwhile.
    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU32};

    const MS: Duration = Duration::from_millis(1);

    fn fast() -> Backoff {
        Backoff {
            first: 20 * MS,
            max: 160 * MS,
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = fast();
        let waits: Vec<u128> = (1..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(waits, [20, 40, 80, 160, 160, 160]);
        assert_eq!(b.delay(u32::MAX), b.max);
    }

    type Starts = Arc<Mutex<Vec<Instant>>>;

    /// A job whose run `n` fails as `fail(n)` says ("panic" or an error),
    /// or runs until stopped; records when each run started.
    fn recording(
        name: JobName,
        fail: impl Fn(u32) -> Option<&'static str> + Send + 'static,
    ) -> (Job, Starts) {
        let starts = Starts::default();
        let (s, n) = (starts.clone(), AtomicU32::new(0));
        let job = Job::new(name, move |stop: CancellationToken| {
            s.lock().unwrap().push(Instant::now());
            let outcome = fail(n.fetch_add(1, Ordering::Relaxed));
            async move {
                match outcome {
                    Some("panic") => panic!("boom"),
                    Some(e) => Err(anyhow::anyhow!(e)),
                    None => {
                        stop.cancelled().await;
                        Ok(())
                    }
                }
            }
        });
        (job, starts)
    }

    async fn wait_for_runs(starts: &Starts, n: usize) {
        for _ in 0..500 {
            if starts.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(10 * MS).await;
        }
        panic!("fewer than {n} runs in 5 s");
    }

    #[tokio::test]
    async fn a_failing_job_is_counted_and_restarted_with_backoff() {
        let stats = Arc::new(JobStats::default());
        let mut jobs = Jobs::new(stats.clone()).with_backoff(fast());
        // Fails five times, then runs until stopped.
        let (job, starts) = recording(JobName::Selector, |n| (n < 5).then_some("no store"));
        jobs.start(job);
        wait_for_runs(&starts, 6).await;
        tokio::time::sleep(200 * MS).await;
        let starts = starts.lock().unwrap().clone();
        assert_eq!(starts.len(), 6, "restarted after it stopped failing");
        let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        for (gap, want) in gaps.iter().zip([20, 40, 80, 160, 160]) {
            assert!(*gap >= want * MS, "{gaps:?}");
        }
        assert!(gaps[3] > gaps[0] * 2, "the waits grow: {gaps:?}");
        assert_eq!(stats.failures(JobName::Selector, FailureKind::Error), 5);
        assert_eq!(stats.failures(JobName::Selector, FailureKind::Panic), 0);
        assert_eq!(stats.failures(JobName::Alerts, FailureKind::Error), 0);
        jobs.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn a_panicking_job_is_restarted() {
        let stats = Arc::new(JobStats::default());
        let mut jobs = Jobs::new(stats.clone()).with_backoff(fast());
        let (job, starts) = recording(JobName::Dns, |n| (n < 2).then_some("panic"));
        jobs.start(job);
        wait_for_runs(&starts, 3).await;
        assert_eq!(stats.failures(JobName::Dns, FailureKind::Panic), 2);
        assert_eq!(stats.failures(JobName::Dns, FailureKind::Error), 0);
        jobs.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn a_job_that_finishes_is_not_restarted() {
        let stats = Arc::new(JobStats::default());
        let mut jobs = Jobs::new(stats.clone()).with_backoff(fast());
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        jobs.start(Job::new(JobName::ClockCheckWarning, move |_| {
            r.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        }));
        tokio::time::sleep(200 * MS).await;
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(
            stats.failures(JobName::ClockCheckWarning, FailureKind::Error),
            0
        );
        jobs.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn shutdown_cancels_and_waits_for_each_job() {
        let mut jobs = Jobs::new(Arc::default());
        let cleaned = Arc::new(AtomicBool::new(false));
        let c = cleaned.clone();
        let (started, starts) = recording(JobName::Selector, |_| None);
        jobs.start(started);
        jobs.start(Job::new(
            JobName::ZoneGuard,
            move |stop: CancellationToken| {
                let c = c.clone();
                async move {
                    stop.cancelled().await;
                    // Work after the cancel, which shutdown waits for.
                    tokio::time::sleep(100 * MS).await;
                    c.store(true, Ordering::Relaxed);
                    Ok(())
                }
            },
        ));
        wait_for_runs(&starts, 1).await;
        let t0 = Instant::now();
        jobs.shutdown(Duration::from_secs(5)).await;
        assert!(cleaned.load(Ordering::Relaxed));
        let took = t0.elapsed();
        assert!(
            took >= 100 * MS && took < Duration::from_secs(5),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn shutdown_drops_a_job_that_ignores_the_cancel_after_the_grace() {
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let mut jobs = Jobs::new(Arc::default());
        let dropped = Arc::new(AtomicBool::new(false));
        let d = dropped.clone();
        jobs.start(Job::new(JobName::ZoneCounts, move |_| {
            let guard = SetOnDrop(d.clone());
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok(())
            }
        }));
        tokio::time::sleep(20 * MS).await;
        let t0 = Instant::now();
        jobs.shutdown(200 * MS).await;
        let took = t0.elapsed();
        assert!(
            took >= 200 * MS && took < Duration::from_secs(2),
            "{took:?}"
        );
        for _ in 0..100 {
            if dropped.load(Ordering::Relaxed) {
                return;
            }
            tokio::time::sleep(10 * MS).await;
        }
        panic!("the job was not dropped after the grace");
    }

    /// Lets only the jobs in `.0` run, and counts the questions.
    struct Only(Vec<JobName>, Arc<AtomicU32>);

    impl JobGate for Only {
        fn should_run(&self, job: JobName) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
            self.1.fetch_add(1, Ordering::Relaxed);
            Box::pin(std::future::ready(self.0.contains(&job)))
        }
    }

    #[tokio::test]
    async fn the_gate_can_keep_a_job_from_running() {
        let asked = Arc::new(AtomicU32::new(0));
        let mut jobs = Jobs::new(Arc::default())
            .with_gate(Only(vec![JobName::Selector], asked.clone()), 10 * MS);
        let (kept, kept_starts) = recording(JobName::Alerts, |_| None);
        let (allowed, allowed_starts) = recording(JobName::Selector, |_| None);
        jobs.start(kept);
        jobs.start(allowed);
        tokio::time::sleep(200 * MS).await;
        assert!(kept_starts.lock().unwrap().is_empty());
        assert_eq!(allowed_starts.lock().unwrap().len(), 1);
        // The refused job is asked about again, the running one is not.
        assert!(asked.load(Ordering::Relaxed) >= 4, "{asked:?}");
        let t0 = Instant::now();
        jobs.shutdown(Duration::from_secs(5)).await;
        // A job waiting for the gate stops at once too.
        assert!(t0.elapsed() < Duration::from_secs(1));
    }
}
