//! The server pages of the manage side: adding a server (address or
//! hostname → the addresses to confirm, each with its zone → the live
//! check, whose page refreshes itself until the monitors have answered →
//! added, or refused with every answer), one server's page (netspeed,
//! deletion, alerts, note, verification), and the verification link's
//! confirm page. The rules are `servers_ops`; forms are plain HTML posts
//! with the session's CSRF token; no script.

use super::auth::{CsrfForm, Operator, csrf_field, public_url, see_other};
use super::servers_ops::{self as ops, Candidate, DEFAULT_NETSPEED, NETSPEED_CHOICES};
use super::verify;
use super::view::page;
use crate::admin::{format_date, today};
use crate::error::ApiError;
use crate::evidence::{self, ServerEvidence};
use crate::state::AppState;
use crate::web::html::{PageError, minute};
use axum::extract::{Path, Query, State};
use axum::http::HeaderValue;
use axum::response::Response;
use maud::{Markup, html};
use std::net::IpAddr;
use store::{Added, LiveCheckRow, ServerRow};

/// Seconds between reloads of a running live check's page.
const CHECK_REFRESH_S: u32 = 2;

/// The country zones, by name, for the picker.
fn countries() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = geo::zone_tree()
        .into_iter()
        .filter(|z| {
            z.parent
                .as_deref()
                .is_some_and(|p| geo::CONTINENTS.contains(&p))
        })
        .map(|z| (z.name, z.description))
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

/// A `<select name="country">`, `picked` selected; without one the
/// operator must choose (required, no default).
fn country_picker(picked: Option<&str>) -> Markup {
    html! {
        select name="country" required aria-label="Country" {
            @if picked.is_none() { option value="" selected { "pick its country…" } }
            @for (code, name) in countries() {
                option value=(code) selected[picked == Some(code.as_str())] { (name) " (" (code) ")" }
            }
        }
    }
}

/// An address from a path: 404 when it is not one (no server has it).
pub fn path_ip(s: &str) -> Result<IpAddr, ApiError> {
    s.parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| ApiError::not_found(format!("server {s}")))
}

/// `GET /manage/servers/add`.
pub async fn add_page(op: Operator) -> Response {
    page("Add a server", Some(&op), add_form(&op))
}

