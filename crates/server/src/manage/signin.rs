//! Signing in by e-mailed link, picking an account, signing out.
//!
//! `/manage` asks for an address; `POST /manage/signin` mails a one-time
//! link (the same answer whether the address is known or not: nobody can
//! learn who has an account). The link's page has one button that POSTs,
//! so mail scanners that fetch links don't use them up. Requests are
//! limited per address (links made in the last hour, counted in the
//! store) and per client (in memory).

use super::auth::{
    self, LINK_PREFIX, SessionForm, SessionUser, clear_cookie, csrf_input, see_other, session_of,
    signin_off_reason,
};
use super::view::{page, page_status};
use crate::config::{RateLimitConfig, ServerConfig};
use crate::error::ApiError;
use crate::keys::hash_key;
use crate::state::AppState;
use crate::web::html::PageError;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use maud::html;
use std::time::Instant;
use store::StoreError;

/// Links one address may be sent per hour.
pub const LINKS_PER_ADDRESS_HOUR: i64 = 5;
/// Sign-in requests one client may make: a burst of 10, then 10 an hour.
pub fn client_limit(cfg: &ServerConfig) -> RateLimitConfig {
    RateLimitConfig {
        per_second: 10.0 / 3600.0,
        burst: 10.0,
        trusted_proxies: cfg.rate_limit.trusted_proxies.clone(),
        max_clients: 100_000,
    }
}

/// Where to go after signing in (`?next=`, a form field, a link's query):
/// only ever used through [`auth::safe_next`].
#[derive(serde::Deserialize, Default)]
pub struct Next {
    #[serde(default)]
    next: Option<String>,
}

impl Next {
    fn safe(&self) -> Option<&str> {
        self.next.as_deref().and_then(auth::safe_next)
    }
}

/// `GET /manage`: the overview when signed in, else the sign-in form.
pub async fn home(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(next): Query<Next>,
) -> Result<Response, PageError> {
    if let Some(s) = session_of(&headers, &st).await? {
        return match auth::operator_of(&st, s).await? {
            Some(op) => super::overview::render(&st, &op).await,
            None => Ok(see_other(&accounts_url(next.safe()))),
        };
    }
    Ok(signin_form(&st, None, next.safe()))
}

/// The account picker, carrying `next` on.
pub(crate) fn accounts_url(next: Option<&str>) -> String {
    match next.and_then(auth::safe_next) {
        Some(n) => format!("/manage/accounts?{}", auth::next_query(n)),
        None => "/manage/accounts".into(),
    }
}

fn signin_form(st: &AppState, note: Option<&str>, next: Option<&str>) -> Response {
    let off = signin_off_reason(st.cfg());
    page(
        "Sign in",
        None,
        html! {
            h1 { "Manage your servers" }
            @if let Some(why) = off {
                p.bad { "Sign-in is off on this service (" (why) "). Ask the pool's operator." }
            } @else {
                p { "Enter your e-mail address; we send you a link that signs you in (no password)." }
                @if let Some(n) = note { p.bad { (n) } }
                form.lookup method="post" action="/manage/signin" {
                    input type="email" name="email" required placeholder="you@example.org" aria-label="E-mail address";
                    @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                    button type="submit" { "Send me a sign-in link" }
                }
            }
        },
    )
}

