//! Client distribution over HTTP (issue 17 item 3), on SQLite and
//! PostgreSQL: `POST /api/dns-counts` (the DNS token; bad bodies 422
//! naming the field with nothing stored; idempotent by report id; unknown
//! addresses skipped), `GET /api/v1/servers/{ip}/dns` and `serve`'s own
//! loop (`dns_counts::record_loop`) fed by a closure.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Backend, CLIENT, DNS_TOKEN, Resp, TestApp, with_dns_zone};
use serde_json::{Value, json};
use server::Clock;
use std::sync::{Arc, Mutex};
use std::time::Duration;

on_both_backends!(
    counts_need_the_token,
    bad_bodies_are_422_and_store_nothing,
    a_report_is_stored_once,
    the_json_reads_a_window_of_days,
    the_loop_stores_every_harvest,
    housekeeping_drops_counts_past_the_retention,
);

/// The service's clock: 2027-01-15 08:00:00 UTC plus 20 minutes.
const NOW: i64 = 1_800_000_000;

async fn open(backend: Backend) -> Option<TestApp> {
    let db = common::TestDb::open(backend).await?;
    let t = TestApp::new(db, with_dns_zone(true)).with_clock(Clock::fixed(NOW));
    t.seed_zones().await;
    t.add_server("192.0.2.10").await;
    t.add_server("2001:db8::10").await;
    Some(t)
}

async fn post(t: &TestApp, token: Option<&str>, body: &Value) -> Resp {
    post_body(t, token, Body::from(body.to_string())).await
}

/// `POST /api/dns-counts` with these bytes (JSON or not).
async fn post_body(t: &TestApp, token: Option<&str>, body: Body) -> Resp {
    let auth = token.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    t.send_from(CLIENT, Method::POST, dns::COUNTS_PATH, &headers, body)
        .await
}

/// A report of one minute ending at `to`: 10 answers to `de`, 4 to
/// clients not located; 192.0.2.10 in 6 of the `de` answers.
fn report(id: &str, to: i64) -> Value {
    json!({
        "report_id": id,
        "instance": "dns-1",
        "from": to - 60,
        "to": to,
        "answers_by_country": {"de": 10, "-": 4},
        "servers": [
            {"ip": "192.0.2.10", "answers": {"de": 6}, "zone_answers": 14, "expected": 3.5},
            {"ip": "198.51.100.99", "answers": {"de": 1}, "zone_answers": 14, "expected": 1.0}
        ]
    })
}

async fn stored_reports(t: &TestApp) -> i64 {
    let r = t.get("/api/v1/servers/192.0.2.10/dns").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["answers"].as_i64().unwrap()
}

