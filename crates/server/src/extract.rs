//! Request extractors: the authenticated monitor, and JSON bodies whose
//! errors name the offending field. Both reject with [`ApiError`].

use crate::error::ApiError;
use crate::keys::{AccessTokens, TOKEN_PREFIX, hash_key};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use store::{GlobalStatus, MonitorRow};

/// The monitor whose key (`pwk_…`) or access token (`pwa_…`, see
/// `keys::AccessTokens`) is in `Authorization: Bearer …`, allowed to work
/// (status testing or active). Records last_seen and the client version.
#[derive(Debug)]
pub struct AuthedMonitor(pub MonitorRow);

/// The key from `Authorization: Bearer KEY`, if well-formed.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty() && key.len() <= 256).then_some(key)
}

/// The agent's User-Agent, kept as its client version: printable ASCII
/// only and bounded, since it goes into the store and onto pages.
fn client_version(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    let clean: String = ua
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

impl FromRequestParts<AppState> for AuthedMonitor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, true).await.map(AuthedMonitor)
    }
}

/// Like [`AuthedMonitor`], but only the long-lived key is taken (not an
/// access token): the token route, so a token cannot renew itself.
#[derive(Debug)]
pub struct KeyedMonitor(pub MonitorRow);

impl FromRequestParts<AppState> for KeyedMonitor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, false).await.map(KeyedMonitor)
    }
}

/// The monitor row behind the bearer key or access token. Either way the
/// row is read on every call, so a status change (paused, revoked) or a
/// rotated key takes effect at the monitor's next call even while its
/// token has time left.
async fn monitor_for(
    bearer: &str,
    state: &AppState,
    allow_token: bool,
) -> Result<MonitorRow, ApiError> {
    if !bearer.starts_with(TOKEN_PREFIX) {
        return state
            .store()
            .monitor_by_key_hash(&hash_key(bearer))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown monitor key"));
    }
    if !allow_token {
        return Err(ApiError::unauthorized(
            "send the monitor key here, not an access token",
        ));
    }
    let claims = AccessTokens::claims(bearer)
        .ok_or_else(|| ApiError::unauthorized("malformed access token"))?;
    if claims.expires <= state.now() {
        return Err(ApiError::unauthorized(format!(
            "access token expired; get a new one with the monitor key at {}",
            api::TOKEN_PATH
        )));
    }
    let refused =
        || ApiError::unauthorized("invalid access token (or the monitor key was rotated)");
    let monitor = state
        .store()
        .monitor_by_id(claims.monitor_id)
        .await?
        .ok_or_else(refused)?;
    if !state.access_tokens().verify(bearer, &monitor.key_hash) {
        return Err(refused());
    }
    Ok(monitor)
}

/// The monitor allowed to work (status testing or active); records
/// last_seen and the client version. Revoked (deleted) → 401, pending or
/// paused → 403.
async fn authenticate(
    parts: &Parts,
    state: &AppState,
    allow_token: bool,
) -> Result<MonitorRow, ApiError> {
    let key = bearer(&parts.headers).ok_or_else(|| {
        ApiError::unauthorized("send the monitor key as 'Authorization: Bearer KEY'")
    })?;
    let monitor = monitor_for(key, state, allow_token).await?;
    let version = client_version(&parts.headers);
    let now = state.now();
    // last_seen has one-second resolution: a second call within the
    // same second with the same version would write the same values.
    // Best effort when the store can't write for now (disk full, lost
    // connection): last_seen is bookkeeping, and refusing the call
    // would also stop the reads (config) that need no write.
    if monitor.last_seen != Some(now) || monitor.client_version != version {
        match state
            .store()
            .touch_monitor(monitor.id, now, version.as_deref())
            .await
        {
            Err(e) if e.is_transient() => {
                tracing::warn!(monitor = %monitor.name, error = %e, "cannot record last_seen now")
            }
            r => r?,
        }
    }
    match monitor.status {
        GlobalStatus::Active | GlobalStatus::Testing => Ok(monitor),
        GlobalStatus::Deleted => Err(ApiError::unauthorized(format!(
            "monitor {} is revoked; its key and tokens no longer work",
            monitor.name
        ))),
        GlobalStatus::Pending => Err(ApiError::forbidden(format!(
            "monitor {} is pending, awaiting approval by the pool's admins; it gets work once approved",
            monitor.name
        ))),
        other => Err(ApiError::forbidden(format!(
            "monitor {} is {other}; the pool operator can set it to testing or active",
            monitor.name
        ))),
    }
}

/// A JSON body of type `T`. Bad JSON or a wrong type → 400 naming the
/// field (`results[2].ts: invalid type: …`); a control character in any
/// string → 400 naming it (see [`refuse_control_chars`]); a body over the
/// limit → 413. Unknown fields are ignored (API.md says why).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        parse_object(&bytes).map(JsonBody)
    }
}

/// Like [`JsonBody`], but an empty body reads as `T::default()`:
/// `POST /work` has nothing to say yet, and agents before 0.2 sent no body.
#[derive(Debug)]
pub struct JsonBodyOrEmpty<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for JsonBodyOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        if bytes.trim_ascii().is_empty() {
            return Ok(JsonBodyOrEmpty(T::default()));
        }
        parse_object(&bytes).map(JsonBodyOrEmpty)
    }
}

