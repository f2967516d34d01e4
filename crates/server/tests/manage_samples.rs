//! What the samples say (issue 15) over HTTP, on SQLite and PostgreSQL:
//! samples submitted through the monitor API by three monitors (a server
//! answering the first sample of each check and refusing the rest), then
//! `GET /api/v1/servers/{ip}/samples` for the owner's token (the numbers
//! by position), another account's (404), none (401), an admin's, bad
//! `hours` (400); the owner's manage page with the table (another account:
//! 404); the public page with the verdict only, and with
//! `--public-sample-detail` the answer rates by position.
mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
#[macro_use]
#[path = "support/manage.rs"]
mod manage_support;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Backend, CLIENT, Resp, TestApp, TestDb, good_results};
use manage_support::*;
use server::{Clock, ServerConfig};
use store::GlobalStatus;

on_both_backends!(owner_admin_and_others, public_page_detail_setting);

const X: &str = "192.0.2.10";
/// Checks per monitor: above `scoring::evidence::MIN_CHECKS`.
const ROUNDS: i64 = 10;
/// Between rounds: past every work interval, so each monitor gets `X` again.
const STEP_S: i64 = 2 * 3600 + 60;
/// The rounds start here and end at [`T0`].
const START: i64 = T0 - ROUNDS * STEP_S;
const MONITORS: [&str; 3] = ["mon-a", "mon-b", "mon-c"];

/// The limiter: the first sample answered (rtt 10, 20, 30 ms by monitor),
/// RATE at the second, silence at the third and fourth; `lost_first`
/// loses the first one too.
fn limited(monitor: usize, lost_first: bool) -> Vec<api::Sample> {
    (0..4u8)
        .map(|p| {
            let answered = p == 1 || (p == 0 && !lost_first);
            let kod = p == 1;
            api::Sample {
                position: p,
                send_ms: 2000 * u32::from(p),
                answered,
                rtt: answered.then_some(if kod {
                    0.005
                } else {
                    0.010 * (monitor + 1) as f64
                }),
                offset: (answered && !kod).then_some(0.001),
                stratum: answered.then_some(if kod { 0 } else { 2 }),
                leap: answered.then_some(0),
                error: if kod {
                    Some("RATE".into())
                } else if answered {
                    None
                } else {
                    Some("i/o timeout".into())
                },
            }
        })
        .collect()
}

/// Three active monitors check `X` [`ROUNDS`] times through the monitor
/// API, the clock moving from [`START`] to [`T0`]; mon-c loses its first
/// sample in the first round.
async fn submit_rounds(t: &TestApp, clock: &Clock) {
    let mut keys = Vec::new();
    for name in MONITORS {
        keys.push(t.add_monitor(name, GlobalStatus::Active).await.1);
    }
    for round in 0..ROUNDS {
        clock.set(START + round * STEP_S);
        for (i, key) in keys.iter().enumerate() {
            let work = t.work(key).await;
            let mut sub = good_results(&work);
            let r = sub
                .results
                .iter_mut()
                .find(|r| r.ip.to_string() == X)
                .unwrap_or_else(|| panic!("round {round}: {X} not handed to {}", MONITORS[i]));
            r.ts = clock.now() - 1;
            r.samples = limited(i, round == 0 && i == 2);
            let resp = t.submit(key, &sub).await;
            assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        }
    }
    clock.set(T0);
}

/// An API token of `b`'s account (from the tokens page).
async fn token(t: &TestApp, b: &Browser) -> String {
    let html = b
        .post(t, "/manage/tokens", "/manage/tokens", &[("name", "ci")])
        .await
        .text();
    let at = html.find("pwt_").expect("the new token");
    html[at..at + 68].to_string()
}

async fn get_api(t: &TestApp, token: Option<&str>, query: &str) -> Resp {
    let auth = token.map(|k| format!("Bearer {k}"));
    let h: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    t.send_from(
        CLIENT,
        Method::GET,
        &format!("/api/v1/servers/{X}/samples{query}"),
        &h,
        Body::empty(),
    )
    .await
}

