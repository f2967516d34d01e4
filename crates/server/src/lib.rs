//! poolwatch's central service over HTTP: the monitor API (config, work,
//! results, authenticated by key and ticket; registration for `agent
//! setup`, accepted on the manage pages), the public data API (score
//! logs as the pool's CSV and JSON, servers, zones), the public web pages,
//! the operators' manage side (`manage`: sign-in, accounts, their servers —
//! added after a live check by monitors, verified through `/verify` — their
//! pages and JSON API) and Prometheus metrics. It never sends an NTP
//! packet itself: monitors check, even an address being added.
//!
//! Scoring arithmetic lives in `scoring` and every query in `store`; this
//! crate only checks requests, calls them and renders answers. It must not
//! log a monitor key, a ticket, the ticket secret, a registration secret
//! or code, a sign-in link, a verification link, a session id or an API
//! token, and bad input must never change stored data or panic.

pub mod alerts;
pub mod clock_check;
mod config;
pub mod dns_counts;
mod dns_zone;
mod error;
mod evidence;
mod extract;
pub mod health;
pub mod housekeeping_job;
mod http;
pub mod jobs;
pub mod leases;
mod live_checks;
mod logfmt;
pub mod manage;
mod metrics;
mod monitor_api;
pub mod policy_replay;
mod ratelimit;
mod registration;
mod registry;
mod scores;
mod security;
pub mod selector_job;
mod state;
mod traceroute_requests;
mod web;
pub mod zone_guard_job;

pub mod admin;
pub mod keys;

pub use api::MAX_BATCH_SIZE;
pub use config::{RateLimitConfig, ServerConfig};
pub use dns_zone::{DnsJob, DnsZoneConfig, run_dns, zone_from_store};
pub use error::ApiError;
pub use http::{DEFAULT_LISTEN, HttpLimits, HttpStats, serve_http};
pub use logfmt::CSV_HEADER;
pub use monitor_api::{batch_id_text, parse_batch_id};
pub use state::{AppState, Clock};
pub use traceroute_requests::TRANSITIONS_TRACED_PER_SUBMISSION;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;
use store::Store;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

/// The whole app, `/metrics` included. Tests drive it with
/// `tower::ServiceExt::oneshot`; give requests a `ConnectInfo<SocketAddr>`
/// extension (or serve it with [`serve_on`]) so the rate limiter sees a
/// client address.
pub fn router(state: AppState) -> Router {
    app(state, true)
}

/// `/metrics` alone, for its own listen address.
fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(middleware::map_response(security::headers))
        .with_state(state)
}

fn app(state: AppState, with_metrics: bool) -> Router {
    let monitor = Router::new()
        .route(api::CONFIG_PATH, get(monitor_api::config))
        .route(api::WORK_PATH, post(monitor_api::work))
        .route(api::RESULTS_PATH, post(monitor_api::results))
        .route(api::CLOCK_PATH, post(monitor_api::clock))
        .route(api::TRACEROUTE_PATH, post(traceroute_requests::submit))
        .route(api::LIVE_CHECK_PATH, post(live_checks::report))
        .route(api::TOKEN_PATH, post(monitor_api::token))
        .layer(DefaultBodyLimit::max(state.cfg().max_body_bytes))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            extract::refuse_declared_oversize,
        ));
    // No key (an agent before it has one): capped like the monitor API,
    // rate-limited per client like the public routes.
    let enrol = Router::new()
        .route(api::REGISTER_PATH, post(registration::register))
        .route(api::REGISTER_STATUS_PATH, post(registration::status))
        .layer(DefaultBodyLimit::max(state.cfg().max_body_bytes))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            extract::refuse_declared_oversize,
        ));
    let public = Router::new()
        .merge(enrol)
        .route("/scores/{ip}/log", get(scores::log_csv))
        .route("/scores/{ip}/json", get(scores::log_json))
        .route("/api/v1/servers", get(registry::list_servers))
        .route("/api/v1/servers/{ip}", get(registry::server))
        .route(
            "/api/v1/servers/{ip}/monitors",
            get(selector_job::monitors_api),
        )
        .route("/api/v1/servers/{ip}/dns", get(dns_counts::server_api))
        .route("/api/v1/zones", get(registry::zones))
        .route("/", get(web::index))
        .route("/scores", get(web::lookup))
        .route("/scores/{ip}", get(web::server))
        .route("/zones/{name}", get(web::zone))
        .route("/monitors", get(web::monitors))
        .merge(manage::page_routes())
        .merge(
            manage::api_routes()
                .layer(DefaultBodyLimit::max(state.cfg().max_body_bytes))
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    extract::refuse_declared_oversize,
                )),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limit));
    let mut app = Router::new()
        .merge(monitor)
        .merge(public)
        .route(security::SERVER_PAGE_JS, get(security::server_page_js))
        .route(security::FAVICON, get(security::favicon));
    if with_metrics {
        app = app.route("/metrics", get(metrics_text));
    }
    app.route("/api/dns-zone", get(dns_zone::get))
        // The DNS token is checked before the body is read; the handler
        // caps the body itself (`dns_counts::report_body_cap`).
        .route(dns::COUNTS_PATH, post(dns_counts::post))
        .fallback(not_found)
        // After every route: it applies to the routes added so far.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            track_requests,
        ))
        .layer(middleware::map_response(security::headers))
        // Method, path and status at debug level; never headers, so the
        // Authorization header cannot reach a log.
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        // After the trace layer, so a draining instance's 503s (expected)
        // are not logged as failed requests at every probe; outside the
        // rate limit, as a load balancer probes often from one address.
        .merge(
            Router::new()
                .route("/healthz", get(health::healthz))
                .route("/readyz", get(health::readyz))
                .layer(middleware::map_response(security::headers)),
        )
        .with_state(state)
}

