//! Signing in to the manage side in a real headless chromium (as
//! `browser.rs` drives it): the address typed into `/manage` and sent with
//! the mouse, the link caught at a local SMTP sink opened and its button
//! clicked, the overview seen with the cookie the browser kept (HttpOnly,
//! SameSite=Lax), a token made and revoked through the forms (CSRF in a
//! hidden field, no script), a monitor of the account paused and resumed
//! on its page, a monitor volunteer's registration accepted on the page
//! its URL opens, signed out. Screenshots under
//! `target/tmp/browser/manage-*.png`. The whole operator flow (servers,
//! verification, invitations) is the lead's test.

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use server::ServerConfig;
use server::alerts::AlertConfig;
use smtp_sink::SmtpSink;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_tokens_in_chromium() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("{CHROMIUM} is needed under CI");
        }
        eprintln!("skipped: no {CHROMIUM}");
        return;
    }
    let db = common::TestDb::open(common::Backend::Sqlite).await.unwrap();
    let sink = SmtpSink::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let cfg = ServerConfig {
        alerts: Some(AlertConfig {
            smtp: Some(sink.url().parse().unwrap()),
            from: Some("pool@pool.test".into()),
            public_url: base.clone(),
            send_timeout: Duration::from_secs(5),
            ..AlertConfig::default()
        }),
        ..ServerConfig::default()
    };
    // `agent setup` below registers from loopback.
    let mut cfg = cfg;
    cfg.manage.allow_private = true;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve_on(listener, cfg, db.store.clone(), async {
        let _ = stopped.await;
    }));
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let profile = tempfile::tempdir().unwrap();
    let mut b = cdp::Browser::launch(Path::new(CHROMIUM), profile.path())
        .await
        .expect("chromium with DevTools");

    b.goto(&format!("{base}/manage")).await.unwrap();
    b.type_text("input[name=email]", "Operator@Example.org")
        .await
        .unwrap();
    b.screenshot(&out.join("manage-signin.png")).await.unwrap();
    b.click_and_wait("form[action='/manage/signin'] button")
        .await
        .unwrap();
    let text = b.eval("document.body.innerText").await.unwrap();
    assert!(
        text.as_str().unwrap().contains("Check your e-mail"),
        "{text}"
    );
    let mail = sink.wait_for(1, Duration::from_secs(10)).await[0].text();
    let at = mail
        .find(&format!("{base}/manage/link/"))
        .expect("the link");
    let link = mail[at..].split_whitespace().next().unwrap().to_string();

    // The link's page: nothing happens until the button is clicked.
    b.goto(&link).await.unwrap();
    assert!(b.cookies().await.unwrap().is_empty());
    b.click_and_wait("form button").await.unwrap();
    assert_eq!(b.eval("location.pathname").await.unwrap(), "/manage");
    let cookies = b.cookies().await.unwrap();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let c = &cookies[0];
    assert_eq!(c["name"], "poolwatch_session");
    assert_eq!(c["httpOnly"], true);
    assert_eq!(c["sameSite"], "Lax");
    assert_eq!(c["secure"], false, "http public URL");
    assert_eq!(
        b.eval("document.cookie").await.unwrap(),
        "",
        "no script can read it"
    );
    let h1 = b
        .eval("document.querySelector('h1').innerText")
        .await
        .unwrap();
    assert_eq!(h1, "Account operator");
    b.screenshot(&out.join("manage-overview.png"))
        .await
        .unwrap();

    // A token through the form, shown once; then revoked.
    b.goto(&format!("{base}/manage/tokens")).await.unwrap();
    b.type_text("input[name=name]", "deploy <ci>")
        .await
        .unwrap();
    b.click_and_wait("form[action='/manage/tokens'] button")
        .await
        .unwrap();
    let token = b
        .eval("document.getElementById('new-token').innerText")
        .await
        .unwrap();
    assert!(token.as_str().unwrap().starts_with("pwt_"), "{token}");
    b.screenshot(&out.join("manage-token.png")).await.unwrap();
    b.goto(&format!("{base}/manage/tokens")).await.unwrap();
    let name = b
        .eval("document.querySelector('td').innerText")
        .await
        .unwrap();
    assert_eq!(name, "deploy <ci>", "shown as text, not markup");
    b.click_and_wait("form[action='/manage/tokens/revoke'] button")
        .await
        .unwrap();
    let state = b.eval("document.body.innerText").await.unwrap();
    assert!(state.as_str().unwrap().contains("revoked"), "{state}");

    // A monitor of the account: listed, its page, paused and resumed with
    // the mouse.
    server::admin::add_monitor(
        &db.store,
        server::admin::AddMonitor {
            name: "zrh1".into(),
            ip: "198.51.100.7".parse().unwrap(),
            location: "Zurich <CH>".into(),
            account: Some("operator".into()),
            status: store::GlobalStatus::Active,
        },
        0,
    )
    .await
    .unwrap();
    b.goto(&format!("{base}/manage/monitors")).await.unwrap();
    b.click_and_wait("a[href='/manage/monitors/zrh1']")
        .await
        .unwrap();
    b.click_and_wait("form[action='/manage/monitors/zrh1/pause'] button")
        .await
        .unwrap();
    let status = b
        .eval("document.getElementById('status').innerText")
        .await
        .unwrap();
    assert!(
        status.as_str().unwrap().starts_with("paused by you"),
        "{status}"
    );
    b.screenshot(&out.join("manage-monitor.png")).await.unwrap();
    b.click_and_wait("form[action='/manage/monitors/zrh1/resume'] button")
        .await
        .unwrap();
    let status = b
        .eval("document.getElementById('status').innerText")
        .await
        .unwrap();
    assert!(status.as_str().unwrap().starts_with("active"), "{status}");

    // A monitor volunteer's registration (as `agent setup` sends it),
    // accepted on the page its URL opens.
    let reg: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/monitor/register"))
        .json(&serde_json::json!({"secret": "ab".repeat(32), "hostname": "lab.example.net"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    b.goto(reg["url"].as_str().unwrap()).await.unwrap();
    let shown = b.eval("document.body.innerText").await.unwrap();
    assert!(shown.as_str().unwrap().contains("127.0.0.1"), "{shown}");
    assert!(
        shown.as_str().unwrap().contains("lab.example.net"),
        "{shown}"
    );
    // The name offered is the host's ("lab"); the volunteer picks another.
    let offered = b
        .eval("document.querySelector('input[name=name]').value")
        .await
        .unwrap();
    assert_eq!(offered, "lab");
    b.eval("document.querySelector('input[name=name]').value = ''")
        .await
        .unwrap();
    b.type_text("input[name=name]", "lab1").await.unwrap();
    b.type_text("input[name=location]", "Zürich, CH")
        .await
        .unwrap();
    b.screenshot(&out.join("manage-accept-monitor.png"))
        .await
        .unwrap();
    b.click_and_wait("form[action='/manage/monitors/accept'] button")
        .await
        .unwrap();
    let done = b.eval("document.body.innerText").await.unwrap();
    assert!(
        done.as_str().unwrap().contains("Monitor accepted"),
        "{done}"
    );
    let m = db.store.monitor_by_name("lab1").await.unwrap().unwrap();
    assert_eq!(m.status, store::GlobalStatus::Pending);
    assert_eq!(m.location, "Zürich, CH");

    // Signed out: the cookie is gone and /manage asks for an address.
    b.click_and_wait("nav form[action='/manage/signout'] button")
        .await
        .unwrap();
    assert!(b.cookies().await.unwrap().is_empty());
    assert_eq!(
        b.eval("!!document.querySelector('input[name=email]')")
            .await
            .unwrap(),
        true
    );
    b.settle().await.unwrap();
    assert!(b.problems().is_empty(), "{:#?}", b.problems());
    drop(b);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}