async fn app_with(backend: Backend, detail: bool) -> Option<(TestApp, smtp_sink::SmtpSink, Clock)> {
    let sink = smtp_sink::SmtpSink::start().await;
    let db = TestDb::open(backend).await?;
    let clock = Clock::fixed(START);
    let cfg = ServerConfig {
        public_sample_detail: detail,
        ..config(&sink, "http://pool.test")
    };
    let t = TestApp::new(db, cfg).with_clock(clock.clone());
    t.seed_zones().await;
    Some((t, sink, clock))
}

/// `X`, for the account `owner` (or none).
async fn add_x(t: &TestApp, owner: Option<String>) {
    server::admin::add_server(
        t.store(),
        None,
        server::admin::AddServer {
            ip: X.parse().unwrap(),
            zone: Some("de".into()),
            netspeed: 10_000,
            account: owner,
            allow_private: true,
        },
        START,
    )
    .await
    .expect("add X");
}

async fn account_name(t: &TestApp, email: &str) -> String {
    let id = account_id(t, email).await;
    t.store().account_info(id).await.unwrap().unwrap().name
}

async fn owner_admin_and_others(backend: Backend) {
    let Some((t, sink, clock)) = app_with(backend, false).await else {
        return;
    };
    // The accounts exist before the server; the sessions of this first
    // sign-in end while the clock runs through the rounds.
    for who in ["ops@example.org", "other@example.org", "admin@example.org"] {
        sign_in(&t, &sink, who).await;
    }
    add_x(&t, Some(account_name(&t, "ops@example.org").await)).await;
    let admin = account_name(&t, "admin@example.org").await;
    t.store()
        .set_account_flags(&admin, Some(true), None, "admin:test", START)
        .await
        .unwrap();
    submit_rounds(&t, &clock).await;
    let owner = sign_in(&t, &sink, "ops@example.org").await;
    let other = sign_in(&t, &sink, "other@example.org").await;
    let admin = sign_in(&t, &sink, "admin@example.org").await;
    let (owner_token, other_token, admin_token) = (
        token(&t, &owner).await,
        token(&t, &other).await,
        token(&t, &admin).await,
    );

    // The owner's token: the numbers by position.
    let r = get_api(&t, Some(&owner_token), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("cache-control"), "private, no-store");
    let v = r.json();
    assert_eq!(v["verdict"], "rate-limited", "{v}");
    assert!(v["explanation"].as_str().unwrap().contains("rate-limits"));
    assert_eq!(
        (v["hours"].as_i64(), v["until"].as_i64()),
        (Some(24), Some(T0 + 1))
    );
    let o = &v["overall"];
    assert_eq!(o["checks"], 30);
    let pos = |s: &serde_json::Value, p: usize, k: &str| s["positions"][p][k].clone();
    assert_eq!(pos(o, 0, "sent"), 30);
    assert_eq!(pos(o, 0, "answered"), 29);
    assert!((pos(o, 0, "answer_rate").as_f64().unwrap() - 29.0 / 30.0).abs() < 1e-9);
    assert_eq!(pos(o, 1, "answered"), 0);
    assert_eq!(pos(o, 1, "kod")["RATE"], 30);
    assert_eq!(pos(o, 3, "sent"), 30);
    assert_eq!(pos(o, 3, "answer_rate"), 0.0);
    assert_eq!(o["positions"].as_array().unwrap().len(), 4);
    // rtts of answered first samples: 10 × 10 ms, 10 × 20 ms, 9 × 30 ms.
    assert_eq!(
        o["rtt_us"],
        serde_json::json!({"count": 29, "min_us": 10_000, "median_us": 20_000,
                           "p90_us": 30_000, "max_us": 30_000})
    );
    let monitors = v["monitors"].as_array().unwrap();
    let names: Vec<&str> = monitors
        .iter()
        .map(|m| m["monitor"].as_str().unwrap())
        .collect();
    assert_eq!(names, MONITORS);
    let c = &monitors[2];
    assert_eq!(
        (c["checks"].as_i64(), c["verdict"].as_str()),
        (Some(10), Some("rate-limited"))
    );
    assert_eq!(pos(c, 0, "answered"), 9);
    assert_eq!(c["rtt_us"]["median_us"], 30_000);

    // A window of 5 hours holds the last two rounds only.
    let r = get_api(&t, Some(&owner_token), "?hours=5").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["overall"]["checks"], 6);
    assert_eq!(r.json()["verdict"], "not-enough-data");

    // Another account's token: 404, said as for no server at all.
    let r = get_api(&t, Some(&other_token), "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let missing = t
        .send_from(
            CLIENT,
            Method::GET,
            "/api/v1/servers/192.0.2.99/samples",
            &[("authorization", &format!("Bearer {owner_token}"))],
            Body::empty(),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.error_detail().replace("192.0.2.99", X),
        r.error_detail()
    );
    // No token, a wrong one: 401.
    assert_eq!(get_api(&t, None, "").await.status, StatusCode::UNAUTHORIZED);
    let wrong = format!("pwt_{}", "0".repeat(64));
    assert_eq!(
        get_api(&t, Some(&wrong), "").await.status,
        StatusCode::UNAUTHORIZED
    );
    // An admin sees it all.
    let r = get_api(&t, Some(&admin_token), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["overall"], o.clone());
    // Bad windows name the parameter.
    for q in [
        "?hours=0",
        "?hours=361",
        "?hours=x",
        "?hours=2.5",
        "?hours=",
    ] {
        let r = get_api(&t, Some(&owner_token), q).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text());
        assert!(
            r.error_detail().starts_with("hours:"),
            "{q}: {}",
            r.error_detail()
        );
    }
    assert_eq!(
        get_api(&t, Some(&owner_token), "?hours=360").await.status,
        StatusCode::OK
    );

    // The owner's manage page: the table per monitor.
    let page = owner.get(&t, &format!("/manage/servers/{X}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    assert!(html.contains("id=\"sample-detail\""), "{html}");
    assert!(html.contains("data-verdict=\"rate-limited\""));
    for name in MONITORS {
        assert!(html.contains(&format!("<td>{name}</td>")), "{name}");
    }
    assert!(html.contains("90 % (9/10)"), "mon-c's first samples");
    assert!(html.contains("97 % (29/30)"), "all monitors' first samples");
    assert!(html.contains("<code>RATE</code> ×30"));
    // Not to another account (nor to the public page).
    let page = other.get(&t, &format!("/manage/servers/{X}")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.text().contains("sample-detail"));

    // The public page: the verdict and its sentence, no numbers by position.
    let page = t.get(&format!("/scores/{X}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("data-verdict=\"rate-limited\""), "{html}");
    assert!(html.contains("rate-limits the monitors"));
    assert!(!html.contains("sample-positions"));
    assert!(!html.contains("sample-detail"));
    assert!(!html.contains("29/30"));
}

async fn public_page_detail_setting(backend: Backend) {
    let Some((t, _sink, clock)) = app_with(backend, true).await else {
        return;
    };
    add_x(&t, None).await;
    submit_rounds(&t, &clock).await;
    let html = t.get(&format!("/scores/{X}")).await.text();
    assert!(html.contains("data-verdict=\"rate-limited\""), "{html}");
    let at = html.find("id=\"sample-positions\"").expect("the detail");
    let table = &html[at..at + html[at..].find("</table>").unwrap()];
    // Overall only: 29 of 30 first samples, none after.
    assert!(
        table.contains("97 %") && table.matches("0 %").count() == 3,
        "{table}"
    );
    assert!(!html.contains("sample-detail"));
    assert!(!html.contains("mon-a</td><td class=\"num\">10"));
}
