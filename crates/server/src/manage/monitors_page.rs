//! The volunteer's monitor pages: `/manage/monitors` lists the account's
//! monitors (the rows `agent setup` made once accepted here), and
//! `/manage/monitors/{name}` shows one: status and approval, last seen,
//! version, clock check, checks in the last hour, the traceroutes it ran,
//! and the servers it sees unhealthy while most other monitors see them
//! healthy — where a blind link (a route or filter near the monitor)
//! shows first. Pause and resume are plain CSRF-checked posts; another
//! account's monitor is 404 like a missing one.

use super::auth::{CsrfForm, Operator, csrf_field, public_url, see_other};
use super::servers_pages::Empty;
use super::view::page;
use crate::state::AppState;
use crate::web::html::{PageError, ago, minute};
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use store::{BlindSpot, GlobalStatus, MonitorClock, MonitorRow, MonitorTraceroute};

/// Rows of the comparison and of the traceroute list a page shows.
pub const PAGE_ROWS: i64 = 50;

/// Seen within this long: online (as on the public `/monitors` page).
const ONLINE_S: i64 = 600;

/// What a status means to the volunteer.
fn status_text(m: &MonitorRow, paused_by_volunteer: bool) -> String {
    match m.status {
        GlobalStatus::Pending => "pending: awaiting approval by the pool's admins".into(),
        GlobalStatus::Testing => {
            "testing: approved; its results are compared with the other monitors' before they count"
                .into()
        }
        GlobalStatus::Active => "active: its results count for the servers it checks".into(),
        GlobalStatus::Paused if paused_by_volunteer => {
            "paused by you: it gets no work until you resume it".into()
        }
        GlobalStatus::Paused => {
            "paused by the pool's admins: it gets no work; write to them to resume it".into()
        }
        GlobalStatus::Deleted => "deleted: revoked, its key no longer works".into(),
    }
}

fn family(m: &MonitorRow) -> &'static str {
    if m.ip_version == 6 { "IPv6" } else { "IPv4" }
}

fn last_seen(m: &MonitorRow, now: i64) -> Markup {
    html! {
        @match m.last_seen {
            Some(t) => {
                (minute(t)) " " span.muted { "(" (ago(t, now)) ")" }
                @if t < now - ONLINE_S { " " span.bad { "offline" } }
            }
            None => { "never" }
        }
    }
}

fn href(m: &MonitorRow) -> String {
    format!("/manage/monitors/{}", m.name)
}

/// `GET /manage/monitors`.
pub async fn list_page(State(st): State<AppState>, op: Operator) -> Result<Response, PageError> {
    let monitors = st.store().account_monitors(op.account_id).await?;
    let now = st.now();
    let api = public_url(&st);
    Ok(page(
        "Monitors",
        Some(&op),
        html! {
            h1 { "Monitors" }
            p {
                "A monitor checks the pool's servers from where it stands. To run one, install poolwatch on a host with a stable address and a good clock and run the following; then open the link it prints while signed in here and accept it for this account. "
                "The pool's admins approve it before it takes part."
            }
            pre { code #setup-command { "poolwatch agent setup --api " (api) " --state-dir /var/lib/poolwatch-agent" } }
            p { "Have a code it printed instead? " a href=(crate::registration::ACCEPT_PATH) { "Accept a monitor by its code" } "." }
            @if monitors.is_empty() {
                p.muted #no-monitors { "No monitors yet." }
            } @else {
                div.scroll { table #monitors {
                    thead { tr { th { "Name" } th { "Family" } th { "Address" } th { "Location" } th { "Status" } th { "Last seen" } th { "Version" } } }
                    tbody { @for m in &monitors {
                        tr data-monitor=(m.name) {
                            td { a href=(href(m)) { (m.name) } }
                            td { (family(m)) }
                            td { (m.ip) }
                            td { (m.location) }
                            td { (m.status) @if m.status == GlobalStatus::Pending { " (awaiting approval)" } }
                            td { (last_seen(m, now)) }
                            td { (m.client_version.as_deref().unwrap_or("")) }
                        }
                    } }
                } }
            }
        },
    ))
}

/// The account's monitor `name`, or 404 (also for another account's).
async fn own(st: &AppState, op: &Operator, name: &str) -> Result<MonitorRow, PageError> {
    st.store()
        .account_monitor(op.account_id, name)
        .await?
        .ok_or_else(|| PageError::not_found("no such monitor in this account"))
}

/// `GET /manage/monitors/{name}`.
pub async fn monitor_page(
    State(st): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let m = own(&st, &op, &name).await?;
    let store = st.store();
    let now = st.now();
    let view = View {
        paused_by_volunteer: store.monitor_paused_from(m.id).await?.is_some(),
        clock: store.monitor_clock(m.id).await?,
        checks: store.monitor_checks_since(m.id, now - 3600).await?,
        spots: store
            .monitor_blind_spots(m.id, scoring::IN_DNS_THRESHOLD, PAGE_ROWS)
            .await?,
        traceroutes: store.monitor_traceroutes(m.id, PAGE_ROWS).await?,
    };
    Ok(page(
        &format!("Monitor {}", m.name),
        Some(&op),
        monitor_body(&op, &m, &view, now),
    ))
}

