//! `/api/v1/manage/servers…`: the server operations of the manage pages
//! for scripts, with an account's API token. The same `servers_ops`
//! functions, JSON in and out; documented in API.md.

use super::auth::ApiOperator;
use super::servers_ops as ops;
use super::servers_pages::path_ip;
use crate::admin::format_date;
use crate::error::ApiError;
use crate::evidence::{self, ServerEvidence};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use store::{Added, LiveCheckRow, ServerRow};

/// A server as the API shows it.
pub fn server_json(s: &ServerRow) -> Value {
    json!({
        "ip": s.ip.to_string(), "hostname": s.hostname, "zones": s.zones,
        "netspeed": s.netspeed, "score": s.score,
        "verified": s.verified_on.is_some(), "verified_on": s.verified_on,
        "deletion_on": s.deletion_on.map(format_date),
        "alerts": s.alerts_on, "note": s.note,
        "score_page": format!("/scores/{}", s.ip),
    })
}

/// A live check as the API shows it; `failure` says why it did not pass
/// once every monitor answered (or it expired) without a usable answer.
pub fn check_json(c: &LiveCheckRow, now: i64) -> Value {
    let finished = c.finished(now);
    let monitors: Vec<Value> = c
        .monitors
        .iter()
        .map(|m| {
            let answer = m.answer.as_ref().map(|a| {
                json!({
                    "ts": a.ts, "offset": a.offset, "rtt": a.rtt, "stratum": a.stratum,
                    "leap": a.leap, "refid": a.refid, "error": a.error,
                    "no_response": a.no_response,
                })
            });
            json!({ "monitor": m.monitor_name, "handed_out": m.handed_out, "answer": answer })
        })
        .collect();
    json!({
        "id": c.id, "ip": c.ip.to_string(), "created_on": c.created_on, "expires": c.expires,
        "finished": finished, "usable": c.usable(), "monitors": monitors,
        "failure": (finished && !c.usable()).then(|| ops::failed_check_text(c)),
    })
}

/// `GET /api/v1/manage/servers`.
pub async fn list(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
) -> Result<Json<Value>, ApiError> {
    let servers = st.store().account_servers(op.account_id).await?;
    let v: Vec<Value> = servers.iter().map(|(s, _)| server_json(s)).collect();
    Ok(Json(json!({ "servers": v })))
}

#[derive(serde::Deserialize)]
pub struct Address {
    address: String,
}

/// `POST /api/v1/manage/servers/candidates` `{"address"}`.
pub async fn candidates(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
    JsonBody(b): JsonBody<Address>,
) -> Result<Json<Value>, ApiError> {
    let list = ops::candidates(&st, op.account_id, &b.address).await?;
    let v: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({
                "ip": c.ip.to_string(), "hostname": c.hostname, "refused": c.refused,
                "readd": c.readd, "country": c.country,
            })
        })
        .collect();
    Ok(Json(json!({ "candidates": v })))
}

#[derive(serde::Deserialize)]
pub struct CheckIp {
    ip: String,
}

/// `POST /api/v1/manage/servers/checks` `{"ip"}`: 201 and the new check.
pub async fn start_check(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
    JsonBody(b): JsonBody<CheckIp>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ip =
        b.ip.trim()
            .parse()
            .map_err(|_| ApiError::bad_request("ip: not an IP address"))?;
    ops::check_add_rate(&st, op.account_id)?;
    let c = ops::start_live_check(&st, op.account_id, ip).await?;
    Ok((StatusCode::CREATED, Json(check_json(&c, st.now()))))
}

/// `GET /api/v1/manage/servers/checks/{id}`.
pub async fn get_check(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let c = ops::live_check(&st, op.account_id, id).await?;
    Ok(Json(check_json(&c, st.now())))
}

#[derive(serde::Deserialize)]
pub struct AddBody {
    check_id: i64,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    hostname: Option<String>,
}

