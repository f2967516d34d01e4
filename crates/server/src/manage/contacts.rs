//! The account's alert contacts (e-mail, webhook), and a test
//! notification through the alert mailer and webhook client.

use super::auth::{self, CsrfForm, Operator, csrf_field, see_other};
use super::signin::Nothing;
use super::view::page;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::html::PageError;
use axum::extract::State;
use axum::response::Response;
use maud::html;

/// `GET /manage/contacts`.
pub async fn contacts_page(
    State(st): State<AppState>,
    op: Operator,
) -> Result<Response, PageError> {
    let acc = st
        .store()
        .account_info(op.account_id)
        .await?
        .ok_or_else(|| PageError::not_found("no such account"))?;
    Ok(page(
        "Alert contacts",
        Some(&op),
        html! {
            h1 { "Alert contacts" }
            p { "Where alerts about this account's servers go." }
            form method="post" action="/manage/contacts" {
                (csrf_field(&op))
                p { label { "E-mail " input type="email" name="email" value=(acc.email.as_deref().unwrap_or("")); } }
                p { label { "Webhook URL " input type="url" name="webhook" size="60" value=(acc.webhook.as_deref().unwrap_or("")); } }
                button type="submit" { "Save" }
            }
            h2 { "Test" }
            form method="post" action="/manage/contacts/test" {
                (csrf_field(&op))
                button type="submit" { "Send a test notification" }
            }
        },
    ))
}

#[derive(serde::Deserialize)]
pub struct ContactsForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    webhook: String,
}

/// Empty fields clear a contact; a webhook must be an http(s) URL.
pub async fn save_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<ContactsForm>,
) -> Result<Response, PageError> {
    let email = Some(f.email.trim()).filter(|e| !e.is_empty());
    let webhook = Some(f.webhook.trim()).filter(|w| !w.is_empty());
    crate::admin::check_contact(email, webhook)
        .map_err(|e| ApiError::bad_request(format!("contacts: {e}")))?;
    st.store()
        .set_contacts(op.account_id, email, webhook, &op.actor, st.now())
        .await?;
    Ok(see_other("/manage/contacts"))
}

pub async fn test_post(
    State(st): State<AppState>,
    CsrfForm(op, Nothing {}): CsrfForm<Nothing>,
) -> Result<Response, PageError> {
    let acc = st
        .store()
        .account_info(op.account_id)
        .await?
        .ok_or_else(|| PageError::not_found("no such account"))?;
    let mut results = Vec::new();
    let text = format!(
        "This is a test notification for the account {} on {}. Nothing is wrong.\n",
        acc.name,
        auth::public_url(&st)
    );
    if let Some(email) = &acc.email {
        let r = auth::send_mail(&st, email, "poolwatch test notification", &text).await;
        results.push(("E-mail", r.map_err(|e| e.detail().to_string())));
    }
    if let Some(hook) = &acc.webhook {
        let timeout = st
            .cfg()
            .alerts
            .as_ref()
            .map(|a| a.send_timeout)
            .unwrap_or(std::time::Duration::from_secs(10));
        let client = crate::alerts::webhook_client(timeout);
        let body =
            serde_json::json!({"kind": "test", "account": acc.name, "text": text}).to_string();
        let r = crate::alerts::post_webhook(&client, hook, "test", body).await;
        results.push(("Webhook", r));
    }
    st.store()
        .audit(
            &store::AuditEntry {
                account_id: Some(op.account_id),
                actor: op.actor.clone(),
                action: "contacts.test",
                subject: String::new(),
                detail: String::new(),
            },
            st.now(),
        )
        .await?;
    Ok(page(
        "Test notification",
        Some(&op),
        html! {
            h1 { "Test notification" }
            @if results.is_empty() { p { "No contacts set: nothing to send." } }
            ul { @for (what, r) in &results {
                li { (what) ": " @match r { Ok(()) => span.ok { "sent" }, Err(e) => span.bad { "failed: " (e) } } }
            } }
            p { a href="/manage/contacts" { "Back to the contacts" } }
        },
    ))
}
