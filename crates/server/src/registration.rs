//! Monitor registration for `agent setup` (no key): the agent posts its
//! random secret once from each address family; the service records the
//! source address it saw per family and answers a short code and the URL
//! where a signed-in volunteer accepts it (`manage::monitor_enrol`). The
//! agent then polls with its secret until it gets its keys, once.
//!
//! The secret and the keys are never logged; the code is derived from the
//! secret with the service's secret (`TicketSigner::registration_code`), so
//! both families' requests get the same code without storing it.

use crate::admin::is_public;
use crate::config::RateLimitConfig;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::keys::{display_code, generate_key, hash_key};
use crate::state::AppState;
use api::{
    MonitorCredential, Registered, Registration, RegistrationPoll, RegistrationState,
    RegistrationStatus,
};
use axum::Json;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap};
use std::time::Instant;
use store::{Collected, NewRegistration, StoreError};

/// A registration can be accepted for this long; once accepted, the agent
/// has as long again to collect its keys.
pub const REGISTRATION_TTL_S: i64 = 3600;
/// Where the volunteer accepts a registration, under the public URL.
pub const ACCEPT_PATH: &str = "/manage/monitors/accept";

/// Registrations per client address: a setup sends two (one per family);
/// a burst of 10, then one a minute.
pub fn register_limit() -> RateLimitConfig {
    RateLimitConfig {
        per_second: 1.0 / 60.0,
        burst: 10.0,
        trusted_proxies: Vec::new(),
        max_clients: 10_000,
    }
}

/// Code look-ups on the accept page, per client address and per account:
/// a volunteer needs two (the page, the form); a guesser gets 10, then one
/// every 30 s, against 2^50 codes.
pub fn code_limit() -> RateLimitConfig {
    RateLimitConfig {
        per_second: 1.0 / 30.0,
        burst: 10.0,
        trusted_proxies: Vec::new(),
        max_clients: 10_000,
    }
}

/// The URL a volunteer opens to accept the registration with `code`.
pub fn accept_url(st: &AppState, code: &str) -> String {
    format!(
        "{}{ACCEPT_PATH}?code={}",
        crate::manage::auth::public_url(st),
        display_code(code)
    )
}

/// The secret as sent: 64 hex digits (256 random bits), lower-cased.
fn check_secret(secret: &str) -> Result<String, ApiError> {
    if secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(secret.to_ascii_lowercase())
    } else {
        Err(ApiError::bad_request(
            "secret: must be 64 hex digits (256 random bits, made by `poolwatch agent setup`)",
        ))
    }
}

/// `field` is at most `max` characters, else 400 naming it.
fn bounded(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.chars().count() > max {
        return Err(ApiError::bad_request(format!(
            "{field}: at most {max} characters"
        )));
    }
    Ok(v.to_string())
}

/// 400 naming `field` unless every byte of `value` passes `ok`.
fn only(field: &str, value: &str, allowed: &str, ok: impl Fn(u8) -> bool) -> Result<(), ApiError> {
    if value.bytes().all(ok) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("{field}: only {allowed}")))
    }
}

/// `POST /api/v1/monitor/register`.
pub async fn register(
    State(st): State<AppState>,
    ext: Extensions,
    headers: HeaderMap,
    JsonBody(r): JsonBody<Registration>,
) -> Result<Json<Registered>, ApiError> {
    let client =
        crate::ratelimit::request_client(&ext, &headers, &st.cfg().rate_limit.trusted_proxies)
            .to_canonical();
    let secret = check_secret(&r.secret)?;
    let hostname = bounded("hostname", &r.hostname, 253)?;
    let client_version = bounded("client_version", &r.client_version, 100)?;
    let name_hint = bounded("name_hint", &r.name_hint, 63)?;
    // Anyone can register, and the volunteer is asked to trust what the
    // accept page shows: no words, markup or look-alike letters there.
    only(
        "hostname",
        &hostname,
        "letters, digits, '.', '-' and '_'",
        |b| b.is_ascii_alphanumeric() || b"._-".contains(&b),
    )?;
    for (field, v) in [
        ("client_version", &client_version),
        ("name_hint", &name_hint),
    ] {
        only(field, v, "printable ASCII", |b| {
            b.is_ascii_graphic() || b == b' '
        })?;
    }
    if !st.cfg().manage.allow_private && !is_public(client) {
        return Err(ApiError::forbidden(format!(
            "this registration comes from {client}, not a public address: a monitor checks \
             servers from its public addresses, so register from the host itself (a lab \
             service runs with --allow-private)"
        )));
    }
    if let Err(wait) = st.register_limiter().check(client, Instant::now()) {
        return Err(ApiError::rate_limited(wait.as_secs().max(1)));
    }
    let code = st.tickets().registration_code(&secret);
    let now = st.now();
    let new = NewRegistration {
        secret_hash: hash_key(&secret),
        code_hash: hash_key(&code),
        hostname,
        client_version,
        name_hint,
        ip: client,
    };
    match st
        .store()
        .register_monitor(new, now, now + REGISTRATION_TTL_S)
        .await?
    {
        store::Registered::Waiting(row) => {
            tracing::info!(
                id = row.id,
                %client,
                host = %row.hostname,
                "monitor registration"
            );
            Ok(Json(Registered {
                url: accept_url(&st, &code),
                code: display_code(&code),
                expires_in: (row.expires - now).max(0) as u64,
            }))
        }
        store::Registered::Expired => Err(ApiError::gone(
            "this registration has expired; run `poolwatch agent setup` again",
        )),
        store::Registered::Accepted => Err(ApiError::conflict(
            "this registration was accepted already; its agent collects its keys with register/status",
        )),
    }
}

/// `POST /api/v1/monitor/register/status`.
pub async fn status(
    State(st): State<AppState>,
    JsonBody(p): JsonBody<RegistrationPoll>,
) -> Result<Json<RegistrationStatus>, ApiError> {
    let secret = check_secret(&p.secret)?;
    // Made for every poll, kept only by the one that collects them.
    let (k4, k6) = (generate_key(), generate_key());
    let got = st
        .store()
        .collect_registration(&hash_key(&secret), &hash_key(&k4), &hash_key(&k6), st.now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::not_found(
                "no registration with this secret; run `poolwatch agent setup` again",
            ),
            e => e.into(),
        })?;
    let (state, credentials) = match got {
        Collected::Waiting => (RegistrationState::Waiting, Vec::new()),
        Collected::Expired => (RegistrationState::Expired, Vec::new()),
        Collected::Delivered => (RegistrationState::Delivered, Vec::new()),
        Collected::Now(rows) => {
            let names: Vec<&str> = rows.iter().map(|(_, n)| n.as_str()).collect();
            tracing::info!(monitors = ?names, "monitor keys collected by agent setup");
            let creds = rows
                .into_iter()
                .map(|(family, name)| MonitorCredential {
                    family,
                    name,
                    key: if family == 4 { k4.clone() } else { k6.clone() },
                })
                .collect();
            (RegistrationState::Accepted, creds)
        }
    };
    Ok(Json(RegistrationStatus { state, credentials }))
}