/// What one monitor's page shows besides its row.
struct View {
    paused_by_volunteer: bool,
    clock: Option<MonitorClock>,
    checks: i64,
    spots: Vec<BlindSpot>,
    traceroutes: Vec<MonitorTraceroute>,
}

fn monitor_body(op: &Operator, m: &MonitorRow, v: &View, now: i64) -> Markup {
    html! {
        h1 { "Monitor " (m.name) }
        p { a href="/manage/monitors" { "All monitors" } }
        dl.facts {
            dt { "Status" } dd #status { (status_text(m, v.paused_by_volunteer)) }
            dt { "Address" } dd { (m.ip) " (" (family(m)) ")" }
            dt { "Location" } dd { (m.location) }
            dt { "Last seen" } dd #last-seen { (last_seen(m, now)) }
            dt { "Version" } dd #version { (m.client_version.as_deref().unwrap_or("unknown")) }
            dt { "Clock check" } dd #clock { (clock(v.clock.as_ref(), now)) }
            dt { "Checks, last hour" } dd #checks { (v.checks) }
        }
        (pause_form(op, m, v.paused_by_volunteer))
        h2 { "Where its view differs" }
        p { "Servers this monitor sees unhealthy (score below " (scoring::IN_DNS_THRESHOLD) ") while most of the other monitors that count for them see them healthy. One or two here may be the server's own trouble toward you; many, or a whole network, point to the monitor's link: a route, a firewall or NAT in front of it." }
        @if v.spots.is_empty() {
            p.muted #no-differences { "None: it agrees with the other monitors." }
        } @else {
            div.scroll { table #differences {
                thead { tr { th { "Server" } th.num { "Its score" } th { "Its last error" } th { "Others seeing it healthy" } th { "Last check" } } }
                tbody { @for s in &v.spots {
                    tr data-server=(s.ip) {
                        td { a href={ "/scores/" (s.ip) } { (s.ip) } }
                        td.num { (format!("{:.1}", s.score)) }
                        td { (s.last_error) }
                        td { (s.others_healthy) " of " (s.others) }
                        td { (minute(s.score_ts)) }
                    }
                } }
            } }
        }
        h2 { "Traceroutes it ran" }
        p { "The service asks for one when this monitor's view of a server changes (healthy to unhealthy, a new error, or back)." }
        @if v.traceroutes.is_empty() {
            p.muted #no-traceroutes { "None yet." }
        } @else {
            div.scroll { table #traceroutes {
                thead { tr { th { "When" } th { "Server" } th { "Why" } th { "Tool" } th { "Hops" } th { "Error" } } }
                tbody { @for t in &v.traceroutes {
                    tr {
                        td { (minute(t.ts)) }
                        td { a href={ "/scores/" (t.server_ip) } { (t.server_ip) } }
                        td { (t.reason) }
                        td { (t.tool) }
                        td { (hops(t)) }
                        td { (t.error.as_deref().unwrap_or("")) }
                    }
                } }
            } }
        }
    }
}

fn clock(c: Option<&MonitorClock>, now: i64) -> Markup {
    html! {
        @match c {
            Some(c) if c.ok => { span.ok { "ok" } ": " (c.detail) " " span.muted { "(" (ago(c.ts, now)) ")" } }
            Some(c) => { span.bad { "failing" } ": " (c.detail) " " span.muted { "(" (ago(c.ts, now)) "; it submits nothing until it passes)" } }
            None => { "not reported yet" }
        }
    }
}

/// "12 hops, last 192.0.2.1".
fn hops(t: &MonitorTraceroute) -> String {
    let last = t.hops.iter().rev().find_map(|h| h.ip);
    match last {
        Some(ip) => format!("{} hops, last answer from {ip}", t.hops.len()),
        None => format!("{} hops, none answered", t.hops.len()),
    }
}

fn pause_form(op: &Operator, m: &MonitorRow, paused_by_volunteer: bool) -> Markup {
    html! {
        @if m.status.measures() {
            form method="post" action={ (href(m)) "/pause" } {
                (csrf_field(op))
                button type="submit" #pause { "Pause" }
                span.muted { " It stops getting work (for maintenance, a move); resume brings it back as " (m.status) "." }
            }
        } @else if m.status == GlobalStatus::Paused && paused_by_volunteer {
            form method="post" action={ (href(m)) "/resume" } {
                (csrf_field(op))
                button type="submit" #resume { "Resume" }
            }
        }
    }
}

async fn set_paused(
    st: &AppState,
    op: &Operator,
    name: &str,
    pause: bool,
) -> Result<Response, PageError> {
    let m = st
        .store()
        .set_account_monitor_paused(op.account_id, name, pause, &op.actor, st.now())
        .await?;
    Ok(see_other(&href(&m)))
}

/// `POST /manage/monitors/{name}/pause`.
pub async fn pause_post(
    State(st): State<AppState>,
    Path(name): Path<String>,
    CsrfForm(op, _): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    set_paused(&st, &op, &name, true).await
}

/// `POST /manage/monitors/{name}/resume`.
pub async fn resume_post(
    State(st): State<AppState>,
    Path(name): Path<String>,
    CsrfForm(op, _): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    set_paused(&st, &op, &name, false).await
}
