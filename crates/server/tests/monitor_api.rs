//! The monitor API's rules, each on SQLite and PostgreSQL: keys, statuses,
//! tickets, batch order, replays and malformed bodies.

mod common;

use axum::http::{Method, StatusCode};
use common::{Backend, good_results, now};
use serde_json::json;
use server::ServerConfig;
use server::keys::TicketSigner;
use store::testing::StoreTesting as _;
use store::{GlobalStatus, MonitorFilter};

fn cfg() -> ServerConfig {
    ServerConfig {
        reference_servers: vec!["ref1.example.net".into(), "ref2.example.net".into()],
        ..ServerConfig::default()
    }
}

on_both_backends!(
    keys_and_statuses,
    config_and_last_seen,
    work_submit_and_score,
    forged_ticket_stores_nothing,
    server_not_in_batch_stores_nothing,
    other_monitors_batch_is_forbidden,
    older_batch_conflicts,
    replay_is_stored_once,
    malformed_bodies_name_the_field,
    oversized_body,
    idle_monitor_gets_no_batch,
);

async fn keys_and_statuses(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    let path = "/api/v1/monitor/config";
    // No key.
    let r = t.monitor_call(Method::GET, path, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("www-authenticate"), "Bearer");
    r.error_detail();
    // Unknown key, and a malformed header.
    let r = t
        .monitor_call(Method::GET, path, Some("pwk_0000"), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t
        .send_from(
            common::CLIENT,
            Method::GET,
            path,
            &[("authorization", "Basic dXNlcjpwYXNz")],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Every status: only testing and active may work; a deleted (revoked)
    // monitor's key no longer authenticates.
    for (i, (status, want)) in [
        (GlobalStatus::Active, StatusCode::OK),
        (GlobalStatus::Testing, StatusCode::OK),
        (GlobalStatus::Pending, StatusCode::FORBIDDEN),
        (GlobalStatus::Paused, StatusCode::FORBIDDEN),
        (GlobalStatus::Deleted, StatusCode::UNAUTHORIZED),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, key) = t.add_monitor(&format!("mon-{i}"), status).await;
        for (method, p) in [(Method::GET, path), (Method::POST, "/api/v1/monitor/work")] {
            let r = t.monitor_call(method, p, Some(&key), None).await;
            assert_eq!(r.status, want, "{status} {p}: {}", r.text());
        }
        // A wrong key is refused whatever the monitor's status.
        let wrong = format!("{}x", &key);
        let r = t.monitor_call(Method::GET, path, Some(&wrong), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Pausing an active monitor takes effect at once.
    let (m, key) = t.add_monitor("pause-me", GlobalStatus::Active).await;
    assert_eq!(
        t.monitor_call(Method::GET, path, Some(&key), None)
            .await
            .status,
        StatusCode::OK
    );
    t.store()
        .set_monitor_status(&m.name, GlobalStatus::Paused)
        .await
        .unwrap();
    let r = t.monitor_call(Method::GET, path, Some(&key), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.error_detail().contains("paused"), "{}", r.text());
}

async fn config_and_last_seen(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    let (m, key) = t.add_monitor("cfg-mon", GlobalStatus::Active).await;
    assert_eq!(m.last_seen, None);
    let r = t
        .monitor_call(Method::GET, "/api/v1/monitor/config", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(
        v,
        json!({
            "name": "cfg-mon",
            "ip": "192.0.2.200",
            "samples": 4,
            "sample_interval_ms": 2000,
            "timeout_ms": 3000,
            "reference_servers": ["ref1.example.net", "ref2.example.net"],
            "batch_size": 10,
        })
    );
    let m = t.store().monitor_by_name("cfg-mon").await.unwrap().unwrap();
    assert!(m.last_seen.is_some_and(|s| (s - now()).abs() < 5));
    assert_eq!(
        m.client_version.as_deref(),
        Some("poolwatch-agent/test-1.2")
    );
    // Per-monitor overrides.
    t.store()
        .set_monitor_config("cfg-mon", Some(r#"{"samples": 2, "batch_size": 50}"#))
        .await
        .unwrap();
    let v = t
        .monitor_call(Method::GET, "/api/v1/monitor/config", Some(&key), None)
        .await
        .json();
    assert_eq!(v["samples"], 2);
    assert_eq!(v["batch_size"], 50);
    assert_eq!(v["timeout_ms"], 3000);
}

async fn work_submit_and_score(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    t.seed_zones().await;
    let a = t.add_server("192.0.2.1").await;
    let b = t.add_server("192.0.2.2").await;
    let (m, key) = t.add_monitor("worker", GlobalStatus::Active).await;
    let work = t.work(&key).await;
    assert_eq!(work.batch_id.len(), 20);
    assert!(work.batch_id.bytes().all(|c| c.is_ascii_digit()));
    assert_eq!(work.retry_after_s, 0);
    let mut ips: Vec<&str> = work.servers.iter().map(|s| s.ip.as_str()).collect();
    ips.sort();
    assert_eq!(ips, ["192.0.2.1", "192.0.2.2"]);
    for s in &work.servers {
        assert_eq!(s.ticket.len(), 64, "hex HMAC-SHA256");
    }
    // Nothing more is due right away.
    let again = t.work(&key).await;
    assert!(again.servers.is_empty());

    let r = t.submit(&key, &good_results(&work)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({"accepted": 2, "duplicate": false}));
    for s in [&a, &b] {
        let rows = t
            .store()
            .log_rows(s.id, MonitorFilter::Monitor(m.id), 10, None)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].step, 1.0);
        assert_eq!(rows[0].offset, Some(0.001));
    }
    let m = t.store().monitor_by_id(m.id).await.unwrap().unwrap();
    assert_eq!(
        m.last_submit_batch,
        Some(server::parse_batch_id(&work.batch_id).unwrap())
    );
}

async fn forged_ticket_stores_nothing(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    t.seed_zones().await;
    t.add_server("192.0.2.1").await;
    t.add_server("192.0.2.2").await;
    let (_, key) = t.add_monitor("forger", GlobalStatus::Active).await;
    let work = t.work(&key).await;
    let before = t.log_count().await;

    // One ticket altered, one made with another secret, one missing.
    let mut sub = good_results(&work);
    let mut chars: Vec<char> = sub.results[1].ticket.chars().collect();
    chars[0] = if chars[0] == 'a' { 'b' } else { 'a' };
    sub.results[1].ticket = chars.into_iter().collect();
    let r = t.submit(&key, &sub).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(
        r.error_detail().contains("results[1].ticket"),
        "{}",
        r.text()
    );

    let mut sub = good_results(&work);
    let other = TicketSigner::new(b"not the service's secret");
    let m = t.store().monitor_by_name("forger").await.unwrap().unwrap();
    sub.results[0].ticket = other.sign(m.id, &work.batch_id, sub.results[0].ip);
    assert_eq!(t.submit(&key, &sub).await.status, StatusCode::FORBIDDEN);

    let mut sub = good_results(&work);
    sub.results[0].ticket = String::new();
    assert_eq!(t.submit(&key, &sub).await.status, StatusCode::FORBIDDEN);

    assert_eq!(
        t.log_count().await,
        before,
        "a rejected submission stores nothing"
    );
    let m = t.store().monitor_by_name("forger").await.unwrap().unwrap();
    assert_eq!(m.last_submit_batch, None);
    // The honest submission still goes through afterwards.
    let r = t.submit(&key, &good_results(&work)).await;
    assert_eq!(r.json()["accepted"], 2);
}

async fn server_not_in_batch_stores_nothing(backend: Backend) {
    // Batches of one, so each server lands in its own batch.
    let t = app_or_skip!(
        backend,
        ServerConfig {
            batch_size: 1,
            ..cfg()
        }
    );
    t.seed_zones().await;
    t.add_server("192.0.2.1").await;
    t.add_server("192.0.2.2").await;
    t.add_server("192.0.2.3").await;
    let (m, key) = t.add_monitor("sneaky", GlobalStatus::Active).await;
    let w1 = t.work(&key).await;
    let w2 = t.work(&key).await;
    let before = t.log_count().await;

    // A valid ticket from batch 2, submitted under batch 1.
    let mut sub = good_results(&w1);
    let mut extra = good_results(&w2).results.remove(0);
    extra.ticket = w2.servers[0].ticket.clone();
    sub.results.push(extra.clone());
    let r = t.submit(&key, &sub).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    // Even a correctly signed ticket (as if the secret had leaked) for a
    // server never issued in this batch is refused by the batch record.
    let signer = TicketSigner::new(&t.state.cfg().ticket_secret);
    let mut sub = good_results(&w1);
    let mut unissued = extra;
    let issued = [w1.servers[0].ip.as_str(), w2.servers[0].ip.as_str()];
    let never = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        .into_iter()
        .find(|ip| !issued.contains(ip))
        .unwrap();
    unissued.ip = never.parse().unwrap();
    unissued.ticket = signer.sign(m.id, &w1.batch_id, unissued.ip);
    sub.results.push(unissued.clone());
    let r = t.submit(&key, &sub).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.error_detail().contains("results[1].ip"), "{}", r.text());

    // A server that is not registered at all.
    let mut sub = good_results(&w1);
    unissued.ip = "192.0.2.99".parse().unwrap();
    unissued.ticket = signer.sign(m.id, &w1.batch_id, unissued.ip);
    sub.results.push(unissued);
    assert_eq!(t.submit(&key, &sub).await.status, StatusCode::FORBIDDEN);

    // An unknown batch id.
    let mut sub = good_results(&w1);
    sub.batch_id = server::batch_id_text(999_999);
    assert_eq!(t.submit(&key, &sub).await.status, StatusCode::FORBIDDEN);

    assert_eq!(t.log_count().await, before);
    assert_eq!(
        t.store()
            .monitor_by_id(m.id)
            .await
            .unwrap()
            .unwrap()
            .last_submit_batch,
        None
    );
}

async fn other_monitors_batch_is_forbidden(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    t.seed_zones().await;
    t.add_server("192.0.2.1").await;
    let (_, key_a) = t.add_monitor("mon-a", GlobalStatus::Active).await;
    let (_, key_b) = t.add_monitor("mon-b", GlobalStatus::Active).await;
    let work_a = t.work(&key_a).await;
    let before = t.log_count().await;
    // B submits A's batch with A's tickets: the tickets are bound to A.
    let r = t.submit(&key_b, &good_results(&work_a)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(t.log_count().await, before);
}

async fn older_batch_conflicts(backend: Backend) {
    let t = app_or_skip!(
        backend,
        ServerConfig {
            batch_size: 1,
            ..cfg()
        }
    );
    t.seed_zones().await;
    t.add_server("192.0.2.1").await;
    t.add_server("192.0.2.2").await;
    let (_, key) = t.add_monitor("orderly", GlobalStatus::Active).await;
    let w1 = t.work(&key).await;
    let w2 = t.work(&key).await;
    assert!(w1.batch_id < w2.batch_id, "batch ids order as text");
    let r = t.submit(&key, &good_results(&w2)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let before = t.log_count().await;
    let r = t.submit(&key, &good_results(&w1)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.error_detail().contains("batch_id"), "{}", r.text());
    assert_eq!(t.log_count().await, before);
}

async fn replay_is_stored_once(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    t.seed_zones().await;
    let s = t.add_server("192.0.2.1").await;
    let (m, key) = t.add_monitor("replayer", GlobalStatus::Active).await;
    let work = t.work(&key).await;
    let sub = good_results(&work);
    let first = t.submit(&key, &sub).await;
    assert_eq!(first.json(), json!({"accepted": 1, "duplicate": false}));
    let after_first = t.log_count().await;
    let score = t.store().server_by_id(s.id).await.unwrap().unwrap().score;
    for _ in 0..2 {
        let again = t.submit(&key, &sub).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.json(), json!({"accepted": 0, "duplicate": true}));
    }
    assert_eq!(t.log_count().await, after_first);
    let rows = t
        .store()
        .log_rows(s.id, MonitorFilter::Monitor(m.id), 10, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        t.store().server_by_id(s.id).await.unwrap().unwrap().score,
        score
    );
}

async fn malformed_bodies_name_the_field(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    t.seed_zones().await;
    t.add_server("192.0.2.1").await;
    let (_, key) = t.add_monitor("sloppy", GlobalStatus::Active).await;
    let work = t.work(&key).await;
    let good = serde_json::to_value(good_results(&work)).unwrap();
    let before = t.log_count().await;
    let path = "/api/v1/monitor/results";

    let raw = t
        .send_from(
            common::CLIENT,
            Method::POST,
            path,
            &[
                ("authorization", &format!("Bearer {key}")),
                ("content-type", "application/json"),
            ],
            axum::body::Body::from("{\"batch_id\": \"1\", \"results\": [ oops"),
        )
        .await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert!(
        raw.error_detail().contains("malformed JSON"),
        "{}",
        raw.text()
    );

    let mut cases = Vec::new();
    let mut v = good.clone();
    v["results"][0]["ts"] = json!("yesterday");
    cases.push((v, "results[0].ts"));
    let mut v = good.clone();
    v["results"][0]["offset"] = json!("0.1");
    cases.push((v, "results[0].offset"));
    let mut v = good.clone();
    v["results"][0]["stratum"] = json!(300);
    cases.push((v, "results[0].stratum"));
    let mut v = good.clone();
    v["results"][0]["stratum"] = json!(17);
    cases.push((v, "results[0].stratum"));
    let mut v = good.clone();
    v["results"][0]["leap"] = json!(4);
    cases.push((v, "results[0].leap"));
    let mut v = good.clone();
    v["results"][0]["ip"] = json!("not-an-ip");
    cases.push((v, "results[0].ip"));
    let mut v = good.clone();
    v["results"][0]["rtt"] = json!(-1.0);
    cases.push((v, "results[0].rtt"));
    let mut v = good.clone();
    v["results"][0]["ts"] = json!(now() + 86_400);
    cases.push((v, "results[0].ts"));
    let mut v = good.clone();
    v["results"][0]["no_response"] = json!("yes");
    cases.push((v, "results[0].no_response"));
    let mut v = good.clone();
    v["results"][0].as_object_mut().unwrap().remove("ticket");
    cases.push((v, "ticket"));
    let mut v = good.clone();
    v["results"] = json!({});
    cases.push((v, "results"));
    let mut v = good.clone();
    v["results"] = json!([]);
    cases.push((v, "results"));
    let mut v = good.clone();
    v["batch_id"] = json!(12);
    cases.push((v, "batch_id"));
    let mut v = good.clone();
    v["batch_id"] = json!("12abc");
    cases.push((v, "batch_id"));
    let mut v = good.clone();
    let dup = v["results"][0].clone();
    v["results"].as_array_mut().unwrap().push(dup);
    cases.push((v, "results[1].ip"));
    cases.push((json!([1, 2]), "body"));

    for (body, field) in cases {
        let r = t
            .monitor_call(Method::POST, path, Some(&key), Some(&body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.text());
        let detail = r.error_detail();
        assert!(detail.contains(field), "{field} not named in {detail:?}");
    }
    assert_eq!(t.log_count().await, before);
}

async fn oversized_body(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    let (_, key) = t.add_monitor("chatty", GlobalStatus::Active).await;
    let big = json!({"batch_id": "1", "results": [], "pad": "x".repeat(1 << 20)});
    let r = t
        .monitor_call(
            Method::POST,
            "/api/v1/monitor/results",
            Some(&key),
            Some(&big),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.error_detail().contains("1048576"), "{}", r.text());
    // Just under the limit is read (and then refused for its content).
    let ok = json!({"batch_id": "1", "results": [], "pad": "x".repeat((1 << 20) - 100)});
    let r = t
        .monitor_call(
            Method::POST,
            "/api/v1/monitor/results",
            Some(&key),
            Some(&ok),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
}

async fn idle_monitor_gets_no_batch(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    let (_, key) = t.add_monitor("idle", GlobalStatus::Active).await;
    let w = t.work(&key).await;
    assert_eq!(w.batch_id, "");
    assert!(w.servers.is_empty());
    assert_eq!(w.retry_after_s, 60);
}
