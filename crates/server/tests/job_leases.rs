//! Job leases on PostgreSQL (issue 16): two job runners on one database,
//! as two `serve` instances would be. A singleton job runs on one of them
//! at a time; when its holder stops, or loses its lease, or loses the
//! database, the job stops there and the other instance takes it over.
//! Short lease times (2 s) keep the test quick; the rule is the same.

mod common;

use common::{Backend, TestDb};
use server::jobs::{Job, JobName, JobStats, Jobs};
use server::leases::{LeaseGate, LeaseSettings};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use store::Store;
use tokio_util::sync::CancellationToken;

const FAST: LeaseSettings = LeaseSettings {
    ttl: Duration::from_secs(2),
    renew_every: Duration::from_millis(400),
    recheck: Duration::from_millis(200),
};

/// How many runs of the selector are going on, over both instances, and
/// the most there ever were at once.
#[derive(Default)]
struct Running {
    now: AtomicUsize,
    most: AtomicUsize,
    runs: AtomicUsize,
}

/// A selector stand-in: counts itself running until its token is cancelled.
fn selector(running: Arc<Running>) -> Job {
    Job::new(JobName::Selector, move |stop: CancellationToken| {
        let r = running.clone();
        async move {
            let n = r.now.fetch_add(1, Ordering::SeqCst) + 1;
            r.most.fetch_max(n, Ordering::SeqCst);
            r.runs.fetch_add(1, Ordering::SeqCst);
            stop.cancelled().await;
            r.now.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    })
}

/// A per-instance job: runs on both.
fn per_instance(count: Arc<AtomicUsize>) -> Job {
    Job::new(
        JobName::ClockCheckWarning,
        move |stop: CancellationToken| {
            let c = count.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                stop.cancelled().await;
                Ok(())
            }
        },
    )
}

struct Instance {
    stats: Arc<JobStats>,
    jobs: Option<Jobs>,
}

impl Instance {
    /// Shut its runner down (the leases it holds are released).
    async fn stop(&mut self) {
        if let Some(jobs) = self.jobs.take() {
            jobs.shutdown(Duration::from_secs(5)).await;
        }
    }
}

fn instance(
    store: &Store,
    name: &str,
    running: &Arc<Running>,
    local: &Arc<AtomicUsize>,
) -> Instance {
    let stats = Arc::new(JobStats::default());
    let mut jobs =
        Jobs::new(stats.clone()).with_gate(LeaseGate::new(store.clone(), name, FAST), FAST.recheck);
    jobs.start(selector(running.clone()));
    jobs.start(per_instance(local.clone()));
    Instance {
        stats,
        jobs: Some(jobs),
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 30 s: {what}");
}

async fn holder(store: &Store) -> Option<String> {
    store
        .job_leases()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.job == "selector" && l.expires_on >= l.db_now)
        .map(|l| l.holder)
}

async fn setup() -> Option<(TestDb, Store)> {
    let db = TestDb::open(Backend::Postgres).await?;
    let other = Store::open(db.pg_url.as_deref(), db.dir.path())
        .await
        .unwrap();
    Some((db, other))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_runs_a_singleton_and_the_other_takes_it_when_it_stops() {
    let Some((db, other)) = setup().await else {
        return;
    };
    let running = Arc::new(Running::default());
    let local = Arc::new(AtomicUsize::new(0));
    let a = instance(&db.store, "a", &running, &local);
    let b = instance(&other, "b", &running, &local);
    wait_until("the selector runs", || {
        running.now.load(Ordering::SeqCst) == 1
    })
    .await;
    // The per-instance job runs on both; the selector on one only.
    wait_until("the clock warning runs twice", || {
        local.load(Ordering::SeqCst) == 2
    })
    .await;
    tokio::time::sleep(FAST.ttl * 2).await;
    assert_eq!(running.most.load(Ordering::SeqCst), 1);
    let first = holder(&db.store).await.unwrap();
    let (held_a, held_b) = (
        a.stats.holds(JobName::Selector),
        b.stats.holds(JobName::Selector),
    );
    assert_eq!((held_a, held_b), (first == "a", first == "b"));
    // Stop whichever holds it: it releases the lease, the other takes over.
    let (mut holder_i, mut taker, taker_name) = if first == "a" {
        (a, b, "b")
    } else {
        (b, a, "a")
    };
    holder_i.stop().await;
    wait_until("the other instance runs the selector", || {
        taker.stats.holds(JobName::Selector) && running.now.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(holder(&db.store).await.as_deref(), Some(taker_name));
    assert_eq!(running.most.load(Ordering::SeqCst), 1);
    assert_eq!(running.runs.load(Ordering::SeqCst), 2);
    taker.stop().await;
    assert_eq!(holder(&db.store).await, None, "released at shutdown");
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_stops_the_running_job() {
    let Some((db, other)) = setup().await else {
        return;
    };
    let running = Arc::new(Running::default());
    let local = Arc::new(AtomicUsize::new(0));
    let mut a = instance(&db.store, "a", &running, &local);
    wait_until("a runs the selector", || a.stats.holds(JobName::Selector)).await;
    // Another holder takes the row (as after a's lease had expired): a's
    // next renewal finds it and a's run is cancelled.
    db.exec(
        "UPDATE job_leases SET holder = 'intruder', expires_on = expires_on + 3600 \
         WHERE job = 'selector'",
    )
    .await;
    wait_until("a's selector stops", || {
        running.now.load(Ordering::SeqCst) == 0 && !a.stats.holds(JobName::Selector)
    })
    .await;
    // b starts meanwhile and does not run it either: the intruder holds it.
    let mut b = instance(&other, "b", &running, &local);
    tokio::time::sleep(FAST.ttl).await;
    assert_eq!(running.now.load(Ordering::SeqCst), 0);
    assert_eq!(holder(&db.store).await.as_deref(), Some("intruder"));
    // Free again: exactly one of them takes it.
    db.exec("DELETE FROM job_leases WHERE job = 'selector'")
        .await;
    wait_until("someone runs the selector again", || {
        running.now.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(running.most.load(Ordering::SeqCst), 1);
    for i in [&mut a, &mut b] {
        i.stop().await;
    }
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_loses_the_database_stops_and_the_other_takes_over() {
    let Some((db, other)) = setup().await else {
        return;
    };
    let running = Arc::new(Running::default());
    let local = Arc::new(AtomicUsize::new(0));
    // a alone first, so a holds the lease.
    let mut a = instance(&other, "a", &running, &local);
    wait_until("a runs the selector", || a.stats.holds(JobName::Selector)).await;
    let mut b = instance(&db.store, "b", &running, &local);
    // a's database goes away (a hung link, a dead pool): it cannot renew,
    // stops the job by its own deadline, and b takes the lease once it
    // expires, never while a still runs the job.
    other.close().await;
    wait_until("b runs the selector", || b.stats.holds(JobName::Selector)).await;
    assert!(!a.stats.holds(JobName::Selector));
    assert_eq!(running.most.load(Ordering::SeqCst), 1);
    assert_eq!(running.now.load(Ordering::SeqCst), 1);
    assert_eq!(holder(&db.store).await.as_deref(), Some("b"));
    for i in [&mut a, &mut b] {
        i.stop().await;
    }
}
