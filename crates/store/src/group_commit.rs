//! Group commit of submissions on PostgreSQL: the submissions waiting at a
//! moment are stored one after the other in ONE transaction, so they share
//! its BEGIN, lock statements and COMMIT (and the commit's WAL flush, the
//! one wait on the disk) instead of paying each for its own. Durability is
//! unchanged: every agent gets its answer only after the COMMIT that holds
//! its rows.
//!
//! Each submission keeps its own outcome. A duplicate, a stranger's batch,
//! an out-of-order batch or a result for an unknown server is refused
//! before that submission writes anything, so the others go on in the same
//! transaction. A database error aborts the transaction: then nothing of
//! the group is stored and every submission is run again alone
//! ([`submit::single`]), so a bad one fails only itself.
//!
//! Locks: the group takes all of its locks up front, in the one order every
//! submitter uses — batch rows, monitor rows, server rows, each by id —
//! so two groups (of this process or of another `serve` on the same
//! database) wait for each other instead of deadlocking, and a batch sent
//! to two instances at once is stored once: the second waits on the batch
//! row and then sees it submitted.
//!
//! No background task lives with the store: a submitter that finds fewer
//! than [`MAX_DRAINERS`] drainers running spawns one, which runs groups
//! until the queue is empty; so a few groups are in flight at once (on
//! their own connections) and a burst beyond them waits and is grouped.
//! A drainer is a task of its own, so a submitter whose HTTP request is
//! dropped does not cancel the group it leads.

use crate::conn::Conn;
use crate::submit::{self, Job};
use crate::{Store, StoreError, SubmitOutcome, bulk};
use sqlx::postgres::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Most submissions in one group: bounds how long the group's row locks
/// are held, and so how long another instance's group may wait on them.
const MAX_GROUP: usize = 16;

/// Most groups in flight at once, each on its own connection. One would
/// leave the database idle during every round trip of the group's
/// statements (the client waits, the server waits); a few overlap them.
/// Groups take their locks in the one order, so they cannot deadlock.
const MAX_DRAINERS: usize = 4;

type Reply = oneshot::Sender<Result<SubmitOutcome, StoreError>>;

/// The queue of one [`Store`]'s submissions (shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct Groups {
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<(Job, Reply)>,
    /// Drainers running (each sees whatever is pushed before it stops).
    drainers: usize,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "batch {} of monitor {}", self.batch_seq, self.monitor_id)
    }
}

impl Groups {
    /// Queues `job` and waits for the commit of the group that stores it.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        store: &Store,
        pool: &PgPool,
        job: Job,
    ) -> Result<SubmitOutcome, StoreError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = self.queue.lock().expect("queue lock");
            q.waiting.push((job, tx));
            let start = q.drainers < MAX_DRAINERS;
            q.drainers += usize::from(start);
            start
        };
        if start {
            let (me, store, pool) = (self.clone(), store.clone(), pool.clone());
            tokio::spawn(async move { me.drain(&store, &pool).await });
        }
        rx.await.unwrap_or_else(|_| {
            // The drainer died (a panic, or its runtime shut down) before
            // answering; its transaction, if any, was rolled back.
            Err(StoreError::Transient(sqlx::Error::WorkerCrashed))
        })
    }

    async fn drain(&self, store: &Store, pool: &PgPool) {
        let mut running = Running {
            groups: self,
            finished: false,
        };
        loop {
            let group: Vec<(Job, Reply)> = {
                let mut q = self.queue.lock().expect("queue lock");
                if q.waiting.is_empty() {
                    q.drainers -= 1;
                    running.finished = true;
                    return;
                }
                let n = q.waiting.len().min(MAX_GROUP);
                q.waiting.drain(..n).collect()
            };
            let (jobs, replies): (Vec<Job>, Vec<Reply>) = group.into_iter().unzip();
            let outcomes = run(store, pool, &jobs).await;
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // The submitter may have gone (request dropped): its rows
                // are stored all the same, as a lone commit would have.
                let _ = reply.send(outcome);
            }
        }
    }
}

/// Counts a drainer out when it stops without emptying the queue (a panic,
/// a dropped task), so the next submitter starts a new one.
struct Running<'a> {
    groups: &'a Groups,
    finished: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.finished
            && let Ok(mut q) = self.groups.queue.lock()
        {
            q.drainers -= 1;
        }
    }
}

/// Every job's outcome, in order: from one group transaction, or when
/// that failed on a database error, from one transaction each.
pub(crate) async fn run(
    store: &Store,
    pool: &PgPool,
    jobs: &[Job],
) -> Vec<Result<SubmitOutcome, StoreError>> {
    match group(pool, jobs).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::debug!(error = %e, jobs = jobs.len(), "submission group rolled back; storing each alone");
            let mut outcomes = Vec::with_capacity(jobs.len());
            for job in jobs {
                outcomes.push(store.write(async |c| submit::single(c, job).await).await);
            }
            outcomes
        }
    }
}

/// Stores the jobs in one transaction; `Err` (nothing stored) on a
/// database error of any of them.
async fn group(
    pool: &PgPool,
    jobs: &[Job],
) -> Result<Vec<Result<SubmitOutcome, StoreError>>, StoreError> {
    let mut tx = pool.begin().await?;
    let c = &mut Conn::Pg(&mut tx);
    let ids = |f: &dyn Fn(&Job) -> &[i64]| {
        let mut v: Vec<i64> = jobs.iter().flat_map(|j| f(j).iter().copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let seqs = ids(&|j| std::slice::from_ref(&j.batch_seq));
    let monitors = ids(&|j| std::slice::from_ref(&j.monitor_id));
    let servers = ids(&|j| &j.touched);
    let mut batches: HashMap<i64, (i64, Option<i64>)> = c
        .query(
            "SELECT seq, monitor_id, submitted_at FROM batches WHERE seq = ANY($1) \
             ORDER BY seq FOR UPDATE",
        )
        .bind_ids(&seqs)
        .fetch_all::<(i64, i64, Option<i64>)>()
        .await?
        .into_iter()
        .map(|(seq, owner, at)| (seq, (owner, at)))
        .collect();
    let mut last: HashMap<i64, Option<i64>> = c
        .query(
            "SELECT id, last_submit_batch FROM monitors WHERE id = ANY($1) \
             ORDER BY id FOR NO KEY UPDATE",
        )
        .bind_ids(&monitors)
        .fetch_all::<(i64, Option<i64>)>()
        .await?
        .into_iter()
        .collect();
    bulk::lock_servers(c, &servers).await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let gate = job.gate(
            batches.get(&job.batch_seq).copied(),
            last.get(&job.monitor_id).copied().flatten(),
        );
        let outcome = match gate {
            Err(e) => Err(e),
            Ok(Some(duplicate)) => Ok(duplicate),
            Ok(None) => match submit::store(c, job).await {
                Err(e @ (StoreError::Db(_) | StoreError::Transient(_))) => return Err(e),
                Err(e) => Err(e),
                Ok(o) => {
                    // What this transaction wrote, for the group's later
                    // submissions of the same batch or monitor.
                    batches.insert(job.batch_seq, (job.monitor_id, Some(job.now)));
                    let l = last.entry(job.monitor_id).or_default();
                    *l = Some(l.map_or(job.batch_seq, |l| l.max(job.batch_seq)));
                    Ok(o)
                }
            },
        };
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}
