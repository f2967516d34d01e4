//! Sending the answer counts to the service: `poolwatch dns` harvests its
//! [`crate::AnswerCounts`] every interval and posts each [`CountReport`] to
//! `POST {api}/api/dns-counts` with the zone token. A report that could not
//! be sent stays in a backlog and is sent again, unchanged (same
//! `report_id`, so the service stores it once), before newer ones.

use api::dns_counts::{COUNTS_PATH, CountReport, CountsStored};
use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most server entries kept unsent (about 100 bytes each as JSON, a few
/// hundred in memory): beyond it the oldest reports are dropped, counted
/// in `poolwatch_dns_count_reports_total{result="dropped"}`.
pub const MAX_BACKLOG_SERVERS: usize = 500_000;
/// How long unsent reports are kept, at most: a day's worth of harvests.
pub const MAX_BACKLOG_AGE: Duration = Duration::from_secs(86_400);
/// How long the last send at shutdown may take.
pub const FINAL_SEND_TIMEOUT: Duration = Duration::from_secs(5);

const REPORTS: &str = "poolwatch_dns_count_reports_total";
const BACKLOG: &str = "poolwatch_dns_count_backlog_reports";

/// Posts reports to the service, keeping those not yet accepted.
pub struct CountPoster {
    http: reqwest::Client,
    url: String,
    token: String,
    backlog: VecDeque<CountReport>,
    /// Most reports kept: a day's worth of harvests.
    max_reports: usize,
    /// Most server entries kept ([`MAX_BACKLOG_SERVERS`]).
    max_servers: usize,
}

/// How one POST went.
enum Outcome {
    Sent,
    /// Worth sending again (unreachable, 5xx, 401/403, 429).
    Failed(String),
    /// The service refused this report for good (400, 413, 422).
    Rejected(String),
}

impl CountPoster {
    /// A poster to `{api}/api/dns-counts` with the bearer `token`, for
    /// harvests every `every`.
    pub fn new(api: &str, token: &str, every: Duration) -> Result<CountPoster, reqwest::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("poolwatch-dns/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()?;
        let per_day = MAX_BACKLOG_AGE.as_secs_f64() / every.as_secs_f64().max(1.0);
        Ok(CountPoster {
            http,
            url: format!("{}{COUNTS_PATH}", api.trim_end_matches('/')),
            token: token.to_string(),
            backlog: VecDeque::new(),
            max_reports: (per_day.ceil() as usize).max(1),
            max_servers: MAX_BACKLOG_SERVERS,
        })
    }

    /// The URL posted to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Reports waiting to be sent.
    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }

    /// Queues `reports` behind the unsent ones (dropping the oldest beyond
    /// the bounds), then sends in order until one fails; the failed one
    /// and those after it wait for the next call.
    pub async fn send(&mut self, reports: Vec<CountReport>, timeout: Duration) {
        self.backlog.extend(reports);
        self.bound();
        let deadline = tokio::time::Instant::now() + timeout;
        while let Some(report) = self.backlog.front() {
            let outcome = match tokio::time::timeout_at(deadline, self.post(report)).await {
                Ok(o) => o,
                Err(_) => Outcome::Failed("timed out".into()),
            };
            match outcome {
                Outcome::Sent => {
                    metrics::counter!(REPORTS, "result" => "sent").increment(1);
                    self.backlog.pop_front();
                }
                Outcome::Rejected(why) => {
                    // Sending it again cannot help; the rest still can.
                    tracing::warn!(report = %report.report_id, "{} refused a count report: {why}", self.url);
                    metrics::counter!(REPORTS, "result" => "rejected").increment(1);
                    self.backlog.pop_front();
                }
                Outcome::Failed(why) => {
                    metrics::counter!(REPORTS, "result" => "failed").increment(1);
                    tracing::warn!(
                        waiting = self.backlog.len(),
                        "cannot send DNS counts to {}: {why}; kept for the next try",
                        self.url
                    );
                    break;
                }
            }
        }
        metrics::gauge!(BACKLOG).set(self.backlog.len() as f64);
    }

    /// Drops the oldest reports beyond a day's worth or
    /// [`MAX_BACKLOG_SERVERS`] entries.
    fn bound(&mut self) {
        let mut servers: usize = self.backlog.iter().map(|r| r.servers.len()).sum();
        let mut dropped = 0u64;
        while self.backlog.len() > self.max_reports
            || (servers > self.max_servers && self.backlog.len() > 1)
        {
            if let Some(r) = self.backlog.pop_front() {
                servers -= r.servers.len();
                dropped += 1;
            }
        }
        if dropped > 0 {
            tracing::warn!(dropped, "DNS count backlog full: oldest reports dropped");
            metrics::counter!(REPORTS, "result" => "dropped").increment(dropped);
        }
    }

    async fn post(&self, report: &CountReport) -> Outcome {
        let resp = match self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(report)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let status = resp.status();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        if status.is_success() {
            match serde_json::from_slice::<CountsStored>(&body) {
                Ok(stored) => tracing::debug!(
                    report = %report.report_id,
                    new = stored.new,
                    servers = stored.servers,
                    unknown = stored.unknown,
                    "DNS counts stored"
                ),
                // Stored all the same: the status says so.
                Err(e) => tracing::debug!(%e, "unexpected answer to a count report"),
            }
            return Outcome::Sent;
        }
        let why = format!(
            "{status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        );
        match status.as_u16() {
            400 | 413 | 422 => Outcome::Rejected(why),
            _ => Outcome::Failed(why),
        }
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Every `every`, harvests with `harvest` and sends through `poster`, until
/// `shutdown`; then one last harvest and send within
/// [`FINAL_SEND_TIMEOUT`].
pub async fn count_loop(
    mut harvest: impl FnMut(i64) -> Vec<CountReport>,
    mut poster: CountPoster,
    every: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = interval.tick() => {}
        }
        let reports = harvest(now_unix());
        let sending = poster.send(reports, every.max(Duration::from_secs(10)));
        tokio::select! {
            _ = &mut shutdown => break,
            _ = sending => {}
        }
    }
    let reports = harvest(now_unix());
    poster.send(reports, FINAL_SEND_TIMEOUT).await;
    if poster.backlog() > 0 {
        tracing::warn!(
            lost = poster.backlog(),
            "stopping with DNS count reports unsent"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(n: usize, servers: usize) -> CountReport {
        CountReport {
            report_id: format!("r-{n}"),
            servers: (0..servers)
                .map(|i| api::dns_counts::ServerCount {
                    ip: std::net::IpAddr::from([10, 0, (i >> 8) as u8, i as u8]),
                    answers: Default::default(),
                    zone_answers: 1,
                    expected: 0.0,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn unsent_reports_wait_in_order_within_a_days_worth() {
        // Nothing listens on port 1: every send fails.
        let mut p = CountPoster::new("http://127.0.0.1:1", "t", Duration::from_secs(3600)).unwrap();
        assert_eq!(p.max_reports, 24);
        for n in 0..30 {
            p.send(vec![report(n, 1)], Duration::from_secs(5)).await;
        }
        // The oldest six were dropped; the rest wait, oldest first.
        let ids: Vec<&str> = p.backlog.iter().map(|r| r.report_id.as_str()).collect();
        let want: Vec<String> = (6..30).map(|n| format!("r-{n}")).collect();
        assert_eq!(ids, want);
    }

    #[tokio::test]
    async fn the_backlog_is_bounded_by_servers_too() {
        let mut p = CountPoster::new("http://127.0.0.1:1", "t", Duration::from_secs(60)).unwrap();
        p.max_servers = 100;
        let big = 51;
        for n in 0..3 {
            p.send(vec![report(n, big)], Duration::from_secs(5)).await;
        }
        // Two of them would be over the bound: only the newest is kept.
        let ids: Vec<&str> = p.backlog.iter().map(|r| r.report_id.as_str()).collect();
        assert_eq!(ids, ["r-2"]);
    }
}
