//! `/manage/admin`: for members of an admin account only (everyone else
//! gets 404, as if there were no such page): approve pending monitors,
//! search servers and accounts, disable or enable an account, move a
//! server, set a monitor's check settings (`admin_monitors`); the servers
//! whose DNS share is far above their netspeed share are listed.

use super::auth::{CsrfForm, Operator, csrf_field};
use super::view::page;
use crate::state::AppState;
use crate::web::html::PageError;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;

pub(super) fn admin_only(op: &Operator) -> Result<(), PageError> {
    if op.is_admin {
        Ok(())
    } else {
        Err(PageError::not_found("no such route"))
    }
}

/// The actor of an admin action in the audit log.
pub(super) fn admin_actor(op: &Operator) -> String {
    format!("admin:{}", op.email.as_deref().unwrap_or(&op.actor))
}

#[derive(serde::Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
}

pub async fn admin_page(
    State(st): State<AppState>,
    op: Operator,
    Query(s): Query<Search>,
) -> Result<Response, PageError> {
    admin_only(&op)?;
    let q = s.q.trim();
    let pending: Vec<_> = st
        .store()
        .list_monitors()
        .await?
        .into_iter()
        .filter(|m| m.status == store::GlobalStatus::Pending)
        .collect();
    let flagged = crate::dns_counts::flagged(st.store(), st.now()).await?;
    let (accounts, servers, monitors) = if q.is_empty() {
        (Vec::new(), Vec::new(), html! {})
    } else {
        (
            st.store().search_accounts(q).await?,
            st.store().search_servers(q).await?,
            super::admin_monitors::section(&st, &op, q).await?,
        )
    };
    Ok(page(
        "Admin",
        Some(&op),
        html! {
            h1 { "Pool admin" }
            p { a href="/manage/admin/policy-reports" { "Policy replay reports" } " · " a href="/manage/admin/instances" { "Instances and jobs" } }
            h2 { "Monitors awaiting approval" }
            @if pending.is_empty() { p.muted { "None." } } @else {
                p.muted { "Approving one name approves the other address family's row of the same agent too." }
                div.scroll { table {
                    thead { tr { th { "Name" } th { "Address" } th { "Location" } th { "Client" } th { "Accepted" } th {} } }
                    tbody { @for m in &pending {
                        tr {
                            td { (m.name) }
                            td { (m.ip) }
                            td { (m.location) }
                            td { (m.client_version.as_deref().unwrap_or("")) }
                            td { (crate::web::html::minute(m.created_on)) }
                            td {
                                form method="post" action="/manage/admin/monitors/approve" {
                                    (csrf_field(&op))
                                    input type="hidden" name="name" value=(m.name);
                                    button type="submit" { "Approve" }
                                }
                            }
                        }
                    } }
                } }
            }
            (crate::web::distribution_page::admin_section(&flagged))
            form.lookup method="get" action="/manage/admin" {
                input name="q" value=(q) placeholder="account, e-mail, address or hostname" aria-label="Search";
                button type="submit" { "Search" }
            }
            @if !q.is_empty() {
                h2 { "Accounts" }
                @if accounts.is_empty() { p.muted { "None." } }
                div.scroll { table {
                    @for a in &accounts {
                        tr {
                            td { (a.name) }
                            td { (a.members) " members, " (a.servers) " servers" @if a.is_admin { ", admin" } }
                            td {
                                form method="post" action="/manage/admin/account" {
                                    (csrf_field(&op))
                                    input type="hidden" name="name" value=(a.name);
                                    @if a.disabled {
                                        span.bad { "disabled " }
                                        input type="hidden" name="disabled" value="false";
                                        button type="submit" { "Enable" }
                                    } @else {
                                        input type="hidden" name="disabled" value="true";
                                        button type="submit" { "Disable" }
                                    }
                                }
                            }
                        }
                    }
                } }
                h2 { "Servers" }
                @if servers.is_empty() { p.muted { "None." } }
                div.scroll { table {
                    @for s in &servers {
                        tr {
                            td { a href={ "/scores/" (s.ip) } { (s.ip) } }
                            td { (s.hostname.as_deref().unwrap_or("")) }
                            td { (s.account_name.as_deref().unwrap_or("no account")) }
                            td {
                                form method="post" action="/manage/admin/move" {
                                    (csrf_field(&op))
                                    input type="hidden" name="server_id" value=(s.id);
                                    input name="to" required placeholder="account name" aria-label="Move to account";
                                    button type="submit" { "Move" }
                                }
                            }
                        }
                    }
                } }
                (monitors)
            }
        },
    ))
}

#[derive(serde::Deserialize)]
pub struct AccountFlag {
    name: String,
    disabled: bool,
}

pub async fn account_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<AccountFlag>,
) -> Result<Response, PageError> {
    admin_only(&op)?;
    st.store()
        .set_account_flags(&f.name, None, Some(f.disabled), &admin_actor(&op), st.now())
        .await?;
    Ok(super::auth::see_other(&format!(
        "/manage/admin?q={}",
        percent_encoding::utf8_percent_encode(&f.name, percent_encoding::NON_ALPHANUMERIC)
    )))
}

#[derive(serde::Deserialize)]
pub struct MoveForm {
    server_id: i64,
    to: String,
}

pub async fn move_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<MoveForm>,
) -> Result<Response, PageError> {
    admin_only(&op)?;
    st.store()
        .move_server(f.server_id, f.to.trim(), &admin_actor(&op), st.now())
        .await?;
    Ok(super::auth::see_other(&format!(
        "/manage/admin?q={}",
        percent_encoding::utf8_percent_encode(f.to.trim(), percent_encoding::NON_ALPHANUMERIC)
    )))
}

#[derive(serde::Deserialize)]
pub struct ApproveForm {
    name: String,
}

/// `POST /manage/admin/monitors/approve`: pending → testing (both rows of
/// an `agent setup` registration), audited.
pub async fn approve_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<ApproveForm>,
) -> Result<Response, PageError> {
    admin_only(&op)?;
    st.store()
        .approve_monitor(f.name.trim(), &admin_actor(&op), st.now())
        .await?;
    Ok(super::auth::see_other("/manage/admin"))
}