#[derive(serde::Deserialize)]
pub struct EmailForm {
    email: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /manage/signin`: mails a sign-in link.
pub async fn request_link(
    State(st): State<AppState>,
    parts: Parts,
    axum::Form(f): axum::Form<EmailForm>,
) -> Result<Response, PageError> {
    let next = f.next.as_deref().and_then(auth::safe_next);
    if signin_off_reason(st.cfg()).is_some() {
        return Ok(signin_form(&st, None, next));
    }
    let email = match auth::mail_address(&f.email) {
        Ok(e) => e,
        Err(e) => {
            let mut r = signin_form(&st, Some(e.detail()), next);
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(r);
        }
    };
    if let Err(wait) = st
        .signin_limiter()
        .check(auth::client_ip(&parts, &st), Instant::now())
    {
        return Err(ApiError::rate_limited(wait.as_secs().max(1)).into());
    }
    let now = st.now();
    if st.store().count_links_since(&email, now - 3600).await? >= LINKS_PER_ADDRESS_HOUR {
        return Err(ApiError::rate_limited(3600)
            .with_detail(
                "too many sign-in links for this e-mail address in the last hour; try again later",
            )
            .into());
    }
    if may_sign_in(&st, &email).await? {
        let url = auth::issue_signin_link_to(&st, &email, next).await?;
        let mins = st.cfg().manage.signin_link_ttl.as_secs() / 60;
        let text = format!(
            "Someone (hopefully you) asked to sign in to {base}.\n\n\
             Open this link within {mins} minutes to sign in (it works once):\n\n{url}\n\n\
             If it was not you, ignore this message.\n",
            base = auth::public_url(&st)
        );
        auth::send_mail(&st, &email, "Your sign-in link", &text).await?;
    }
    Ok(page(
        "Check your e-mail",
        None,
        html! {
            h1 { "Check your e-mail" }
            p { "If " strong { (email) } " may sign in here, a sign-in link is on its way. It works once, for "
                (st.cfg().manage.signin_link_ttl.as_secs() / 60) " minutes." }
        },
    ))
}

/// With signup closed, only known people (or invited addresses) get a
/// link; the answer to the request is the same either way.
async fn may_sign_in(st: &AppState, email: &str) -> Result<bool, StoreError> {
    if st.cfg().manage.signup == super::settings::Signup::Open {
        return Ok(true);
    }
    Ok(st.store().user_by_email(email).await?.is_some())
}

fn link_token_ok(token: &str) -> bool {
    token
        .strip_prefix(LINK_PREFIX)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `GET /manage/link/{token}`: what the link does, and one button that
/// does it (POST); fetching this page uses nothing.
pub async fn link_page(
    State(st): State<AppState>,
    Path(token): Path<String>,
    Query(next): Query<Next>,
) -> Result<Response, PageError> {
    if !link_token_ok(&token) {
        return Err(PageError::not_found("no such link"));
    }
    let Some(info) = st
        .store()
        .peek_email_link(&hash_key(&token), st.now())
        .await?
    else {
        return Ok(link_gone());
    };
    let action = match next.safe() {
        Some(n) => format!("/manage/link/{token}?{}", auth::next_query(n)),
        None => format!("/manage/link/{token}"),
    };
    Ok(page(
        "Sign in",
        None,
        html! {
            @if info.purpose == "invite" {
                h1 { "Join " (info.account_name.as_deref().unwrap_or("an account")) }
                p { "You are invited as " (info.role.as_deref().unwrap_or("member")) ", signing in as " strong { (info.email) } "." }
            } @else {
                h1 { "Sign in" }
                p { "As " strong { (info.email) } "." }
            }
            form method="post" action=(action) {
                button type="submit" { "Sign in" }
            }
        },
    ))
}

/// The answer to a link that is unknown, expired or used.
fn link_gone() -> Response {
    page_status(
        StatusCode::GONE,
        "Link expired",
        None,
        html! {
            h1 { "This link does not work any more" }
            p { "It is unknown, expired or already used. " a href="/manage" { "Ask for a new one." } }
        },
    )
}

/// `POST /manage/link/{token}`: uses the link, starts a new session.
pub async fn use_link(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(next): Query<Next>,
) -> Result<Response, PageError> {
    if !link_token_ok(&token) {
        return Err(PageError::not_found("no such link"));
    }
    // Another site's form must not sign a visitor in to the sender's
    // account (login CSRF): browsers say where a POST comes from.
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(ApiError::forbidden("sign in from the link's own page").into());
    }
    let signup = st.cfg().manage.signup;
    let signed = match st
        .store()
        .consume_email_link(&hash_key(&token), signup, st.now())
        .await
    {
        Ok(s) => s,
        Err(StoreError::NotFound(_)) => return Ok(link_gone()),
        Err(StoreError::Invalid(why)) => return Err(ApiError::forbidden(why).into()),
        Err(e) => return Err(e.into()),
    };
    // A session the browser had before is ended, never carried over.
    if let Some(old) = session_of(&headers, &st).await? {
        st.store().delete_session(&old.id_hash).await?;
    }
    let cookie = auth::start_session(&st, signed.user.id, signed.account_id).await?;
    // Back to the page that sent the person here (with several accounts
    // and none picked, `Operator` sends them through the picker first).
    let mut resp = see_other(next.safe().unwrap_or("/manage"));
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(resp)
}

#[derive(serde::Deserialize)]
pub struct Nothing {}

/// `POST /manage/signout`: ends this session.
pub async fn sign_out(
    State(st): State<AppState>,
    SessionForm(s, Nothing {}): SessionForm<Nothing>,
) -> Result<Response, PageError> {
    st.store().delete_session(&s.id_hash).await?;
    Ok(signed_out())
}

/// `POST /manage/signout-all`: ends every session of this person.
pub async fn sign_out_everywhere(
    State(st): State<AppState>,
    SessionForm(s, Nothing {}): SessionForm<Nothing>,
) -> Result<Response, PageError> {
    st.store().delete_sessions_of(s.user_id).await?;
    Ok(signed_out())
}

fn signed_out() -> Response {
    let mut resp = see_other("/manage");
    resp.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    resp
}

/// `GET /manage/accounts`: the accounts of the signed-in person.
pub async fn accounts(
    State(st): State<AppState>,
    s: SessionUser,
    Query(next): Query<Next>,
) -> Result<Response, PageError> {
    let mine = st.store().memberships(s.user_id).await?;
    Ok(page(
        "Your accounts",
        None,
        html! {
            h1 { "Your accounts" }
            p.muted { "Signed in as " (s.email) }
            @if mine.is_empty() {
                p { "You belong to no account. Follow the invitation link you were sent to join one." }
            }
            @for m in &mine {
                form method="post" action="/manage/accounts" {
                    (csrf_input(&s.csrf))
                    input type="hidden" name="account_id" value=(m.account_id);
                    @if let Some(n) = next.safe() { input type="hidden" name="next" value=(n); }
                    button type="submit" { (m.account_name) }
                    " " span.muted { (m.role) @if m.disabled { ", disabled" } }
                    @if s.account_id == Some(m.account_id) { " (current)" }
                }
            }
            form method="post" action="/manage/signout" {
                (csrf_input(&s.csrf))
                button type="submit" { "Sign out" }
            }
            form method="post" action="/manage/signout-all" {
                (csrf_input(&s.csrf))
                button type="submit" { "Sign out everywhere" }
                " " span.muted { "(every browser where you are signed in)" }
            }
        },
    ))
}

#[derive(serde::Deserialize)]
pub struct Pick {
    account_id: i64,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /manage/accounts`: act for one of my accounts (404 for others).
pub async fn pick(
    State(st): State<AppState>,
    SessionForm(s, p): SessionForm<Pick>,
) -> Result<Response, PageError> {
    st.store().pick_account(&s.id_hash, p.account_id).await?;
    Ok(see_other(
        p.next
            .as_deref()
            .and_then(auth::safe_next)
            .unwrap_or("/manage"),
    ))
}
