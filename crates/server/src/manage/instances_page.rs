//! `/manage/admin/instances`: which `serve` instance runs which singleton
//! job and until when its lease lasts, and the instances seen (issue 16),
//! for admins only (404 for everyone else, as every admin page). Times
//! are the database's, so the page agrees with every instance. On SQLite
//! there are no leases (one process runs every job) and the page says so.
//! Read-only, so no form and no CSRF token.

use super::admin_pages::admin_only;
use super::auth::Operator;
use super::view::page;
use crate::jobs::JobName;
use crate::state::AppState;
use crate::web::html::{PageError, ago, minute};
use axum::extract::State;
use axum::response::Response;
use maud::html;

pub async fn instances_page(
    State(st): State<AppState>,
    op: Operator,
) -> Result<Response, PageError> {
    admin_only(&op)?;
    let leases = st.store().job_leases().await?;
    let instances = st.store().instances().await?;
    let leased = st.store().backend_name() == "postgres";
    let me = &st.cfg().instance_name;
    let singletons = JobName::ALL.into_iter().filter(|j| j.is_singleton());
    Ok(page(
        "Instances and jobs",
        Some(&op),
        html! {
            h1 { "Instances and jobs" }
            p.muted { "This page was served by " strong { (me) } "." }
            h2 { "Jobs that run on one instance" }
            @if !leased {
                p.muted { "SQLite: one " code { "serve" } " process runs every job (its data directory is locked)." }
            }
            div.scroll { table #leases {
                thead { tr { th { "Job" } th { "Held by" } th { "Since" } th { "Lease until" } } }
                tbody { @for job in singletons {
                    @let row = leases.iter().find(|l| l.job == job.as_str());
                    tr {
                        td { (job.as_str()) }
                        @match row {
                            Some(l) if l.expires_on >= l.db_now => {
                                td.holder { (l.holder) }
                                td { (minute(l.acquired_on)) }
                                td { (minute(l.expires_on)) " (" (l.expires_on - l.db_now) " s left)" }
                            }
                            Some(l) => {
                                td.holder { span.bad { "expired" } " (was " (l.holder) ")" }
                                td { (minute(l.acquired_on)) }
                                td { (minute(l.expires_on)) }
                            }
                            None => {
                                td.holder { @if leased { span.muted { "nobody" } } @else { (me) } }
                                td {} td {}
                            }
                        }
                    }
                } }
            } }
            h2 { "Instances seen" }
            @if instances.is_empty() { p.muted { "None yet." } } @else {
                div.scroll { table #instances {
                    thead { tr { th { "Instance" } th { "Version" } th { "Started" } th { "Last seen" } th { "State" } } }
                    tbody { @for i in &instances {
                        tr {
                            td { (i.name) }
                            td { (i.version) }
                            td { (minute(i.started_on)) }
                            td { (ago(i.last_seen, i.db_now)) }
                            td { @if i.draining != 0 { "stopping" }
                                 @else if i.db_now - i.last_seen > 30 { span.bad { "silent" } }
                                 @else { "running" } }
                        }
                    } }
                } }
            }
        },
    ))
}
