//! Tests of the job runner (`jobs.rs`).

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
    fn acquire(&self, job: JobName, _run: CancellationToken) -> GateFuture<'_, Option<Permit>> {
        self.1.fetch_add(1, Ordering::Relaxed);
        Box::pin(std::future::ready(self.0.contains(&job).then(Permit::free)))
    }
}

#[tokio::test]
async fn the_gate_can_keep_a_job_from_running() {
    let asked = Arc::new(AtomicU32::new(0));
    let mut jobs =
        Jobs::new(Arc::default()).with_gate(Only(vec![JobName::Selector], asked.clone()), 10 * MS);
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

/// Hands out permits and keeps each run's token, so the test can take the
/// permit back as a lost lease does; counts the releases.
#[derive(Default)]
struct Revocable {
    runs: Mutex<Vec<CancellationToken>>,
    released: Arc<AtomicU32>,
}

impl JobGate for Arc<Revocable> {
    fn acquire(&self, _job: JobName, run: CancellationToken) -> GateFuture<'_, Option<Permit>> {
        self.runs.lock().unwrap().push(run);
        let released = self.released.clone();
        Box::pin(std::future::ready(Some(Permit::with_release(move || {
            Box::pin(async move {
                released.fetch_add(1, Ordering::Relaxed);
            })
        }))))
    }
}

#[tokio::test]
async fn a_run_whose_permit_is_taken_back_stops_and_the_gate_is_asked_again() {
    let gate = Arc::new(Revocable::default());
    let stats = Arc::new(JobStats::default());
    let mut jobs = Jobs::new(stats.clone()).with_gate(gate.clone(), 10 * MS);
    let (job, starts) = recording(JobName::Selector, |_| None);
    jobs.start(job);
    wait_for_runs(&starts, 1).await;
    assert!(stats.holds(JobName::Selector));
    assert!(!stats.holds(JobName::Alerts));
    let first = gate.runs.lock().unwrap()[0].clone();
    first.cancel();
    wait_for_runs(&starts, 2).await;
    assert_eq!(gate.released.load(Ordering::Relaxed), 1);
    // A lost permit is no failure of the job.
    assert_eq!(stats.failures(JobName::Selector, FailureKind::Error), 0);
    jobs.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        gate.released.load(Ordering::Relaxed),
        2,
        "released at shutdown too"
    );
    assert!(!stats.holds(JobName::Selector));
}

#[test]
fn singletons_are_the_jobs_that_must_not_run_twice() {
    let one: Vec<&str> = JobName::ALL
        .iter()
        .filter(|j| j.is_singleton())
        .map(|j| j.as_str())
        .collect();
    assert_eq!(
        one,
        [
            "selector",
            "housekeeping",
            "alerts",
            "zone_counts",
            "zone_guard"
        ]
    );
}
