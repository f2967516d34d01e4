//! A server operator's whole journey through the manage pages, in a real
//! headless chromium driven over the DevTools protocol (`crates/cdp`),
//! against the real binaries on loopback: `poolwatch sim` (the server to
//! add), `poolwatch serve` (alert SMTP to a local sink, `--allow-private`)
//! and two `poolwatch agent --lab` that answer the live check.
//!
//! Signed in through the link caught at the SMTP sink, the operator adds a
//! simulated server (GeoIP does not know it: they pick its country), watches
//! the two monitors' answers arrive, adds it, verifies it with a request
//! sent from the server's own address, raises its netspeed, invites a member
//! who signs in in a second browser and sees it, makes an API token and
//! uses it on the JSON API, schedules and cancels the deletion, and signs
//! out. A screenshot of each step goes to
//! `target/tmp/operator-journey/NN-step.png`.

mod common;
#[path = "../../server/tests/support/smtp_sink.rs"]
mod smtp_sink;

use common::Sim;
use common::e2e::{Proc, add_monitor_key, agent_args, busy_serve_args, free_tcp_port};
use common::e2e::{free_udp_port_on, get, json, wait_until};
use serde_json::Value;
use smtp_sink::SmtpSink;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The server the operator adds (a good stratum 2 server) and one more
/// address, to send a verification request from the wrong place.
const SERVER: &str = "127.0.7.1";
const NEIGHBOUR: &str = "127.0.7.2";
const AGENTS: [(&str, &str); 2] = [("zrh", "127.0.7.11"), ("ams", "127.0.7.12")];
const OWNER: &str = "owner@op.test";
const MEMBER: &str = "member@op.test";

/// An HTTP/1.1 request sent from `from` (the source address), with extra
/// header lines; (status, body).
async fn request(port: u16, from: &str, method: &str, path: &str, headers: &str) -> (u16, String) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut s = sock
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The first URL under `prefix` in the newest mail to `to`.
fn link_in(sink: &SmtpSink, to: &str, prefix: &str) -> String {
    let mail = sink
        .mails()
        .into_iter()
        .rev()
        .find(|m| m.header("To").is_some_and(|t| t.contains(to)))
        .unwrap_or_else(|| panic!("no mail to {to}"));
    let text = mail.text();
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in {text}"));
    text[at..].split_whitespace().next().unwrap().to_string()
}

struct Shots {
    dir: PathBuf,
    n: u32,
}

impl Shots {
    async fn take(&mut self, b: &mut cdp::Browser, what: &str) {
        self.n += 1;
        let path = self.dir.join(format!("{:02}-{what}.png", self.n));
        b.screenshot(&path).await.unwrap();
    }
}

