//! Ownership verification. An operator runs `curl --interface ADDRESS
//! {public_url}/verify` on the server: a request from the address of an
//! unverified server gets a one-time URL (an hour, stored hashed) to open
//! while signed in to the server's account, which marks it verified. The
//! client address is the socket peer (`X-Forwarded-For` only from trusted
//! proxies, as for rate limits), so nobody can verify an address they do
//! not send from.

use crate::error::ApiError;
use crate::keys::{generate_key, hash_key};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use store::{ServerRow, StoreError};

/// A verification URL works this long, once.
pub const VERIFY_TTL_S: i64 = 3600;
/// Where the one-time URL points, under the public URL.
pub const CONFIRM_PATH: &str = "/manage/verify";

/// A one-time verification URL for the unverified server at `client`;
/// 403 (with what to do) when `client` is not one.
pub async fn verification_url(st: &AppState, client: IpAddr) -> Result<String, ApiError> {
    let token = generate_key();
    let now = st.now();
    match st
        .store()
        .create_server_verification(
            client.to_canonical(),
            &hash_key(&token),
            now,
            now + VERIFY_TTL_S,
        )
        .await
    {
        Ok(_) => Ok(format!(
            "{}{CONFIRM_PATH}/{token}",
            super::auth::public_url(st)
        )),
        Err(StoreError::NotFound(_)) => Err(ApiError::forbidden(format!(
            "{} is not a server waiting for verification. Send this request from the server's \
             own address (curl --interface ADDRESS {}/verify) after adding it.",
            client.to_canonical(),
            super::auth::public_url(st)
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `GET`/`POST /verify`: plain text, the one-time URL or why not.
pub async fn verify(State(st): State<AppState>, req: Request) -> Response {
    let client = crate::ratelimit::request_client(
        req.extensions(),
        req.headers(),
        &st.cfg().rate_limit.trusted_proxies,
    );
    match verification_url(&st, client).await {
        Ok(url) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "Open this link within an hour, signed in to the server's account, to verify {}:\n{url}\n",
                client.to_canonical()
            ),
        )
            .into_response(),
        Err(e) => e.plain().into_response(),
    }
}

/// The server a verification token would verify for `account_id` (the
/// confirm page): 404 for another account's or an unknown token, 409 when
/// used or expired.
pub async fn confirm(st: &AppState, account_id: i64, token: &str) -> Result<IpAddr, ApiError> {
    Ok(st
        .store()
        .verification_server(account_id, &hash_key(token), st.now())
        .await?)
}

/// Use the token: the server is verified (audit `server.verify`).
pub async fn use_token(
    st: &AppState,
    account_id: i64,
    actor: &str,
    token: &str,
) -> Result<ServerRow, ApiError> {
    Ok(st
        .store()
        .verify_server(account_id, &hash_key(token), actor, st.now())
        .await?)
}
