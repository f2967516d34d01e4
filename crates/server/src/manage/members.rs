//! Members of an account: invite by e-mail (a 7-day link), change a role,
//! remove, leave. Owners manage members; an account always keeps one.

use super::auth::{self, CsrfForm, Operator, Role, csrf_field, see_other};
use super::signin::{LINKS_PER_ADDRESS_HOUR, Nothing};
use super::view::page;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::html::{PageError, minute};
use axum::extract::State;
use axum::response::Response;
use maud::html;

/// Invites `email` into `op`'s account as `role`: stores the link and
/// mails it; the address as stored. Owners only; rate-limited per address
/// like sign-in links.
pub async fn invite(
    st: &AppState,
    op: &Operator,
    email: &str,
    role: Role,
) -> Result<String, ApiError> {
    op.require_owner()?;
    let email = auth::mail_address(email)?;
    let now = st.now();
    if st.store().count_links_since(&email, now - 3600).await? >= LINKS_PER_ADDRESS_HOUR {
        return Err(ApiError::rate_limited(3600).with_detail(
            "too many links for this e-mail address in the last hour; try again later",
        ));
    }
    if auth::signin_off_reason(st.cfg()).is_some() {
        return Err(ApiError::unavailable(
            "e-mail is not configured on this service: invitations are sent by e-mail",
        ));
    }
    let url =
        auth::issue_invite_link(st, op.account_id, &email, role, op.user_id, &op.actor).await?;
    let text = format!(
        "{who} invites you to the account {acc} on {base} as {role}.\n\n\
         Open this link within {days} days to join (it works once):\n\n{url}\n",
        who = op.email.as_deref().unwrap_or("An API client"),
        acc = op.account_name,
        base = auth::public_url(st),
        role = role.as_str(),
        days = st.cfg().manage.invite_ttl.as_secs() / 86_400,
    );
    auth::send_mail(st, &email, "An invitation to manage NTP servers", &text).await?;
    Ok(email)
}

/// `GET /manage/members`.
pub async fn members_page(State(st): State<AppState>, op: Operator) -> Result<Response, PageError> {
    let members = st.store().members(op.account_id).await?;
    let owner = op.role == Role::Owner;
    Ok(page(
        "Members",
        Some(&op),
        html! {
            h1 { "Members of " (op.account_name) }
            div.scroll { table {
                thead { tr { th { "E-mail" } th { "Role" } th { "Member since" } th { "Last sign-in" } @if owner { th { "Change" } } } }
                tbody {
                    @for m in &members {
                        tr {
                            td { (m.email) }
                            td { (m.role) }
                            td { (minute(m.created_on)) }
                            td { (m.last_login.map(minute).unwrap_or_else(|| "never".into())) }
                            @if owner {
                                td {
                                    form method="post" action="/manage/members/role" style="display:inline" {
                                        (csrf_field(&op))
                                        input type="hidden" name="user_id" value=(m.user_id);
                                        select name="role" aria-label="Role" {
                                            option value="owner" selected[m.role == "owner"] { "owner" }
                                            option value="member" selected[m.role == "member"] { "member" }
                                        }
                                        button type="submit" { "Set role" }
                                    }
                                    " "
                                    form method="post" action="/manage/members/remove" style="display:inline" {
                                        (csrf_field(&op))
                                        input type="hidden" name="user_id" value=(m.user_id);
                                        button type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
            @if owner {
                h2 { "Invite someone" }
                p { "They get a link by e-mail that works once, for 7 days." }
                form.lookup method="post" action="/manage/members/invite" {
                    (csrf_field(&op))
                    input type="email" name="email" required placeholder="colleague@example.org" aria-label="E-mail address";
                    select name="role" aria-label="Role" {
                        option value="member" { "member" }
                        option value="owner" { "owner" }
                    }
                    button type="submit" { "Send invitation" }
                }
            }
            h2 { "Leave" }
            form method="post" action="/manage/leave" {
                (csrf_field(&op))
                button type="submit" { "Leave this account" }
            }
        },
    ))
}

#[derive(serde::Deserialize)]
pub struct InviteForm {
    email: String,
    role: Role,
}

pub async fn invite_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<InviteForm>,
) -> Result<Response, PageError> {
    let email = invite(&st, &op, &f.email, f.role).await?;
    Ok(page(
        "Invitation sent",
        Some(&op),
        html! {
            h1 { "Invitation sent" }
            p { "An invitation went to " strong { (email) } "." }
            p { a href="/manage/members" { "Back to the members" } }
        },
    ))
}

#[derive(serde::Deserialize)]
pub struct MemberForm {
    user_id: i64,
}

pub async fn remove_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<MemberForm>,
) -> Result<Response, PageError> {
    op.require_owner()?;
    st.store()
        .remove_member(op.account_id, f.user_id, &op.actor, st.now())
        .await?;
    Ok(after_change(&op, f.user_id))
}

#[derive(serde::Deserialize)]
pub struct RoleForm {
    user_id: i64,
    role: Role,
}

pub async fn role_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<RoleForm>,
) -> Result<Response, PageError> {
    op.require_owner()?;
    st.store()
        .set_member_role(op.account_id, f.user_id, f.role, &op.actor, st.now())
        .await?;
    Ok(after_change(&op, f.user_id))
}

pub async fn leave_post(
    State(st): State<AppState>,
    CsrfForm(op, Nothing {}): CsrfForm<Nothing>,
) -> Result<Response, PageError> {
    let me = op
        .user_id
        .ok_or_else(|| ApiError::forbidden("an API token is no member"))?;
    st.store()
        .remove_member(op.account_id, me, &op.actor, st.now())
        .await?;
    Ok(see_other("/manage/accounts"))
}

/// Back to the members; to the picker when the change was about oneself
/// and one may have lost the account.
fn after_change(op: &Operator, user_id: i64) -> Response {
    if op.user_id == Some(user_id) {
        see_other("/manage/accounts")
    } else {
        see_other("/manage/members")
    }
}
