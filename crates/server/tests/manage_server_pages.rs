//! The manage side's server pages and `/api/v1/manage/servers…` over HTTP,
//! on SQLite and PostgreSQL: add through the live check (answered by two
//! monitors over the monitor API), the server page's forms, verification
//! from the server's address, CSRF, other accounts' servers, escaping, and
//! the same operations as JSON with an API token.
mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
#[macro_use]
#[path = "support/manage.rs"]
mod manage_support;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Backend, CLIENT, Resp, TestApp, TestDb};
use manage_support::*;
use serde_json::{Value, json};
use server::Clock;
use store::GlobalStatus;

on_both_backends!(add_through_the_pages, server_page_and_verify, servers_api);

const X: &str = "81.2.69.142";

/// The manage test app, with the GeoIP test database.
async fn app(backend: Backend) -> Option<(TestApp, smtp_sink::SmtpSink)> {
    let sink = smtp_sink::SmtpSink::start().await;
    let db = TestDb::open(backend).await?;
    let mut cfg = config(&sink, "http://pool.test");
    cfg.geoip = Some(
        geo::GeoIp::open(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../geo/testdata/GeoLite2-Country-Test.mmdb"
        )))
        .unwrap(),
    );
    let t = TestApp::new(db, cfg).with_clock(Clock::fixed(T0));
    t.seed_zones().await;
    Some((t, sink))
}

macro_rules! app {
    ($backend:expr) => {
        match app($backend).await {
            Some(x) => x,
            None => return,
        }
    };
}

/// Two active monitors that have called; their keys.
async fn monitors(t: &TestApp) -> Vec<String> {
    let mut keys = Vec::new();
    for name in ["mon-a", "mon-b"] {
        let (_, key) = t.add_monitor(name, GlobalStatus::Active).await;
        t.work(&key).await;
        keys.push(key);
    }
    keys
}

/// Each monitor takes its live checks with a work call and answers them
/// with `stratum` (None: a timeout).
async fn answer(t: &TestApp, keys: &[String], stratum: Option<u8>) {
    for key in keys {
        for req in t.work(key).await.live_checks {
            let body = json!({"id": req.id, "ip": req.ip, "ts": T0,
                "offset": stratum.map(|_| 0.0125), "rtt": 0.02, "stratum": stratum,
                "error": if stratum.is_none() { Some("i/o timeout") } else { None },
                "no_response": stratum.is_none()});
            let r = t
                .monitor_call(
                    Method::POST,
                    "/api/v1/monitor/live-check",
                    Some(key),
                    Some(&body),
                )
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
        }
    }
}

/// The path of a redirect.
fn location(r: &Resp) -> String {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    r.header("location").to_string()
}

/// Adds `X` for `b` through the pages; the server page's path.
async fn add_x(t: &TestApp, b: &Browser, keys: &[String]) -> String {
    let r = b
        .post(
            t,
            "/manage/servers/add",
            "/manage/servers/check",
            &[("ip", X), ("country", "")],
        )
        .await;
    let check = location(&r);
    answer(t, keys, Some(2)).await;
    let id = check
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    location(
        &b.post(
            t,
            &check,
            "/manage/servers/added",
            &[("check_id", &id), ("country", "gb")],
        )
        .await,
    )
}

