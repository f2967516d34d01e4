//! Monitor volunteers join by themselves, in process on SQLite and
//! PostgreSQL: `agent setup`'s registration (both families, one code), the
//! volunteer's acceptance page, the one-time collection of keys, admin
//! approval; and every refusal: a non-public source, bad fields, unknown,
//! spent and expired codes, guessing, the account's monitor limit, CSRF,
//! another account, pending (403) and revoked (401) monitors.
mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
#[macro_use]
#[path = "support/manage.rs"]
mod manage_support;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Backend, Resp, TestApp};
use manage_support::*;
use serde_json::{Value, json};
use store::GlobalStatus;

on_both_backends!(
    both_families_accepted_collected_once_and_approved,
    non_public_source_and_bad_fields_are_refused,
    unknown_spent_and_expired_codes_and_guessing,
    account_monitor_limit_refuses,
    csrf_and_other_accounts,
);

const V4: &str = "81.2.69.142:40001";
const V6: &str = "[2a02:d180::1]:40002";
const REGISTER: &str = "/api/v1/monitor/register";
const STATUS: &str = "/api/v1/monitor/register/status";

fn secret(c: char) -> String {
    c.to_string().repeat(64)
}

async fn post_json(t: &TestApp, from: &str, path: &str, body: Value) -> Resp {
    t.send_from(
        from,
        Method::POST,
        path,
        &[("content-type", "application/json")],
        Body::from(body.to_string()),
    )
    .await
}

async fn register(t: &TestApp, from: &str, secret: &str) -> Resp {
    let body = json!({"secret": secret, "hostname": "mon1.example.net",
                      "client_version": "poolwatch/0.9", "name_hint": "zrh1"});
    post_json(t, from, REGISTER, body).await
}

/// The code of a fresh registration from both families.
async fn registered(t: &TestApp, s: &str) -> String {
    let a = register(t, V4, s).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let b = register(t, V6, s).await;
    assert_eq!(b.json()["code"], a.json()["code"], "{}", b.text());
    a.json()["code"].as_str().unwrap().to_string()
}

