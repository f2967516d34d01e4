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
            describe_gauge!(SERVERS, "Servers in the store");
            describe_gauge!(MONITORS, "Monitors in the store");
            describe_gauge!(LOG_ROWS, "Rows in the score log");
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

    /// Time one HTTP request.
    pub fn request(&self, route: String, method: String, status: u16, seconds: f64) {
        self.record(|| {
            histogram!(HTTP_DURATION, "route" => route, "method" => method, "status" => status.to_string())
                .record(seconds);
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
        a.request("/x".into(), "GET".into(), 200, 0.01);
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
}
