//! One instance per background job when several `serve` processes share a
//! PostgreSQL database (issue 16), through a lease row per job
//! (`Store::take_job_lease`: one atomic upsert on the database's clock).
//!
//! [`LeaseGate`] is the runner's [`JobGate`]: a singleton job
//! ([`JobName::is_singleton`]) runs only while this instance holds its
//! lease. A keeper task renews it every `renew_every`; the run's token is
//! cancelled — the job stops — when a renewal finds another holder, or
//! when `ttl` has passed since the last renewal that succeeded (counted
//! from when it was sent) without a new one: a database that does not
//! answer, or a process that was paused (SIGSTOP, a VM freeze) and wakes
//! after its lease may have been taken. That local check comes before any
//! renewal, so a resumed process stops at once. Another instance asks for
//! a free or expired lease every `recheck`, so a dead or hung holder's
//! jobs move within `ttl + recheck` (20 s with the defaults). On a clean
//! stop the runner releases the leases, and the others take them at their
//! next recheck.
//!
//! Also here: the instance's name and its heartbeat row for the admin
//! status page (`manage/instances_page.rs`).

use crate::jobs::{GateFuture, Job, JobGate, JobName, Permit};
use std::time::Duration;
use store::Store;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Lease timing. The defaults keep takeover within 30 s of a holder's
/// death (ttl + recheck = 20 s, plus a renewal's own time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    /// How long a lease lasts without renewal.
    pub ttl: Duration,
    /// How often the holder renews it (well under `ttl`, so one slow or
    /// failed renewal does not lose it).
    pub renew_every: Duration,
    /// How often an instance without the lease asks for it again.
    pub recheck: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            recheck: Duration::from_secs(5),
        }
    }
}

/// After a renewal that failed (not one refused), the next try comes this
/// soon, still before the lease runs out.
const RETRY: Duration = Duration::from_secs(1);

/// How long releasing a lease at the end of a run may take; after that
/// the lease simply expires.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The gate of the runner on PostgreSQL: singleton jobs behind a lease
/// held by `holder` (the instance name), the others free.
#[derive(Clone)]
pub struct LeaseGate {
    store: Store,
    holder: String,
    s: LeaseSettings,
}

impl LeaseGate {
    pub fn new(store: Store, holder: impl Into<String>, s: LeaseSettings) -> LeaseGate {
        LeaseGate {
            store,
            holder: holder.into(),
            s,
        }
    }

    fn ttl_s(&self) -> i64 {
        // Whole seconds on the database's clock; never below 1.
        (self.s.ttl.as_secs() as i64).max(1)
    }
}

impl JobGate for LeaseGate {
    fn acquire(&self, job: JobName, run: CancellationToken) -> GateFuture<'_, Option<Permit>> {
        Box::pin(async move {
            if !job.is_singleton() {
                return Some(Permit::free());
            }
            let sent = Instant::now();
            let took = tokio::time::timeout(
                self.s.renew_every,
                self.store
                    .take_job_lease(job.as_str(), &self.holder, self.ttl_s()),
            )
            .await;
            match took {
                Ok(Ok(Some(l))) => {
                    tracing::info!(
                        job = job.as_str(),
                        holder = %self.holder,
                        expires_on = l.expires_on,
                        "took the job's lease: running it here"
                    );
                }
                Ok(Ok(None)) => return None,
                Ok(Err(e)) => {
                    tracing::warn!(job = job.as_str(), error = %e, "cannot ask for the job's lease");
                    return None;
                }
                Err(_) => {
                    tracing::warn!(job = job.as_str(), "asking for the job's lease timed out");
                    return None;
                }
            }
            let done = CancellationToken::new();
            let keeper = tokio::spawn(keep(self.clone(), job, run, done.clone(), sent));
            // Dropping the permit (an aborted run) stops the keeper too.
            let stop_keeper = done.drop_guard();
            let (store, holder) = (self.store.clone(), self.holder.clone());
            Some(Permit::with_release(move || {
                Box::pin(async move {
                    drop(stop_keeper);
                    let _ = keeper.await;
                    let gone = tokio::time::timeout(
                        RELEASE_TIMEOUT,
                        store.release_job_lease(job.as_str(), &holder),
                    )
                    .await;
                    match gone {
                        Ok(Ok(true)) => {
                            tracing::info!(job = job.as_str(), "released the job's lease")
                        }
                        Ok(Ok(false)) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(job = job.as_str(), error = %e, "cannot release the job's lease; it expires")
                        }
                        Err(_) => {
                            tracing::warn!(
                                job = job.as_str(),
                                "releasing the job's lease timed out; it expires"
                            )
                        }
                    }
                }) as GateFuture<'static, ()>
            }))
        })
    }
}