/// `POST /api/v1/manage/servers` `{"check_id", "country"?, "hostname"?}`:
/// 201 and the server (`readded`: a scheduled deletion was cancelled).
pub async fn add(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
    JsonBody(b): JsonBody<AddBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let added = ops::finish_add(
        &st,
        op.account_id,
        &op.actor,
        b.check_id,
        b.country.as_deref(),
        b.hostname.as_deref(),
    )
    .await?;
    let (s, readded) = match added {
        Added::New(s) => (s, false),
        Added::Readded(s) => (s, true),
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({ "server": server_json(&s), "readded": readded })),
    ))
}

/// `GET /api/v1/manage/servers/{ip}`.
pub async fn get(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
    Path(ip): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = ops::server(&st, op.account_id, path_ip(&ip)?).await?;
    Ok(Json(server_json(&s)))
}

/// The changes of a `PATCH`; absent fields stay as they are.
#[derive(serde::Deserialize)]
pub struct Changes {
    #[serde(default)]
    netspeed: Option<i64>,
    #[serde(default)]
    alerts: Option<bool>,
    #[serde(default)]
    note: Option<String>,
    /// `YYYY-MM-DD`: schedule the deletion.
    #[serde(default)]
    deletion: Option<String>,
    /// `true`: cancel a scheduled deletion.
    #[serde(default)]
    cancel_deletion: bool,
}

/// `PATCH /api/v1/manage/servers/{ip}`: the given changes, each judged
/// first; applied in turn (a store refusal, such as an unverified server's
/// netspeed cap, stops the rest and names the field).
pub async fn patch(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
    Path(ip): Path<String>,
    JsonBody(b): JsonBody<Changes>,
) -> Result<Json<Value>, ApiError> {
    let ip = path_ip(&ip)?;
    let (acct, actor) = (op.account_id, op.actor.as_str());
    if b.deletion.is_some() && b.cancel_deletion {
        return Err(ApiError::bad_request(
            "deletion: give a date or cancel_deletion, not both",
        ));
    }
    // Every field judged before anything changes, so a bad one changes
    // nothing (the store still has the last word, e.g. the unverified cap).
    if let Some(n) = b.netspeed {
        ops::check_netspeed(n)?;
    }
    if let Some(note) = &b.note {
        ops::check_note(note)?;
    }
    if let Some(date) = &b.deletion {
        ops::deletion_day(date, st.now())?;
    }
    // 404 for another account's server.
    let mut s = ops::server(&st, acct, ip).await?;
    if let Some(n) = b.netspeed {
        s = ops::set_netspeed(&st, acct, actor, ip, n).await?;
    }
    if let Some(on) = b.alerts {
        s = ops::set_alerts(&st, acct, actor, ip, on).await?;
    }
    if let Some(note) = &b.note {
        s = ops::set_note(&st, acct, actor, ip, note).await?;
    }
    if let Some(date) = &b.deletion {
        s = ops::schedule_deletion(&st, acct, actor, ip, date).await?;
    }
    if b.cancel_deletion {
        s = ops::cancel_deletion(&st, acct, actor, ip).await?;
    }
    Ok(Json(server_json(&s)))
}

/// `GET /api/v1/servers/{ip}/samples?hours=N`: what the server's samples
/// say over the last N hours (API.md "Samples"). The owning account's
/// token, or an admin's; any other server is 404, so nobody learns whose
/// it is.
pub async fn samples(
    State(st): State<AppState>,
    ApiOperator(op): ApiOperator,
    Path(ip): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let hours = evidence::parse_hours(&q, evidence::max_hours(&st))?;
    let ip = path_ip(&ip)?;
    let s = if op.is_admin {
        st.store()
            .server_by_ip(ip)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("server {ip}")))?
    } else {
        ops::server(&st, op.account_id, ip).await?
    };
    let monitors = st.store().server_monitors(s.id).await?;
    let ev = ServerEvidence::load(&st, s.id, &monitors, hours, st.now()).await?;
    Ok(Json(ev.json(&s.ip.to_string())))
}
