//! No key, key fragment, access token or ticket ever reaches the service's log, on SQLite
//! and PostgreSQL. Its own test binary with the capturing subscriber as the
//! process's global one. As a thread-local subscriber beside other tests'
//! threads it once captured nothing in CI: while it is the only dispatch
//! in the process, a thread without a subscriber that first hits a
//! callsite caches "never" for it (tokio-rs/tracing#3611).

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use axum::http::{Method, StatusCode};
use common::{Backend, Capture, good_results};
use server::ServerConfig;
use store::GlobalStatus;

/// Keys and tickets never reach the log, whatever happens: good calls,
/// wrong keys, forged tickets, bad bodies.
async fn nothing_secret_in_logs(backend: Backend, cap: &Capture) {
    cap.clear();
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    t.add_server("192.0.2.1").await;
    let (_, key) = t.add_monitor("quiet", GlobalStatus::Active).await;
    let work = t.work(&key).await;
    let mut secrets = vec![
        key.clone(),
        key[server::keys::KEY_PREFIX.len()..].to_string(),
    ];
    secrets.extend(work.servers.iter().map(|s| s.ticket.clone()));

    let mut forged = good_results(&work);
    forged.results[0].ticket = "00".repeat(32);
    secrets.push(forged.results[0].ticket.clone());
    assert_eq!(t.submit(&key, &forged).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.submit(&key, &good_results(&work)).await.status,
        StatusCode::OK
    );
    let wrong = format!("{key}0");
    t.monitor_call(Method::GET, "/api/v1/monitor/config", Some(&wrong), None)
        .await;
    t.monitor_call(
        Method::POST,
        "/api/v1/monitor/results",
        Some(&key),
        Some(&serde_json::json!({"batch_id": work.batch_id, "results": [{"ticket": work.servers[0].ticket}]})),
    )
    .await;

    // Access tokens: a good one, an altered one, one after revocation.
    let r = t
        .monitor_call(Method::POST, api::TOKEN_PATH, Some(&key), None)
        .await;
    let token = r.json()["token"].as_str().unwrap().to_string();
    let mac = token.rsplit('_').next().unwrap().to_string();
    let altered = format!("{}0", &token[..token.len() - 1]);
    for bearer in [&token, &altered] {
        t.monitor_call(Method::GET, api::CONFIG_PATH, Some(bearer), None)
            .await;
    }
    secrets.extend([token.clone(), mac]);
    t.store()
        .set_monitor_status("quiet", GlobalStatus::Deleted)
        .await
        .unwrap();
    let r = t
        .monitor_call(Method::GET, api::CONFIG_PATH, Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let logged = cap.text();
    assert!(!logged.is_empty(), "the capture works");
    for s in &secrets {
        assert!(
            !logged.contains(s.as_str()),
            "a secret was logged:\n{logged}"
        );
    }
}

/// Sign-in links, session ids, CSRF tokens and API tokens never reach the
/// log either.
async fn no_manage_secret_in_logs(backend: Backend, cap: &Capture) {
    use axum::body::Body;
    cap.clear();
    let sink = smtp_sink::SmtpSink::start().await;
    let cfg = ServerConfig {
        alerts: Some(server::alerts::AlertConfig {
            smtp: Some(sink.url().parse().unwrap()),
            from: Some("pool@pool.test".into()),
            public_url: "http://pool.test".into(),
            ..Default::default()
        }),
        ..ServerConfig::default()
    };
    let t = app_or_skip!(backend, cfg);
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = t
        .send_from(
            common::CLIENT,
            Method::POST,
            "/manage/signin",
            &form,
            Body::from("email=quiet@example.org"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let mail = sink.wait_for(1, std::time::Duration::from_secs(10)).await[0].text();
    let at = mail.find("/manage/link/").unwrap();
    let link = &mail[at..at + "/manage/link/pwl_".len() + 64];
    assert_eq!(t.get(link).await.status, StatusCode::OK);
    let r = t
        .send_from(common::CLIENT, Method::POST, link, &[], Body::empty())
        .await;
    let cookie = r
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let session = cookie.trim_start_matches("poolwatch_session=").to_string();
    let page = t
        .send_from(
            common::CLIENT,
            Method::GET,
            "/manage/tokens",
            &[("cookie", &cookie)],
            Body::empty(),
        )
        .await
        .text();
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page[at..at + 64].to_string();
    let created = t
        .send_from(
            common::CLIENT,
            Method::POST,
            "/manage/tokens",
            &[("cookie", &cookie)],
            Body::from(format!("csrf={csrf}&name=ci")),
        )
        .await
        .text();
    let at = created.find("pwt_").unwrap();
    let token = created[at..at + 68].to_string();
    let auth = format!("Bearer {token}");
    let r = t
        .send_from(
            common::CLIENT,
            Method::GET,
            "/api/v1/manage/account",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // A verification link, asked for from a server's address and opened.
    t.seed_zones().await;
    let user = t
        .store()
        .user_by_email("quiet@example.org")
        .await
        .unwrap()
        .unwrap();
    let account_id = t.store().memberships(user.id).await.unwrap()[0].account_id;
    let add = store::OperatorAdd {
        account_id,
        ip: "81.2.69.142".parse().unwrap(),
        hostname: None,
        netspeed: 1500,
        zones: vec!["@".into()],
    };
    let limits = store::AddLimits {
        max_servers: 20,
        max_unverified: 2,
    };
    t.store()
        .add_operator_server(&add, limits, "user:quiet@example.org", 0)
        .await
        .unwrap();
    let text = t
        .send_from(
            "81.2.69.142:999",
            Method::GET,
            "/verify",
            &[],
            Body::empty(),
        )
        .await
        .text();
    let at = text.find("/manage/verify/").expect("a verification link");
    let verify_link = text[at..].lines().next().unwrap().to_string();
    let r = t
        .send_from(
            common::CLIENT,
            Method::GET,
            &verify_link,
            &[("cookie", &cookie)],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let verify_token = verify_link
        .trim_start_matches("/manage/verify/")
        .to_string();
    let logged = cap.text();
    assert!(
        logged.contains("/manage/verify/…"),
        "logged without its token"
    );
    assert!(
        logged.contains("/manage/link/…"),
        "the link's request is logged, without its token"
    );
    let link_token = link.trim_start_matches("/manage/link/");
    for s in [
        link_token,
        &session,
        &csrf,
        &token,
        &token[4..],
        &verify_token,
    ] {
        assert!(!logged.contains(s), "a secret was logged:\n{logged}");
    }
}

/// A monitor registration's secret, its code and the keys it collects
/// never reach the log.
async fn no_registration_secret_in_logs(backend: Backend, cap: &Capture) {
    use axum::body::Body;
    cap.clear();
    let t = app_or_skip!(backend, ServerConfig::default());
    let secret = "5e".repeat(32);
    let json = [("content-type", "application/json")];
    let body = || Body::from(serde_json::json!({"secret": secret}).to_string());
    let mut code = String::new();
    for from in ["81.2.69.142:999", "[2a02:d180::1]:999", common::CLIENT] {
        let r = t
            .send_from(
                from,
                Method::POST,
                "/api/v1/monitor/register",
                &json,
                body(),
            )
            .await;
        if from != common::CLIENT {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            code = r.json()["code"].as_str().unwrap().to_string();
        }
    }
    let acc = t.store().ensure_account("quiet").await.unwrap();
    let code_hash = server::keys::hash_key(&code.replace('-', ""));
    let accept = store::Acceptance {
        code_hash: &code_hash,
        account_id: acc,
        user_id: None,
        actor: "user:quiet@example.org",
        name: "quiet",
        location: "",
        default_limit: 3,
        collect_ttl: 3600,
    };
    t.store()
        .accept_registration(accept, common::now())
        .await
        .unwrap();
    // The page's request carries the code in its query.
    t.get(&format!("/manage/monitors/accept?code={code}")).await;
    let r = t
        .send_from(
            common::CLIENT,
            Method::POST,
            "/api/v1/monitor/register/status",
            &json,
            body(),
        )
        .await;
    assert_eq!(r.json()["state"], "accepted", "{}", r.text());
    let logged = cap.text();
    assert!(
        logged.contains("monitor keys collected"),
        "the capture works:\n{logged}"
    );
    let mut secrets = vec![secret.clone(), code.clone(), code.replace('-', "")];
    for c in r.json()["credentials"].as_array().unwrap() {
        let key = c["key"].as_str().unwrap();
        secrets.push(key.to_string());
        secrets.push(key[4..].to_string());
    }
    for s in &secrets {
        assert!(
            !logged.contains(s.as_str()),
            "a secret was logged:\n{logged}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_secret_in_logs_on_either_backend() {
    let cap = Capture::default();
    let writer = cap.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    // One after the other: each run starts from an empty capture.
    nothing_secret_in_logs(Backend::Sqlite, &cap).await;
    nothing_secret_in_logs(Backend::Postgres, &cap).await;
    no_manage_secret_in_logs(Backend::Sqlite, &cap).await;
    no_manage_secret_in_logs(Backend::Postgres, &cap).await;
    no_registration_secret_in_logs(Backend::Sqlite, &cap).await;
    no_registration_secret_in_logs(Backend::Postgres, &cap).await;
}
