//! Two monitor volunteers join by themselves, end to end with the real
//! binaries on loopback and a real headless chromium (DevTools protocol):
//! `serve --allow-private` on a dual-stack listener, simulated servers on
//! 127.0.9.x and ::1, and two `agent setup` runs — one dual-stack
//! (`localhost`: 127.0.0.1 and ::1), one IPv4 only (`127.0.0.1`).
//!
//! The volunteer signs in through the mailed link and accepts both
//! registrations on the manage page the setup printed; the monitors stay
//! pending (403) until `admin monitor approve`; then both agents run from
//! their state directories without a key, get work for both families and
//! their results appear in the CSV logs. A revoked monitor is refused at its
//! next call while the other keeps working. Screenshots go to
//! `target/tmp/volunteer-journey/`.

mod common;
#[path = "../../server/tests/support/smtp_sink.rs"]
mod smtp_sink;

use common::Sim;
use common::e2e::{Proc, Setup, admin, free_tcp_port, free_udp_port_on, get, wait_until};
use smtp_sink::SmtpSink;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const V4: &str = "127.0.9.1";
const V6: &str = "::1";
const VOLUNTEER: &str = "volunteer@mon.test";

/// CSV rows of `ip` by `monitor` (`*`: any monitor), read from every
/// monitor's log (a revoked monitor's name is no filter any more).
fn rows(http: u16, ip: &str, monitor: &str) -> usize {
    let (st, body) =
        get(http, &format!("/scores/{ip}/log?limit=10000&monitor=*")).expect("GET log");
    assert_eq!(st, 200, "{body}");
    body.lines()
        .skip(1)
        .filter(|l| {
            let name = l.split(',').nth(6).unwrap_or("");
            !name.is_empty() && (monitor == "*" || name == monitor)
        })
        .count()
}

