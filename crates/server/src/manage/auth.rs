//! Who is asking, on the manage side: a person with a session cookie
//! (pages) or an account's API token (`/api/v1/manage/…`).
//!
//! - The session cookie holds a random id; the store keeps its SHA-256.
//!   A sign-in always makes a new id (a cookie set before is never kept).
//! - The CSRF token of a session is derived from its id:
//!   `sha256("csrf:" + id)`. Pages can print it without the store keeping
//!   it in clear (the store keeps its hash, `csrf_hash`), and knowing it
//!   tells nothing about the id (a one-way hash of a 256-bit secret). A
//!   form carries it in a hidden `csrf` field; [`CsrfForm`] checks it
//!   before anything else reads the form.
//! - An API token is shown once at creation; the store keeps its hash.

use crate::error::ApiError;
use crate::keys::hash_key;
use crate::state::AppState;
use crate::web::html::PageError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::de::DeserializeOwned;
use std::net::IpAddr;
use store::{SessionLimits, SessionRow};

pub use store::Role;

/// The session cookie's name.
pub const COOKIE: &str = "poolwatch_session";
/// Prefixes make a leaked secret recognisable (and greppable).
pub const SESSION_PREFIX: &str = "pws_";
pub const TOKEN_PREFIX: &str = "pwt_";
pub const LINK_PREFIX: &str = "pwl_";
/// Largest form body a manage page accepts.
pub const FORM_MAX_BYTES: usize = 16 * 1024;

/// The person (or API token) acting for one account.
#[derive(Clone)]
pub struct Operator {
    /// `None` for an API token.
    pub user_id: Option<i64>,
    /// The person's address; `None` for an API token.
    pub email: Option<String>,
    pub account_id: i64,
    pub account_name: String,
    pub role: Role,
    /// A member of an admin account (may use `/manage/admin`).
    pub is_admin: bool,
    /// The account is disabled by a pool admin.
    pub disabled: bool,
    /// Who, for the audit log: `user:<email>` or `token:<name>`.
    pub actor: String,
    /// The session's CSRF token (pages only).
    pub(crate) csrf: Option<String>,
}

// By hand: the CSRF token stays out of any log line.
impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("user_id", &self.user_id)
            .field("account_id", &self.account_id)
            .field("role", &self.role)
            .field("is_admin", &self.is_admin)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SessionUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionUser")
            .field("user_id", &self.user_id)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl Operator {
    /// 403 unless an owner: members and invitations are owners' business.
    pub fn require_owner(&self) -> Result<(), ApiError> {
        if self.role == Role::Owner {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "only an owner of the account may do this",
            ))
        }
    }
}

/// A signed-in person, whether or not they have picked an account yet.
#[derive(Clone)]
pub struct SessionUser {
    pub user_id: i64,
    pub email: String,
    pub account_id: Option<i64>,
    pub(crate) id_hash: String,
    pub(crate) csrf: String,
}

/// [`Operator`] from `Authorization: Bearer <API token>`; 401 JSON when
/// missing, unknown, revoked, or the account is disabled.
#[derive(Debug, Clone)]
pub struct ApiOperator(pub Operator);

/// A POSTed form of a signed-in operator whose `csrf` field matches the
/// session: missing or wrong → 403, and the handler never runs.
#[derive(Debug)]
pub struct CsrfForm<T>(pub Operator, pub T);

/// [`CsrfForm`] for a person who has not picked an account (the picker,
/// signing out).
#[derive(Debug)]
pub struct SessionForm<T>(pub SessionUser, pub T);

/// The hidden input every state-changing form carries.
pub fn csrf_field(op: &Operator) -> Markup {
    csrf_input(op.csrf.as_deref().unwrap_or(""))
}

pub(crate) fn csrf_input(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A session's CSRF token, derived from its id (see the module doc).
pub(crate) fn csrf_for(session_id: &str) -> String {
    hash_key(&format!("csrf:{session_id}"))
}

/// A fresh random secret with `prefix`.
pub(crate) fn new_secret(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// The session lifetimes `serve` was given.
pub fn session_limits(st: &AppState) -> SessionLimits {
    let m = &st.cfg().manage;
    SessionLimits {
        idle_s: m.session_idle.as_secs() as i64,
        max_age_s: m.session_absolute.as_secs() as i64,
    }
}

/// The service's public base URL, without a trailing `/`.
pub fn public_url(st: &AppState) -> String {
    match &st.cfg().alerts {
        Some(a) => a.public_url.trim_end_matches('/').to_string(),
        None => format!("http://{}", st.cfg().listen),
    }
}

/// The session id in the request's cookie, if any.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// `Set-Cookie` for a new session id.
pub(crate) fn session_cookie(st: &AppState, id: &str) -> HeaderValue {
    let max_age = st.cfg().manage.session_absolute.as_secs();
    let secure = if public_url(st).starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}"
    ))
    .expect("hex id and constant attributes are a valid header")
}

