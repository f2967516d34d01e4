//! Housekeeping in the running service: every [`HOUSEKEEPING_INTERVAL`]
//! (and once at start) it makes PostgreSQL's time partitions ahead
//! (`Store::ensure_partitions`), prunes batches no agent can still submit and,
//! with a log retention set, score log rows older than that (on
//! PostgreSQL whole partitions past it are dropped first)
//! (`Store::housekeep`), checks' samples older than the sample retention
//! (`Store::prune_samples`), DNS answer counts older than the DNS count
//! retention (`Store::prune_dns_counts`), expired sessions and e-mailed links, live checks
//! expired a day ago, and servers whose deletion date has come. What each
//! pass deleted goes to the log and (batches, log rows, live checks,
//! servers) to
//! `poolwatch_housekeeping_deleted_total{what}`.

use crate::jobs::{Job, JobName};
use crate::state::AppState;
use std::time::Instant;
use store::{BATCH_KEEP_S, HOUSEKEEPING_CHUNK, Housekeeping, StoreError};
use tokio_util::sync::CancellationToken;

pub(crate) mod settings;
pub use settings::{
    DEFAULT_DNS_COUNT_RETENTION, DEFAULT_SAMPLE_RETENTION, HOUSEKEEPING_INTERVAL,
    HousekeepingSettings, MIN_DNS_COUNT_RETENTION, MIN_LOG_RETENTION,
};

/// One pass at `now` (unix seconds): deletes, logs, counts.
pub async fn pass(
    state: &AppState,
    settings: &HousekeepingSettings,
    now: i64,
) -> Result<Housekeeping, StoreError> {
    let start = Instant::now();
    // PostgreSQL: the coming periods' partitions first, so new rows have
    // their home (crate docs of `store::partitions`); SQLite: none.
    // A lock that did not come within DDL_LOCK_TIMEOUT fails only this
    // step: the periods made ahead leave time, the next pass tries again.
    let parts = match state.store().ensure_partitions(now).await {
        Ok(parts) => parts,
        Err(e) => {
            tracing::warn!(error = %e, "housekeeping: partitions not made ahead");
            Vec::new()
        }
    };
    state.metrics().partitions(&parts);
    for p in parts.iter().filter(|p| p.created > 0) {
        tracing::info!(
            table = p.table,
            created = p.created,
            moved_rows = p.moved,
            partitions = p.partitions,
            newest_end = p.newest_end,
            "housekeeping: made partitions ahead"
        );
    }
    let log_before = settings
        .log_retention
        .map(|d| now - i64::try_from(d.as_secs()).unwrap_or(i64::MAX).min(now));
    let mut done = state
        .store()
        .housekeep(now - BATCH_KEEP_S, log_before, HOUSEKEEPING_CHUNK)
        .await?;
    let samples_before = now
        - i64::try_from(settings.sample_retention.as_secs())
            .unwrap_or(i64::MAX)
            .min(now);
    done.samples = state
        .store()
        .prune_samples(samples_before, HOUSEKEEPING_CHUNK)
        .await?;
    done.live_checks = state.store().prune_live_checks(now).await?;
    // Client distribution: whole hours past the retention (reports that
    // old are refused, so their ids can go with them).
    let dns_before = now
        - i64::try_from(settings.dns_count_retention.as_secs())
            .unwrap_or(i64::MAX)
            .min(now);
    done.dns_counts = state
        .store()
        .prune_dns_counts(store::dns_count_hour(dns_before))
        .await?;
    // Work stopped handing them out on their date; now they go.
    done.servers = state.store().remove_due_servers(now).await?;
    // Spent and expired verification links (an hour each) are of no use.
    state
        .store()
        .prune_server_verifications(now - 86_400)
        .await?;
    // Monitor registrations never accepted: an hour each, then a day's grace.
    state.store().prune_registrations(now - 86_400).await?;
    state.metrics().housekeeping(&done);
    prune_sign_in(state, now).await?;
    if done != Housekeeping::default() {
        tracing::info!(
            batches = done.batches,
            log_rows = done.log_rows,
            live_checks = done.live_checks,
            servers = done.servers,
            check_samples = done.samples,
            dns_counts = done.dns_counts,
            seconds = start.elapsed().as_secs_f64(),
            "housekeeping: deleted old rows"
        );
    }
    Ok(done)
}

/// Ends sessions past their limits and forgets e-mailed links a day
/// after they expired (the per-address limit counts the last hour).
async fn prune_sign_in(state: &AppState, now: i64) -> Result<(), StoreError> {
    let limits = crate::manage::auth::session_limits(state);
    let sessions = state.store().delete_expired_sessions(limits, now).await?;
    let links = state.store().delete_old_links(now - 86_400).await?;
    if sessions + links > 0 {
        tracing::info!(
            sessions,
            links,
            "housekeeping: deleted expired sessions and links"
        );
    }
    Ok(())
}

/// Housekeeping as a background job of `serve`.
pub fn job(state: AppState, settings: HousekeepingSettings) -> Job {
    Job::new(JobName::Housekeeping, move |stop| {
        run_loop(state.clone(), settings, stop)
    })
}

/// A pass now, then every `settings.interval`, until `stop`.
pub async fn run_loop(
    state: AppState,
    settings: HousekeepingSettings,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = pass(&state, &settings, state.now()).await {
            tracing::warn!(error = %e, "housekeeping pass failed");
        }
    }
}