/// The code `agent setup` printed (the link's `code=`), once it has.
fn code_of(setup: &Setup) -> String {
    let mut code = String::new();
    wait_until(
        "agent setup to print its link",
        Duration::from_secs(30),
        || {
            let out = setup.out();
            if let Some(at) = out.find("accept?code=") {
                code = out[at + 12..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string();
            }
            !code.is_empty()
        },
    );
    code
}

/// The acceptance form (not the header's sign-out form, also a POST).
const FORM: &str = "form[method=post][action='/manage/monitors/accept']";

/// Accepts the registration of `code` on the page the setup's link opens.
async fn accept(b: &mut cdp::Browser, base: &str, code: &str, name: &str, location: &str) {
    b.goto(&format!("{base}/manage/monitors/accept?code={code}"))
        .await
        .unwrap();
    let name_field = format!("{FORM} input[name=name]");
    let found = format!(
        "!!document.querySelector({})",
        serde_json::json!(name_field)
    );
    if b.eval(&found).await.unwrap() != true {
        let t = b.eval("document.body.innerText").await.unwrap();
        panic!("no acceptance form for {code}: {t}");
    }
    // Replace the name the page suggests.
    b.eval(&format!(
        "document.querySelector({}).value = ''",
        serde_json::json!(name_field)
    ))
    .await
    .unwrap();
    b.type_text(&name_field, name).await.unwrap();
    b.type_text(&format!("{FORM} input[name=location]"), location)
        .await
        .unwrap();
    b.click_and_wait(&format!("{FORM} button[type=submit]"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_volunteers_set_up_get_approved_check_both_families_and_one_is_revoked() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/test, which installs Debian's chromium"
    );
    let ntp = free_udp_port_on(&[V4, V6]);
    let http = free_tcp_port();
    let base = format!("http://127.0.0.1:{http}");
    let sink = SmtpSink::start().await;
    let _sim = Sim::start(&format!(
        "[[server]]\naddr = \"{V4}:{ntp}\"\n[[server]]\naddr = \"[{V6}]:{ntp}\"\n"
    ));
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    for ip in [V4, V6] {
        admin(
            dir,
            &["server", "add", ip, "--zone", "de", "--allow-private"],
        );
    }
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        &format!("[::]:{http}"),
        "--allow-private",
        "--interval-active",
        "2s",
        "--interval-testing",
        "2s",
        "--interval-candidate",
        "2s",
        "--samples",
        "2",
        "--sample-interval",
        "200ms",
        "--timeout",
        "500ms",
        "--rate-limit",
        "0",
        // The volunteer's IPv6 monitor sends from ::1, the IPv6 server's own
        // /48: the selector would pause that pair (no monitor judges its
        // own network). This test is about enrolment, so no selector.
        "--no-selector",
        "--smtp-url",
        &sink.url(),
        "--alert-from",
        "pool@pool.test",
        "--public-url",
        &base,
        "--data-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(dir.display().to_string());
    let _serve = Proc::spawn(&args);
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });

    // Two setups: a dual-stack host and an IPv4-only one.
    let states = tempfile::tempdir().unwrap();
    let state_a = states.path().join("a");
    let state_b = states.path().join("b");
    let mut setup_a = Setup::start(&[
        "--api",
        &format!("http://localhost:{http}"),
        "--state-dir",
        &state_a.display().to_string(),
    ]);
    let mut setup_b = Setup::start(&[
        "--api",
        &format!("http://127.0.0.1:{http}"),
        "--state-dir",
        &state_b.display().to_string(),
    ]);
    let (code_a, code_b) = (code_of(&setup_a), code_of(&setup_b));
    assert!(
        setup_a.out().contains("IPv6: registered"),
        "{}",
        setup_a.out()
    );
    assert!(
        !setup_b.out().contains("IPv6: registered"),
        "{}",
        setup_b.out()
    );

    // The volunteer signs in and accepts both on the pages.
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("volunteer-journey");
    let _ = std::fs::remove_dir_all(&out);
    let profile = tempfile::tempdir().unwrap();
    let mut b = cdp::Browser::launch(Path::new(CHROMIUM), profile.path())
        .await
        .expect("chromium with DevTools");
    b.goto(&format!("{base}/manage")).await.unwrap();
    b.type_text("input[name=email]", VOLUNTEER).await.unwrap();
    b.click_and_wait("form[action='/manage/signin'] button")
        .await
        .unwrap();
    let mail = sink.wait_for(1, Duration::from_secs(10)).await[0].text();
    let at = mail.find(&format!("{base}/manage/link/")).expect("link");
    let link = mail[at..].split_whitespace().next().unwrap().to_string();
    b.goto(&link).await.unwrap();
    b.click_and_wait("form button").await.unwrap();

    b.goto(&format!("{base}/manage/monitors/accept?code={code_a}"))
        .await
        .unwrap();
    let page = b.eval("document.body.innerText").await.unwrap();
    let page = page.as_str().unwrap().to_string();
    for seen in ["127.0.0.1", "::1"] {
        assert!(page.contains(seen), "the registration shows {seen}: {page}");
    }
    b.screenshot(&out.join("01-registration.png"))
        .await
        .unwrap();
    accept(&mut b, &base, &code_a, "dual1", "Zürich, CH").await;
    b.screenshot(&out.join("02-accepted.png")).await.unwrap();
    accept(&mut b, &base, &code_b, "four1", "Amsterdam, NL").await;
    // A code works once.
    b.goto(&format!("{base}/manage/monitors/accept?code={code_a}"))
        .await
        .unwrap();
    let again = b.eval("document.body.innerText").await.unwrap();
    assert!(
        !again.as_str().unwrap().contains("127.0.0.1"),
        "a used code shows nothing: {again}"
    );

    for s in [&mut setup_a, &mut setup_b] {
        assert_eq!(s.wait(Duration::from_secs(30)), Some(0), "{}", s.out());
    }
    assert!(
        setup_a.out().contains("dual1 (IPv4), dual1-v6 (IPv6)"),
        "{}",
        setup_a.out()
    );

    // Pending until a pool admin approves.
    b.goto(&format!("{base}/manage/monitors")).await.unwrap();
    let list = b.eval("document.body.innerText").await.unwrap();
    let list = list.as_str().unwrap().to_string();
    for name in ["dual1", "dual1-v6", "four1"] {
        assert!(list.contains(name), "{name} listed: {list}");
    }
    assert!(list.contains("pending"), "{list}");
    b.screenshot(&out.join("03-pending.png")).await.unwrap();
    let agent = |state: &Path| {
        Proc::spawn(
            &[
                "agent",
                "--state-dir",
                &state.display().to_string(),
                "--lab",
                "--ntp-port",
                &ntp.to_string(),
                "--backoff-min",
                "200ms",
                "--backoff-max",
                "1s",
                "--clock-retry",
                "2s",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        )
    };
    let a = agent(&state_a);
    let b_agent = agent(&state_b);
    wait_until(
        "a pending agent to be told so",
        Duration::from_secs(30),
        || a.log().contains("awaiting approval"),
    );
    assert_eq!(rows(http, V4, "*"), 0, "no work before approval");
    for name in ["dual1", "four1"] {
        let said = admin(dir, &["monitor", "approve", name]);
        assert!(said.contains(name), "{said}");
    }

    // Both agents get work: IPv4 and IPv6 results, each from its monitor.
    wait_until("results of every monitor", Duration::from_secs(90), || {
        rows(http, V4, "dual1") > 0 && rows(http, V6, "dual1-v6") > 0 && rows(http, V4, "four1") > 0
    });
    b.goto(&format!("{base}/manage/monitors/dual1"))
        .await
        .unwrap();
    b.screenshot(&out.join("04-approved.png")).await.unwrap();

    // Revoked: refused at its next call; the other agent goes on.
    admin(dir, &["monitor", "revoke", "four1"]);
    wait_until(
        "the revoked agent to be refused",
        Duration::from_secs(30),
        || b_agent.log().contains("401"),
    );
    let (four, dual) = (rows(http, V4, "four1"), rows(http, V4, "dual1"));
    wait_until("the other agent to go on", Duration::from_secs(30), || {
        rows(http, V4, "dual1") > dual + 2
    });
    assert_eq!(
        rows(http, V4, "four1"),
        four,
        "nothing more from a revoked monitor"
    );
    // The only thing the console saw: the used code's 410.
    b.settle().await.unwrap();
    assert_eq!(b.problems().len(), 1, "{:#?}", b.problems());
    assert!(b.problems()[0].contains("410"), "{:#?}", b.problems());
}