fn add_form(op: &Operator) -> Markup {
    html! {
        h1 { "Add a server" }
        p { "Please only add your own servers. Type an IPv4 or IPv6 address, or a hostname: each of its A and AAAA addresses is listed for you to confirm." }
        form.lookup method="post" action="/manage/servers/add" {
            (csrf_field(op))
            input name="address" required maxlength="255" placeholder="192.0.2.1, 2001:db8::1 or ntp.example.net" aria-label="Address or hostname";
            button type="submit" { "Look up" }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct AddForm {
    address: String,
}

/// `POST /manage/servers/add`: the addresses to confirm.
pub async fn add_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<AddForm>,
) -> Result<Response, PageError> {
    let list = ops::candidates(&st, op.account_id, &f.address).await?;
    Ok(page(
        "Confirm the addresses",
        Some(&op),
        html! {
            h1 { "Add " (f.address.trim()) }
            p { "Each address is checked by up to three of the pool's monitors before it is added." }
            @for c in &list { (candidate(&op, c)) }
            p { a href="/manage/servers/add" { "Add another" } }
        },
    ))
}

fn candidate(op: &Operator, c: &Candidate) -> Markup {
    html! {
        section.candidate {
            h2 { (c.ip) }
            @if let Some(why) = &c.refused {
                p.bad { "Cannot be added: " (why) }
            } @else {
                @if c.readd { p { "Yours, scheduled for deletion: adding it again cancels the deletion." } }
                form method="post" action="/manage/servers/check" {
                    (csrf_field(op))
                    input type="hidden" name="ip" value=(c.ip);
                    @if let Some(h) = &c.hostname { input type="hidden" name="hostname" value=(h); }
                    p {
                        "Zone: "
                        @match &c.country {
                            Some(cc) => { "GeoIP says " strong { (cc) } " — change it if that is wrong: " }
                            None => { strong { "GeoIP does not know where it is: pick its country. " } }
                        }
                        (country_picker(c.country.as_deref()))
                    }
                    button type="submit" { "Check and add " (c.ip) }
                }
            }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct CheckForm {
    ip: String,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    country: Option<String>,
}

/// The operator's choices carried from page to page: validated, so they
/// go into a URL as they are (letters, digits, `.` and `-`).
fn carried(country: Option<&str>, hostname: Option<&str>) -> Result<String, ApiError> {
    let mut q = Vec::new();
    if let Some(cc) = country.map(str::trim).filter(|c| !c.is_empty()) {
        let zone = geo::country_zone(cc).ok_or_else(|| {
            ApiError::bad_request(format!("country: '{cc}' is not a country code"))
        })?;
        q.push(format!("country={zone}"));
    }
    if let Some(h) = hostname.map(str::trim).filter(|h| !h.is_empty()) {
        let h = ops::check_hostname(h)
            .map_err(|_| ApiError::bad_request("hostname: not a hostname"))?;
        q.push(format!("hostname={h}"));
    }
    Ok(if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    })
}

/// A disabled account adds nothing (its servers are out of DNS; its API
/// tokens already stop at 401).
fn refuse_disabled(op: &Operator) -> Result<(), ApiError> {
    if op.disabled {
        return Err(ApiError::forbidden(
            "this account is disabled by the pool's admins: it cannot add servers",
        ));
    }
    Ok(())
}

/// `POST /manage/servers/check`: ask the monitors, then watch the answers.
pub async fn check_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<CheckForm>,
) -> Result<Response, PageError> {
    refuse_disabled(&op)?;
    let ip: IpAddr =
        f.ip.trim()
            .parse()
            .map_err(|_| ApiError::bad_request("ip: not an IP address"))?;
    let query = carried(f.country.as_deref(), f.hostname.as_deref())?;
    ops::check_add_rate(&st, op.account_id)?;
    let c = ops::start_live_check(&st, op.account_id, ip).await?;
    Ok(see_other(&format!("/manage/servers/check/{}{query}", c.id)))
}

#[derive(serde::Deserialize, Default)]
pub struct Carried {
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    hostname: Option<String>,
}

/// `GET /manage/servers/check/{id}`: the monitors' answers as they arrive
/// (the page reloads itself while they are awaited), then the add or why not.
pub async fn check_page(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<i64>,
    Query(q): Query<Carried>,
) -> Result<Response, PageError> {
    let now = st.now();
    let c = ops::live_check(&st, op.account_id, id).await?;
    let finished = c.finished(now);
    let body = html! {
        h1 { "Live check of " (c.ip) }
        (answers_table(&c, finished))
        @if !finished {
            p #check-running { "Waiting for the monitors (they take the check at their next work call, usually within a minute). This page reloads itself; "
                a href=(format!("/manage/servers/check/{id}{}", carried(q.country.as_deref(), q.hostname.as_deref()).unwrap_or_default())) { "reload" } "." }
        } @else if c.usable() {
            p.good #check-passed { "A monitor got a usable answer." }
            form method="post" action="/manage/servers/added" {
                (csrf_field(&op))
                input type="hidden" name="check_id" value=(c.id);
                @if let Some(h) = &q.hostname { input type="hidden" name="hostname" value=(h); }
                p { "Zone: " (country_picker(q.country.as_deref().or(ops::geo_country(&st, c.ip).as_deref()))) }
                button type="submit" { "Add " (c.ip) }
            }
        } @else {
            p.bad #check-failed { (ops::failed_check_text(&c)) }
            p { a href="/manage/servers/add" { "Try again" } }
        }
    };
    let mut resp = page(&format!("Live check of {}", c.ip), Some(&op), body);
    if !finished {
        // A reload without script: the CSP allows none inline.
        resp.headers_mut()
            .insert("refresh", HeaderValue::from(CHECK_REFRESH_S));
    }
    Ok(resp)
}

fn answers_table(c: &LiveCheckRow, finished: bool) -> Markup {
    html! {
        table #live-check {
            thead { tr { th { "Monitor" } th { "Answer" } } }
            tbody { @for m in &c.monitors {
                tr { td { (m.monitor_name) } td { (ops::answer_text(m, finished)) } }
            } }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct AddedForm {
    check_id: i64,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    hostname: Option<String>,
}

/// `POST /manage/servers/added`: add the server of a passed live check.
pub async fn added_post(
    State(st): State<AppState>,
    CsrfForm(op, f): CsrfForm<AddedForm>,
) -> Result<Response, PageError> {
    refuse_disabled(&op)?;
    let added = ops::finish_add(
        &st,
        op.account_id,
        &op.actor,
        f.check_id,
        f.country.as_deref(),
        f.hostname.as_deref(),
    )
    .await?;
    let s = match added {
        Added::New(s) | Added::Readded(s) => s,
    };
    Ok(see_other(&format!("/manage/servers/{}", s.ip)))
}

/// `GET /manage/servers/{ip}`.
pub async fn server_page(
    State(st): State<AppState>,
    op: Operator,
    Path(ip): Path<String>,
) -> Result<Response, PageError> {
    let s = ops::server(&st, op.account_id, path_ip(&ip)?).await?;
    let now = st.now();
    let base = public_url(&st);
    let monitors = st.store().server_monitors(s.id).await?;
    let samples = ServerEvidence::load(&st, s.id, &monitors, evidence::DEFAULT_HOURS, now).await?;
    Ok(page(
        &format!("Server {}", s.ip),
        Some(&op),
        server_body(&op, &s, now, &base, &samples),
    ))
}

fn server_body(
    op: &Operator,
    s: &ServerRow,
    now: i64,
    base: &str,
    samples: &ServerEvidence,
) -> Markup {
    let action = |what: &str| format!("/manage/servers/{}/{what}", s.ip);
    let earliest = format_date(today(now) + ops::DELETION_NOTICE_DAYS * 86_400);
    html! {
        h1 { "Server " (s.ip) }
        p {
            @if let Some(h) = &s.hostname { "Added as " (h) " · " }
            "zones " (s.zones.join(", ")) " · score " (format!("{:.1}", s.score))
            " · " a href=(format!("/scores/{}", s.ip)) { "its public score page" }
        }
        (crate::web::evidence_page::owner_section(samples))
        p.muted {
            "As JSON, for any window up to the sample retention: "
            code { "GET /api/v1/servers/" (s.ip) "/samples?hours=N" }
            " with an API token of this account."
        }
        h2 { "Verification" }
        @if let Some(v) = s.verified_on {
            p.good #verified { "Verified " (minute(v)) "." }
        } @else {
            p #unverified { "Not verified yet: its netspeed stays at most " (DEFAULT_NETSPEED) " kbit, and while an account has unverified servers it can add only a few more. To verify, run this on the server itself (the request must come from " (s.ip) ") and open the link it prints while signed in:" }
            pre { code #verify-command { "curl --interface " (s.ip) " " (base) "/verify" } }
        }
        h2 { "Netspeed" }
        form method="post" action=(action("netspeed")) {
            (csrf_field(op))
            select name="netspeed" aria-label="Netspeed" {
                @for n in NETSPEED_CHOICES {
                    option value=(n) selected[n == s.netspeed] disabled[s.verified_on.is_none() && n > DEFAULT_NETSPEED] {
                        @if n == 0 { "0 (monitoring only)" } @else { (n) " kbit" }
                    }
                }
            }
            button type="submit" { "Set netspeed" }
        }
        h2 { "Deletion" }
        @if let Some(d) = s.deletion_on {
            p #deletion { "Scheduled for " (format_date(d)) ": out of DNS 14 days before, monitoring stops and the server is removed on that day." }
            form method="post" action=(action("deletion/cancel")) {
                (csrf_field(op))
                button type="submit" { "Cancel the deletion" }
            }
        } @else {
            form method="post" action=(action("deletion")) {
                (csrf_field(op))
                input type="date" name="date" required min=(earliest) aria-label="Deletion date";
                button type="submit" { "Schedule deletion" }
                span.muted { " (" (earliest) " or later)" }
            }
        }
        h2 { "Alerts" }
        form method="post" action=(action("alerts")) {
            (csrf_field(op))
            @if s.alerts_on {
                input type="hidden" name="on" value="false";
                p { "Alerts about this server go to the account's contacts. " button type="submit" { "Mute them" } }
            } @else {
                input type="hidden" name="on" value="true";
                p { "Alerts about this server are muted. " button type="submit" { "Turn them on" } }
            }
        }
        h2 { "Note" }
        form method="post" action=(action("note")) {
            (csrf_field(op))
            textarea name="note" rows="3" cols="60" maxlength=(ops::MAX_NOTE_CHARS) aria-label="Note" { (s.note) }
            br;
            button type="submit" { "Save the note" }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct NetspeedForm {
    netspeed: i64,
}
#[derive(serde::Deserialize)]
pub struct DateForm {
    date: String,
}
#[derive(serde::Deserialize)]
pub struct AlertsForm {
    on: bool,
}
#[derive(serde::Deserialize)]
pub struct NoteForm {
    note: String,
}
#[derive(serde::Deserialize)]
pub struct Empty {}

fn back(s: &ServerRow) -> Response {
    see_other(&format!("/manage/servers/{}", s.ip))
}

pub async fn netspeed_post(
    State(st): State<AppState>,
    Path(ip): Path<String>,
    CsrfForm(op, f): CsrfForm<NetspeedForm>,
) -> Result<Response, PageError> {
    let s = ops::set_netspeed(&st, op.account_id, &op.actor, path_ip(&ip)?, f.netspeed).await?;
    Ok(back(&s))
}

pub async fn deletion_post(
    State(st): State<AppState>,
    Path(ip): Path<String>,
    CsrfForm(op, f): CsrfForm<DateForm>,
) -> Result<Response, PageError> {
    let s = ops::schedule_deletion(&st, op.account_id, &op.actor, path_ip(&ip)?, &f.date).await?;
    Ok(back(&s))
}

pub async fn cancel_deletion_post(
    State(st): State<AppState>,
    Path(ip): Path<String>,
    CsrfForm(op, _): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let s = ops::cancel_deletion(&st, op.account_id, &op.actor, path_ip(&ip)?).await?;
    Ok(back(&s))
}

pub async fn alerts_post(
    State(st): State<AppState>,
    Path(ip): Path<String>,
    CsrfForm(op, f): CsrfForm<AlertsForm>,
) -> Result<Response, PageError> {
    let s = ops::set_alerts(&st, op.account_id, &op.actor, path_ip(&ip)?, f.on).await?;
    Ok(back(&s))
}

pub async fn note_post(
    State(st): State<AppState>,
    Path(ip): Path<String>,
    CsrfForm(op, f): CsrfForm<NoteForm>,
) -> Result<Response, PageError> {
    let s = ops::set_note(&st, op.account_id, &op.actor, path_ip(&ip)?, &f.note).await?;
    Ok(back(&s))
}

/// `GET /manage/verify/{token}`: what the link would verify, and a button
/// (the change is a POST with the CSRF token, never a GET).
pub async fn verify_page(
    State(st): State<AppState>,
    op: Operator,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let ip = verify::confirm(&st, op.account_id, &token).await?;
    Ok(page(
        "Verify a server",
        Some(&op),
        html! {
            h1 { "Verify " (ip) }
            p { "This link was requested from " (ip) " itself. Confirm that it is your server:" }
            form method="post" action=(format!("{}/{token}", verify::CONFIRM_PATH)) {
                (csrf_field(&op))
                button type="submit" { "Verify " (ip) }
            }
        },
    ))
}

/// `POST /manage/verify/{token}`.
pub async fn verify_post(
    State(st): State<AppState>,
    Path(token): Path<String>,
    CsrfForm(op, _): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let s = verify::use_token(&st, op.account_id, &op.actor, &token).await?;
    Ok(back(&s))
}