/// A background job `serve` runs besides its own, built from the
/// service's state (so it reads the same store and clock).
pub type ExtraJob = Box<dyn FnOnce(&AppState) -> jobs::Job + Send>;

/// Serve on `cfg.listen` (and `/metrics` on `cfg.metrics_listen` when set)
/// until `shutdown` resolves; then `/readyz` answers 503, serving goes on
/// for `cfg.drain_delay` if anything probed `/readyz`, and the requests in
/// flight finish while the jobs stop, the whole stop within
/// `cfg.http.shutdown_grace`. `extra` jobs (the zone guard, DNS) run beside
/// the service's own and stop with them; on PostgreSQL the singleton jobs
/// run only while this instance holds their lease (`leases`).
pub async fn serve(
    cfg: ServerConfig,
    store: Store,
    extra: Vec<ExtraJob>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
    };
    let listener = bind(cfg.listen).await?;
    let metrics = match cfg.metrics_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    serve_split_with(listener, metrics, cfg, store, extra, shutdown).await
}

/// Like [`serve`] on a listener the caller bound (e.g. port 0 in tests),
/// `/metrics` on it too.
pub async fn serve_on(
    listener: TcpListener,
    cfg: ServerConfig,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_split_with(listener, None, cfg, store, Vec::new(), shutdown).await
}

/// Like [`serve_on`], with `/metrics` on `metrics` instead when given (and
/// 404 on `listener`).
pub async fn serve_split(
    listener: TcpListener,
    metrics: Option<TcpListener>,
    cfg: ServerConfig,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_split_with(listener, metrics, cfg, store, Vec::new(), shutdown).await
}