/// `Set-Cookie` that removes the session cookie.
pub(crate) fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("poolwatch_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0")
}

/// The live session of the request, if any.
pub(crate) async fn session_of(
    headers: &HeaderMap,
    st: &AppState,
) -> Result<Option<SessionUser>, ApiError> {
    let Some(id) = cookie_value(headers) else {
        return Ok(None);
    };
    let id_hash = hash_key(id);
    let row = st
        .store()
        .session(&id_hash, session_limits(st), st.now())
        .await?;
    Ok(row.map(|s: SessionRow| SessionUser {
        user_id: s.user_id,
        email: s.email,
        account_id: s.account_id,
        id_hash,
        csrf: csrf_for(id),
    }))
}

/// 303 to `to`.
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Longest `next` a sign-in carries (an accept URL with its code, or a
/// verification link, are well below).
pub const NEXT_MAX: usize = 512;

/// `next` when it is a page of the manage side to return to after signing
/// in, else `None`. It becomes a `Location`, so only a local path under
/// `/manage/` passes: no scheme or host, no `//` (scheme-relative), no
/// `\` (browsers read it as `/`), no `..` (which would climb out of
/// `/manage/`), no `%` (`%2e%2e` is `..` to a browser), nothing outside
/// printable ASCII.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.len() <= NEXT_MAX
        && next.starts_with("/manage/")
        && !next.contains("//")
        && !next.contains("..")
        && next
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~?=&+:@".contains(&b));
    ok.then_some(next)
}

/// `/manage`, carrying `next` when it is safe (see [`safe_next`]).
pub(crate) fn signin_url(next: Option<&str>) -> String {
    match next.and_then(safe_next) {
        Some(n) => format!("/manage?{}", next_query(n)),
        None => "/manage".into(),
    }
}

/// `next=…`, encoded for a URL's query.
pub(crate) fn next_query(next: &str) -> String {
    serde_urlencoded::to_string([("next", next)]).expect("a string pair encodes")
}

/// The page a GET asked for, to come back to after signing in or
/// picking an account (a POST's form is not replayed).
fn opened(parts: &Parts) -> Option<&str> {
    (parts.method == axum::http::Method::GET)
        .then(|| parts.uri.path_and_query().map(|pq| pq.as_str()))
        .flatten()
}

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        match session_of(&parts.headers, st).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(see_other(&signin_url(opened(parts)))),
            Err(e) => Err(PageError(e).into_response()),
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let s = SessionUser::from_request_parts(parts, st).await?;
        operator_of(st, s)
            .await
            .map_err(|e| PageError(e).into_response())?
            .ok_or_else(|| see_other(&super::signin::accounts_url(opened(parts))))
    }
}

/// The operator a session acts as: `None` until it has picked an account
/// it (still) belongs to.
pub(crate) async fn operator_of(
    st: &AppState,
    s: SessionUser,
) -> Result<Option<Operator>, ApiError> {
    let Some(account_id) = s.account_id else {
        return Ok(None);
    };
    let Some(m) = st.store().membership(s.user_id, account_id).await? else {
        return Ok(None);
    };
    Ok(Some(Operator {
        user_id: Some(s.user_id),
        actor: format!("user:{}", s.email),
        email: Some(s.email),
        account_id,
        role: m.role()?,
        account_name: m.account_name,
        is_admin: m.is_admin,
        disabled: m.disabled,
        csrf: Some(s.csrf),
    }))
}

impl FromRequestParts<AppState> for ApiOperator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let token = crate::extract::bearer(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized("send an account API token as 'Authorization: Bearer TOKEN'")
        })?;
        let auth = st
            .store()
            .token_auth(&hash_key(token), st.now())
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized("unknown or revoked token, or the account is disabled")
            })?;
        let account = st
            .store()
            .account_info(auth.account_id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the token's account is gone"))?;
        Ok(ApiOperator(Operator {
            user_id: None,
            email: None,
            account_id: auth.account_id,
            account_name: account.name,
            // Only owners create tokens (see tokens_page), so a token acts
            // as one.
            role: Role::Owner,
            is_admin: auth.is_admin,
            disabled: account.disabled,
            actor: format!("token:{}", auth.name),
            csrf: None,
        }))
    }
}