async fn counts_need_the_token(backend: Backend) {
    let Some(t) = open(backend).await else { return };
    let body = report("r1", NOW);
    for token in [None, Some("wrong-token-0123456789")] {
        let r = post(&t, token, &body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(r.json()["error"], "unauthorized");
    }
    assert_eq!(stored_reports(&t).await, 0);
    assert!(
        t.get("/metrics")
            .await
            .text()
            .contains("poolwatch_dns_counts_received_total{outcome=\"unauthorized\"} 2")
    );
    // Without a configured token nobody may post.
    let db = common::TestDb::open(backend).await.unwrap();
    let closed = TestApp::new(db, with_dns_zone(false)).with_clock(Clock::fixed(NOW));
    assert_eq!(
        post(&closed, Some(DNS_TOKEN), &body).await.status,
        StatusCode::NOT_FOUND
    );
    // The right token: stored.
    let r = post(&t, Some(DNS_TOKEN), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(stored_reports(&t).await, 6);
}

async fn bad_bodies_are_422_and_store_nothing(backend: Backend) {
    let Some(t) = open(backend).await else { return };
    type Bend = fn(&mut Value);
    let cases: &[(&str, Bend)] = &[
        ("report_id", |v| v["report_id"] = json!("")),
        ("from", |v| v["from"] = json!(NOW + 1)),
        ("to", |v| {
            v["to"] = json!(NOW + 3600);
            v["from"] = json!(NOW)
        }),
        ("to", |v| {
            v["to"] = json!(NOW - 16 * 86_400);
            v["from"] = json!(NOW - 16 * 86_400 - 60)
        }),
        ("answers_by_country.DE", |v| {
            v["answers_by_country"]["DE"] = json!(1)
        }),
        ("servers[0].answers.xyz", |v| {
            v["servers"][0]["answers"]["xyz"] = json!(1)
        }),
        ("servers[0].answers.de", |v| {
            v["servers"][0]["answers"]["de"] = json!(-1)
        }),
        ("servers[0].expected", |v| {
            v["servers"][0]["expected"] = json!(-0.5)
        }),
        ("servers[0].zone_answers", |v| {
            v["servers"][0]["zone_answers"] = json!("many")
        }),
        ("servers[1].ip", |v| {
            v["servers"][1]["ip"] = json!("192.0.2.10")
        }),
        ("servers[0].ip", |v| v["servers"][0]["ip"] = json!("pool")),
        ("servers", |v| {
            let one = v["servers"][0].clone();
            v["servers"] = Value::Array(
                (0..=dns::MAX_SERVERS_PER_REPORT)
                    .map(|i| {
                        let mut s = one.clone();
                        s["ip"] = json!(format!("10.0.{}.{}", i / 256, i % 256));
                        s
                    })
                    .collect(),
            )
        }),
    ];
    for (i, (field, bend)) in cases.iter().enumerate() {
        let mut body = report(&format!("bad-{i}"), NOW);
        bend(&mut body);
        let r = post(&t, Some(DNS_TOKEN), &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.text()
        );
        let detail = r.error_detail();
        assert!(
            detail.starts_with(&format!("{field}: ")),
            "{field}: {detail}"
        );
    }
    // Not JSON at all: 400.
    let r = post_body(&t, Some(DNS_TOKEN), Body::from("{\"report_id\": ")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // Over the cap: 413, before anything is parsed.
    let big = vec![b' '; server::dns_counts::report_body_cap() + 1];
    let r = post_body(&t, Some(DNS_TOKEN), Body::from(big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(stored_reports(&t).await, 0);
    // Every refused id is still free: the good report under one is new.
    let r = post(&t, Some(DNS_TOKEN), &report("bad-0", NOW)).await;
    assert_eq!(r.json()["new"], true);
    let metrics = t.get("/metrics").await.text();
    assert!(
        metrics.contains("poolwatch_dns_counts_received_total{outcome=\"invalid\"} 14"),
        "{metrics}"
    );
}

async fn a_report_is_stored_once(backend: Backend) {
    let Some(t) = open(backend).await else { return };
    let body = report("once", NOW - 30);
    let first = post(&t, Some(DNS_TOKEN), &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(
        first.json(),
        json!({"new": true, "servers": 1, "unknown": 1})
    );
    let again = post(&t, Some(DNS_TOKEN), &body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.json(),
        json!({"new": false, "servers": 0, "unknown": 0})
    );
    // Two at once: one of them is new.
    let body = report("raced", NOW - 20);
    let (a, b) = tokio::join!(
        post(&t, Some(DNS_TOKEN), &body),
        post(&t, Some(DNS_TOKEN), &body)
    );
    let news = [a.json()["new"].clone(), b.json()["new"].clone()];
    assert!(
        news.contains(&json!(true)) && news.contains(&json!(false)),
        "{news:?}"
    );
    let d = t.get("/api/v1/servers/192.0.2.10/dns").await.json();
    assert_eq!(d["answers"], 12);
    assert_eq!(d["zone_answers"], 28);
    assert_eq!(
        d["countries"],
        json!([{"country": "de", "answers": 12, "country_answers": 20, "permyriad": 6000.0}])
    );
    let metrics = t.get("/metrics").await.text();
    for line in [
        "poolwatch_dns_counts_received_total{outcome=\"stored\"} 2",
        "poolwatch_dns_counts_received_total{outcome=\"duplicate\"} 2",
        "poolwatch_dns_counts_received_servers_total{what=\"unknown\"} 2",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}

async fn the_json_reads_a_window_of_days(backend: Backend) {
    let Some(t) = open(backend).await else { return };
    // One report now, one 5 days ago.
    assert_eq!(
        post(&t, Some(DNS_TOKEN), &report("now", NOW)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        post(&t, Some(DNS_TOKEN), &report("old", NOW - 5 * 86_400))
            .await
            .status,
        StatusCode::OK
    );
    let d = t.get("/api/v1/servers/192.0.2.10/dns").await.json();
    assert_eq!(d["days"], 3);
    assert_eq!(d["answers"], 6);
    assert_eq!(d["share"], json!(6.0 / 14.0));
    assert_eq!(d["netspeed_share"], json!(3.5 / 14.0));
    let d = t.get("/api/v1/servers/192.0.2.10/dns?days=7").await.json();
    assert_eq!(
        (d["days"].clone(), d["answers"].clone()),
        (json!(7), json!(12))
    );
    // A server without counts: zeros, no shares.
    let d = t.get("/api/v1/servers/2001:db8::10/dns").await.json();
    assert_eq!(d["answers"], 0);
    assert_eq!(d["share"], Value::Null);
    assert_eq!(d["countries"], json!([]));
    for q in ["days=0", "days=15", "days=x", "days=3&days=4", "day=3"] {
        let r = t.get(&format!("/api/v1/servers/192.0.2.10/dns?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        let name = q.split('=').next().unwrap();
        assert!(
            r.error_detail().starts_with(name),
            "{q}: {}",
            r.error_detail()
        );
    }
    assert_eq!(
        t.get("/api/v1/servers/192.0.2.99/dns").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn the_loop_stores_every_harvest(backend: Backend) {
    let Some(t) = open(backend).await else { return };
    // Each harvest hands over one report with a new id (the third with a
    // count no database holds: refused and dropped, the rest go on).
    let handed = Arc::new(Mutex::new(Vec::<i64>::new()));
    let seq = Arc::new(Mutex::new(0u64));
    let harvest = {
        let (handed, seq) = (handed.clone(), seq.clone());
        move || {
            let mut n = seq.lock().unwrap();
            *n += 1;
            let mut r: dns::CountReport =
                serde_json::from_value(report(&format!("loop-{n}"), NOW)).unwrap();
            let answers = if *n == 3 { u64::MAX } else { *n };
            r.servers[0].answers.insert("de".into(), answers);
            if *n != 3 {
                handed.lock().unwrap().push(*n as i64);
            }
            vec![r]
        }
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(server::dns_counts::record_loop(
        t.store().clone(),
        Clock::fixed(NOW),
        Duration::from_millis(20),
        harvest,
        stop.clone(),
    ));
    // Until a few harvests went in (and the refused one is behind us).
    for _ in 0..500 {
        if *seq.lock().unwrap() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    task.await.unwrap();
    // The harvest at shutdown was stored too: everything handed over but
    // the refused one, once.
    let want: i64 = handed.lock().unwrap().iter().sum();
    assert!(*seq.lock().unwrap() >= 5, "a last harvest at shutdown");
    assert_eq!(stored_reports(&t).await, want);
}

async fn housekeeping_drops_counts_past_the_retention(backend: Backend) {
    use server::housekeeping_job::{HousekeepingSettings, pass};
    let Some(t) = open(backend).await else { return };
    assert_eq!(
        post(&t, Some(DNS_TOKEN), &report("kept", NOW)).await.status,
        StatusCode::OK
    );
    let settings = HousekeepingSettings {
        dns_count_retention: Duration::from_secs(3 * 86_400),
        ..HousekeepingSettings::default()
    };
    // Two days on: within the retention.
    let done = pass(&t.state, &settings, NOW + 2 * 86_400).await.unwrap();
    assert_eq!(done.dns_counts, 0);
    assert_eq!(stored_reports(&t).await, 6);
    // Four days on: the hour, its country totals and its report id go.
    let done = pass(&t.state, &settings, NOW + 4 * 86_400).await.unwrap();
    assert_eq!(
        done.dns_counts, 5,
        "hours, countries (2), server, report id"
    );
    let d = t.get("/api/v1/servers/192.0.2.10/dns?days=14").await.json();
    assert_eq!(d["answers"], 0);
    let text = t.get("/metrics").await.text();
    assert!(
        text.contains(r#"poolwatch_housekeeping_deleted_total{what="dns_counts"} 5"#),
        "{text}"
    );
}
