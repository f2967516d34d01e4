//! The agent's client for the monitor API: JSON over HTTP(S). The
//! long-lived key is sent only to `api::TOKEN_PATH`, for an access token of
//! about an hour that every other call carries; the token is renewed when
//! three quarters of its life are gone, or at once after a 401 (the call is
//! then sent once more). A service without the token route (older than
//! the agent) gets the key on every call, as before. The messages
//! themselves are the `api` crate's, shared with the service.

use crate::body;
use api::{
    Accepted, AccessToken, ClockReport, LiveCheckReport, MAX_BATCH_SIZE, MonitorConfig, Submission,
    TracerouteSubmission, Work, WorkRequest,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a request failed, which decides what the agent does next.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Could not talk to the service (down, network): retry later; results are spooled.
    #[error("cannot reach the service: {0}")]
    Unreachable(String),
    /// The service failed or is busy (5xx, 429): retry later, not before
    /// its `Retry-After`; results are spooled.
    #[error("service error {status}: {body}")]
    Server {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    /// The service refused this request (4xx); retrying the same request will not help.
    #[error("refused with {status}: {body}")]
    Rejected { status: u16, body: String },
    /// The answer was larger than any this call can legitimately have; it
    /// was not read further. Retry later, as for a service error.
    #[error(
        "the service's {kind} answer (status {status}) is larger than the {limit} bytes the agent reads; not read further"
    )]
    TooLarge {
        kind: &'static str,
        status: u16,
        limit: usize,
    },
}

impl ApiError {
    /// True when the same request may succeed later.
    pub fn is_transient(&self) -> bool {
        !matches!(self, ApiError::Rejected { .. })
    }

    /// How long the service asked us to wait (its `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The status label (see [`status_label`]), or "error" when there was
    /// no answer (for metrics).
    pub fn status_label(&self) -> &'static str {
        match self {
            ApiError::Unreachable(_) => "error",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::Server { status, .. } | ApiError::Rejected { status, .. } => {
                status_label(*status)
            }
        }
    }
}

/// Largest `config` answer read. A config is a few hundred bytes; its one
/// list, `reference_servers`, is a handful of names of at most 253 bytes:
/// 256 KiB holds a thousand of them.
pub const CONFIG_BODY_MAX: usize = 256 * 1024;
/// Largest answer read for `results`, `clock` and `traceroute`: a few
/// dozen bytes of JSON (or none).
pub const SMALL_BODY_MAX: usize = 16 * 1024;
/// Largest error body read; only its first 500 characters are kept.
pub const ERROR_BODY_MAX: usize = 4 * 1024;
/// A `work` answer holds at most `batch_size` servers of
/// `{"ip":"<≤ 45 chars>","ticket":"<64 hex>"}` (≈ 130 bytes each); 512
/// leaves room for whitespace, escapes and fields a newer service may add.
pub const WORK_BYTES_PER_SERVER: usize = 512;
/// A `work` answer's fixed part: batch id, retry hint, at most 4
/// traceroute requests with reasons of at most 200 characters (≤ 1.2 KB
/// each even fully escaped) and at most 3 live checks (an id and an
/// address each). 64 KiB also absorbs a service whose batch
/// size grew since the config was read (the config is re-read after the
/// refusal).
pub const WORK_BODY_BASE: usize = 64 * 1024;

/// The largest `work` answer read for a monitor with this batch size
/// (64 KiB + 512 B per server: 69 KiB for the default 10, 564 KiB for the
/// service's maximum 1000, never more: a config naming more cannot raise
/// the cap beyond what [`MAX_BATCH_SIZE`] servers need).
pub fn work_body_max(batch_size: u32) -> usize {
    WORK_BODY_BASE + WORK_BYTES_PER_SERVER * batch_size.min(MAX_BATCH_SIZE) as usize
}

/// Labels of an agent series: `pairs`, and `family` ("4" or "6") when
/// the process runs one loop per address family (`agent --state-dir`
/// from credentials); a single `--key` agent has none, as before.
pub fn labels(
    family: Option<&'static str>,
    pairs: &[(&'static str, &'static str)],
) -> Vec<metrics::Label> {
    let mut out: Vec<metrics::Label> = pairs
        .iter()
        .map(|(k, v)| metrics::Label::from_static_parts(k, v))
        .collect();
    if let Some(f) = family {
        out.push(metrics::Label::from_static_parts("family", f));
    }
    out
}

/// Count and log an answer over its limit; `part` is "answer" or "error".
fn too_large(
    family: Option<&'static str>,
    kind: &'static str,
    part: &'static str,
    status: u16,
    limit: usize,
) {
    tracing::warn!(
        "the service's {kind} {part} body (status {status}) is over the agent's {limit}-byte limit; not read further"
    );
    metrics::counter!(
        "poolwatch_agent_api_body_too_large_total",
        labels(family, &[("kind", kind), ("part", part)])
    )
    .increment(1);
}

