//! `/manage/monitors/accept`: a signed-in volunteer opens the URL that
//! `agent setup` printed (or types its code), sees the pending
//! registration — the addresses the service saw per family, hostname,
//! client version, time — and accepts it for the account with a name and
//! a location. That makes the monitor rows `NAME` (IPv4) and `NAME-v6`
//! (IPv6), `pending` until a pool admin approves them.
//!
//! The code is the only handle on a registration: every failed look-up
//! costs a token per client and per account (see
//! `registration::code_limit`; taken before the look-up, so an empty
//! bucket refuses even a right code, and given back when the code was
//! found), an unknown code is 404, a spent one (accepted or expired) 410.

use super::auth::{ApiOperator, CsrfForm, Operator, csrf_field};
use super::view::{page, page_status};
use crate::admin::{LOCATION_MAX, check_location, check_monitor_name};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::keys::{display_code, hash_key, normalize_code};
use crate::registration::{ACCEPT_PATH, REGISTRATION_TTL_S};
use crate::state::AppState;
use crate::web::html::{PageError, minute};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use serde_json::{Value, json};
use std::time::Instant;
use store::{Acceptance, MonitorRow, RegistrationRow, StoreError};

#[derive(serde::Deserialize, Default)]
pub struct CodeQuery {
    #[serde(default)]
    code: String,
}

#[derive(serde::Deserialize)]
pub struct AcceptForm {
    code: String,
    name: String,
    #[serde(default)]
    location: String,
}

/// The usable registration with `typed` code: 429 when this client or
/// account has looked up too many, 404 for no such code, 410 when it was
/// accepted already or has expired.
async fn lookup(
    st: &AppState,
    op: &Operator,
    ext: &Extensions,
    headers: &HeaderMap,
    typed: &str,
) -> Result<(String, RegistrationRow), ApiError> {
    let client =
        crate::ratelimit::request_client(ext, headers, &st.cfg().rate_limit.trusted_proxies);
    let now = Instant::now();
    let limited = st
        .code_limiter()
        .check(client, now)
        .and(st.code_account_limiter().take(op.account_id, now));
    if let Err(wait) = limited {
        return Err(ApiError::rate_limited(wait.as_secs().max(1)).with_detail(
            "too many registration codes tried; wait a minute and check the code agent setup printed",
        ));
    }
    let unknown = || {
        ApiError::not_found(
            "no registration with this code: check the code that `poolwatch agent setup` printed",
        )
    };
    let found = match normalize_code(typed) {
        Some(code) => st
            .store()
            .registration_by_code(&hash_key(&code))
            .await?
            .map(|row| (code, row)),
        None => None,
    };
    let Some((code, row)) = found else {
        return Err(unknown());
    };
    // A known code is no guess: a volunteer who reloads the page or
    // mistypes the name is not slowed down.
    st.code_limiter().refund(client);
    st.code_account_limiter().give_back(op.account_id);
    if !row.usable(st.now()) {
        return Err(ApiError::gone(
            "this registration code was used already or has expired; run `poolwatch agent setup` again",
        ));
    }
    Ok((code, row))
}

/// A name to offer: the agent's hint, else the host's first label, made
/// into a monitor name; empty when neither makes one.
fn suggested_name(r: &RegistrationRow) -> String {
    let from = if r.name_hint.is_empty() {
        r.hostname.split('.').next().unwrap_or("")
    } else {
        r.name_hint.as_str()
    };
    let name: String = from
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(60)
        .collect::<String>()
        .to_ascii_lowercase();
    if check_monitor_name(&name).is_ok() {
        name
    } else {
        String::new()
    }
}

/// `GET /manage/monitors/accept[?code=CODE]`.
pub async fn accept_page(
    State(st): State<AppState>,
    op: Operator,
    ext: Extensions,
    headers: HeaderMap,
    Query(q): Query<CodeQuery>,
) -> Result<Response, PageError> {
    if q.code.trim().is_empty() {
        return Ok(page(
            "Accept a monitor",
            Some(&op),
            html! {
                h1 { "Accept a monitor" }
                p { "Run " code { "poolwatch agent setup --api " (super::auth::public_url(&st)) }
                    " on the monitor's host; it prints a code. Type it here:" }
                form method="get" action=(ACCEPT_PATH) {
                    input name="code" required placeholder="ABCDE-FGHJK" aria-label="Code";
                    button type="submit" { "Look it up" }
                }
            },
        ));
    }
    let (code, r) = lookup(&st, &op, &ext, &headers, &q.code).await?;
    let now = st.now();
    Ok(page(
        "Accept a monitor",
        Some(&op),
        html! {
            h1 { "Accept a monitor" }
            p { "A monitor agent registered with code " strong { (display_code(&code)) }
                ". Accept it only if it is yours: check the addresses." }
            table {
                tr { th { "IPv4 address" } td { (r.ipv4.as_deref().unwrap_or("none (no IPv4 registration)")) } }
                tr { th { "IPv6 address" } td { (r.ipv6.as_deref().unwrap_or("none (no IPv6 registration)")) } }
                tr { th { "Hostname" } td { (r.hostname) } }
                tr { th { "Client version" } td { (r.client_version) } }
                tr { th { "Registered" } td { (minute(r.created_on)) " UTC" } }
                tr { th { "Expires" } td { "in " ((r.expires - now).max(0) / 60) " min" } }
            }
            form method="post" action=(ACCEPT_PATH) {
                (csrf_field(&op))
                input type="hidden" name="code" value=(display_code(&code));
                p { label { "Name " input name="name" required maxlength="60" value=(suggested_name(&r)); } }
                p.muted { "Letters, digits and '-'. The IPv6 monitor is named NAME-v6." }
                p { label { "Location " input name="location" maxlength=(LOCATION_MAX) placeholder="Zürich, CH"; } }
                button type="submit" { "Accept for " (op.account_name) }
            }
        },
    ))
}

