//! `/healthz` and `/readyz` for load balancers and orchestrators, and the
//! draining flag a SIGTERM raises first (issue 16).
//!
//! `/healthz`: the process answers HTTP (200 always). `/readyz`: 200 only
//! when the store answers within [`READY_TIMEOUT`] with every migration of
//! this build applied, and the instance is not draining; else 503 with a
//! short reason. Both are outside the public rate limit (a balancer probes
//! often from one address); `/readyz` costs one small query per
//! [`READY_CACHE`] at most, however many probes come.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long `/readyz` waits for the store.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one store check answers `/readyz`: the route is outside the
/// rate limit, so a flood of probes costs at most one query per second.
pub const READY_CACHE: Duration = Duration::from_secs(1);

/// Whether the instance is shutting down (not ready any more), and
/// whether anyone ever asked `/readyz` (without a balancer probing there
/// is no one to wait for, so shutdown skips the drain delay).
#[derive(Clone, Debug, Default)]
pub struct Draining {
    token: CancellationToken,
    probed: Arc<AtomicBool>,
    last_check: Arc<tokio::sync::Mutex<Option<LastCheck>>>,
}

/// The last store check: when, and its 503 reason if it failed.
type LastCheck = (Instant, Option<String>);

impl Draining {
    /// From now on `/readyz` answers 503.
    pub fn start(&self) {
        self.token.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when draining starts.
    pub async fn started(&self) {
        self.token.cancelled().await
    }

    /// True once `/readyz` has been asked.
    pub fn was_probed(&self) -> bool {
        self.probed.load(Ordering::Relaxed)
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// `GET /healthz`.
pub async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

/// `GET /readyz`.
pub async fn readyz(State(st): State<AppState>) -> Response {
    let d = st.draining();
    d.probed.store(true, Ordering::Relaxed);
    if d.is_draining() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: draining\n".into(),
        );
    }
    // Probes that arrive together wait for one check and share it.
    let mut last = d.last_check.lock().await;
    let failed = match &*last {
        Some((at, failed)) if at.elapsed() < READY_CACHE => failed.clone(),
        _ => {
            let failed = match tokio::time::timeout(READY_TIMEOUT, st.store().check_ready()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("store: {e}")),
                Err(_) => Some(format!("store did not answer within {READY_TIMEOUT:?}")),
            };
            *last = Some((Instant::now(), failed.clone()));
            failed
        }
    };
    match failed {
        None => text(StatusCode::OK, "ready\n".into()),
        Some(why) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}
