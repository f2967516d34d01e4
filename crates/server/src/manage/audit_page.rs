//! `/manage/audit`: who changed what in the account, newest first.

use super::auth::Operator;
use super::view::page;
use crate::state::AppState;
use crate::web::html::{PageError, minute};
use axum::extract::State;
use axum::response::Response;
use maud::html;

/// Entries a page shows.
pub const AUDIT_PAGE_ROWS: i64 = 200;

pub async fn audit_page(State(st): State<AppState>, op: Operator) -> Result<Response, PageError> {
    let rows = st.store().audit_log(op.account_id, AUDIT_PAGE_ROWS).await?;
    Ok(page(
        "Audit log",
        Some(&op),
        html! {
            h1 { "Audit log" }
            @if rows.is_empty() { p.muted { "Nothing yet." } } @else {
                div.scroll { table {
                    thead { tr { th { "When" } th { "Who" } th { "What" } th { "Subject" } th { "Detail" } } }
                    tbody { @for r in &rows {
                        tr { td { (minute(r.ts)) } td { (r.actor) } td { (r.action) } td { (r.subject) } td { (r.detail) } }
                    } }
                } }
            }
        },
    ))
}