/// The form body, after its `csrf` matched `expected`: 403 otherwise.
async fn checked_form<T: DeserializeOwned>(
    body: axum::body::Body,
    expected: &str,
) -> Result<T, Response> {
    let bytes = axum::body::to_bytes(body, FORM_MAX_BYTES)
        .await
        .map_err(|_| PageError(ApiError::too_large(FORM_MAX_BYTES)).into_response())?;
    #[derive(serde::Deserialize)]
    struct Csrf {
        csrf: Option<String>,
    }
    let given = serde_urlencoded::from_bytes::<Csrf>(&bytes)
        .ok()
        .and_then(|c| c.csrf)
        .unwrap_or_default();
    // Compared as hashes: equal length, and the time a mismatch takes
    // says nothing about the token.
    if given.is_empty() || hash_key(&given) != hash_key(expected) {
        return Err(PageError(ApiError::forbidden(
            "the form's CSRF token is missing or wrong: reload the page and try again",
        ))
        .into_response());
    }
    serde_urlencoded::from_bytes::<T>(&bytes)
        .map_err(|e| PageError(ApiError::bad_request(format!("form: {e}"))).into_response())
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let op = Operator::from_request_parts(&mut parts, st).await?;
        let form = checked_form(body, op.csrf.as_deref().unwrap_or("")).await?;
        Ok(CsrfForm(op, form))
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for SessionForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let s = SessionUser::from_request_parts(&mut parts, st).await?;
        let form = checked_form(body, &s.csrf).await?;
        Ok(SessionForm(s, form))
    }
}

/// The client's address, as the public rate limit sees it.
pub(crate) fn client_ip(parts: &Parts, st: &AppState) -> IpAddr {
    crate::ratelimit::request_client(
        &parts.extensions,
        &parts.headers,
        &st.cfg().rate_limit.trusted_proxies,
    )
}

/// Starts a session for `user_id` (acting for `account_id`, or its only
/// account): the new cookie's `Set-Cookie`.
pub(crate) async fn start_session(
    st: &AppState,
    user_id: i64,
    account_id: Option<i64>,
) -> Result<HeaderValue, ApiError> {
    let id = new_secret(SESSION_PREFIX);
    st.store()
        .create_session(
            &hash_key(&id),
            &hash_key(&csrf_for(&id)),
            user_id,
            account_id,
            st.now(),
        )
        .await?;
    Ok(session_cookie(st, &id))
}

/// Whether sign-in by e-mail works here, and why not.
pub fn signin_off_reason(cfg: &crate::ServerConfig) -> Option<&'static str> {
    match &cfg.alerts {
        None => Some("no alert settings: sign-in links go out through --smtp-url"),
        Some(a) if a.smtp.is_none() => Some("no --smtp-url: sign-in links are sent by e-mail"),
        Some(a) if a.from.is_none() => Some("no --alert-from: sign-in e-mail needs a sender"),
        Some(_) => None,
    }
}

/// Says at start whether operators can sign in (the binary calls it).
pub fn log_signin_status(cfg: &crate::ServerConfig) {
    match signin_off_reason(cfg) {
        None => tracing::info!(signup = ?cfg.manage.signup, "manage sign-in by e-mail link is on"),
        Some(why) => tracing::warn!(reason = why, "manage sign-in is off"),
    }
}

/// An address a link can be sent to, as stored: the store's form
/// (trimmed, lower-cased) that the mailer also accepts. 400 naming the
/// field otherwise, before anything is stored.
pub fn mail_address(email: &str) -> Result<String, ApiError> {
    let e = store::normalize_email(email)?;
    e.parse::<lettre::Address>().map_err(|_| {
        ApiError::bad_request(format!("email {e:?}: not an address mail can go to"))
    })?;
    Ok(e)
}

/// Makes a sign-in link for `email` (stored hashed, 15 minutes) and
/// returns its URL without sending it: the demo prints it.
pub async fn issue_signin_link(st: &AppState, email: &str) -> Result<String, ApiError> {
    issue_signin_link_to(st, email, None).await
}

