//! `/api/v1/manage/…`: the manage operations for scripts, with an
//! account's API token (`Authorization: Bearer pwt_…`). JSON in and out;
//! errors are the service's JSON errors. Documented in API.md.

use super::auth::{ApiOperator, Role};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// `GET /api/v1/manage/account`.
pub async fn account(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
) -> Result<Json<Value>, ApiError> {
    let a = st
        .store()
        .account_info(op.account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such account"))?;
    Ok(Json(json!({
        "id": a.id, "name": a.name, "email": a.email, "webhook_set": a.webhook.is_some(),
        "created_on": a.created_on, "disabled": a.disabled,
    })))
}

/// `GET /api/v1/manage/members`.
pub async fn members(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
) -> Result<Json<Value>, ApiError> {
    let m = st.store().members(op.account_id).await?;
    Ok(Json(json!({ "members": m })))
}

#[derive(serde::Deserialize)]
pub struct Invite {
    email: String,
    #[serde(default = "member")]
    role: Role,
}

fn member() -> Role {
    Role::Member
}

/// `POST /api/v1/manage/members` `{"email", "role"}`: mails an invitation.
pub async fn invite(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
    JsonBody(b): JsonBody<Invite>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    super::members::invite(&st, &op, &b.email, b.role).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "invited": b.email.trim().to_lowercase(), "role": b.role })),
    ))
}

/// `DELETE /api/v1/manage/members/{user_id}`.
pub async fn remove_member(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
    Path(user_id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    st.store()
        .remove_member(op.account_id, user_id, &op.actor, st.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/manage/tokens`.
pub async fn tokens(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "tokens": st.store().tokens(op.account_id).await? }),
    ))
}

#[derive(serde::Deserialize)]
pub struct NewToken {
    name: String,
}

/// `POST /api/v1/manage/tokens` `{"name"}`: the token, shown this once.
pub async fn create_token(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
    JsonBody(b): JsonBody<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (row, secret) = super::tokens_page::create(&st, &op, &b.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": row, "secret": secret })),
    ))
}

/// `DELETE /api/v1/manage/tokens/{id}`.
pub async fn revoke_token(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    super::tokens_page::revoke(&st, &op, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/manage/audit`: the newest 200 entries.
pub async fn audit(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
) -> Result<Json<Value>, ApiError> {
    let rows = st
        .store()
        .audit_log(op.account_id, super::audit_page::AUDIT_PAGE_ROWS)
        .await?;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|r| json!({"id": r.id, "ts": r.ts, "actor": r.actor, "action": r.action, "subject": r.subject, "detail": r.detail}))
        .collect();
    Ok(Json(json!({ "entries": rows })))
}
