//! The monitor API as the agent sees it: JSON over HTTP(S) with a bearer key.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `GET /api/v1/monitor/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub name: String,
    pub samples: u32,
    pub sample_interval_ms: u64,
    pub timeout_ms: u64,
    #[serde(default)]
    pub reference_servers: Vec<String>,
    pub batch_size: u32,
    /// The monitor's registered address; queries are sent from it when set.
    #[serde(default)]
    pub ip: Option<String>,
}

/// One server to check, with the service's ticket for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkServer {
    pub ip: String,
    pub ticket: String,
}

/// `POST /api/v1/monitor/work`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Work {
    pub batch_id: String,
    pub servers: Vec<WorkServer>,
    #[serde(default)]
    pub retry_after_s: Option<u64>,
    /// Traceroutes the service asks for (also with no servers).
    #[serde(default)]
    pub traceroutes: Vec<TraceRequest>,
}

/// A traceroute the service asks for, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRequest {
    pub ip: String,
    #[serde(default)]
    pub reason: String,
}

/// One check's best sample, as submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultItem {
    pub ip: String,
    pub ticket: String,
    /// Unix seconds when the check finished.
    pub ts: i64,
    pub offset: Option<f64>,
    pub rtt: Option<f64>,
    pub stratum: Option<u8>,
    pub leap: Option<u8>,
    pub refid: Option<String>,
    pub error: Option<String>,
    pub no_response: bool,
}

/// `POST /api/v1/monitor/results` body; also the unit of the spool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub batch_id: String,
    pub results: Vec<ResultItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitResponse {
    pub accepted: u64,
    #[serde(default)]
    pub duplicate: bool,
}

/// How a request failed, which decides what the agent does next.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Could not talk to the service (down, network): retry later; results are spooled.
    #[error("cannot reach the service: {0}")]
    Unreachable(String),
    /// The service failed (5xx): retry later; results are spooled.
    #[error("service error {status}: {body}")]
    Server { status: u16, body: String },
    /// The service refused this request (4xx); retrying the same request will not help.
    #[error("refused with {status}: {body}")]
    Rejected { status: u16, body: String },
}

impl ApiError {
    /// True when the same request may succeed later.
    pub fn is_transient(&self) -> bool {
        !matches!(self, ApiError::Rejected { .. })
    }

    /// The status code, or "error" when there was no answer (for metrics).
    pub fn status_label(&self) -> String {
        match self {
            ApiError::Unreachable(_) => "error".into(),
            ApiError::Server { status, .. } | ApiError::Rejected { status, .. } => {
                status.to_string()
            }
        }
    }
}

/// A client for one service and one monitor key.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl std::fmt::Debug for Api {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(base: &str, key: &str) -> Result<Api, ApiError> {
        // One process-wide TLS provider; ignore "already installed".
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("poolwatch-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
        })
    }

    /// Send with the key; a non-2xx answer becomes an `ApiError`. Every
    /// request is counted by kind and status.
    async fn send(
        &self,
        kind: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let out = match req.bearer_auth(&self.key).send().await {
            Err(e) => Err(ApiError::Unreachable(without_url(&e))),
            Ok(r) if r.status().is_success() => Ok(r),
            Ok(r) => {
                let status = r.status();
                let body: String = r
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(500)
                    .collect();
                if status.is_server_error() {
                    Err(ApiError::Server {
                        status: status.as_u16(),
                        body,
                    })
                } else {
                    Err(ApiError::Rejected {
                        status: status.as_u16(),
                        body,
                    })
                }
            }
        };
        let label = match &out {
            Ok(r) => r.status().as_u16().to_string(),
            Err(e) => e.status_label(),
        };
        metrics::counter!("poolwatch_agent_api_requests_total", "kind" => kind, "status" => label)
            .increment(1);
        out
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        kind: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let r = self.send(kind, req).await?;
        let status = r.status().as_u16();
        r.json::<T>().await.map_err(|e| ApiError::Server {
            status,
            body: format!("unreadable answer: {}", without_url(&e)),
        })
    }

    pub async fn config(&self) -> Result<MonitorConfig, ApiError> {
        self.call(
            "config",
            self.http
                .get(format!("{}/api/v1/monitor/config", self.base)),
        )
        .await
    }

    pub async fn work(&self) -> Result<Work, ApiError> {
        self.call(
            "work",
            self.http
                .post(format!("{}/api/v1/monitor/work", self.base))
                .json(&serde_json::json!({})),
        )
        .await
    }

    /// Tell the service how the last clock sanity check went (shown on its
    /// `/monitors` page). Best effort: the answer has no body.
    pub async fn report_clock(&self, ok: bool, detail: &str) -> Result<(), ApiError> {
        let detail: String = detail.chars().take(1000).collect();
        let req = self
            .http
            .post(format!("{}/api/v1/monitor/clock", self.base))
            .json(&serde_json::json!({ "ok": ok, "detail": detail }));
        self.send("clock", req).await.map(drop)
    }

    /// Send back a traceroute the service asked for.
    pub async fn submit_traceroute(
        &self,
        report: &crate::traceroute::TracerouteReport,
    ) -> Result<(), ApiError> {
        let req = self
            .http
            .post(format!("{}/api/v1/monitor/traceroute", self.base))
            .json(report);
        self.send("traceroute", req).await.map(drop)
    }

    pub async fn submit(&self, results: &Results) -> Result<SubmitResponse, ApiError> {
        self.call(
            "results",
            self.http
                .post(format!("{}/api/v1/monitor/results", self.base))
                .json(results),
        )
        .await
    }
}

/// reqwest errors include the URL; ours never carry secrets, but keep the text short.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
