//! Request extractors: the authenticated monitor, and JSON bodies whose
//! errors name the offending field. Both reject with [`ApiError`].

use crate::error::ApiError;
use crate::keys::hash_key;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use store::{MonitorGlobalStatus, MonitorRow};

/// The monitor whose key is in `Authorization: Bearer KEY`, allowed to work
/// (status testing or active). Records last_seen and the client version.
#[derive(Debug)]
pub struct AuthedMonitor(pub MonitorRow);

/// The key from `Authorization: Bearer KEY`, if well-formed.
fn bearer(headers: &HeaderMap) -> Option<&str> {
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
        let key = bearer(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized("send the monitor key as 'Authorization: Bearer KEY'")
        })?;
        let monitor = state
            .store()
            .monitor_by_key_hash(&hash_key(key))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown monitor key"))?;
        let version = client_version(&parts.headers);
        let now = state.now();
        // last_seen has one-second resolution: a second call within the
        // same second with the same version would write the same values.
        if monitor.last_seen != Some(now) || monitor.client_version != version {
            state
                .store()
                .touch_monitor(monitor.id, now, version.as_deref())
                .await?;
        }
        match monitor.status {
            MonitorGlobalStatus::Active | MonitorGlobalStatus::Testing => {
                Ok(AuthedMonitor(monitor))
            }
            other => Err(ApiError::forbidden(format!(
                "monitor {} is {other}; the pool operator can set it to testing or active",
                monitor.name
            ))),
        }
    }
}

/// A JSON body of type `T`. Bad JSON or a wrong type → 400 naming the
/// field (`results[2].ts: invalid type: …`); a body over the limit → 413.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large(state.cfg().max_body_bytes)
                } else {
                    ApiError::bad_request(format!("cannot read the request body: {e}"))
                }
            })?;
        // Every body of this API is an object; serde would also read a
        // struct from an array, with errors naming "[0]" instead of a field.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::bad_request("body: expected a JSON object"));
        }
        parse_json(&bytes).map(JsonBody)
    }
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
}
