//! Prometheus metrics of one app instance.
//!
//! Each [`Metrics`] owns its own recorder (never the process-global one), so
//! tests can run many apps side by side and each `/metrics` shows only its
//! own app.

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// Results received, by monitor and outcome.
pub const RESULTS_TOTAL: &str = "poolwatch_results_total";
/// HTTP request latency, by route, method and status.
pub const HTTP_DURATION: &str = "poolwatch_http_request_duration_seconds";
/// How old a result is when the scorer takes it (now − result ts).
pub const SCORER_LAG: &str = "poolwatch_scorer_lag_seconds";
/// Servers, monitors and log rows in the store.
pub const SERVERS: &str = "poolwatch_servers";
pub const MONITORS: &str = "poolwatch_monitors";
pub const LOG_ROWS: &str = "poolwatch_log_rows";
/// Batches accepted, by monitor and outcome (accepted/duplicate).
pub const BATCHES_TOTAL: &str = "poolwatch_batches_total";
/// Servers of a zone the zone guard holds in DNS now, and its events so far
/// (both read from the store at scrape time).
pub const ZONE_GUARD_HELD: &str = "poolwatch_zone_guard_held";
pub const ZONE_GUARD_EVENTS_TOTAL: &str = "poolwatch_zone_guard_events_total";
/// Traceroutes asked of monitors (after a status change) and stored.
pub const TRACEROUTES_REQUESTED_TOTAL: &str = "poolwatch_traceroutes_requested_total";
pub const TRACEROUTES_STORED_TOTAL: &str = "poolwatch_traceroutes_stored_total";
/// Alert deliveries, by kind (down/reminder/recovered), channel
/// (email/webhook) and result (ok/error).
pub const ALERTS_TOTAL: &str = "poolwatch_alerts_total";
/// Selector passes, their duration, servers and changes by new status.
pub const SELECTOR_PASSES: &str = "poolwatch_selector_passes_total";
pub const SELECTOR_PASS_SECONDS: &str = "poolwatch_selector_pass_seconds";
pub const SELECTOR_SERVERS: &str = "poolwatch_selector_servers";
pub const SELECTOR_CHANGES: &str = "poolwatch_selector_changes_total";
/// Servers whose candidates the last pass left for later (candidate budget).
pub const SELECTOR_DEFERRED: &str = "poolwatch_selector_deferred";
/// Rows housekeeping deleted, by what (batches, log_rows), and its passes.
pub const HOUSEKEEPING_DELETED: &str = "poolwatch_housekeeping_deleted_total";
pub const HOUSEKEEPING_PASSES: &str = "poolwatch_housekeeping_passes_total";
/// PostgreSQL's time partitions, by table (`log_scores`, `check_samples`):
/// how many periods, the start of the oldest and the end of the newest
/// (unix seconds; the newest end is how far ahead inserts have a home).
pub const STORE_PARTITIONS: &str = "poolwatch_store_partitions";
pub const STORE_PARTITION_OLDEST: &str = "poolwatch_store_partition_oldest_start_seconds";
pub const STORE_PARTITION_NEWEST_END: &str = "poolwatch_store_partition_newest_end_seconds";
/// Client-distribution reports posted to `/api/dns-counts` (issue 17
/// item 3), by outcome (`stored`, `duplicate`, `invalid`, `unauthorized`,
/// `failed`), and the servers of the stored ones, by what (`stored`,
/// `unknown`: not a server of the pool).
pub const DNS_COUNT_REPORTS: &str = "poolwatch_dns_counts_received_total";
pub const DNS_COUNT_SERVERS: &str = "poolwatch_dns_counts_received_servers_total";
/// 1 while no reference servers are configured (agents skip the clock check).
pub const CLOCK_CHECK_DISABLED: &str = "poolwatch_clock_check_disabled";
/// HTTP connections open now, and those closed at once by a cap, by which
/// (`per_client`, `overall`).
pub const HTTP_CONNECTIONS_OPEN: &str = "poolwatch_http_connections_open";
pub const HTTP_CONNECTIONS_REFUSED: &str = "poolwatch_http_connections_refused_total";
/// Runs of a background job that failed, by job and kind (error, panic).
pub const JOB_FAILURES: &str = "poolwatch_job_failures_total";
/// 1 while this instance runs a singleton job (holds its lease on
/// PostgreSQL), by job; 0 otherwise.
pub const JOB_LEASE_HELD: &str = "poolwatch_job_lease_held";

