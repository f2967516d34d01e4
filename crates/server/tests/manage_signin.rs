//! Signing in to the manage side over HTTP, on SQLite and PostgreSQL: the
//! link caught at a local SMTP sink, the session cookie, used and expired
//! links, session fixation, rate limits, expiry, signing out, and no
//! account enumeration.
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
use server::alerts::AlertConfig;
use server::{Clock, ServerConfig};
use smtp_sink::SmtpSink;

on_both_backends!(
    sign_in_end_to_end,
    used_and_expired_links_refused,
    session_fixation,
    sign_in_rate_limits,
    idle_and_absolute_expiry,
    sign_out_everywhere,
    same_answer_known_or_not,
    sign_in_off_without_smtp,
    back_to_the_opened_page_after_sign_in,
    unsafe_next_is_ignored,
    sign_in_form_body_is_capped,
);

async fn sign_in_end_to_end(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    // Not signed in: the form.
    let r = t.get("/manage").await;
    assert!(r.text().contains("name=\"email\""), "{}", r.text());
    assert_eq!(
        ask_link(&t, "Alice@Example.org").await.status,
        StatusCode::OK
    );
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails[0].header("To").unwrap(), "alice@example.org");
    let link = link_in(&sink, "alice@example.org");
    // The link's page only shows a button: fetching it twice uses nothing.
    for _ in 0..2 {
        let page = t.get(&link).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.text().contains(&format!("action=\"{link}\"")),
            "{}",
            page.text()
        );
        assert!(page.header("set-cookie").is_empty());
    }
    let r = follow(&t, &link, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let set = r.header("set-cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "http public URL: no Secure: {set}");
    let b = Browser {
        cookie: session_cookie(&r),
    };
    assert!(
        b.cookie.starts_with("pws_") && b.cookie.len() == 68,
        "{}",
        b.cookie
    );
    let home = b.get(&t, "/manage").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(home.header("cache-control"), "private, no-store");
    let html = home.text();
    assert!(html.contains("Account alice"), "{html}");
    assert!(html.contains("alice@example.org (owner)"), "{html}");
    // The store has only hashes: neither the cookie nor the link's token.
    let s = t.store();
    let id_hash = server::keys::hash_key(&b.cookie);
    let limits = store::SessionLimits {
        idle_s: 3600,
        max_age_s: 3600,
    };
    assert!(s.session(&id_hash, limits, T0).await.unwrap().is_some());
    assert!(s.session(&b.cookie, limits, T0).await.unwrap().is_none());

    // With an https public URL the cookie is Secure.
    let Some((t2, sink2, _)) = app(backend, "https://pool.test/").await else {
        return;
    };
    ask_link(&t2, "bob@example.org").await;
    sink2.wait_for(1, WAIT).await;
    let link = link_in(&sink2, "bob@example.org");
    assert!(
        sink2.mails()[0]
            .text()
            .contains(&format!("https://pool.test{link}"))
    );
    let r = follow(&t2, &link, None).await;
    assert!(
        r.header("set-cookie").contains("; Secure"),
        "{}",
        r.header("set-cookie")
    );
}

async fn used_and_expired_links_refused(backend: Backend) {
    let (t, sink, clock) = setup!(backend);
    ask_link(&t, "carl@example.org").await;
    sink.wait_for(1, WAIT).await;
    let used = link_in(&sink, "carl@example.org");
    assert_eq!(follow(&t, &used, None).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        t.get(&used).await.status,
        StatusCode::GONE,
        "its page says so"
    );
    let again = follow(&t, &used, None).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert_eq!(again.header("cache-control"), "private, no-store");
    assert!(again.header("set-cookie").is_empty());
    // A link 15 minutes old is refused.
    ask_link(&t, "dora@example.org").await;
    sink.wait_for(2, WAIT).await;
    let late = link_in(&sink, "dora@example.org");
    clock.set(T0 + 15 * 60);
    let r = follow(&t, &late, None).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(r.header("set-cookie").is_empty());
    assert!(
        t.store()
            .user_by_email("dora@example.org")
            .await
            .unwrap()
            .is_none()
    );
    // Posted from another site (login CSRF): refused, the link still works.
    ask_link(&t, "eve@example.org").await;
    sink.wait_for(3, WAIT).await;
    let link = link_in(&sink, "eve@example.org");
    let r = t
        .send_from(
            CLIENT,
            Method::POST,
            &link,
            &[("sec-fetch-site", "cross-site")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.header("set-cookie").is_empty());
    let r = t
        .send_from(
            CLIENT,
            Method::POST,
            &link,
            &[("sec-fetch-site", "same-origin")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Addresses mail cannot go to: 400 naming the field, no link made.
    for bad in ["nobody", "<b>x</b>@example.org", "a@b"] {
        let r = ask_link(&t, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.text().contains("email"), "{}", r.text());
        assert!(!r.text().contains("<b>x"), "escaped");
    }
    assert_eq!(
        t.store()
            .count_links_since("<b>x</b>@example.org", 0)
            .await
            .unwrap(),
        0
    );
    // Not a link at all.
    assert_eq!(
        follow(&t, "/manage/link/pwl_zz", None).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn session_fixation(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    // Mallory signs in and plants her session cookie in Erin's browser.
    let mallory = sign_in(&t, &sink, "mallory@example.org").await;
    ask_link(&t, "erin@example.org").await;
    sink.wait_for(2, WAIT).await;
    let r = follow(
        &t,
        &link_in(&sink, "erin@example.org"),
        Some(&mallory.cookie),
    )
    .await;
    let erin = session_cookie(&r);
    assert_ne!(erin, mallory.cookie, "a new id at sign-in");
    // The planted session is over; Erin's new one is Erin's.
    let planted = mallory.get(&t, "/manage").await;
    assert!(
        planted.text().contains("name=\"email\""),
        "{}",
        planted.text()
    );
    let home = send(&t, Some(&erin), Method::GET, "/manage", "").await;
    assert!(home.text().contains("Account erin"), "{}", home.text());
    // A made-up id set before sign-in is not kept either.
    let r = follow(
        &t,
        &{
            ask_link(&t, "fay@example.org").await;
            sink.wait_for(3, WAIT).await;
            link_in(&sink, "fay@example.org")
        },
        Some("pws_chosen_by_attacker"),
    )
    .await;
    assert_ne!(session_cookie(&r), "pws_chosen_by_attacker");
}

async fn sign_in_rate_limits(backend: Backend) {
    let (t, sink, clock) = setup!(backend);
    // Per address: five links an hour.
    for i in 0..5 {
        assert_eq!(
            ask_link(&t, "oli@example.org").await.status,
            StatusCode::OK,
            "{i}"
        );
    }
    let r = ask_link(&t, "OLI@example.org").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("content-type").starts_with("text/html"));
    assert_eq!(r.header("retry-after"), "3600");
    assert!(r.text().contains("for this e-mail address"), "{}", r.text());
    sink.wait_for(5, WAIT).await;
    assert_eq!(sink.mails().len(), 5, "no sixth mail");
    // An hour later, again.
    clock.set(T0 + 3601);
    assert_eq!(ask_link(&t, "oli@example.org").await.status, StatusCode::OK);
    // Per client: ten requests in a burst (whatever the addresses), then 429.
    let (t, _sink, _) = setup!(backend);
    for i in 0..10 {
        let r = ask_link(&t, &format!("p{i}@example.org")).await;
        assert_eq!(r.status, StatusCode::OK, "{i}");
    }
    assert_eq!(
        ask_link(&t, "p10@example.org").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = t
        .send_from(
            "203.0.113.9:1",
            Method::POST,
            "/manage/signin",
            &[("content-type", "application/x-www-form-urlencoded")],
            Body::from("email=q@example.org"),
        )
        .await;
    assert_eq!(
        other.status,
        StatusCode::OK,
        "another client is not limited"
    );
}

async fn idle_and_absolute_expiry(backend: Backend) {
    let (t, sink, clock) = setup!(backend);
    let b = sign_in(&t, &sink, "rae@example.org").await;
    let signed_in = |r: &Resp| r.text().contains("Account rae");
    // Used every 50 minutes it lives (idle 1 h) until 3 h after sign-in.
    for m in [50, 100, 150] {
        clock.set(T0 + m * 60);
        assert!(signed_in(&b.get(&t, "/manage").await), "at {m} min");
    }
    clock.set(T0 + 3 * 3600);
    assert!(!signed_in(&b.get(&t, "/manage").await), "absolute limit");
    let r = b.get(&t, "/manage/members").await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, "/manage?next=%2Fmanage%2Fmembers")
    );
    // Unused for an hour: over.
    let c = sign_in(&t, &sink, "sol@example.org").await;
    clock.set(T0 + 4 * 3600);
    assert!(!c.get(&t, "/manage").await.text().contains("Account sol"));
}

async fn sign_out_everywhere(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let one = sign_in(&t, &sink, "tom@example.org").await;
    let two = sign_in(&t, &sink, "tom@example.org").await;
    let other = sign_in(&t, &sink, "uli@example.org").await;
    let r = one.post(&t, "/manage", "/manage/signout", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(
        one.get(&t, "/manage/members").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(two.get(&t, "/manage/members").await.status, StatusCode::OK);
    let three = sign_in(&t, &sink, "tom@example.org").await;
    let r = two
        .post(&t, "/manage/accounts", "/manage/signout-all", &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    for b in [&two, &three] {
        assert_eq!(
            b.get(&t, "/manage/members").await.status,
            StatusCode::SEE_OTHER
        );
    }
    assert_eq!(
        other.get(&t, "/manage/members").await.status,
        StatusCode::OK
    );
}

async fn same_answer_known_or_not(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(db) = TestDb::open(backend).await else {
        return;
    };
    let mut cfg = config(&sink, "http://pool.test");
    cfg.manage.signup = server::manage::settings::Signup::Closed;
    let t = TestApp::new(db, cfg).with_clock(Clock::fixed(T0));
    // Signup closed: a link of an unknown address is refused when used.
    let l = server::manage::auth::issue_signin_link(&t.state, "zoe@example.org")
        .await
        .unwrap();
    let path = &l[l.find("/manage/link/").unwrap()..];
    assert_eq!(follow(&t, path, None).await.status, StatusCode::FORBIDDEN);
    assert!(
        t.store()
            .user_by_email("zoe@example.org")
            .await
            .unwrap()
            .is_none()
    );
    // Zoe becomes a member (as if she had signed up while it was open).
    let store = t.store();
    let hash = server::keys::hash_key("pwl_z");
    let link = store::NewLink {
        token_hash: hash.clone(),
        email: "zoe@example.org".into(),
        purpose: store::LinkPurpose::SignIn,
        expires: T0 + 60,
    };
    store.create_email_link(&link, T0).await.unwrap();
    let zoe = store
        .consume_email_link(&hash, store::SignupPolicy::Open, T0)
        .await
        .unwrap();
    assert!(zoe.account_id.is_some());
    // Known and unknown get the same page; only the known one gets mail.
    let known = ask_link(&t, "zoe@example.org").await;
    let unknown = ask_link(&t, "yan@example.org").await;
    assert_eq!(
        (known.status, unknown.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(
        known.text().replace("zoe@", "X@"),
        unknown.text().replace("yan@", "X@"),
        "the page does not tell"
    );
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails[0].header("To").unwrap(), "zoe@example.org");
    assert_eq!(
        store.count_links_since("yan@example.org", 0).await.unwrap(),
        0
    );
}

async fn sign_in_off_without_smtp(backend: Backend) {
    let Some(db) = TestDb::open(backend).await else {
        return;
    };
    let t = TestApp::new(db, ServerConfig::default());
    assert_eq!(
        server::manage::auth::signin_off_reason(t.state.cfg()),
        Some("no alert settings: sign-in links go out through --smtp-url")
    );
    let page = t.get("/manage").await.text();
    assert!(page.contains("Sign-in is off on this service"), "{page}");
    assert!(!page.contains("name=\"email\""));
    let r = ask_link(&t, "ann@example.org").await;
    assert!(r.text().contains("Sign-in is off"));
    assert_eq!(
        t.store()
            .count_links_since("ann@example.org", 0)
            .await
            .unwrap(),
        0
    );
    // The demo's way in: a link made and printed, not mailed, still works.
    let url = server::manage::auth::issue_signin_link(&t.state, "demo@example.org")
        .await
        .unwrap();
    let path = url
        .strip_prefix(&format!("http://{}", t.state.cfg().listen))
        .unwrap();
    let r = follow(&t, path, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let home = send(&t, Some(&session_cookie(&r)), Method::GET, "/manage", "").await;
    assert!(home.text().contains("Account demo"), "{}", home.text());
    // Alerts without SMTP: off too, saying why.
    let cfg = ServerConfig {
        alerts: Some(AlertConfig::default()),
        ..ServerConfig::default()
    };
    assert_eq!(
        server::manage::auth::signin_off_reason(&cfg),
        Some("no --smtp-url: sign-in links are sent by e-mail")
    );
}

/// The whole sign-in link (with its query) in the newest mail to `to`.
fn full_link_in(sink: &SmtpSink, to: &str) -> String {
    let mail = sink
        .mails()
        .into_iter()
        .rev()
        .find(|m| m.header("To").is_some_and(|h| h.contains(to)))
        .unwrap_or_else(|| panic!("no mail to {to}"));
    let text = mail.text();
    let at = text.find("/manage/link/").expect("a link in the mail");
    text[at..].lines().next().unwrap().trim().to_string()
}

async fn ask_link_to(t: &TestApp, email: &str, next: &str) -> Resp {
    send(
        t,
        None,
        Method::POST,
        "/manage/signin",
        &format!("email={}&next={}", enc(email), enc(next)),
    )
    .await
}

async fn back_to_the_opened_page_after_sign_in(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    // The URL `agent setup` prints, opened signed out: to the sign-in
    // form, which carries it.
    let accept = "/manage/monitors/accept?code=ABCDE-FGHJK";
    let r = t.get(accept).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let form_url = r.header("location").to_string();
    assert_eq!(form_url, format!("/manage?next={}", enc(accept)));
    let form = t.get(&form_url).await.text();
    assert!(
        form.contains(&format!("name=\"next\" value=\"{accept}\"")),
        "{form}"
    );
    // The form's post: the mailed link carries it on.
    assert_eq!(
        ask_link_to(&t, "vera@example.org", accept).await.status,
        StatusCode::OK
    );
    sink.wait_for(1, WAIT).await;
    let link = full_link_in(&sink, "vera@example.org");
    assert_eq!(
        link,
        format!(
            "{}?next={}",
            link_in(&sink, "vera@example.org"),
            enc(accept)
        )
    );
    // Its page's button posts it on; the post lands on the accept page.
    let page = t.get(&link).await.text();
    assert!(page.contains(&format!("action=\"{link}\"")), "{page}");
    let r = follow(&t, &link, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location"), accept);
    let b = Browser {
        cookie: session_cookie(&r),
    };
    let landed = b.get(&t, accept).await;
    assert_eq!(landed.status, StatusCode::NOT_FOUND, "an unknown code");
    assert!(
        landed.text().contains("no registration with this code"),
        "{}",
        landed.text()
    );
    // A verification link opened signed out comes back the same way.
    let verify = format!("/manage/verify/pwv_{}", "ab".repeat(32));
    let r = t.get(&verify).await;
    assert_eq!(
        r.header("location"),
        format!("/manage?next={}", enc(&verify))
    );
    // A POST is not replayed: plain /manage.
    let r = send(&t, None, Method::POST, "/manage/servers/add", "").await;
    assert_eq!(r.header("location"), "/manage");
}

async fn unsafe_next_is_ignored(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let bad = [
        "https://evil.example",
        "//evil.example",
        "/\\evil",
        "/scores",
        "/manage/../scores",
        "/manage/%2e%2e/scores",
        "/manage//evil.example",
        "/manage/x\r\nSet-Cookie: a=b",
    ];
    for (i, next) in bad.iter().enumerate() {
        // Not on the form…
        let form = t.get(&format!("/manage?next={}", enc(next))).await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(
            !form.text().contains("name=\"next\""),
            "{next}: {}",
            form.text()
        );
        // …nor on the mailed link…
        let email = format!("n{i}@example.org");
        assert_eq!(ask_link_to(&t, &email, next).await.status, StatusCode::OK);
        sink.wait_for(i + 1, WAIT).await;
        let link = full_link_in(&sink, &email);
        assert!(!link.contains('?'), "{next}: {link}");
        // …and a link given one by hand leads to /manage.
        let r = follow(&t, &format!("{link}?next={}", enc(next)), None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next}: {}", r.text());
        assert_eq!(r.header("location"), "/manage", "{next}");
        // Nor through the account picker.
        let b = Browser {
            cookie: session_cookie(&r),
        };
        let id = account_id(&t, &email).await.to_string();
        let r = b
            .post(
                &t,
                "/manage/accounts",
                "/manage/accounts",
                &[("account_id", &id), ("next", next)],
            )
            .await;
        assert_eq!(r.header("location"), "/manage", "{next}");
    }
}

async fn sign_in_form_body_is_capped(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    // As large as the manage forms take (16 KiB): over it, 413, no mail.
    let big = format!("email=big%40example.org&next={}", "a".repeat(20 * 1024));
    let r = send(&t, None, Method::POST, "/manage/signin", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    let small = "email=big%40example.org&next=/manage/x";
    let r = send(&t, None, Method::POST, "/manage/signin", small).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    sink.wait_for(1, WAIT).await;
    assert_eq!(sink.mails().len(), 1, "only the small one's mail");
}