/// [`issue_signin_link`] whose use leads to `next` (when it is safe, see
/// [`safe_next`]): carried as the link's query, judged again when used.
pub async fn issue_signin_link_to(
    st: &AppState,
    email: &str,
    next: Option<&str>,
) -> Result<String, ApiError> {
    let token = new_secret(LINK_PREFIX);
    let now = st.now();
    st.store()
        .create_email_link(
            &store::NewLink {
                token_hash: hash_key(&token),
                email: email.into(),
                purpose: store::LinkPurpose::SignIn,
                expires: now + st.cfg().manage.signin_link_ttl.as_secs() as i64,
            },
            now,
        )
        .await?;
    let url = link_url(st, &token);
    Ok(match next.and_then(safe_next) {
        Some(n) => format!("{url}?{}", next_query(n)),
        None => url,
    })
}

/// Makes a one-time invitation link into `account_id` as `role` for
/// `email` (stored hashed, `invite_ttl`), written to the account's audit
/// log by `actor`; its URL. `members::invite` mails it; the demo prints it.
pub async fn issue_invite_link(
    st: &AppState,
    account_id: i64,
    email: &str,
    role: Role,
    invited_by: Option<i64>,
    actor: &str,
) -> Result<String, ApiError> {
    let token = new_secret(LINK_PREFIX);
    let now = st.now();
    st.store()
        .create_email_link(
            &store::NewLink {
                token_hash: hash_key(&token),
                email: email.into(),
                purpose: store::LinkPurpose::Invite {
                    account_id,
                    role,
                    invited_by,
                    actor: actor.into(),
                },
                expires: now + st.cfg().manage.invite_ttl.as_secs() as i64,
            },
            now,
        )
        .await?;
    Ok(link_url(st, &token))
}

/// The request's URI for logs: a link's token (or a monitor
/// registration's code) replaced by `…`.
pub fn loggable_path(uri: &axum::http::Uri) -> std::borrow::Cow<'_, str> {
    let path = uri.path();
    // Whoever has the code can accept the agent into their own account.
    if path == crate::registration::ACCEPT_PATH && uri.query().is_some() {
        return "/manage/monitors/accept?…".into();
    }
    // The sign-in form's `next` may be such a URL (a code, a token).
    if path == "/manage" && uri.query().is_some() {
        return "/manage?…".into();
    }
    // Sign-in links and verification links carry their token in the path.
    if path
        .strip_prefix("/manage/verify/")
        .is_some_and(|t| !t.is_empty())
    {
        return "/manage/verify/…".into();
    }
    match path.strip_prefix("/manage/link/") {
        Some(rest) if !rest.is_empty() => "/manage/link/…".into(),
        _ => match uri.path_and_query() {
            Some(pq) => pq.as_str().into(),
            None => path.into(),
        },
    }
}

pub(crate) fn link_url(st: &AppState, token: &str) -> String {
    format!("{}/manage/link/{token}", public_url(st))
}

/// Sends one e-mail through the alert SMTP settings.
pub(crate) async fn send_mail(
    st: &AppState,
    to: &str,
    subject: &str,
    text: &str,
) -> Result<(), ApiError> {
    let cfg = st.cfg().alerts.as_ref();
    let (Some(a), None) = (cfg, signin_off_reason(st.cfg())) else {
        return Err(ApiError::unavailable(
            "e-mail is not configured on this service",
        ));
    };
    let (Some(smtp), Some(from)) = (&a.smtp, &a.from) else {
        return Err(ApiError::unavailable(
            "e-mail is not configured on this service",
        ));
    };
    let mailer = crate::alerts::Mailer::new(smtp, a.smtp_ca.as_deref(), from, a.send_timeout)
        .map_err(ApiError::unavailable)?;
    mailer.send(to, subject, text).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot send manage e-mail");
        ApiError::unavailable("the mail server did not take the message; try again later")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_hide_codes_and_tokens_also_in_next() {
        for (uri, logged) in [
            ("/manage?next=%2Fmanage%2Fverify%2Fpwv_ab", "/manage?…"),
            (
                "/manage/monitors/accept?code=ABCDE-FGHJK",
                "/manage/monitors/accept?…",
            ),
            ("/manage/link/pwl_ab?next=%2Fmanage", "/manage/link/…"),
            ("/manage/servers/add", "/manage/servers/add"),
        ] {
            assert_eq!(loggable_path(&uri.parse().unwrap()), logged, "{uri}");
        }
    }
}
