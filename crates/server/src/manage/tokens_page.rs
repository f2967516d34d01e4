//! API tokens of an account: created by owners (shown once), listed with
//! their last use, revoked.

use super::auth::{self, CsrfForm, Operator, Role, TOKEN_PREFIX, csrf_field, see_other};
use super::view::page;
use crate::error::ApiError;
use crate::keys::hash_key;
use crate::state::AppState;
use crate::web::html::{PageError, ago, minute};
use axum::extract::State;
use axum::response::Response;
use maud::html;
use store::TokenRow;

/// Creates a token: its row and the secret, to show once.
pub async fn create(
    st: &AppState,
    op: &Operator,
    name: &str,
) -> Result<(TokenRow, String), ApiError> {
    op.require_owner()?;
    let secret = auth::new_secret(TOKEN_PREFIX);
    let row = st
        .store()
        .create_token(
            op.account_id,
            name,
            &hash_key(&secret),
            op.user_id,
            &op.actor,
            st.now(),
        )
        .await?;
    Ok((row, secret))
}

/// Revokes token `id` of `op`'s account (404 for another account's).
pub async fn revoke(st: &AppState, op: &Operator, id: i64) -> Result<(), ApiError> {
    op.require_owner()?;
    Ok(st
        .store()
        .revoke_token(op.account_id, id, &op.actor, st.now())
        .await?)
}

/// `GET /manage/tokens`.
pub async fn tokens_page(State(st): State<AppState>, op: Operator) -> Result<Response, PageError> {
    let tokens = st.store().tokens(op.account_id).await?;
    let now = st.now();
    let owner = op.role == Role::Owner;
    Ok(page(
        "API tokens",
        Some(&op),
        html! {
            h1 { "API tokens" }
            p { "A token acts for the account on " code { "/api/v1/manage/…" } " ("
                code { "Authorization: Bearer TOKEN" } "). It is shown once, when made." }
            @if tokens.is_empty() { p.muted { "No tokens." } } @else {
                div.scroll { table {
                    thead { tr { th { "Name" } th { "Created" } th { "Last used" } th { "State" } } }
                    tbody { @for t in &tokens {
                        tr {
                            td { (t.name) }
                            td { (minute(t.created_on)) }
                            td { (t.last_used.map(|u| ago(u, now)).unwrap_or_else(|| "never".into())) }
                            td {
                                @if let Some(r) = t.revoked_on { span.muted { "revoked " (minute(r)) } }
                                @else if owner {
                                    form method="post" action="/manage/tokens/revoke" {
                                        (csrf_field(&op))
                                        input type="hidden" name="id" value=(t.id);
                                        button type="submit" { "Revoke" }
                                    }
                                } @else { "active" }
                            }
                        }
                    } }
                } }
            }
            @if owner {
                h2 { "New token" }
                form.lookup method="post" action="/manage/tokens" {
                    (csrf_field(&op))
                    input name="name" required maxlength="100" placeholder="what it is for" aria-label="Token name";
                    button type="submit" { "Create token" }
                }
            }
        },
    ))
}

#[derive(serde::Deserialize)]
pub struct NewToken {
    name: String,
}

pub async fn create_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<NewToken>,
) -> Result<Response, PageError> {
    let (row, secret) = create(&st, &op, &f.name).await?;
    Ok(page(
        "Token created",
        Some(&op),
        html! {
            h1 { "Token " (row.name) " created" }
            p { "Copy it now: it is not shown again." }
            p { code #new-token { (secret) } }
            p { a href="/manage/tokens" { "Back to the tokens" } }
        },
    ))
}

#[derive(serde::Deserialize)]
pub struct TokenId {
    id: i64,
}

pub async fn revoke_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<TokenId>,
) -> Result<Response, PageError> {
    revoke(&st, &op, f.id).await?;
    Ok(see_other("/manage/tokens"))
}