/// The `status` label of an API answer from a closed set: the codes the
/// service sends by name, any other by its class (`4xx`), so whatever sits
/// at the other end cannot make a series per code.
pub fn status_label(status: u16) -> &'static str {
    const NAMED: [(u16, &str); 14] = [
        (200, "200"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (409, "409"),
        (413, "413"),
        (422, "422"),
        (429, "429"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
    ];
    if let Some((_, label)) = NAMED.iter().find(|(code, _)| *code == status) {
        return label;
    }
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// What the client sends as its bearer: a token while it has a fresh one.
#[derive(Default)]
struct Auth {
    /// The token and when to renew it (before it expires).
    token: Option<(String, Instant)>,
    /// The service has no token route: send the key itself.
    key_only: bool,
}

/// A client for one service and one monitor key.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
    /// Shared by every clone (traceroute and live check tasks), so one
    /// token serves them all.
    auth: Arc<tokio::sync::Mutex<Auth>>,
    family: Option<&'static str>,
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
            auth: Arc::default(),
            family: None,
        })
    }

    /// Label this client's series with `family` ("4" or "6"), see [`labels`].
    pub fn with_family(mut self, family: Option<&'static str>) -> Api {
        self.family = family;
        self
    }

    /// The bearer for the next call: the current token, a new one when it
    /// is due for renewal, or the key for a service without tokens.
    async fn bearer(&self) -> Result<(String, bool), ApiError> {
        let mut auth = self.auth.lock().await;
        if auth.key_only {
            return Ok((self.key.clone(), false));
        }
        if let Some((token, renew)) = &auth.token
            && Instant::now() < *renew
        {
            return Ok((token.clone(), true));
        }
        let req = self.http.post(format!("{}{}", self.base, api::TOKEN_PATH));
        match self.send_as("token", req, &self.key).await {
            Ok(r) => {
                let (bytes, over) = body::read_capped(r, SMALL_BODY_MAX)
                    .await
                    .map_err(|e| ApiError::Unreachable(without_url(&e)))?;
                if over {
                    too_large(self.family, "token", "answer", 200, SMALL_BODY_MAX);
                    return Err(ApiError::TooLarge {
                        kind: "token",
                        status: 200,
                        limit: SMALL_BODY_MAX,
                    });
                }
                let t: AccessToken =
                    serde_json::from_slice(&bytes).map_err(|e| ApiError::Server {
                        status: 200,
                        body: format!("unreadable token answer: {e}"),
                        retry_after: None,
                    })?;
                // Renew with a quarter of its life left: clock skew and
                // slow calls never make a call go out with a stale token.
                let renew =
                    Instant::now() + Duration::from_secs(t.expires_in.saturating_mul(3) / 4);
                auth.token = Some((t.token.clone(), renew));
                tracing::debug!("new access token, valid {} s", t.expires_in);
                Ok((t.token, true))
            }
            Err(ApiError::Rejected {
                status: 404 | 405, ..
            }) => {
                tracing::info!("the service has no access tokens; sending the monitor key");
                auth.key_only = true;
                Ok((self.key.clone(), false))
            }
            Err(e) => Err(e),
        }
    }

    /// Send with an access token (or the key, see [`bearer`](Self::bearer));
    /// a 401 on a token drops it and sends once more with a new one.
    async fn send(
        &self,
        kind: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let (bearer, is_token) = self.bearer().await?;
        let again = req.try_clone();
        match self.send_as(kind, req, &bearer).await {
            Err(ApiError::Rejected { status: 401, .. }) if is_token && again.is_some() => {
                {
                    let mut auth = self.auth.lock().await;
                    if auth.token.as_ref().is_some_and(|(t, _)| *t == bearer) {
                        auth.token = None;
                    }
                }
                let (bearer, _) = self.bearer().await?;
                self.send_as(kind, again.expect("checked"), &bearer).await
            }
            out => out,
        }
    }

    /// Send with `bearer`; a non-2xx answer becomes an `ApiError`. Every
    /// request is counted by kind and status.
    async fn send_as(
        &self,
        kind: &'static str,
        req: reqwest::RequestBuilder,
        bearer: &str,
    ) -> Result<reqwest::Response, ApiError> {
        let out = match req.bearer_auth(bearer).send().await {
            Err(e) => Err(ApiError::Unreachable(without_url(&e))),
            Ok(r) if r.status().is_success() => Ok(r),
            Ok(r) => {
                let status = r.status();
                let retry_after = retry_after(r.headers());
                // Only the start of an error body is kept: read no more.
                let (bytes, over) = body::read_capped(r, ERROR_BODY_MAX)
                    .await
                    .unwrap_or_default();
                if over {
                    too_large(self.family, kind, "error", status.as_u16(), ERROR_BODY_MAX);
                }
                let body: String = String::from_utf8_lossy(&bytes).chars().take(500).collect();
                if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    Err(ApiError::Server {
                        status: status.as_u16(),
                        body,
                        retry_after,
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
            Ok(r) => status_label(r.status().as_u16()),
            Err(e) => e.status_label(),
        };
        metrics::counter!(
            "poolwatch_agent_api_requests_total",
            labels(self.family, &[("kind", kind), ("status", label)])
        )
        .increment(1);
        out
    }

    /// Send, then read the answer up to `limit`; larger is `TooLarge`.
    async fn send_read(
        &self,
        kind: &'static str,
        limit: usize,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), ApiError> {
        let r = self.send(kind, req).await?;
        let status = r.status().as_u16();
        match body::read_capped(r, limit)
            .await
            .map_err(|e| ApiError::Unreachable(without_url(&e)))?
        {
            (_, true) => {
                too_large(self.family, kind, "answer", status, limit);
                Err(ApiError::TooLarge {
                    kind,
                    status,
                    limit,
                })
            }
            (bytes, false) => Ok((status, bytes)),
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        kind: &'static str,
        limit: usize,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let (status, bytes) = self.send_read(kind, limit, req).await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Server {
            status,
            body: format!("unreadable answer: {e}"),
            retry_after: None,
        })
    }

    pub async fn config(&self) -> Result<MonitorConfig, ApiError> {
        self.call(
            "config",
            CONFIG_BODY_MAX,
            self.http.get(format!("{}{}", self.base, api::CONFIG_PATH)),
        )
        .await
    }

    /// Ask for work; the answer is read up to what `batch_size` servers
    /// need ([`work_body_max`]).
    pub async fn work(&self, batch_size: u32) -> Result<Work, ApiError> {
        self.call(
            "work",
            work_body_max(batch_size),
            self.http
                .post(format!("{}{}", self.base, api::WORK_PATH))
                .json(&WorkRequest {}),
        )
        .await
    }

    /// Tell the service how the last clock sanity check went (shown on its
    /// `/monitors` page). Best effort: the answer has no body.
    pub async fn report_clock(&self, ok: bool, detail: &str) -> Result<(), ApiError> {
        let detail: String = detail.chars().take(1000).collect();
        let req = self
            .http
            .post(format!("{}{}", self.base, api::CLOCK_PATH))
            .json(&ClockReport { ok, detail });
        self.send_read("clock", SMALL_BODY_MAX, req).await.map(drop)
    }

    /// Send back a traceroute the service asked for.
    pub async fn submit_traceroute(&self, report: &TracerouteSubmission) -> Result<(), ApiError> {
        let req = self
            .http
            .post(format!("{}{}", self.base, api::TRACEROUTE_PATH))
            .json(report);
        self.send_read("traceroute", SMALL_BODY_MAX, req)
            .await
            .map(drop)
    }

    /// Send back the answer to a live check the service asked for.
    pub async fn submit_live_check(&self, report: &LiveCheckReport) -> Result<(), ApiError> {
        let req = self
            .http
            .post(format!("{}{}", self.base, api::LIVE_CHECK_PATH))
            .json(report);
        self.send_read("live_check", SMALL_BODY_MAX, req)
            .await
            .map(drop)
    }

    pub async fn submit(&self, results: &Submission) -> Result<Accepted, ApiError> {
        self.call(
            "results",
            SMALL_BODY_MAX,
            self.http
                .post(format!("{}{}", self.base, api::RESULTS_PATH))
                .json(results),
        )
        .await
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by poolwatch).
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse().ok().map(Duration::from_secs)
}

/// reqwest errors include the URL; ours never carry secrets, but keep the text short.
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_cap_follows_the_batch_size() {
        assert_eq!(work_body_max(0), 64 * 1024);
        assert_eq!(work_body_max(10), 64 * 1024 + 5120);
        assert_eq!(work_body_max(1000), 64 * 1024 + 512_000);
        // A config claiming a huge batch size cannot lift the cap.
        assert_eq!(work_body_max(u32::MAX), work_body_max(1000));
        // The largest legitimate server entry fits its share several times.
        let entry = serde_json::to_string(&api::WorkServer {
            ip: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".into(),
            ticket: "f".repeat(64),
        })
        .unwrap();
        assert!(entry.len() * 3 < WORK_BYTES_PER_SERVER, "{}", entry.len());
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn status_labels_come_from_a_closed_set() {
        assert_eq!(status_label(200), "200");
        assert_eq!(status_label(429), "429");
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(599), "5xx");
        assert_eq!(status_label(999), "other");
        let all: std::collections::HashSet<&str> = (0..=u16::MAX).map(status_label).collect();
        assert!(all.len() <= 20, "{all:?}");
    }
}