/// Renew `job`'s lease until `done`; cancel `run` when it is lost. `ok` is
/// when the last successful take or renewal was sent.
async fn keep(
    gate: LeaseGate,
    job: JobName,
    run: CancellationToken,
    done: CancellationToken,
    mut ok: Instant,
) {
    let name = job.as_str();
    let mut next = ok + gate.s.renew_every;
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        // Before anything else: after a pause the lease may be someone
        // else's already, whatever a renewal would say a moment later.
        let deadline = ok + gate.s.ttl;
        if Instant::now() >= deadline {
            tracing::warn!(
                job = name,
                "the job's lease ran out before it was renewed (was the process paused?); stopping the job"
            );
            run.cancel();
            return;
        }
        let sent = Instant::now();
        let renewed = tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(job = name, "cannot renew the job's lease in time; stopping the job");
                run.cancel();
                return;
            }
            r = gate.store.take_job_lease(name, &gate.holder, gate.ttl_s()) => r,
        };
        match renewed {
            Ok(Some(_)) => {
                ok = sent;
                next = sent + gate.s.renew_every;
            }
            Ok(None) => {
                tracing::warn!(
                    job = name,
                    "another instance holds the job's lease now; stopping the job"
                );
                run.cancel();
                return;
            }
            Err(e) => {
                // Keep trying until the lease would run out: a blip of the
                // database should not move every job.
                tracing::warn!(job = name, error = %e, "cannot renew the job's lease; retrying");
                next = Instant::now() + RETRY;
            }
        }
    }
}

/// What this instance writes into its heartbeat row.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    /// Unix seconds.
    pub started_on: i64,
    pub version: String,
}

/// How often an instance writes its heartbeat row.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// The instance's heartbeat: its row of the instances seen, every
/// [`HEARTBEAT_EVERY`] and at once when it starts draining.
pub fn heartbeat_job(store: Store, me: Instance, draining: crate::health::Draining) -> Job {
    Job::new(JobName::Heartbeat, move |stop: CancellationToken| {
        let (store, me, draining) = (store.clone(), me.clone(), draining.clone());
        async move {
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                    _ = draining.started() => {}
                }
                let d = draining.is_draining();
                if let Err(e) = store
                    .instance_heartbeat(&me.name, me.started_on, &me.version, d)
                    .await
                {
                    tracing::warn!(error = %e, "cannot write this instance's heartbeat");
                }
                if d {
                    // Written once as draining; nothing changes any more.
                    stop.cancelled().await;
                    return Ok(());
                }
            }
        }
    })
}

/// The default instance name: `HOSTNAME-PID`, unique on a host and telling
/// the operator where to look.
pub fn default_instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && check_instance_name(h).is_ok())
        .unwrap_or_else(|| "serve".to_string());
    format!("{host}-{}", std::process::id())
}

/// Longest instance name.
pub const INSTANCE_NAME_MAX: usize = 64;

/// An instance name is 1 to 64 letters, digits, `.`, `_`, `-` or `:` (it
/// goes into logs, a lease row and the status page).
pub fn check_instance_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > INSTANCE_NAME_MAX {
        return Err(format!(
            "must be 1 to {INSTANCE_NAME_MAX} characters, not {}",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
    {
        Some(c) => Err(format!(
            "{c:?} is not allowed: use letters, digits, '.', '_', '-' or ':'"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names() {
        assert!(check_instance_name("web-1.example:a_b").is_ok());
        assert!(check_instance_name(&default_instance_name()).is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(check_instance_name(bad).is_err(), "{bad:?}");
        }
    }
}