async fn add_through_the_pages(backend: Backend) {
    let (t, sink) = app!(backend);
    let keys = monitors(&t).await;
    let b = sign_in(&t, &sink, "ops@example.org").await;
    let acct = account_id(&t, "ops@example.org").await;

    let r = b.get(&t, "/manage/servers/add").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("action=\"/manage/servers/add\""));
    // The confirmation list: one address, GeoIP's zone; a private one refused.
    let r = b
        .post(
            &t,
            "/manage/servers/add",
            "/manage/servers/add",
            &[("address", X)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    assert!(html.contains("GeoIP says <strong>uk</strong>"), "{html}");
    assert!(html.contains("<option value=\"uk\" selected>"), "{html}");
    let r = b
        .post(
            &t,
            "/manage/servers/add",
            "/manage/servers/add",
            &[("address", "8.8.8.8")],
        )
        .await;
    assert!(
        r.text()
            .contains("GeoIP does not know where it is: pick its country"),
        "{}",
        r.text()
    );
    assert!(
        r.text().contains("<option value=\"\" selected>"),
        "{}",
        r.text()
    );
    let r = b
        .post(
            &t,
            "/manage/servers/add",
            "/manage/servers/add",
            &[("address", "10.1.2.3")],
        )
        .await;
    assert!(
        r.text()
            .contains("Cannot be added: 10.1.2.3 is not a public address"),
        "{}",
        r.text()
    );
    let r = b
        .post(
            &t,
            "/manage/servers/add",
            "/manage/servers/add",
            &[("address", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Missing CSRF: 403, no live check made.
    let r = send(
        &t,
        Some(&b.cookie),
        Method::POST,
        "/manage/servers/check",
        &format!("ip={X}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(t.work(&keys[0]).await.live_checks.is_empty());

    // The check: its page reloads itself until both monitors answered.
    let check = location(
        &b.post(
            &t,
            "/manage/servers/add",
            "/manage/servers/check",
            &[("ip", "8.8.8.8"), ("country", "")],
        )
        .await,
    );
    let r = b.get(&t, &check).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("refresh"), "2");
    assert!(r.text().contains("id=\"check-running\""));
    answer(&t, &keys, None).await;
    let r = b.get(&t, &check).await;
    assert_eq!(r.header("refresh"), "");
    let html = r.text();
    assert!(html.contains("id=\"check-failed\""), "{html}");
    assert!(
        html.contains("error i/o timeout") && html.contains("wait 10–20 minutes"),
        "{html}"
    );
    // Adding a failed check: refused, nothing added.
    let id = check.rsplit('/').next().unwrap().to_string();
    let r = b
        .post(
            &t,
            &check,
            "/manage/servers/added",
            &[("check_id", &id), ("country", "de")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(t.store().account_servers(acct).await.unwrap().is_empty());

    // A passing one: added in the picked zone, unverified, netspeed 1500.
    let page = add_x(&t, &b, &keys).await;
    assert_eq!(page, format!("/manage/servers/{X}"));
    let s = t
        .store()
        .account_server(acct, X.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.netspeed, s.verified_on), (1500, None));
    assert_eq!(s.zones, ["@", "europe", "uk"]);
    // Another account cannot see its check.
    let other = sign_in(&t, &sink, "eve@example.org").await;
    assert_eq!(other.get(&t, &check).await.status, StatusCode::NOT_FOUND);
    // A disabled account adds nothing.
    t.db.exec(&format!(
        "UPDATE accounts SET disabled = TRUE WHERE id = {acct}"
    ))
    .await;
    let r = b
        .post(
            &t,
            "/manage/servers/add",
            "/manage/servers/check",
            &[("ip", "89.160.20.112")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("disabled"), "{}", r.text());
    assert!(t.work(&keys[0]).await.live_checks.is_empty());
}

async fn server_page_and_verify(backend: Backend) {
    let (t, sink) = app!(backend);
    let keys = monitors(&t).await;
    let b = sign_in(&t, &sink, "ops@example.org").await;
    let page = add_x(&t, &b, &keys).await;

    let r = b.get(&t, &page).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(
        html.contains(&format!("curl --interface {X} http://pool.test/verify")),
        "{html}"
    );
    assert!(html.contains(&format!("href=\"/scores/{X}\"")), "{html}");
    assert!(html.contains("value=\"3000\" disabled"), "{html}");
    // Unverified: not above 1500.
    let r = b
        .post(
            &t,
            &page,
            &format!("{page}/netspeed"),
            &[("netspeed", "3000")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        location(
            &b.post(
                &t,
                &page,
                &format!("{page}/netspeed"),
                &[("netspeed", "512")]
            )
            .await
        ),
        page
    );
    // Note: stored as typed, shown escaped.
    location(
        &b.post(
            &t,
            &page,
            &format!("{page}/note"),
            &[("note", "<script>alert(1)</script>")],
        )
        .await,
    );
    let html = b.get(&t, &page).await.text();
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    // Deletion and its cancel; alerts off.
    let day = server::admin::format_date(T0 + 20 * 86_400);
    location(
        &b.post(&t, &page, &format!("{page}/deletion"), &[("date", &day)])
            .await,
    );
    assert!(
        b.get(&t, &page)
            .await
            .text()
            .contains(&format!("Scheduled for {day}"))
    );
    location(
        &b.post(&t, &page, &format!("{page}/deletion/cancel"), &[])
            .await,
    );
    location(
        &b.post(&t, &page, &format!("{page}/alerts"), &[("on", "false")])
            .await,
    );
    assert!(
        b.get(&t, &page)
            .await
            .text()
            .contains("Alerts about this server are muted")
    );

    // Another account: 404 for the page and every form.
    let other = sign_in(&t, &sink, "eve@example.org").await;
    assert_eq!(other.get(&t, &page).await.status, StatusCode::NOT_FOUND);
    let r = other
        .post(
            &t,
            "/manage/servers/add",
            &format!("{page}/netspeed"),
            &[("netspeed", "0")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // /verify from another address: refused; from the server's: a link.
    let r = t
        .send_from(
            "81.2.69.160:4000",
            Method::GET,
            "/verify",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = t
        .send_from(
            &format!("{X}:4000"),
            Method::GET,
            "/verify",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    let at = text
        .find("http://pool.test/manage/verify/")
        .expect("the link");
    let link = text[at + "http://pool.test".len()..]
        .lines()
        .next()
        .unwrap()
        .to_string();
    // Another account: 404; no CSRF: 403; then verified.
    assert_eq!(other.get(&t, &link).await.status, StatusCode::NOT_FOUND);
    let r = send(&t, Some(&b.cookie), Method::POST, &link, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.get(&t, &link).await;
    assert!(r.text().contains(&format!("Verify {X}")), "{}", r.text());
    assert_eq!(location(&b.post(&t, &link, &link, &[]).await), page);
    assert!(b.get(&t, &page).await.text().contains("id=\"verified\""));
    // Used: refused.
    let r = b.post(&t, &page, &link, &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        location(
            &b.post(
                &t,
                &page,
                &format!("{page}/netspeed"),
                &[("netspeed", "25000")]
            )
            .await
        ),
        page
    );
}

async fn servers_api(backend: Backend) {
    let (t, sink) = app!(backend);
    let keys = monitors(&t).await;
    let b = sign_in(&t, &sink, "ops@example.org").await;
    let html = b
        .post(&t, "/manage/tokens", "/manage/tokens", &[("name", "ci")])
        .await
        .text();
    let at = html.find("pwt_").unwrap();
    let auth = format!("Bearer {}", &html[at..at + 68]);
    let h = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let call = async |m: Method, uri: &str, body: Value| {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        t.send_from(CLIENT, m, uri, &h, Body::from(body)).await
    };

    let r = call(
        Method::POST,
        "/api/v1/manage/servers/candidates",
        json!({"address": X}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["candidates"][0]["country"], "uk");
    let r = call(
        Method::POST,
        "/api/v1/manage/servers/checks",
        json!({"ip": X}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json()["finished"], false);
    // Not answered yet: not added.
    let r = call(
        Method::POST,
        "/api/v1/manage/servers",
        json!({"check_id": id}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    answer(&t, &keys, Some(3)).await;
    let c = call(
        Method::GET,
        &format!("/api/v1/manage/servers/checks/{id}"),
        Value::Null,
    )
    .await
    .json();
    assert_eq!(
        (c["finished"].as_bool(), c["usable"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(c["monitors"][0]["answer"]["stratum"], 3);
    let r = call(
        Method::POST,
        "/api/v1/manage/servers",
        json!({"check_id": id, "hostname": "ntp.example.org"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["server"]["netspeed"], 1500);
    assert_eq!(r.json()["server"]["hostname"], "ntp.example.org");

    let uri = format!("/api/v1/manage/servers/{X}");
    // A bad field changes nothing, not even the good ones before it.
    let r = call(
        Method::PATCH,
        &uri,
        json!({"note": "kept?", "netspeed": 1000}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error_detail().starts_with("netspeed:"), "{}", r.text());
    let r = call(Method::PATCH, &uri, json!({"netspeed": 3000})).await;
    assert!(
        r.error_detail().starts_with("netspeed: verify"),
        "{}",
        r.text()
    );
    let r = call(Method::PATCH, &uri, json!({"note": "rack 4", "alerts": false, "deletion": server::admin::format_date(T0 + 15 * 86_400)})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let s = r.json();
    assert_eq!(
        (s["note"].as_str(), s["alerts"].as_bool()),
        (Some("rack 4"), Some(false))
    );
    assert!(s["deletion_on"].is_string());
    let s = call(Method::PATCH, &uri, json!({"cancel_deletion": true}))
        .await
        .json();
    assert!(s["deletion_on"].is_null(), "{s}");
    let list = call(Method::GET, "/api/v1/manage/servers", Value::Null)
        .await
        .json();
    assert_eq!(list["servers"][0]["ip"], X);

    // Another account's token: 404 for the server and the check.
    let other = sign_in(&t, &sink, "eve@example.org").await;
    let html = other
        .post(&t, "/manage/tokens", "/manage/tokens", &[("name", "x")])
        .await
        .text();
    let at = html.find("pwt_").unwrap();
    let auth2 = format!("Bearer {}", &html[at..at + 68]);
    for uri in [uri.clone(), format!("/api/v1/manage/servers/checks/{id}")] {
        let r = t
            .send_from(
                CLIENT,
                Method::GET,
                &uri,
                &[("authorization", auth2.as_str())],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
    // Live checks are rate-limited per account: one was made above, nine
    // more fit the burst of ten, the next is 429 with a wait.
    for i in 1..10 {
        let r = call(
            Method::POST,
            "/api/v1/manage/servers/checks",
            json!({"ip": "89.160.20.112"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "check {i}: {}", r.text());
    }
    let r = call(
        Method::POST,
        "/api/v1/manage/servers/checks",
        json!({"ip": "89.160.20.112"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    // No token: 401.
    let r = t
        .send_from(
            CLIENT,
            Method::GET,
            "/api/v1/manage/servers",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