async fn poll(t: &TestApp, s: &str) -> Value {
    let r = post_json(t, V4, STATUS, json!({"secret": s})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

fn accept_page(code: &str) -> String {
    format!("/manage/monitors/accept?code={}", enc(code))
}

async fn accept(t: &TestApp, b: &Browser, code: &str, name: &str) -> Resp {
    b.post(
        t,
        &accept_page(code),
        "/manage/monitors/accept",
        &[("code", code), ("name", name), ("location", "Zürich, CH")],
    )
    .await
}

async fn both_families_accepted_collected_once_and_approved(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let s = secret('a');
    let a = register(&t, V4, &s).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let b = register(&t, V6, &s).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());
    // One registration: the same code and URL for both families.
    assert_eq!(a.json(), b.json());
    let code = a.json()["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 11, "{code}");
    assert_eq!(
        a.json()["url"],
        format!("http://pool.test/manage/monitors/accept?code={code}")
    );
    assert_eq!(a.json()["expires_in"], 3600);
    assert_eq!(
        poll(&t, &s).await,
        json!({"state": "waiting", "credentials": []})
    );

    let vol = sign_in(&t, &sink, "vol@example.org").await;
    let page = vol.get(&t, &accept_page(&code.to_lowercase())).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    for shown in [
        "81.2.69.142",
        "2a02:d180::1",
        "mon1.example.net",
        "poolwatch/0.9",
        "value=\"zrh1\"",
    ] {
        assert!(html.contains(shown), "{shown}: {html}");
    }
    let r = accept(&t, &vol, &code, "zrh1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("zrh1-v6"), "{}", r.text());
    let acc = account_id(&t, "vol@example.org").await;
    for (name, ip) in [("zrh1", "81.2.69.142"), ("zrh1-v6", "2a02:d180::1")] {
        let m = t.store().monitor_by_name(name).await.unwrap().unwrap();
        assert_eq!(
            (m.status, m.account_id, m.ip.to_string()),
            (GlobalStatus::Pending, Some(acc), ip.into())
        );
        assert_eq!(m.location, "Zürich, CH");
    }
    let audit = t.store().audit_log(acc, 10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "monitor.accept" && e.subject == "zrh1")
    );

    // The keys, once.
    let got = poll(&t, &s).await;
    assert_eq!(got["state"], "accepted", "{got}");
    let creds = got["credentials"].as_array().unwrap();
    let pairs: Vec<(u64, &str)> = creds
        .iter()
        .map(|c| (c["family"].as_u64().unwrap(), c["name"].as_str().unwrap()))
        .collect();
    assert_eq!(pairs, [(4, "zrh1"), (6, "zrh1-v6")]);
    let key4 = creds[0]["key"].as_str().unwrap().to_string();
    let key6 = creds[1]["key"].as_str().unwrap().to_string();
    assert!(key4.starts_with("pwk_") && key4 != key6);
    assert_eq!(
        poll(&t, &s).await,
        json!({"state": "delivered", "credentials": []})
    );

    // Pending: known, but no work yet.
    let r = t
        .monitor_call(Method::GET, "/api/v1/monitor/config", Some(&key4), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.error_detail()
            .contains("awaiting approval by the pool's admins"),
        "{}",
        r.text()
    );

    // A pool admin approves one name; both rows start testing.
    let adm = sign_in(&t, &sink, "adm@example.org").await;
    let r = vol
        .post(
            &t,
            "/manage",
            "/manage/admin/monitors/approve",
            &[("name", "zrh1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not an admin");
    server::admin::set_account_flags(t.store(), "adm", Some(true), None, T0)
        .await
        .unwrap();
    let admin_page = adm.get(&t, "/manage/admin").await;
    assert!(
        admin_page.text().contains("zrh1-v6"),
        "{}",
        admin_page.text()
    );
    let r = adm
        .post(
            &t,
            "/manage/admin",
            "/manage/admin/monitors/approve",
            &[("name", "zrh1-v6")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    for key in [&key4, &key6] {
        let r = t
            .monitor_call(Method::GET, "/api/v1/monitor/config", Some(key), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    assert_eq!(
        t.store()
            .monitor_by_name("zrh1")
            .await
            .unwrap()
            .unwrap()
            .status,
        GlobalStatus::Testing
    );
    // Revoked: the key no longer authenticates.
    t.store()
        .set_monitor_status("zrh1", GlobalStatus::Deleted)
        .await
        .unwrap();
    let r = t
        .monitor_call(Method::GET, "/api/v1/monitor/config", Some(&key4), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.error_detail().contains("revoked"), "{}", r.text());
}

async fn non_public_source_and_bad_fields_are_refused(backend: Backend) {
    let (t, _sink, _) = setup!(backend);
    for from in [
        common::CLIENT,
        "10.0.0.5:1234",
        "[::1]:1234",
        "[fd00::5]:1234",
    ] {
        let r = register(&t, from, &secret('b')).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{from}");
        assert!(
            r.error_detail().contains("not a public address"),
            "{}",
            r.text()
        );
    }
    for (body, field) in [
        (json!({"secret": "abc"}), "secret"),
        (json!({"secret": "g".repeat(64)}), "secret"),
        (json!({"hostname": "x"}), "body: missing field `secret`"),
        (
            json!({"secret": secret('c'), "hostname": "h".repeat(254)}),
            "hostname",
        ),
        (
            json!({"secret": secret('c'), "name_hint": "n".repeat(64)}),
            "name_hint",
        ),
        (
            json!({"secret": secret('c'), "client_version": "v\u{0}"}),
            "client_version",
        ),
        // Shown to the volunteer who decides on it: no markup or words.
        (
            json!({"secret": secret('c'), "hostname": "<b>host</b>"}),
            "hostname: only",
        ),
        (
            json!({"secret": secret('c'), "hostname": "ok.example verified by the pool"}),
            "hostname: only",
        ),
        (
            json!({"secret": secret('c'), "hostname": "\u{0440}ool.example"}),
            "hostname: only",
        ),
        (
            json!({"secret": secret('c'), "client_version": "poolwatch-agent/1.0 \u{2705}"}),
            "client_version: only",
        ),
        (
            json!({"secret": secret('c'), "name_hint": "zrh\u{e9}"}),
            "name_hint: only",
        ),
    ] {
        let r = post_json(&t, V4, REGISTER, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.error_detail().starts_with(field), "{field}: {}", r.text());
    }
    let r = post_json(&t, V4, STATUS, json!({"secret": secret('d')})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(t.store().registration_by_code("x").await.unwrap().is_none());
    // A lab service takes private sources.
    let mut cfg = t.state.cfg().clone();
    cfg.manage.allow_private = true;
    let lab = TestApp::new(common::TestDb::open(backend).await.unwrap(), cfg);
    for from in ["127.0.0.1:1234", "[::1]:1234"] {
        let r = register(&lab, from, &secret('b')).await;
        assert_eq!(r.status, StatusCode::OK, "{from}: {}", r.text());
    }
}

async fn unknown_spent_and_expired_codes_and_guessing(backend: Backend) {
    let (t, sink, clock) = setup!(backend);
    let vol = sign_in(&t, &sink, "vol@example.org").await;
    let code = registered(&t, &secret('a')).await;
    // Unknown and malformed codes: 404, nothing shown.
    for bad in ["ABCDE-FGHJK", "nope"] {
        let r = vol.get(&t, &accept_page(bad)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
    }
    assert_eq!(accept(&t, &vol, &code, "zrh1").await.status, StatusCode::OK);
    // Reused: 410, the form refused too.
    assert_eq!(
        vol.get(&t, &accept_page(&code)).await.status,
        StatusCode::GONE
    );
    let r = send(
        &t,
        Some(&vol.cookie),
        Method::POST,
        "/manage/monitors/accept",
        &format!(
            "csrf={}&code={code}&name=zrh9",
            vol.csrf(&t, "/manage").await
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text());
    assert!(t.store().monitor_by_name("zrh9").await.unwrap().is_none());
    // Expired after an hour; its agent is told.
    let late = registered(&t, &secret('b')).await;
    clock.set(T0 + 3600);
    let vol = sign_in(&t, &sink, "vol@example.org").await;
    assert_eq!(
        vol.get(&t, &accept_page(&late)).await.status,
        StatusCode::GONE
    );
    assert_eq!(poll(&t, &secret('b')).await["state"], "expired");
    let r = register(&t, V6, &secret('b')).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text());
    // Guessing: the account's (and client's) look-ups run out → 429.
    let mut limited = None;
    for i in 0..30 {
        let r = vol.get(&t, &accept_page("ABCDE-FGHJK")).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(i);
            break;
        }
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    // Only the two unknown codes above cost a token (found codes, spent
    // or not, are given back): 8 of the burst of 10 are left, refilling
    // one per 30 s meanwhile.
    assert!(limited.is_some_and(|i| i >= 8), "{limited:?}");
    // Once out, even a right code is refused (else guessing would go on).
    let fresh = registered(&t, &secret('c')).await;
    let r = vol.get(&t, &accept_page(&fresh)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!r.header("retry-after").is_empty());
}

async fn account_monitor_limit_refuses(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let vol = sign_in(&t, &sink, "vol@example.org").await;
    t.store()
        .set_account_max_monitors("vol", Some(1))
        .await
        .unwrap();
    let first = registered(&t, &secret('a')).await;
    assert_eq!(
        accept(&t, &vol, &first, "zrh1").await.status,
        StatusCode::OK
    );
    let second = registered(&t, &secret('b')).await;
    let r = accept(&t, &vol, &second, "zrh2").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.text().contains("its limit is 1"), "{}", r.text());
    assert!(t.store().monitor_by_name("zrh2").await.unwrap().is_none());
    // The default (3) once the account's own limit is cleared.
    t.store()
        .set_account_max_monitors("vol", None)
        .await
        .unwrap();
    // Bad names are refused naming the field, nothing stored (61
    // characters fit, but NAME-v6 would not).
    for bad in ["", "a_b", "123", "accept", &"x".repeat(61)] {
        let r = accept(&t, &vol, &second, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(r.text().contains("name:"), "{}", r.text());
    }
    assert_eq!(
        accept(&t, &vol, &second, "zrh2").await.status,
        StatusCode::OK
    );
    // A disabled account takes no new monitors.
    let third = registered(&t, &secret('c')).await;
    server::admin::set_account_flags(t.store(), "vol", None, Some(true), T0)
        .await
        .unwrap();
    let r = accept(&t, &vol, &third, "zrh3").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("disabled"), "{}", r.text());
    assert!(t.store().monitor_by_name("zrh3").await.unwrap().is_none());
}

async fn csrf_and_other_accounts(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let vol = sign_in(&t, &sink, "vol@example.org").await;
    let eve = sign_in(&t, &sink, "eve@example.org").await;
    let code = registered(&t, &secret('a')).await;
    for body in [
        format!("code={code}&name=zrh1"),
        format!("code={code}&name=zrh1&csrf={}", "0".repeat(64)),
        format!(
            "code={code}&name=zrh1&csrf={}",
            eve.csrf(&t, "/manage").await
        ),
    ] {
        let r = send(
            &t,
            Some(&vol.cookie),
            Method::POST,
            "/manage/monitors/accept",
            &body,
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{body}");
    }
    assert!(t.store().list_monitors().await.unwrap().is_empty());
    // Not signed in: to the sign-in page, nothing shown.
    let r = t.get(&accept_page(&code)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!r.text().contains("81.2.69.142"));
    // Another account without the code finds nothing; once accepted, the
    // code is spent for everyone.
    assert_eq!(
        eve.get(&t, &accept_page("ZZZZZ-ZZZZZ")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(accept(&t, &vol, &code, "zrh1").await.status, StatusCode::OK);
    let r = eve.get(&t, &accept_page(&code)).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(!r.text().contains("81.2.69.142"), "{}", r.text());
    // The API wants an account token; a session cookie is not one.
    let fresh = registered(&t, &secret('b')).await;
    let body = json!({"code": fresh, "name": "zrh2"}).to_string();
    let cookie = format!("poolwatch_session={}", eve.cookie);
    for headers in [
        vec![],
        vec![("cookie", cookie.as_str())],
        vec![("authorization", "Bearer pwt_nope")],
    ] {
        let mut h = headers.clone();
        h.push(("content-type", "application/json"));
        let r = t
            .send_from(
                common::CLIENT,
                Method::POST,
                "/api/v1/manage/monitors/accept",
                &h,
                Body::from(body.clone()),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{headers:?}: {}",
            r.text()
        );
    }
    assert!(t.store().monitor_by_name("zrh2").await.unwrap().is_none());
    let eve_acc = account_id(&t, "eve@example.org").await;
    assert!(
        t.store()
            .audit_log(eve_acc, 10)
            .await
            .unwrap()
            .iter()
            .all(|e| !e.action.starts_with("monitor."))
    );
}
