//! The one HTTP error type: every failure of every route becomes an
//! [`ApiError`], and only here is it turned into a status code and a body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use store::StoreError;

/// `Retry-After` of a 503 for a transient store error: long enough not to
/// hammer a struggling database, short enough that agents catch up soon.
pub const UNAVAILABLE_RETRY_S: u64 = 5;

/// An HTTP error: JSON `{"error": "...", "detail": "..."}` by default, or
/// `text/plain` for the CSV routes (see [`ApiError::plain`]).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    /// A short stable code a client can match on.
    error: &'static str,
    /// What went wrong, for a human; names the field for bad bodies.
    detail: Cow<'static, str>,
    plain: bool,
    retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            error,
            detail: detail.into(),
            plain: false,
            retry_after_s: None,
        }
    }

    /// 400: the request is malformed; `detail` says which part.
    pub fn bad_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 401: no key, or a key we do not know.
    pub fn unauthorized(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403: authenticated, but not allowed to do this.
    pub fn forbidden(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 405: the path exists, the method does not (axum adds `Allow`).
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take this method; see the Allow header",
        )
    }

    /// 409: the request contradicts what is stored (e.g. an old batch).
    pub fn conflict(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 422: the body is well-formed but a value is not acceptable;
    /// `detail` names the field.
    pub fn unprocessable(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", detail)
    }

    /// 410: it existed but is spent (a code used or expired).
    pub fn gone(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::GONE, "gone", detail)
    }

    /// 413: the body is over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is over the limit of {limit} bytes"),
        )
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after_s: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests from this address; retry in {retry_after_s} s"),
        );
        e.retry_after_s = Some(retry_after_s);
        e
    }

    /// The same error saying `detail` instead (a rate limit that is not
    /// per client address).
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Seconds a client should wait, for a 429 or 503.
    pub fn retry_after_s(&self) -> Option<u64> {
        self.retry_after_s
    }

    /// 500. The cause is logged here; the client sees only a generic text.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// 503 with `Retry-After`: the store failed for a passing reason (disk
    /// full, I/O error, pool timeout, lost connection…), nothing was
    /// stored and the same request may succeed later. The cause is logged
    /// here as a warning, since the operator has to act on it.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "database temporarily unavailable; answering 503");
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!(
                "the database is temporarily unavailable; nothing was stored; retry in {UNAVAILABLE_RETRY_S} s"
            ),
        );
        e.retry_after_s = Some(UNAVAILABLE_RETRY_S);
        e
    }

    /// Render as `text/plain` instead of JSON (for the CSV routes).
    pub fn plain(mut self) -> Self {
        self.plain = true;
        self
    }

    /// The status code this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The human-readable part.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = if self.plain {
            (
                self.status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{}: {}\n", self.error, self.detail),
            )
                .into_response()
        } else {
            let body = serde_json::json!({ "error": self.error, "detail": self.detail });
            (self.status, axum::Json(body)).into_response()
        };
        let headers = resp.headers_mut();
        if let Some(s) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("not found: {what}")),
            StoreError::Conflict(what) => ApiError::conflict(what),
            StoreError::Invalid(what) => ApiError::bad_request(what),
            e if e.is_transient() => ApiError::unavailable(e),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    #[tokio::test]
    async fn json_and_plain_bodies() {
        let r = ApiError::bad_request("results[0].ts: expected i64").into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let v: serde_json::Value =
            serde_json::from_slice(&to_bytes(r.into_body(), 1 << 16).await.unwrap()).unwrap();
        assert_eq!(v["error"], "bad_request");
        assert_eq!(v["detail"], "results[0].ts: expected i64");

        let r = ApiError::rate_limited(3).plain().into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );

        let r = ApiError::from(StoreError::from(sqlx::Error::PoolTimedOut)).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "5");
        let v: serde_json::Value =
            serde_json::from_slice(&to_bytes(r.into_body(), 1 << 16).await.unwrap()).unwrap();
        assert_eq!(v["error"], "unavailable");

        let r = ApiError::unprocessable("servers[1].expected: must be finite").into_response();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let v: serde_json::Value =
            serde_json::from_slice(&to_bytes(r.into_body(), 1 << 16).await.unwrap()).unwrap();
        assert_eq!(v["error"], "unprocessable");

        let r = ApiError::unauthorized("no key").into_response();
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