/// The form's name and location, or 400 naming the field.
fn check_form(f: &AcceptForm, r: &RegistrationRow) -> Result<(String, String), ApiError> {
    let name = f.name.trim().to_string();
    let field = |e: crate::admin::AdminError| ApiError::bad_request(format!("name: {e}"));
    check_monitor_name(&name).map_err(field)?;
    // /manage/monitors/NAME is the monitor's page; this one is taken.
    if name.eq_ignore_ascii_case("accept") {
        return Err(ApiError::bad_request(
            "name: 'accept' is taken by the page you are on; pick another",
        ));
    }
    if r.ipv6.is_some() {
        check_monitor_name(&format!("{name}-v6")).map_err(field)?;
    }
    let location = check_location(&f.location).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((name, location))
}

/// Accepts the registration with `f.code` for `op`'s account: the rules
/// of the page and the API alike.
async fn accept(
    st: &AppState,
    op: &Operator,
    ext: &Extensions,
    headers: &HeaderMap,
    f: &AcceptForm,
) -> Result<Vec<MonitorRow>, ApiError> {
    if op.disabled {
        return Err(ApiError::forbidden(
            "this account is disabled by the pool's admins; it cannot take new monitors",
        ));
    }
    let (code, r) = lookup(st, op, ext, headers, &f.code).await?;
    let (name, location) = check_form(f, &r)?;
    st.store()
        .accept_registration(
            Acceptance {
                code_hash: &hash_key(&code),
                account_id: op.account_id,
                user_id: op.user_id,
                actor: &op.actor,
                name: &name,
                location: &location,
                default_limit: st.cfg().manage.max_monitors_per_account,
                collect_ttl: REGISTRATION_TTL_S,
            },
            st.now(),
        )
        .await
        .map_err(|e| match e {
            // Lost a race with another acceptance of the same code.
            StoreError::NotFound(_) => ApiError::gone("this registration code was used already"),
            e => e.into(),
        })
}

/// `POST /manage/monitors/accept`: the rows are made for the account.
pub async fn accept_post(
    State(st): State<AppState>,
    ext: Extensions,
    headers: HeaderMap,
    CsrfForm(op, f): CsrfForm<AcceptForm>,
) -> Result<Response, PageError> {
    let rows = accept(&st, &op, &ext, &headers, &f).await?;
    Ok(page_status(
        StatusCode::OK,
        "Monitor accepted",
        Some(&op),
        html! {
            h1 { "Monitor accepted" }
            ul { @for m in &rows {
                li { strong { (m.name) } " — IPv" (m.ip_version) " " (m.ip) ", " (m.status) }
            } }
            p { "The agent picks up its credentials within seconds and exits. A pool admin then \
                 approves the monitor; until then it is pending and gets no work. Start it with "
                code { "poolwatch agent --state-dir DIR" } "." }
        },
    ))
}

/// `POST /api/v1/manage/monitors/accept` (`{code, name, location}`, an
/// account's API token): as the page's form; 201 with the monitors.
pub async fn accept_api(
    State(st): State<AppState>,
    ext: Extensions,
    headers: HeaderMap,
    ApiOperator(op): ApiOperator,
    JsonBody(f): JsonBody<AcceptForm>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let rows = accept(&st, &op, &ext, &headers, &f).await?;
    let monitors: Vec<Value> = rows
        .iter()
        .map(|m| {
            json!({"name": m.name, "family": m.ip_version, "ip": m.ip.to_string(),
                   "status": m.status.as_str(), "location": m.location})
        })
        .collect();
    Ok((StatusCode::CREATED, Json(json!({ "monitors": monitors }))))
}
