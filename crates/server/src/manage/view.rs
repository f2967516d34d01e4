//! The frame of every manage page: the shared page with the manage menu.
//! (`manage::no_store` keeps every manage answer out of caches.)

use super::auth::{Operator, csrf_field};
use crate::web::html;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

/// The page `title` with `body`, for `op` (menu and sign-out) or nobody.
pub fn page(title: &str, op: Option<&Operator>, body: Markup) -> Response {
    page_status(StatusCode::OK, title, op, body)
}

pub fn page_status(
    status: StatusCode,
    title: &str,
    op: Option<&Operator>,
    body: Markup,
) -> Response {
    let body = html! {
        @if let Some(op) = op { (menu(op)) }
        (body)
    };
    html::respond(status, 0, html::page(title, html! {}, body))
}

fn menu(op: &Operator) -> Markup {
    html! {
        nav.manage {
            strong { (op.account_name) }
            " · " a href="/manage" { "Overview" }
            " · " a href="/manage/servers/add" { "Add a server" }
            " · " a href="/manage/monitors" { "Monitors" }
            " · " a href="/manage/members" { "Members" }
            " · " a href="/manage/tokens" { "API tokens" }
            " · " a href="/manage/contacts" { "Alert contacts" }
            " · " a href="/manage/audit" { "Audit log" }
            " · " a href="/manage/accounts" { "Switch account" }
            @if op.is_admin { " · " a href="/manage/admin" { "Admin" } }
            form method="post" action="/manage/signout" style="display:inline;margin-left:1em" {
                (csrf_field(op))
                button type="submit" { "Sign out" }
            }
            @if let Some(email) = &op.email { " " span.muted { (email) } }
        }
        @if op.disabled {
            p.bad { "This account is disabled by the pool's admins: its servers are out of DNS and its API tokens do not work." }
        }
    }
}
