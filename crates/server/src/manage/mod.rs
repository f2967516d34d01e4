//! The manage side: server operators sign in by e-mailed link, act for an
//! account (pages with a session, or `/api/v1/manage/…` with an account's
//! API token) and add and look after their servers. Every change checks
//! the CSRF token (pages) or the bearer token (API) first, refuses another
//! account's ids with 404, and writes the audit log in the same
//! transaction.
//!
//! `auth` (who is asking: `Operator`, `ApiOperator`, `CsrfForm`),
//! `signin` (links, sessions, the account picker), one file per page
//! (`overview`, `members`, `tokens_page`, `contacts`, `audit_page`,
//! `monitors_page`, `admin_pages`, `policy_reports` (saved `policy replay`
//! reports), `instances_page` (who runs which job), `monitor_enrol`: accepting an `agent
//! setup` registration), `api` (the JSON API), `view` (the page frame).

pub mod servers_api;
pub mod servers_ops;
pub mod servers_pages;
pub mod settings;

mod admin_monitors;
mod admin_pages;
mod api;
mod audit_page;
pub mod auth;
mod contacts;
mod instances_page;
mod members;
pub mod monitor_enrol;
mod monitors_page;
pub mod overview;
mod policy_reports;
pub mod signin;
mod tokens_page;
pub mod verify;
pub mod view;

use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{delete, get, post};

/// Every manage answer is one person's or one account's, errors and
/// redirects included: no shared cache may keep it (a cached 404 of the
/// admin page would hide it from an admin behind the same proxy).
async fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}

/// The pages (the caller puts them behind the public rate limit).
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/manage", get(signin::home))
        .route("/manage/signin", post(signin::request_link))
        .route(
            "/manage/link/{token}",
            get(signin::link_page).post(signin::use_link),
        )
        .route("/manage/signout", post(signin::sign_out))
        .route("/manage/signout-all", post(signin::sign_out_everywhere))
        .route("/manage/accounts", get(signin::accounts).post(signin::pick))
        .route("/manage/members", get(members::members_page))
        .route("/manage/members/invite", post(members::invite_post))
        .route("/manage/members/remove", post(members::remove_post))
        .route("/manage/members/role", post(members::role_post))
        .route("/manage/leave", post(members::leave_post))
        .route(
            "/manage/tokens",
            get(tokens_page::tokens_page).post(tokens_page::create_post),
        )
        .route("/manage/tokens/revoke", post(tokens_page::revoke_post))
        .route(
            "/manage/contacts",
            get(contacts::contacts_page).post(contacts::save_post),
        )
        .route("/manage/contacts/test", post(contacts::test_post))
        .route("/manage/audit", get(audit_page::audit_page))
        .route("/manage/monitors", get(monitors_page::list_page))
        .route("/manage/monitors/{name}", get(monitors_page::monitor_page))
        .route(
            "/manage/monitors/{name}/pause",
            post(monitors_page::pause_post),
        )
        .route(
            "/manage/monitors/{name}/resume",
            post(monitors_page::resume_post),
        )
        .route("/manage/admin", get(admin_pages::admin_page))
        .route(
            "/manage/admin/policy-reports",
            get(policy_reports::list_page),
        )
        .route(
            "/manage/admin/policy-reports/{id}",
            get(policy_reports::report_page),
        )
        .route(
            "/manage/admin/instances",
            get(instances_page::instances_page),
        )
        .route("/manage/admin/account", post(admin_pages::account_post))
        .route("/manage/admin/move", post(admin_pages::move_post))
        .route("/manage/admin/monitor", post(admin_monitors::monitor_post))
        .route(
            "/manage/admin/monitors/approve",
            post(admin_pages::approve_post),
        )
        // Monitor volunteers: the URL `agent setup` prints.
        .route(
            crate::registration::ACCEPT_PATH,
            get(monitor_enrol::accept_page).post(monitor_enrol::accept_post),
        )
        // Ownership verification: curl'd from the server itself.
        .route("/verify", get(verify::verify).post(verify::verify))
        .route(
            "/manage/verify/{token}",
            get(servers_pages::verify_page).post(servers_pages::verify_post),
        )
        .route(
            "/manage/servers/add",
            get(servers_pages::add_page).post(servers_pages::add_post),
        )
        .route("/manage/servers/check", post(servers_pages::check_post))
        .route("/manage/servers/check/{id}", get(servers_pages::check_page))
        .route("/manage/servers/added", post(servers_pages::added_post))
        .route("/manage/servers/{ip}", get(servers_pages::server_page))
        .route(
            "/manage/servers/{ip}/netspeed",
            post(servers_pages::netspeed_post),
        )
        .route(
            "/manage/servers/{ip}/deletion",
            post(servers_pages::deletion_post),
        )
        .route(
            "/manage/servers/{ip}/deletion/cancel",
            post(servers_pages::cancel_deletion_post),
        )
        .route(
            "/manage/servers/{ip}/alerts",
            post(servers_pages::alerts_post),
        )
        .route("/manage/servers/{ip}/note", post(servers_pages::note_post))
        // `CsrfForm` reads at most this much; the sign-in form (an
        // `axum::Form`, before any session) would take axum's 2 MiB.
        .layer(DefaultBodyLimit::max(auth::FORM_MAX_BYTES))
        // Last: it covers only the routes above it.
        .layer(middleware::map_response(no_store))
}

/// The JSON API (the caller caps its bodies).
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/manage/account", get(api::account))
        .route(
            "/api/v1/manage/members",
            get(api::members).post(api::invite),
        )
        .route(
            "/api/v1/manage/members/{user_id}",
            delete(api::remove_member),
        )
        .route(
            "/api/v1/manage/tokens",
            get(api::tokens).post(api::create_token),
        )
        .route("/api/v1/manage/tokens/{id}", delete(api::revoke_token))
        .route("/api/v1/manage/audit", get(api::audit))
        .route(
            "/api/v1/manage/monitors/accept",
            post(monitor_enrol::accept_api),
        )
        .route(
            "/api/v1/manage/servers",
            get(servers_api::list).post(servers_api::add),
        )
        .route(
            "/api/v1/manage/servers/candidates",
            post(servers_api::candidates),
        )
        .route(
            "/api/v1/manage/servers/checks",
            post(servers_api::start_check),
        )
        .route(
            "/api/v1/manage/servers/checks/{id}",
            get(servers_api::get_check),
        )
        .route(
            "/api/v1/manage/servers/{ip}",
            get(servers_api::get).patch(servers_api::patch),
        )
        // Not under /manage: the server's own data, for its owner or an
        // admin (the public `/api/v1/servers/{ip}` beside it).
        .route("/api/v1/servers/{ip}/samples", get(servers_api::samples))
        // Last: it covers only the routes above it.
        .layer(middleware::map_response(no_store))
}
