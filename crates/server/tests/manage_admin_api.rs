//! The manage side over HTTP, on SQLite and PostgreSQL: the pool admin's
//! pages, the JSON manage API with an account's token, alert contacts and
//! their test notification.

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
#[macro_use]
#[path = "support/manage.rs"]
mod manage_support;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Backend, CLIENT};
use manage_support::*;

on_both_backends!(
    admin_pages_for_admins_only,
    admin_sets_monitor_settings,
    manage_api,
    contacts_and_test_notification,
);

async fn admin_pages_for_admins_only(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let vic = sign_in(&t, &sink, "vic@example.org").await;
    let wyn = sign_in(&t, &sink, "wyn@example.org").await;
    let r = wyn.get(&t, "/manage/admin?q=vic").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.header("cache-control"),
        "private, no-store",
        "no proxy keeps it"
    );
    let r = wyn
        .post(
            &t,
            "/manage",
            "/manage/admin/account",
            &[("name", "vic"), ("disabled", "true")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    server::admin::set_account_flags(t.store(), "vic", Some(true), None, T0)
        .await
        .unwrap();
    let page = vic.get(&t, "/manage/admin?q=wyn").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(">wyn<"), "{}", page.text());
    let r = vic
        .post(
            &t,
            "/manage",
            "/manage/admin/account",
            &[("name", "wyn"), ("disabled", "true")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let wyn_acc = account_id(&t, "wyn@example.org").await;
    assert!(
        t.store()
            .account_info(wyn_acc)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    let log = t.store().audit_log(wyn_acc, 1).await.unwrap();
    assert_eq!(
        (log[0].action.as_str(), log[0].actor.as_str()),
        ("account.disable", "admin:vic@example.org")
    );
    assert!(wyn.get(&t, "/manage").await.text().contains("disabled"));
    // Moving a server: found by address, given to wyn; wyn sees it.
    t.seed_zones().await;
    let srv = t.add_server("192.0.2.55").await;
    let id = srv.id.to_string();
    let r = wyn
        .post(
            &t,
            "/manage",
            "/manage/admin/move",
            &[("server_id", &id), ("to", "wyn")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not an admin");
    let found = vic.get(&t, "/manage/admin?q=192.0.2.55").await.text();
    assert!(found.contains("no account"), "{found}");
    let r = vic
        .post(
            &t,
            "/manage",
            "/manage/admin/move",
            &[("server_id", &id), ("to", "wyn")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let servers = t.store().account_servers(wyn_acc).await.unwrap();
    assert_eq!(servers.len(), 1);
    assert!(wyn.get(&t, "/manage").await.text().contains("192.0.2.55"));
    let r = vic
        .post(
            &t,
            "/manage",
            "/manage/admin/move",
            &[("server_id", &id), ("to", "nobody")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn manage_api(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let b = sign_in(&t, &sink, "xan@example.org").await;
    let r = b
        .post(&t, "/manage/tokens", "/manage/tokens", &[("name", "ci")])
        .await;
    let html = r.text();
    let at = html.find("pwt_").unwrap();
    let auth = format!("Bearer {}", &html[at..at + 68]);
    let h = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let call = async |m: Method, uri: &str, body: &str| {
        t.send_from(CLIENT, m, uri, &h, Body::from(body.to_string()))
            .await
    };
    let r = call(
        Method::POST,
        "/api/v1/manage/tokens",
        r#"{"name":"second"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.json()["secret"].as_str().unwrap().starts_with("pwt_"));
    let r = call(Method::POST, "/api/v1/manage/tokens", r#"{"name":""}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error_detail().contains("token name"));
    let list = call(Method::GET, "/api/v1/manage/tokens", "").await.json();
    assert_eq!(list["tokens"].as_array().unwrap().len(), 2);
    assert!(list["tokens"][1]["last_used"].is_i64(), "{list}");
    let r = call(
        Method::POST,
        "/api/v1/manage/members",
        r#"{"email":"yul@example.org","role":"member"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    sink.wait_for(2, WAIT).await;
    let r = call(
        Method::POST,
        "/api/v1/manage/members",
        r#"{"email":"nope"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error_detail().contains("email"));
    let members = call(Method::GET, "/api/v1/manage/members", "").await.json();
    assert_eq!(members["members"][0]["email"], "xan@example.org");
    let audit = call(Method::GET, "/api/v1/manage/audit", "").await.json();
    let actions: Vec<_> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "member.invite",
            "token.create",
            "token.create",
            "account.create"
        ]
    );
    assert_eq!(audit["entries"][0]["actor"], "token:ci");
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(2 << 20));
    assert_eq!(
        call(Method::POST, "/api/v1/manage/tokens", &big)
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

async fn contacts_and_test_notification(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let b = sign_in(&t, &sink, "abe@example.org").await;
    let acc = account_id(&t, "abe@example.org").await;
    let r = b
        .post(
            &t,
            "/manage/contacts",
            "/manage/contacts",
            &[("email", "not-mail"), ("webhook", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("not-mail"), "{}", r.text());
    let r = b
        .post(
            &t,
            "/manage/contacts",
            "/manage/contacts",
            &[("email", "noc@abe.test"), ("webhook", "ftp://x.test/")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Too long, each named (the page, the API and the CLI share the rule).
    let long_mail = format!("{}@abe.test", "n".repeat(250));
    let long_hook = format!("https://abe.test/{}", "h".repeat(2000));
    for (email, hook, says) in [
        (long_mail.as_str(), "", "e-mail address: at most 254"),
        ("noc@abe.test", long_hook.as_str(), "webhook: at most 2000"),
    ] {
        let r = b
            .post(
                &t,
                "/manage/contacts",
                "/manage/contacts",
                &[("email", email), ("webhook", hook)],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains(says), "{says}: {}", r.text());
    }
    assert_eq!(
        t.store().account_info(acc).await.unwrap().unwrap().email,
        None,
        "nothing stored"
    );
    // A webhook nobody listens on: its failure is shown, the e-mail goes.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", dead.local_addr().unwrap());
    drop(dead);
    let r = b
        .post(
            &t,
            "/manage/contacts",
            "/manage/contacts",
            &[("email", "NOC@abe.test"), ("webhook", &hook)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let info = t.store().account_info(acc).await.unwrap().unwrap();
    assert_eq!(
        (info.email.as_deref(), info.webhook.as_deref()),
        (Some("noc@abe.test"), Some(hook.as_str()))
    );
    let before = sink.mails().len();
    let r = b
        .post(&t, "/manage/contacts", "/manage/contacts/test", &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains("E-mail: <span class=\"ok\">sent"), "{html}");
    assert!(
        html.contains("Webhook: <span class=\"bad\">failed"),
        "{html}"
    );
    let mails = sink.wait_for(before + 1, WAIT).await;
    assert!(mails.last().unwrap().text().contains("test notification"));
    let actions: Vec<_> = t
        .store()
        .audit_log(acc, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["contacts.test", "account.contacts"]);
}

/// The admin page's monitor form: admins only, CSRF-checked, validated
/// with serve's ranges, audited, and read by the monitor's next config.
async fn admin_sets_monitor_settings(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let vic = sign_in(&t, &sink, "vic@example.org").await;
    let wyn = sign_in(&t, &sink, "wyn@example.org").await;
    server::admin::set_account_flags(t.store(), "vic", Some(true), None, T0)
        .await
        .unwrap();
    let (_, key) = t.add_monitor("zrh9", store::GlobalStatus::Active).await;
    let samples = async || {
        let r = t
            .monitor_call(Method::GET, api::CONFIG_PATH, Some(&key), None)
            .await;
        r.json()["samples"].as_u64().unwrap()
    };
    let page = vic.get(&t, "/manage/admin?q=zrh").await.text();
    assert!(
        page.contains("/manage/admin/monitor") && page.contains(">zrh9<"),
        "{page}"
    );
    // Not an admin: 404. No or a wrong CSRF token: 403. Out of range or
    // not a number: 400 naming the field. Nothing changes.
    let r = wyn
        .post(
            &t,
            "/manage",
            "/manage/admin/monitor",
            &[("name", "zrh9"), ("samples", "2")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    for form in ["name=zrh9&samples=2", "csrf=00&name=zrh9&samples=2"] {
        let r = send(
            &t,
            Some(&vic.cookie),
            Method::POST,
            "/manage/admin/monitor",
            form,
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{form}");
    }
    for (field, value) in [("samples", "17"), ("timeout_ms", "0"), ("batch_size", "x")] {
        let r = vic
            .post(
                &t,
                "/manage/admin?q=zrh",
                "/manage/admin/monitor",
                &[("name", "zrh9"), (field, value)],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}={value}");
        // Named as in `admin monitor set` (timeout, without the unit).
        let name = field.trim_end_matches("_ms");
        assert!(r.text().contains(&format!("{name}: ")), "{}", r.text());
    }
    assert_eq!(samples().await, 4);
    let r = vic
        .post(
            &t,
            "/manage/admin?q=zrh",
            "/manage/admin/monitor",
            &[("name", "zrh9"), ("samples", "2")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(samples().await, 2);
    let page = vic.get(&t, "/manage/admin?q=zrh").await.text();
    assert!(page.contains("&quot;samples&quot;:2"), "{page}");
    let r = vic
        .post(
            &t,
            "/manage/admin?q=zrh",
            "/manage/admin/monitor",
            &[("name", "zrh9"), ("clear", "true")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(samples().await, 4);
    let r = vic
        .post(
            &t,
            "/manage/admin?q=zrh",
            "/manage/admin/monitor",
            &[("name", "nope"), ("samples", "2")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