/// [`serve_split`] with `extra` jobs.
pub async fn serve_split_with(
    listener: TcpListener,
    metrics: Option<TcpListener>,
    cfg: ServerConfig,
    store: Store,
    extra: Vec<ExtraJob>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let state = AppState::new(cfg, store);
    let instance = state.cfg().instance_name.clone();
    tracing::info!(%addr, backend = state.store().backend_name(), %instance, "serving HTTP");
    let alerter = match state.cfg().alerts.clone() {
        Some(a) => Some(alerts::Alerter::new(a).map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    let mut jobs = jobs::Jobs::new(state.job_stats().clone());
    // SQLite is one process (its data directory is locked): every job runs
    // here. On PostgreSQL several instances share the database: each
    // singleton job runs where its lease is.
    if state.store().backend_name() == "postgres" {
        let l = state.cfg().leases;
        jobs = jobs.with_gate(
            leases::LeaseGate::new(state.store().clone(), instance.clone(), l),
            l.recheck,
        );
    }
    let me = leases::Instance {
        name: instance.clone(),
        started_on: state.now(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    for job in background_jobs(&state, alerter)
        .into_iter()
        .chain([leases::heartbeat_job(
            state.store().clone(),
            me,
            state.draining().clone(),
        )])
        .chain(extra.into_iter().map(|make| make(&state)))
    {
        jobs.start(job);
    }
    // The whole stop is bounded by the grace: the drain delay (ready no
    // more, still serving), then requests in flight and the jobs together.
    let grace = state.cfg().http.shutdown_grace;
    let drain_delay = state.cfg().drain_delay.min(grace);
    let limits = state.cfg().http.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let on_signal = stop.clone();
    let draining = state.draining().clone();
    // When the stop must be over; known once the signal came.
    let (end_tx, end_rx) = tokio::sync::watch::channel(None);
    let signal = tokio::spawn(async move {
        shutdown.await;
        let t0 = tokio::time::Instant::now();
        let _ = end_tx.send(Some(t0 + grace));
        draining.start();
        // Without a balancer probing /readyz nobody needs the delay.
        if draining.was_probed() && !drain_delay.is_zero() {
            tracing::info!(?drain_delay, "draining: /readyz answers 503, still serving");
            tokio::time::sleep(drain_delay).await;
        }
        on_signal.cancel();
        let left = (t0 + grace).saturating_duration_since(tokio::time::Instant::now());
        // Jobs stop (and release their leases) while requests finish.
        jobs.shutdown(left).await;
    });
    let metrics_task = match metrics {
        Some(m) => {
            tracing::info!(addr = %m.local_addr()?, "serving /metrics");
            Some(tokio::spawn(serve_http(
                m,
                metrics_router(state.clone()),
                limits.clone(),
                state.http_stats().clone(),
                stop.clone(),
            )))
        }
        None => None,
    };
    let stats = state.http_stats().clone();
    let app = app(state, metrics_task.is_none());
    // The listener's own grace counts from when it stops accepting, after
    // the drain delay; the end of the whole stop bounds it.
    tokio::select! {
        _ = serve_http(listener, app, limits, stats, stop.clone()) => {}
        _ = stop_ends(end_rx.clone()) => tracing::warn!(?grace, "shutdown grace over: dropping the connections left"),
    }
    if let Some(mut t) = metrics_task {
        tokio::select! {
            _ = &mut t => {}
            _ = stop_ends(end_rx) => t.abort(),
        }
    }
    let _ = signal.await;
    tracing::info!("HTTP server stopped");
    Ok(())
}

/// Resolves when the stop must be over (once the signal set that time).
async fn stop_ends(mut end: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>) {
    let at = match end.wait_for(Option::is_some).await {
        Ok(at) => *at,
        // The signal task is gone without a stop: nothing to bound.
        Err(_) => None,
    };
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The service's own jobs, as its config asks.
fn background_jobs(state: &AppState, alerter: Option<alerts::Alerter>) -> Vec<jobs::Job> {
    let mut out = vec![
        zone_counts_job(state.clone()),
        clock_check::job(clock_check::disabled(state.cfg()), clock_check::WARN_EVERY),
    ];
    if let Some(s) = state.cfg().selector.clone() {
        out.push(selector_job::job(state.clone(), s));
    }
    if let Some(h) = state.cfg().housekeeping {
        out.push(housekeeping_job::job(state.clone(), h));
    }
    if let Some(a) = alerter {
        out.push(alerts::job(state.clone(), a));
    }
    out
}

/// Zone count history: today's row is refreshed every 10 minutes.
fn zone_counts_job(state: AppState) -> jobs::Job {
    jobs::Job::new(jobs::JobName::ZoneCounts, move |stop| {
        let state = state.clone();
        async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                if let Err(e) = state.store().record_zone_counts(state.now()).await {
                    tracing::warn!(error = %e, "cannot record zone counts");
                }
            }
        }
    })
}

/// The span of a request, as tower-http's default makes it, but with the
/// secret in a sign-in link's path left out.
fn request_span(req: &Request) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %req.method(),
        uri = %manage::auth::loggable_path(req.uri()),
        version = ?req.version(),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// `GET /metrics`: the store counts are read at scrape time.
async fn metrics_text(State(st): State<AppState>) -> Response {
    st.metrics()
        .clock_check_disabled(clock_check::disabled(st.cfg()));
    st.metrics().http_connections(st.http_stats());
    st.metrics().jobs(st.job_stats());
    match st.store().metric_counts().await {
        Ok((servers, monitors, rows)) => st.metrics().counts(servers, monitors, rows),
        Err(e) => tracing::warn!(error = %e, "cannot count store rows for metrics"),
    }
    match st.store().zone_guard_stats().await {
        Ok(stats) => st.metrics().zone_guard(&stats),
        Err(e) => tracing::warn!(error = %e, "cannot read zone guard numbers for metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        {
            let mut text = st.metrics().render();
            // Process-wide series (the DNS server's), when serve runs one.
            if let Some(h) = &st.cfg().process_metrics {
                text.push_str(&h.render());
            }
            text
        },
    )
        .into_response()
}

/// Time every request, labelled by its route pattern (never the raw path,
/// which would make one series per IP address).
async fn track_requests(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = metrics::method_label(req.method());
    let resp = next.run(req).await;
    st.metrics().request(
        route,
        method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// Token bucket per client on the public routes.
async fn rate_limit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let client = ratelimit::request_client(
        req.extensions(),
        req.headers(),
        &st.cfg().rate_limit.trusted_proxies,
    );
    match st.limiter().check(client, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let e = ApiError::rate_limited(secs);
            if req.uri().path().ends_with("/log") {
                e.plain().into_response()
            } else {
                e.into_response()
            }
        }
    }
}
