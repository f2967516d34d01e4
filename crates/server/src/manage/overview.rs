//! `/manage`: the account at a glance — its servers with score and
//! in-DNS state, its monitors, members, tokens and alert contacts.

use super::auth::Operator;
use super::view::page;
use crate::state::AppState;
use crate::web::html::PageError;
use axum::response::Response;
use maud::{Markup, html};
use store::DnsMembership;

/// The overview page of `op`'s account.
pub async fn render(st: &AppState, op: &Operator) -> Result<Response, PageError> {
    let store = st.store();
    let now = st.now();
    let servers = store.account_servers(op.account_id).await?;
    let members = store.members(op.account_id).await?;
    let tokens = store.tokens(op.account_id).await?;
    let monitors = store.account_monitors(op.account_id).await?;
    let account = store
        .account_info(op.account_id)
        .await?
        .ok_or_else(|| PageError::not_found("no such account"))?;
    let live_tokens = tokens.iter().filter(|t| t.revoked_on.is_none()).count();
    Ok(page(
        &op.account_name,
        Some(op),
        html! {
            h1 { "Account " (op.account_name) }
            h2 { "Servers" }
            (servers_table(&servers, now))
            p { a href="/manage/servers/add" { "Add a server" } }
            h2 { "Monitors" }
            p #monitors-summary {
                @if monitors.is_empty() { "No monitors yet" } @else {
                    (monitors.len()) " monitor(s)"
                    @let pending = monitors.iter().filter(|m| m.status == store::GlobalStatus::Pending).count();
                    @if pending > 0 { ", " (pending) " awaiting approval" }
                }
                " · " a href="/manage/monitors" { "your monitors" }
            }
            h2 { "Members" }
            p {
                (members.len()) " member(s): "
                @for (i, m) in members.iter().enumerate() {
                    @if i > 0 { ", " }
                    (m.email) " (" (m.role) ")"
                }
                " · " a href="/manage/members" { "manage members" }
            }
            h2 { "API tokens" }
            p { (live_tokens) " active token(s) · " a href="/manage/tokens" { "manage tokens" } }
            h2 { "Alert contacts" }
            p {
                "E-mail: " (account.email.as_deref().unwrap_or("none"))
                " · webhook: " (if account.webhook.is_some() { "set" } else { "none" })
                " · " a href="/manage/contacts" { "change" }
            }
        },
    ))
}

fn servers_table(servers: &[(store::ServerRow, Option<store::ServerDns>)], now: i64) -> Markup {
    html! {
        @if servers.is_empty() {
            p.muted { "No servers yet." }
        } @else {
            div.scroll { table {
                thead { tr { th { "Address" } th { "Zones" } th.num { "Netspeed" } th.num { "Score" } th { "In DNS" } th { "Verified" } } }
                tbody {
                    @for (s, dns) in servers {
                        @let m = DnsMembership::for_server(s, dns.as_ref(), now);
                        tr {
                            td { a href={ "/manage/servers/" (s.ip) } { (s.ip) } " (" a href={ "/scores/" (s.ip) } { "score page" } ")" }
                            td { (s.zones.join(" ")) }
                            td.num { (s.netspeed) }
                            td.num { (format!("{:.1}", s.score)) }
                            td {
                                @if m.held { span.ok { "yes (held)" } }
                                @else if m.in_dns { span.ok { "yes" } }
                                @else { span.bad { "no" } }
                            }
                            td { @if s.verified_on.is_some() { "yes" } @else { span.bad { "no" } } }
                        }
                    }
                }
            } }
        }
    }
}