/// The whole body, at most `max_body_bytes` of it (413 beyond).
async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(state.cfg().max_body_bytes)
            } else {
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            }
        })
}

/// A JSON object as `T`, after every string in it passed
/// [`refuse_control_chars`].
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of this API is an object; serde would also read a
    // struct from an array, with errors naming "[0]" instead of a field.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::bad_request("body: expected a JSON object"));
    }
    // Untyped first, so the check sees every string of every body (nested
    // hops, fields added later) without a copy of it per type.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    refuse_control_chars(&value)?;
    parse_json(bytes)
}

/// The first character of `s` that must not reach the store or a page:
/// C0/C1 controls and DEL (NUL breaks PostgreSQL text, CR/LF forge log
/// lines, ESC drives terminals), and the invisible characters that reorder
/// or break the text around them when shown (bidi embeddings, overrides,
/// isolates and marks; line and paragraph separators).
pub fn forbidden_char(s: &str) -> Option<char> {
    s.chars().find(|&c| {
        c.is_control()
            || matches!(
                c,
                '\u{200E}' | '\u{200F}' | '\u{061C}' // LRM, RLM, ALM
                    | '\u{202A}'..='\u{202E}' // LRE, RLE, PDF, LRO, RLO
                    | '\u{2066}'..='\u{2069}' // LRI, RLI, FSI, PDI
                    | '\u{2028}' | '\u{2029}' // line and paragraph separators
            )
    })
}

/// 400 naming the field (`results[3].error: control character U+0000 not
/// allowed`) when any string value in `v` has a [`forbidden_char`]. Every
/// monitor-API body passes here, so both backends see the same refusal
/// before anything is stored.
pub fn refuse_control_chars(v: &serde_json::Value) -> Result<(), ApiError> {
    fn walk(v: &serde_json::Value, path: &mut String) -> Result<(), ApiError> {
        use serde_json::Value;
        match v {
            Value::String(s) => match forbidden_char(s) {
                Some(c) => Err(ApiError::bad_request(format!(
                    "{}: control character U+{:04X} not allowed",
                    if path.is_empty() { "body" } else { path },
                    c as u32
                ))),
                None => Ok(()),
            },
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(fields) => {
                for (name, item) in fields {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }
    walk(v, &mut String::new())
}

/// 413 before a byte of the body is read when its declared length is over
/// the limit; the length limit on reading (`DefaultBodyLimit`) still
/// catches chunked bodies that grow too large.
pub async fn refuse_declared_oversize(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let limit = st.cfg().max_body_bytes;
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::too_large(limit).into_response();
    }
    next.run(req).await
}

/// Deserialize `bytes`, naming the field on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("malformed JSON: {inner}"))
        } else if path == "." {
            ApiError::bad_request(format!("body: {inner}"))
        } else {
            ApiError::bad_request(format!("{path}: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer pwk_abc"),
        );
        assert_eq!(bearer(&h), Some("pwk_abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  pwk_abc "),
        );
        assert_eq!(bearer(&h), Some("pwk_abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn user_agent_is_cleaned() {
        let mut h = HeaderMap::new();
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_static("poolwatch-agent/0.1.0"),
        );
        assert_eq!(client_version(&h).as_deref(), Some("poolwatch-agent/0.1.0"));
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_str(&"x".repeat(500)).unwrap(),
        );
        assert_eq!(client_version(&h).unwrap().len(), 100);
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Outer {
        results: Vec<Inner>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        ts: i64,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_json::<Outer>(br#"{"results":[{"ts":1},{"ts":"x"}]}"#).unwrap_err();
        assert!(
            e.detail().starts_with("results[1].ts: invalid type"),
            "{}",
            e.detail()
        );
        let e = parse_json::<Outer>(br#"{"results":[{}]}"#).unwrap_err();
        assert!(
            e.detail().contains("results[0]") && e.detail().contains("ts"),
            "{}",
            e.detail()
        );
        let e = parse_json::<Outer>(b"{nope").unwrap_err();
        assert!(e.detail().starts_with("malformed JSON"), "{}", e.detail());
        let e = parse_json::<Outer>(b"{}").unwrap_err();
        assert!(e.detail().contains("results"), "{}", e.detail());
    }

    #[test]
    fn control_characters_are_named_with_their_path() {
        for (c, refused) in [
            ('\0', true),
            ('\t', true),
            ('\u{7f}', true),
            ('\u{85}', true),
            ('\u{202e}', true),
            ('\u{2067}', true),
            ('\u{2028}', true),
            ('é', false),
            ('→', false),
            ('<', false),
        ] {
            assert_eq!(
                forbidden_char(&format!("a{c}b")).is_some(),
                refused,
                "{c:?}"
            );
        }
        let v = serde_json::json!({"hops": [{"ip": "ok"}, {"ip": "x\u{1b}[31m"}], "n": 1});
        let e = refuse_control_chars(&v).unwrap_err();
        assert_eq!(
            e.detail(),
            "hops[1].ip: control character U+001B not allowed"
        );
        assert!(refuse_control_chars(&serde_json::json!({"a": ["b", null, 2]})).is_ok());
    }
}