/// The outcome label of one result, as the pool's monitor counts its tests:
/// `timeout` (no reply), `error` (KoD or socket error), `offset` (answered,
/// but more than 100 ms off or stratum ≥ 8: a step below the 0.5 of the
/// viability line), `ok` otherwise.
pub fn outcome(
    no_response: bool,
    error: Option<&str>,
    offset: Option<f64>,
    stratum: Option<u8>,
) -> &'static str {
    if no_response {
        "timeout"
    } else if error.is_some_and(|e| !e.is_empty()) {
        "error"
    } else if offset.is_none_or(|o| o.abs() > 0.1) || stratum.is_some_and(|s| s >= 8) {
        "offset"
    } else {
        "ok"
    }
}

/// The `method` label: the standard methods by name, anything else (a
/// client may send any token as a method) as `other`, so label values
/// come from a closed set.
pub fn method_label(m: &axum::http::Method) -> &'static str {
    // Methods are case-sensitive: "get" is an extension method, not GET.
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// One app's recorder and the handle that renders it.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let latency = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let lag = [
            1.0,
            5.0,
            15.0,
            60.0,
            300.0,
            900.0,
            3600.0,
            6.0 * 3600.0,
            86400.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &latency)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(SCORER_LAG.into()), &lag))
            .expect("bucket lists are non-empty")
            .build_recorder();
        let handle = recorder.handle();
        let m = Metrics { recorder, handle };
        m.record(|| {
            describe_counter!(RESULTS_TOTAL, "Results received, by monitor and outcome");
            describe_counter!(BATCHES_TOTAL, "Batches submitted, by monitor and outcome");
            describe_counter!(
                TRACEROUTES_REQUESTED_TOTAL,
                "Traceroutes asked of monitors after a change of a server's state"
            );
            describe_counter!(
                TRACEROUTES_STORED_TOTAL,
                "Traceroutes monitors sent back and the service stored"
            );
            describe_counter!(
                ALERTS_TOTAL,
                "Alert deliveries, by kind, channel and result"
            );
            describe_histogram!(
                HTTP_DURATION,
                Unit::Seconds,
                "HTTP request latency by route"
            );
            describe_histogram!(
                SCORER_LAG,
                Unit::Seconds,
                "Age of a result when it was scored (now minus the result's ts)"
            );
            describe_gauge!(HTTP_CONNECTIONS_OPEN, "HTTP connections open now");
            describe_counter!(
                HTTP_CONNECTIONS_REFUSED,
                "HTTP connections closed at once by a connection cap, by cap (per_client, overall)"
            );
            describe_gauge!(SERVERS, "Servers in the store");
            describe_gauge!(MONITORS, "Monitors in the store");
            describe_gauge!(
                LOG_ROWS,
                "Rows in the score log (SQLite: exact, kept at each write; PostgreSQL: an estimate from the id range, which counts ids lost to rolled-back writes)"
            );
            describe_gauge!(
                ZONE_GUARD_HELD,
                "Servers of the zone held in DNS by the zone guard"
            );
            describe_counter!(ZONE_GUARD_EVENTS_TOTAL, "Zone guard events recorded");
            describe_counter!(SELECTOR_PASSES, "Selector passes completed");
            describe_gauge!(
                SELECTOR_PASS_SECONDS,
                Unit::Seconds,
                "Duration of the last selector pass"
            );
            describe_gauge!(SELECTOR_SERVERS, "Servers in the last selector pass");
            describe_gauge!(
                SELECTOR_DEFERRED,
                "Servers whose candidates the last selector pass left for a later pass (candidate budget)"
            );
            describe_counter!(
                SELECTOR_CHANGES,
                "Monitor status changes made by the selector, by new status"
            );
            describe_counter!(
                HOUSEKEEPING_DELETED,
                "Rows deleted by housekeeping, by what: batches (past any agent's spool), log_rows (past --log-retention) live_checks (expired a day ago) and servers (deletion date reached)"
            );
            describe_counter!(HOUSEKEEPING_PASSES, "Housekeeping passes completed");
            describe_counter!(
                DNS_COUNT_REPORTS,
                "DNS client-distribution reports posted, by outcome"
            );
            describe_counter!(
                DNS_COUNT_SERVERS,
                "Servers of the DNS count reports stored, by what (stored, unknown)"
            );
            describe_gauge!(
                STORE_PARTITIONS,
                "PostgreSQL time partitions of a table (log_scores by month, check_samples by day), catch-alls not counted, after the last housekeeping pass"
            );
            describe_gauge!(
                STORE_PARTITION_OLDEST,
                "Start (unix seconds) of a partitioned table's oldest period"
            );
            describe_gauge!(
                STORE_PARTITION_NEWEST_END,
                "End (unix seconds) of a partitioned table's newest period: later rows wait in its _after partition"
            );
            describe_counter!(
                JOB_FAILURES,
                "Runs of a background job that ended in an error or a panic (each is restarted after a back-off), by job and kind"
            );
            describe_gauge!(
                JOB_LEASE_HELD,
                "1 while this instance runs the job (on PostgreSQL: holds its lease), by job; the jobs that run on one instance only"
            );
            describe_gauge!(
                CLOCK_CHECK_DISABLED,
                "1 while the service names no reference servers, so agents do not check their clocks"
            );
        });
        m
    }

    /// Run `f` with this app's recorder as the current one.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// Count one result.
    pub fn result(&self, monitor: &str, outcome: &'static str, lag_s: f64) {
        self.record(|| {
            counter!(RESULTS_TOTAL, "monitor" => monitor.to_string(), "outcome" => outcome)
                .increment(1);
            histogram!(SCORER_LAG).record(lag_s.max(0.0));
        });
    }

    /// Count one batch submission.
    pub fn batch(&self, monitor: &str, outcome: &'static str) {
        self.record(|| {
            counter!(BATCHES_TOTAL, "monitor" => monitor.to_string(), "outcome" => outcome)
                .increment(1);
        });
    }

    /// Count one alert delivery attempt.
    pub fn alert(&self, kind: &'static str, channel: &'static str, result: &'static str) {
        self.record(|| {
            counter!(ALERTS_TOTAL, "kind" => kind, "channel" => channel, "result" => result)
                .increment(1);
        });
    }

    /// Count traceroute requests made.
    pub fn traceroutes_requested(&self, n: u64) {
        self.record(|| counter!(TRACEROUTES_REQUESTED_TOTAL).increment(n));
    }

    /// Count one stored traceroute.
    pub fn traceroute_stored(&self) {
        self.record(|| counter!(TRACEROUTES_STORED_TOTAL).increment(1));
    }

    /// Time one HTTP request. `route` is a route pattern or `unmatched`,
    /// `method` from [`method_label`], `status` one this service answers.
    pub fn request(&self, route: String, method: &'static str, status: u16, seconds: f64) {
        self.record(|| {
            histogram!(HTTP_DURATION, "route" => route, "method" => method, "status" => status.to_string())
                .record(seconds);
        });
    }

    /// Count one DNS count report that was not stored; `outcome` is one
    /// of `invalid`, `unauthorized`, `failed`.
    pub fn dns_count_report(&self, outcome: &'static str) {
        self.record(|| counter!(DNS_COUNT_REPORTS, "outcome" => outcome).increment(1));
    }

    /// Count one DNS count report the store took (new or a duplicate).
    pub fn dns_counts_stored(&self, stored: &dns::CountsStored) {
        let outcome = if stored.new { "stored" } else { "duplicate" };
        self.record(|| {
            counter!(DNS_COUNT_REPORTS, "outcome" => outcome).increment(1);
            counter!(DNS_COUNT_SERVERS, "what" => "stored").increment(stored.servers as u64);
            counter!(DNS_COUNT_SERVERS, "what" => "unknown").increment(stored.unknown as u64);
        });
    }

    /// Set the store gauges.
    pub fn counts(&self, servers: i64, monitors: i64, log_rows: i64) {
        self.record(|| {
            gauge!(SERVERS).set(servers as f64);
            gauge!(MONITORS).set(monitors as f64);
            gauge!(LOG_ROWS).set(log_rows as f64);
        });
    }

    /// Whether the agents' clock check is off (no reference servers).
    pub fn clock_check_disabled(&self, disabled: bool) {
        self.record(|| gauge!(CLOCK_CHECK_DISABLED).set(if disabled { 1.0 } else { 0.0 }));
    }

    /// The listeners' connections, read at scrape time.
    pub fn http_connections(&self, stats: &crate::HttpStats) {
        let (per_client, overall) = stats.refused();
        self.record(|| {
            gauge!(HTTP_CONNECTIONS_OPEN).set(stats.open() as f64);
            counter!(HTTP_CONNECTIONS_REFUSED, "cap" => "per_client").absolute(per_client);
            counter!(HTTP_CONNECTIONS_REFUSED, "cap" => "overall").absolute(overall);
        });
    }

    /// Record one housekeeping pass.
    pub fn housekeeping(&self, h: &store::Housekeeping) {
        self.record(|| {
            counter!(HOUSEKEEPING_PASSES).increment(1);
            counter!(HOUSEKEEPING_DELETED, "what" => "batches").increment(h.batches);
            counter!(HOUSEKEEPING_DELETED, "what" => "log_rows").increment(h.log_rows);
            counter!(HOUSEKEEPING_DELETED, "what" => "live_checks").increment(h.live_checks);
            counter!(HOUSEKEEPING_DELETED, "what" => "servers").increment(h.servers);
            counter!(HOUSEKEEPING_DELETED, "what" => "check_samples").increment(h.samples);
            counter!(HOUSEKEEPING_DELETED, "what" => "dns_counts").increment(h.dns_counts);
        });
    }

    /// The partitions housekeeping found or made (PostgreSQL).
    pub fn partitions(&self, states: &[store::PartitionState]) {
        self.record(|| {
            for p in states {
                gauge!(STORE_PARTITIONS, "table" => p.table).set(p.partitions as f64);
                gauge!(STORE_PARTITION_OLDEST, "table" => p.table).set(p.oldest as f64);
                gauge!(STORE_PARTITION_NEWEST_END, "table" => p.table).set(p.newest_end as f64);
            }
        });
    }

    /// The background jobs' failed runs, read at scrape time.
    pub fn jobs(&self, stats: &crate::jobs::JobStats) {
        use crate::jobs::{FailureKind, JobName};
        self.record(|| {
            for job in JobName::ALL {
                for kind in [FailureKind::Error, FailureKind::Panic] {
                    counter!(JOB_FAILURES, "job" => job.as_str(), "kind" => kind.as_str())
                        .absolute(stats.failures(job, kind));
                }
                if job.is_singleton() {
                    let held = if stats.holds(job) { 1.0 } else { 0.0 };
                    gauge!(JOB_LEASE_HELD, "job" => job.as_str()).set(held);
                }
            }
        });
    }

    /// Set the zone guard series from the store's per-zone numbers.
    pub fn zone_guard(&self, stats: &[store::ZoneGuardStat]) {
        self.record(|| {
            for z in stats {
                gauge!(ZONE_GUARD_HELD, "zone" => z.zone.clone()).set(z.held as f64);
                counter!(ZONE_GUARD_EVENTS_TOTAL, "zone" => z.zone.clone())
                    .absolute(z.events.max(0) as u64);
            }
        });
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        assert_eq!(outcome(true, Some("i/o timeout"), None, None), "timeout");
        assert_eq!(outcome(false, Some("RATE"), None, Some(0)), "error");
        assert_eq!(outcome(false, None, Some(0.5), Some(2)), "offset");
        assert_eq!(outcome(false, None, Some(-0.2), Some(2)), "offset");
        assert_eq!(outcome(false, None, Some(0.001), Some(9)), "offset");
        assert_eq!(outcome(false, None, Some(0.05), Some(2)), "ok");
        assert_eq!(outcome(false, Some(""), Some(0.0), Some(1)), "ok");
    }

    #[test]
    fn two_apps_do_not_share_series() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.result("mon-a", "ok", 2.0);
        a.request("/x".into(), "GET", 200, 0.01);
        let text = a.render();
        assert!(
            text.contains(r#"poolwatch_results_total{monitor="mon-a",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("poolwatch_http_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(!b.render().contains("mon-a"));
    }

    #[test]
    fn methods_from_a_closed_set() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::TRACE), "TRACE");
        for odd in ["FOO", "get", "PROPFIND", "X1234567"] {
            let m = Method::from_bytes(odd.as_bytes()).unwrap();
            assert_eq!(method_label(&m), "other", "{odd}");
        }
    }
}
