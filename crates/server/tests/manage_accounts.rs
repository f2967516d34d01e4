//! The manage side's accounts over HTTP, on SQLite and PostgreSQL: sign-in
//! by a link caught at a local SMTP sink, sessions and their cookie, CSRF,
//! members and invitations, API tokens, rate limits, expiry.

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Backend, CLIENT, Resp, TestApp, TestDb};
use server::alerts::AlertConfig;
use server::{Clock, ServerConfig};
use smtp_sink::SmtpSink;
use std::time::Duration;

on_both_backends!(
    sign_in_end_to_end,
    used_and_expired_links_refused,
    session_fixation,
    csrf_missing_or_wrong_changes_nothing,
    other_accounts_ids_are_404,
    disabled_or_revoked_token_is_401,
    invite_accepted_and_last_owner_stays,
    stored_text_is_escaped,
    sign_in_rate_limits,
    idle_and_absolute_expiry,
    sign_out_everywhere,
    admin_pages_for_admins_only,
    manage_api,
    same_answer_known_or_not,
    sign_in_off_without_smtp,
    contacts_and_test_notification,
);

const T0: i64 = 1_800_000_000;
const WAIT: Duration = Duration::from_secs(10);

fn config(sink: &SmtpSink, public_url: &str) -> ServerConfig {
    let mut cfg = ServerConfig {
        alerts: Some(AlertConfig {
            smtp: Some(sink.url().parse().unwrap()),
            from: Some("poolwatch <pool@pool.test>".into()),
            public_url: public_url.into(),
            send_timeout: Duration::from_secs(5),
            ..AlertConfig::default()
        }),
        ..ServerConfig::default()
    };
    cfg.manage.session_idle = Duration::from_secs(3600);
    cfg.manage.session_absolute = Duration::from_secs(3 * 3600);
    cfg
}

/// An app at fixed time [`T0`] sending mail to a fresh sink.
async fn app(backend: Backend, public_url: &str) -> Option<(TestApp, SmtpSink, Clock)> {
    let sink = SmtpSink::start().await;
    let db = TestDb::open(backend).await?;
    let clock = Clock::fixed(T0);
    let t = TestApp::new(db, config(&sink, public_url)).with_clock(clock.clone());
    Some((t, sink, clock))
}

macro_rules! setup {
    ($backend:expr) => {
        match app($backend, "http://pool.test").await {
            Some(x) => x,
            None => return,
        }
    };
}

/// A browser's session: its cookie.
#[derive(Clone)]
struct Browser {
    cookie: String,
}

async fn send(t: &TestApp, cookie: Option<&str>, method: Method, uri: &str, form: &str) -> Resp {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    let c = cookie.map(|c| format!("poolwatch_session={c}"));
    if let Some(c) = &c {
        headers.push(("cookie", c));
    }
    t.send_from(CLIENT, method, uri, &headers, Body::from(form.to_string()))
        .await
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Browser {
    async fn get(&self, t: &TestApp, uri: &str) -> Resp {
        send(t, Some(&self.cookie), Method::GET, uri, "").await
    }

    /// The CSRF token printed on `page`.
    async fn csrf(&self, t: &TestApp, page: &str) -> String {
        let r = self.get(t, page).await;
        assert_eq!(r.status, StatusCode::OK, "{page}: {}", r.text());
        let html = r.text();
        let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
        html[at..at + 64].to_string()
    }

    /// POSTs `fields` to `uri` with the CSRF token of `page`.
    async fn post(&self, t: &TestApp, page: &str, uri: &str, fields: &[(&str, &str)]) -> Resp {
        let csrf = self.csrf(t, page).await;
        let mut body = format!("csrf={csrf}");
        for (k, v) in fields {
            body.push_str(&format!("&{k}={}", enc(v)));
        }
        send(t, Some(&self.cookie), Method::POST, uri, &body).await
    }
}

/// The sign-in (or invitation) link in the newest mail to `to`.
fn link_in(sink: &SmtpSink, to: &str) -> String {
    let mail = sink
        .mails()
        .into_iter()
        .rev()
        .find(|m| m.header("To").is_some_and(|h| h.contains(to)))
        .unwrap_or_else(|| panic!("no mail to {to}"));
    let text = mail.text();
    let at = text.find("/manage/link/").expect("a link in the mail");
    text[at..at + "/manage/link/pwl_".len() + 64].to_string()
}

async fn ask_link(t: &TestApp, email: &str) -> Resp {
    send(
        t,
        None,
        Method::POST,
        "/manage/signin",
        &format!("email={}", enc(email)),
    )
    .await
}

/// Follows `link` (POST, as its page's button does) with `cookie`.
async fn follow(t: &TestApp, link: &str, cookie: Option<&str>) -> Resp {
    send(t, cookie, Method::POST, link, "").await
}

fn session_cookie(r: &Resp) -> String {
    let set = r.header("set-cookie");
    let v = set
        .strip_prefix("poolwatch_session=")
        .unwrap_or_else(|| panic!("no session cookie: {set:?} ({})", r.status));
    v.split(';').next().unwrap().to_string()
}

/// Signs `email` in through the mailed link: its browser.
async fn sign_in(t: &TestApp, sink: &SmtpSink, email: &str) -> Browser {
    let before = sink.mails().len();
    assert_eq!(ask_link(t, email).await.status, StatusCode::OK);
    sink.wait_for(before + 1, WAIT).await;
    let r = follow(t, &link_in(sink, email), None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location"), "/manage");
    Browser {
        cookie: session_cookie(&r),
    }
}

async fn account_id(t: &TestApp, email: &str) -> i64 {
    let u = t.store().user_by_email(email).await.unwrap().unwrap();
    t.store().memberships(u.id).await.unwrap()[0].account_id
}

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
    let again = follow(&t, &used, None).await;
    assert_eq!(again.status, StatusCode::GONE);
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
    assert_eq!(r.header("location"), "/manage/accounts");
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
        (StatusCode::SEE_OTHER, "/manage")
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
    let r = two.post(&t, "/manage", "/manage/signout-all", &[]).await;
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

async fn admin_pages_for_admins_only(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let vic = sign_in(&t, &sink, "vic@example.org").await;
    let wyn = sign_in(&t, &sink, "wyn@example.org").await;
    assert_eq!(
        wyn.get(&t, "/manage/admin?q=vic").await.status,
        StatusCode::NOT_FOUND
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
