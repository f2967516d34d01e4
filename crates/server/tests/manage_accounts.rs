//! The manage side's accounts over HTTP, on SQLite and PostgreSQL: CSRF,
//! other accounts' ids, API tokens, members and invitations, escaping.
//! Admin pages, the JSON API and alert contacts: `manage_admin_api.rs`.
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
    csrf_missing_or_wrong_changes_nothing,
    every_post_needs_csrf,
    other_accounts_ids_are_404,
    disabled_or_revoked_token_is_401,
    invite_accepted_and_last_owner_stays,
    stored_text_is_escaped,
);

async fn csrf_missing_or_wrong_changes_nothing(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let b = sign_in(&t, &sink, "gus@example.org").await;
    let acc = account_id(&t, "gus@example.org").await;
    for body in [
        "name=ci",
        "name=ci&csrf=",
        &format!("name=ci&csrf={}", "0".repeat(64)),
    ] {
        let r = send(&t, Some(&b.cookie), Method::POST, "/manage/tokens", body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{body}");
        assert!(r.text().contains("CSRF"), "{}", r.text());
    }
    // Another session's token does not work either.
    let other = sign_in(&t, &sink, "hal@example.org").await;
    let theirs = other.csrf(&t, "/manage/tokens").await;
    let r = send(
        &t,
        Some(&b.cookie),
        Method::POST,
        "/manage/tokens",
        &format!("name=ci&csrf={theirs}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Sign-out without it keeps the session.
    let r = send(&t, Some(&b.cookie), Method::POST, "/manage/signout", "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        t.store().tokens(acc).await.unwrap().is_empty(),
        "nothing changed"
    );
    assert_eq!(
        t.store().audit_log(acc, 10).await.unwrap().len(),
        1,
        "account.create only"
    );
    assert_eq!(b.get(&t, "/manage").await.status, StatusCode::OK);
    // With the right one, it works.
    let r = b
        .post(&t, "/manage/tokens", "/manage/tokens", &[("name", "ci")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("pwt_"));
    assert_eq!(t.store().tokens(acc).await.unwrap().len(), 1);
}

async fn other_accounts_ids_are_404(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let ivy = sign_in(&t, &sink, "ivy@example.org").await;
    let _jon = sign_in(&t, &sink, "jon@example.org").await;
    let jon_acc = account_id(&t, "jon@example.org").await;
    let jon_user = t
        .store()
        .user_by_email("jon@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    let tok = t
        .store()
        .create_token(
            jon_acc,
            "jons",
            &server::keys::hash_key("pwt_jon"),
            None,
            "user:jon",
            T0,
        )
        .await
        .unwrap();
    let id = tok.id.to_string();
    let r = ivy
        .post(
            &t,
            "/manage/tokens",
            "/manage/tokens/revoke",
            &[("id", &id)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(
        t.store()
            .token_auth(&server::keys::hash_key("pwt_jon"), T0)
            .await
            .unwrap()
            .is_some()
    );
    let uid = jon_user.to_string();
    for uri in ["/manage/members/remove", "/manage/members/role"] {
        let r = ivy
            .post(
                &t,
                "/manage/members",
                uri,
                &[("user_id", &uid), ("role", "member")],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.text());
    }
    assert_eq!(t.store().members(jon_acc).await.unwrap()[0].role, "owner");
    // Picking an account one is no member of.
    let r = ivy
        .post(
            &t,
            "/manage/accounts",
            "/manage/accounts",
            &[("account_id", &jon_acc.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The API too.
    let ivy_acc = account_id(&t, "ivy@example.org").await;
    t.store()
        .create_token(
            ivy_acc,
            "ivys",
            &server::keys::hash_key("pwt_ivy"),
            None,
            "user:ivy",
            T0,
        )
        .await
        .unwrap();
    let auth = [("authorization", "Bearer pwt_ivy")];
    for uri in [
        format!("/api/v1/manage/tokens/{id}"),
        format!("/api/v1/manage/members/{uid}"),
    ] {
        let r = t
            .send_from(CLIENT, Method::DELETE, &uri, &auth, Body::empty())
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        r.error_detail();
    }
}

async fn disabled_or_revoked_token_is_401(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let b = sign_in(&t, &sink, "kay@example.org").await;
    let r = b
        .post(
            &t,
            "/manage/tokens",
            "/manage/tokens",
            &[("name", "deploy")],
        )
        .await;
    let html = r.text();
    let at = html.find("pwt_").unwrap();
    let token = html[at..at + 68].to_string();
    let call = async |token: &str| {
        let auth = format!("Bearer {token}");
        t.send_from(
            CLIENT,
            Method::GET,
            "/api/v1/manage/account",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await
    };
    let ok = call(&token).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["name"], "kay");
    assert_eq!(ok.header("cache-control"), "private, no-store");
    assert_eq!(call("pwt_nope").await.status, StatusCode::UNAUTHORIZED);
    let none = t
        .send_from(
            CLIENT,
            Method::GET,
            "/api/v1/manage/account",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    t.store()
        .set_account_flags("kay", None, Some(true), "admin:test", T0)
        .await
        .unwrap();
    let r = call(&token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    r.error_detail();
    t.store()
        .set_account_flags("kay", None, Some(false), "admin:test", T0)
        .await
        .unwrap();
    assert_eq!(call(&token).await.status, StatusCode::OK);
    let acc = account_id(&t, "kay@example.org").await;
    let id = t.store().tokens(acc).await.unwrap()[0].id.to_string();
    let r = b
        .post(
            &t,
            "/manage/tokens",
            "/manage/tokens/revoke",
            &[("id", &id)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(call(&token).await.status, StatusCode::UNAUTHORIZED);
}

async fn invite_accepted_and_last_owner_stays(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let lou = sign_in(&t, &sink, "lou@example.org").await;
    let acc = account_id(&t, "lou@example.org").await;
    // The only owner cannot leave.
    let r = lou.post(&t, "/manage/members", "/manage/leave", &[]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.text().contains("owner"));
    assert_eq!(t.store().members(acc).await.unwrap().len(), 1);
    let before = sink.mails().len();
    let r = lou
        .post(
            &t,
            "/manage/members",
            "/manage/members/invite",
            &[("email", "mia@example.org"), ("role", "member")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    sink.wait_for(before + 1, WAIT).await;
    let invite = link_in(&sink, "mia@example.org");
    let page = t.get(&invite).await.text();
    assert!(
        page.contains("Join lou") && page.contains("as member"),
        "{page}"
    );
    assert!(sink.mails().last().unwrap().text().contains("7 days"));
    let r = follow(&t, &invite, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let mia = Browser {
        cookie: session_cookie(&r),
    };
    let home = mia.get(&t, "/manage").await;
    assert!(home.text().contains("Account lou"), "{}", home.text());
    assert!(home.text().contains("mia@example.org (member)"));
    // A member may not invite, nor change roles.
    let r = mia
        .post(
            &t,
            "/manage/members",
            "/manage/members/invite",
            &[("email", "x@example.org"), ("role", "owner")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Mia has her own account too after signing in normally? No: the
    // invitation made her a member of lou only.
    let mia_id = t
        .store()
        .user_by_email("mia@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(t.store().memberships(mia_id).await.unwrap().len(), 1);
    // Lou makes Mia owner, then may leave.
    let r = lou
        .post(
            &t,
            "/manage/members",
            "/manage/members/role",
            &[("user_id", &mia_id.to_string()), ("role", "owner")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = lou.post(&t, "/manage/members", "/manage/leave", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/manage/accounts");
    let emails: Vec<_> = t
        .store()
        .members(acc)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.email)
        .collect();
    assert_eq!(emails, ["mia@example.org"]);
    // Lou's session no longer reaches the account.
    let r = lou.get(&t, "/manage/members").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // The picker, which brings Lou back to the page after a pick.
    assert_eq!(
        r.header("location"),
        "/manage/accounts?next=%2Fmanage%2Fmembers"
    );
    let actions: Vec<_> = t
        .store()
        .audit_log(acc, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "member.leave",
            "member.role",
            "member.join",
            "member.invite",
            "account.create"
        ]
    );
}

async fn stored_text_is_escaped(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let b = sign_in(&t, &sink, "ned@example.org").await;
    let acc = account_id(&t, "ned@example.org").await;
    let evil = "<script>alert(1)</script>";
    b.post(&t, "/manage/tokens", "/manage/tokens", &[("name", evil)])
        .await;
    let hook = "https://hooks.test/x?a=\"><script>alert(2)</script>";
    let r = b
        .post(
            &t,
            "/manage/contacts",
            "/manage/contacts",
            &[("email", "ops@example.org"), ("webhook", hook)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    // A member whose address has markup in it (added through the store).
    t.store()
        .create_email_link(
            &store::NewLink {
                token_hash: server::keys::hash_key("pwl_evil"),
                email: "<b>x</b>@example.org".into(),
                purpose: store::LinkPurpose::Invite {
                    account_id: acc,
                    role: store::Role::Member,
                    invited_by: None,
                    actor: "user:ned@example.org".into(),
                },
                expires: T0 + 600,
            },
            T0,
        )
        .await
        .unwrap();
    t.store()
        .consume_email_link(
            &server::keys::hash_key("pwl_evil"),
            store::SignupPolicy::Open,
            T0,
        )
        .await
        .unwrap();
    for page in [
        "/manage",
        "/manage/tokens",
        "/manage/contacts",
        "/manage/members",
        "/manage/audit",
    ] {
        let html = b.get(&t, page).await.text();
        assert!(!html.contains("<script>alert"), "{page}: {html}");
        assert!(!html.contains("<b>x</b>"), "{page}");
    }
    assert!(
        b.get(&t, "/manage/tokens")
            .await
            .text()
            .contains("&lt;script&gt;alert(1)")
    );
    assert!(
        b.get(&t, "/manage/contacts")
            .await
            .text()
            .contains("&quot;&gt;&lt;script&gt;alert(2)")
    );
    assert!(
        b.get(&t, "/manage/members")
            .await
            .text()
            .contains("&lt;b&gt;x&lt;/b&gt;@example.org")
    );
    assert!(
        b.get(&t, "/manage/audit")
            .await
            .text()
            .contains("&lt;b&gt;x&lt;/b&gt;@example.org")
    );
    // An account named with markup (the admin CLI takes any name), on the
    // picker, its own pages and the admin search.
    let evil_acc = t.store().ensure_account("<i>evil</i>").await.unwrap();
    t.store()
        .set_account_flags("<i>evil</i>", Some(true), None, "admin:cli", T0)
        .await
        .unwrap();
    let ned = t
        .store()
        .user_by_email("ned@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    let join = store::NewLink {
        token_hash: server::keys::hash_key("pwl_join"),
        email: "ned@example.org".into(),
        purpose: store::LinkPurpose::Invite {
            account_id: evil_acc,
            role: store::Role::Owner,
            invited_by: None,
            actor: "admin:cli".into(),
        },
        expires: T0 + 600,
    };
    t.store().create_email_link(&join, T0).await.unwrap();
    t.store()
        .consume_email_link(&join.token_hash, store::SignupPolicy::Open, T0)
        .await
        .unwrap();
    assert_eq!(t.store().memberships(ned).await.unwrap().len(), 2);
    let picker = b.get(&t, "/manage/accounts").await.text();
    assert!(picker.contains("&lt;i&gt;evil&lt;/i&gt;"), "{picker}");
    let r = b
        .post(
            &t,
            "/manage/accounts",
            "/manage/accounts",
            &[("account_id", &evil_acc.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    for page in ["/manage", "/manage/members", "/manage/admin?q=evil"] {
        let html = b.get(&t, page).await.text();
        assert!(html.contains("&lt;i&gt;evil&lt;/i&gt;"), "{page}: {html}");
        assert!(!html.contains("<i>evil"), "{page}");
    }
}

/// Every state-changing form of the accounts side, sent without its CSRF
/// token by a signed-in admin owner: 403 each time, nothing in the audit
/// log, the session alive.
/// The POST routes of `manage::page_routes`, read from its source: a
/// route added there without a row in the table below fails the test.
fn page_post_routes() -> Vec<String> {
    let src = include_str!("../src/manage/mod.rs");
    let pages =
        &src[src.find("pub fn page_routes").unwrap()..src.find("pub fn api_routes").unwrap()];
    pages
        .split(".route(")
        .skip(1)
        .filter(|r| r.contains("post("))
        .map(|r| {
            let r = r.trim_start();
            match r.strip_prefix('"') {
                Some(rest) => rest[..rest.find('"').unwrap()].to_string(),
                None => {
                    assert!(r.starts_with("crate::registration::ACCEPT_PATH"), "{r}");
                    "/manage/monitors/accept".to_string()
                }
            }
        })
        .collect()
}

async fn every_post_needs_csrf(backend: Backend) {
    // Some thirty posts from one client: no public rate limit.
    let sink = smtp_sink::SmtpSink::start().await;
    let Some(db) = common::TestDb::open(backend).await else {
        return;
    };
    let mut cfg = config(&sink, "http://pool.test");
    cfg.rate_limit.per_second = 0.0;
    let t = common::TestApp::new(db, cfg).with_clock(server::Clock::fixed(T0));
    t.seed_zones().await;
    let b = sign_in(&t, &sink, "cat@example.org").await;
    let acc = account_id(&t, "cat@example.org").await;
    t.store()
        .set_account_flags("cat", Some(true), None, "admin:cli", T0)
        .await
        .unwrap();
    // Something of the account's behind every id in a path.
    let srv = server::admin::add_server(
        t.store(),
        None,
        server::admin::AddServer {
            ip: "192.0.2.9".parse().unwrap(),
            zone: Some("de".into()),
            netspeed: 1000,
            account: Some("cat".into()),
            allow_private: true,
        },
        T0,
    )
    .await
    .unwrap();
    server::admin::add_monitor(
        t.store(),
        server::admin::AddMonitor {
            name: "zrh1".into(),
            ip: "198.51.100.7".parse().unwrap(),
            location: "Zürich".into(),
            account: Some("cat".into()),
            status: store::GlobalStatus::Active,
        },
        T0,
    )
    .await
    .unwrap();
    let me = t
        .store()
        .user_by_email("cat@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    let state = async || {
        (
            t.store().audit_log(acc, 100).await.unwrap().len(),
            t.store().tokens(acc).await.unwrap().len(),
            t.store().account_servers(acc).await.unwrap(),
            t.store().monitor_by_name("zrh1").await.unwrap(),
            t.store().account_info(acc).await.unwrap(),
        )
    };
    let before = state().await;
    let a = acc.to_string();
    let u = me.to_string();
    let s = srv.id.to_string();
    // Route → a URI to post to, a form without `csrf` that would change
    // something with one.
    let forms: Vec<(&str, String, String)> = vec![
        ("/manage/signout", "/manage/signout".into(), String::new()),
        (
            "/manage/signout-all",
            "/manage/signout-all".into(),
            String::new(),
        ),
        (
            "/manage/accounts",
            "/manage/accounts".into(),
            format!("account_id={a}"),
        ),
        (
            "/manage/members/invite",
            "/manage/members/invite".into(),
            "email=dan%40example.org&role=member".into(),
        ),
        (
            "/manage/members/remove",
            "/manage/members/remove".into(),
            format!("user_id={u}"),
        ),
        (
            "/manage/members/role",
            "/manage/members/role".into(),
            format!("user_id={u}&role=member"),
        ),
        ("/manage/leave", "/manage/leave".into(), String::new()),
        ("/manage/tokens", "/manage/tokens".into(), "name=ci".into()),
        (
            "/manage/tokens/revoke",
            "/manage/tokens/revoke".into(),
            "id=1".into(),
        ),
        (
            "/manage/contacts",
            "/manage/contacts".into(),
            "email=x%40example.org&webhook=".into(),
        ),
        (
            "/manage/contacts/test",
            "/manage/contacts/test".into(),
            String::new(),
        ),
        (
            "/manage/monitors/{name}/pause",
            "/manage/monitors/zrh1/pause".into(),
            String::new(),
        ),
        (
            "/manage/monitors/{name}/resume",
            "/manage/monitors/zrh1/resume".into(),
            String::new(),
        ),
        (
            "/manage/admin/account",
            "/manage/admin/account".into(),
            "name=cat&disabled=true".into(),
        ),
        (
            "/manage/admin/move",
            "/manage/admin/move".into(),
            format!("server_id={s}&to=cat"),
        ),
        (
            "/manage/admin/monitor",
            "/manage/admin/monitor".into(),
            "name=zrh1&samples=2".into(),
        ),
        (
            "/manage/admin/monitors/approve",
            "/manage/admin/monitors/approve".into(),
            "name=zrh1".into(),
        ),
        (
            "/manage/monitors/accept",
            "/manage/monitors/accept".into(),
            "code=ABCDE-FGHJK&name=new1".into(),
        ),
        (
            "/manage/verify/{token}",
            format!("/manage/verify/pwv_{}", "ab".repeat(32)),
            String::new(),
        ),
        (
            "/manage/servers/add",
            "/manage/servers/add".into(),
            "address=192.0.2.10".into(),
        ),
        (
            "/manage/servers/check",
            "/manage/servers/check".into(),
            "ip=192.0.2.10&country=de".into(),
        ),
        (
            "/manage/servers/added",
            "/manage/servers/added".into(),
            "check_id=1".into(),
        ),
        (
            "/manage/servers/{ip}/netspeed",
            "/manage/servers/192.0.2.9/netspeed".into(),
            "netspeed=512".into(),
        ),
        (
            "/manage/servers/{ip}/deletion",
            "/manage/servers/192.0.2.9/deletion".into(),
            "date=2030-01-01".into(),
        ),
        (
            "/manage/servers/{ip}/deletion/cancel",
            "/manage/servers/192.0.2.9/deletion/cancel".into(),
            String::new(),
        ),
        (
            "/manage/servers/{ip}/alerts",
            "/manage/servers/192.0.2.9/alerts".into(),
            "on=false".into(),
        ),
        (
            "/manage/servers/{ip}/note",
            "/manage/servers/192.0.2.9/note".into(),
            "note=x".into(),
        ),
    ];
    // Not behind a session's CSRF token: the sign-in form and the link
    // (login CSRF: `sec-fetch-site`, manage_signin.rs), and `/verify`
    // (curl'd from the server, no session; verify.rs).
    let own_guard = ["/manage/signin", "/manage/link/{token}", "/verify"];
    let mut routes = page_post_routes();
    routes.retain(|r| !own_guard.contains(&r.as_str()));
    routes.sort();
    let mut covered: Vec<String> = forms.iter().map(|(r, _, _)| r.to_string()).collect();
    covered.sort();
    assert_eq!(routes, covered, "every POST page route has a row");
    for (_, uri, form) in &forms {
        for body in [form.clone(), format!("{form}&csrf={}", "0".repeat(64))] {
            let r = send(&t, Some(&b.cookie), Method::POST, uri, &body).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{uri} {body}: {}",
                r.text()
            );
        }
    }
    assert_eq!(state().await, before, "nothing changed");
    assert!(sink.mails().len() == 1, "no invitation went out");
    assert_eq!(
        b.get(&t, "/manage/members").await.status,
        StatusCode::OK,
        "still signed in"
    );
}