async fn text(b: &mut cdp::Browser) -> String {
    b.eval("document.body.innerText")
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Asks for a sign-in link on `/manage`, catches it at the sink, opens it
/// and presses its button: the browser ends on `/manage`, signed in.
async fn sign_in(b: &mut cdp::Browser, base: &str, sink: &SmtpSink, email: &str) {
    let before = sink.mails().len();
    b.goto(&format!("{base}/manage")).await.unwrap();
    b.type_text("input[name=email]", email).await.unwrap();
    b.click_and_wait("form[action='/manage/signin'] button")
        .await
        .unwrap();
    sink.wait_for(before + 1, Duration::from_secs(10)).await;
    let link = link_in(sink, email, &format!("{base}/manage/link/"));
    b.goto(&link).await.unwrap();
    b.click_and_wait("form button").await.unwrap();
    assert_eq!(b.eval("location.pathname").await.unwrap(), "/manage");
}

/// Sets a `<select>` or date input as a person's choice would (the value,
/// then the `change` event).
async fn choose(b: &mut cdp::Browser, selector: &str, value: &str) {
    let js = format!(
        "(() => {{ const e = document.querySelector({s}); e.value = {v}; \
         e.dispatchEvent(new Event('change', {{bubbles: true}})); return e.value; }})()",
        s = serde_json::json!(selector),
        v = serde_json::json!(value)
    );
    assert_eq!(b.eval(&js).await.unwrap(), value, "{selector}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_adds_verifies_shares_and_schedules_a_server_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/test, which installs Debian's chromium"
    );
    let ntp = free_udp_port_on(&[SERVER, NEIGHBOUR]);
    let http = free_tcp_port();
    let base = format!("http://127.0.0.1:{http}");
    let sink = SmtpSink::start().await;
    let _sim = Sim::start(&format!(
        "[[server]]\naddr = \"{SERVER}:{ntp}\"\nbehaviour = {{ stratum = 2 }}\n"
    ));
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let keys: Vec<String> = AGENTS
        .iter()
        .map(|(name, ip)| add_monitor_key(dir, name, ip))
        .collect();
    let mut args = busy_serve_args(&format!("127.0.0.1:{http}"), dir, &[]);
    for a in [
        "--allow-private",
        "--smtp-url",
        &sink.url(),
        "--alert-from",
        "pool@pool.test",
        "--public-url",
        &base,
    ] {
        args.push(a.to_string());
    }
    let _serve = Proc::spawn(&args);
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });
    let _agents: Vec<Proc> = AGENTS
        .iter()
        .zip(&keys)
        .map(|((name, ip), key)| Proc::spawn(&agent_args(dir, &base, ntp, name, ip, key)))
        .collect();
    // The live check asks monitors seen recently: wait for both agents.
    // (Read in the service's own SQLite file, beside it.)
    let store = store::Store::open(None, dir).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !store
        .list_monitors()
        .await
        .unwrap()
        .iter()
        .all(|m| m.last_seen.is_some())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the agents never called"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    store.close().await;

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("operator-journey");
    let _ = std::fs::remove_dir_all(&out);
    let mut shots = Shots { dir: out, n: 0 };
    let profile = tempfile::tempdir().unwrap();
    let mut b = cdp::Browser::launch(Path::new(CHROMIUM), profile.path())
        .await
        .expect("chromium with DevTools");

    // 1. Sign in by the e-mailed link.
    sign_in(&mut b, &base, &sink, OWNER).await;
    shots.take(&mut b, "signed-in").await;

    // 2. Add the simulated server: GeoIP does not know a loopback address,
    // so its country must be picked (no default is offered).
    b.goto(&format!("{base}/manage/servers/add")).await.unwrap();
    b.type_text("input[name=address]", SERVER).await.unwrap();
    b.click_and_wait("form[action='/manage/servers/add'] button")
        .await
        .unwrap();
    let t = text(&mut b).await;
    assert!(t.contains("GeoIP does not know"), "{t}");
    assert_eq!(
        b.eval("document.querySelector('select[name=country]').value")
            .await
            .unwrap(),
        "",
        "no country is chosen for the operator"
    );
    choose(&mut b, "select[name=country]", "de").await;
    shots.take(&mut b, "country-picked").await;
    b.click_and_wait("form[action='/manage/servers/check'] button")
        .await
        .unwrap();

    // 3. The live check: the page reloads itself until both lab agents
    // have answered at their next work call.
    let check_url = b.eval("location.href").await.unwrap();
    let check_url = check_url.as_str().unwrap().to_string();
    assert!(check_url.contains("/manage/servers/check/"), "{check_url}");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let passed = b
            .eval("!!document.getElementById('check-passed')")
            .await
            .unwrap_or(Value::Bool(false));
        if passed == Value::Bool(true) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the live check did not pass: {}",
            text(&mut b).await
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        b.goto(&check_url).await.unwrap();
    }
    let rows = b
        .eval("[...document.querySelectorAll('#live-check tbody tr')].map(r => r.innerText)")
        .await
        .unwrap();
    let rows: Vec<String> = serde_json::from_value(rows).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        assert!(r.contains("stratum 2"), "{rows:?}");
    }
    shots.take(&mut b, "live-check").await;
    b.click_and_wait("form[action='/manage/servers/added'] button")
        .await
        .unwrap();
    assert_eq!(
        b.eval("location.pathname").await.unwrap(),
        format!("/manage/servers/{SERVER}")
    );
    let s = json(http, &format!("/api/v1/servers/{SERVER}"));
    assert!(s.to_string().contains("\"de\""), "in the picked zone: {s}");
    // Unverified: netspeed above the default is not offered.
    assert!(
        b.eval("!!document.getElementById('unverified')")
            .await
            .unwrap()
            == true
    );
    shots.take(&mut b, "added").await;

    // 4. Verify from the server's own address; another address is refused.
    let (st, body) = request(http, NEIGHBOUR, "GET", "/verify", "").await;
    assert_eq!(st, 403, "{body}");
    let (st, body) = request(http, SERVER, "GET", "/verify", "").await;
    assert_eq!(st, 200, "{body}");
    let url = body
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{base}/manage/verify/")))
        .unwrap_or_else(|| panic!("no verification URL in {body}"))
        .to_string();
    b.goto(&url).await.unwrap();
    shots.take(&mut b, "verify-confirm").await;
    b.click_and_wait("form[action^='/manage/verify/'] button")
        .await
        .unwrap();
    b.goto(&format!("{base}/manage/servers/{SERVER}"))
        .await
        .unwrap();
    assert!(
        b.eval("!!document.getElementById('verified')")
            .await
            .unwrap()
            == true
    );

    // 5. Netspeed, now that it is verified.
    choose(&mut b, "select[name=netspeed]", "25000").await;
    b.click_and_wait("form[action$='/netspeed'] button")
        .await
        .unwrap();
    assert_eq!(
        b.eval("document.querySelector('select[name=netspeed]').value")
            .await
            .unwrap(),
        "25000"
    );
    assert_eq!(
        json(http, &format!("/api/v1/servers/{SERVER}"))["netspeed"],
        25000
    );
    shots.take(&mut b, "netspeed").await;

    // 6. Invite a member, who signs in in a browser of their own and sees
    // the server.
    b.goto(&format!("{base}/manage/members")).await.unwrap();
    b.type_text(
        "form[action='/manage/members/invite'] input[name=email]",
        MEMBER,
    )
    .await
    .unwrap();
    b.click_and_wait("form[action='/manage/members/invite'] button")
        .await
        .unwrap();
    sink.wait_for(2, Duration::from_secs(10)).await;
    let invite = link_in(&sink, MEMBER, &format!("{base}/manage/link/"));
    shots.take(&mut b, "invited").await;
    let member_profile = tempfile::tempdir().unwrap();
    let mut m = cdp::Browser::launch(Path::new(CHROMIUM), member_profile.path())
        .await
        .expect("a second chromium");
    m.goto(&invite).await.unwrap();
    m.click_and_wait("form button").await.unwrap();
    assert_eq!(m.eval("location.pathname").await.unwrap(), "/manage");
    let t = text(&mut m).await;
    assert!(t.contains(SERVER), "the member sees the server: {t}");
    shots.take(&mut m, "member-sees-it").await;
    m.settle().await.unwrap();
    assert!(m.problems().is_empty(), "{:#?}", m.problems());
    drop(m);

    // 7. An API token, shown once, used on the JSON API.
    b.goto(&format!("{base}/manage/tokens")).await.unwrap();
    b.type_text("input[name=name]", "deploy").await.unwrap();
    b.click_and_wait("form[action='/manage/tokens'] button")
        .await
        .unwrap();
    let token = b
        .eval("document.getElementById('new-token').innerText")
        .await
        .unwrap();
    let token = token.as_str().unwrap().trim().to_string();
    shots.take(&mut b, "token").await;
    let auth = format!("Authorization: Bearer {token}\r\n");
    let (st, body) = request(http, "127.0.0.1", "GET", "/api/v1/manage/servers", &auth).await;
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v.to_string().contains(SERVER), "{v}");
    let (st, _) = request(http, "127.0.0.1", "GET", "/api/v1/manage/servers", "").await;
    assert_eq!(st, 401, "no token, no answer");

    // 8. Schedule the deletion (at least 14 days ahead), then cancel it.
    b.goto(&format!("{base}/manage/servers/{SERVER}"))
        .await
        .unwrap();
    let earliest = b
        .eval("document.querySelector('input[name=date]').min")
        .await
        .unwrap();
    let earliest = earliest.as_str().unwrap().to_string();
    choose(&mut b, "input[name=date]", &earliest).await;
    b.click_and_wait("form[action$='/deletion'] button")
        .await
        .unwrap();
    let t = text(&mut b).await;
    assert!(t.contains(&format!("Scheduled for {earliest}")), "{t}");
    assert!(
        !json(http, &format!("/api/v1/servers/{SERVER}"))["deletion_on"].is_null(),
        "the deletion is stored"
    );
    shots.take(&mut b, "deletion-scheduled").await;
    b.click_and_wait("form[action$='/deletion/cancel'] button")
        .await
        .unwrap();
    assert!(
        b.eval("!document.getElementById('deletion')")
            .await
            .unwrap()
            == true
    );
    assert!(json(http, &format!("/api/v1/servers/{SERVER}"))["deletion_on"].is_null());

    // 9. The audit log says who did what; then sign out.
    b.goto(&format!("{base}/manage/audit")).await.unwrap();
    let t = text(&mut b).await;
    for what in [SERVER, MEMBER, "deploy"] {
        assert!(t.contains(what), "audit lacks {what}: {t}");
    }
    shots.take(&mut b, "audit").await;
    b.click_and_wait("nav form[action='/manage/signout'] button")
        .await
        .unwrap();
    assert!(b.cookies().await.unwrap().is_empty());
    shots.take(&mut b, "signed-out").await;
    b.settle().await.unwrap();
    assert!(b.problems().is_empty(), "{:#?}", b.problems());
}
