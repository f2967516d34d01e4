//! Automatic traceroutes through the monitor API, on SQLite and PostgreSQL:
//! a change of a monitor's view of a server asks that monitor and a monitor
//! that sees the server well for a traceroute in their next work answer;
//! they send it back and the server's page shows it.

mod common;

use api::{CheckResult, Submission};
use axum::http::{Method, StatusCode};
use common::{Backend, TestApp, good_results, now};
use serde_json::{Value, json};
use server::ServerConfig;
use store::testing::StoreTesting as _;
use store::{GlobalStatus, ResultIn};

on_both_backends!(
    transition_to_page,
    unrequested_conflicts,
    bad_bodies,
    requests_in_idle_work,
    many_changes_at_once
);

const PATH: &str = "/api/v1/monitor/traceroute";

/// Give `monitor_id` a healthy score (≥ 10) for `server_id` straight
/// through the store.
async fn make_healthy(t: &TestApp, monitor_id: i64, server_id: i64) {
    let start = now() - 100;
    for i in 0..16 {
        let ts = start + i;
        let seq = t
            .store()
            .create_batch(monitor_id, &[server_id], ts)
            .await
            .unwrap();
        let r = ResultIn {
            server_id,
            ts,
            offset: Some(0.001),
            rtt: Some(0.02),
            stratum: Some(2),
            leap: Some(0),
            refid: Some("GPS".into()),
            error: None,
            no_response: false,
        };
        t.store()
            .submit_results(monitor_id, seq, &[r], ts)
            .await
            .unwrap();
    }
}

fn hops() -> Value {
    json!([
        {"ttl": 1, "ip": "10.0.0.1", "rtt_ms": [0.3, 0.4], "sent": 2},
        {"ttl": 2, "ip": null, "rtt_ms": [], "sent": 2},
        {"ttl": 3, "ip": "192.0.2.1", "rtt_ms": [12.5, 13.0], "sent": 2}
    ])
}

fn trace_body(ip: &str) -> Value {
    json!({"ip": ip, "ts": now() - 2, "tool": "mtr", "hops": hops(), "error": null})
}

async fn transition_to_page(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    let s = t.add_server("192.0.2.1").await;
    let (a, key_a) = t.add_monitor("mon-a", GlobalStatus::Active).await;
    let (b, key_b) = t.add_monitor("mon-b", GlobalStatus::Testing).await;
    make_healthy(&t, b.id, s.id).await;
    make_healthy(&t, a.id, s.id).await;

    // mon-a's next result is a timeout: its view changes.
    let work = t.work(&key_a).await;
    assert_eq!(work.servers.len(), 1);
    assert!(work.traceroutes.is_empty());
    let mut sub = good_results(&work);
    let r = &mut sub.results[0];
    (r.offset, r.rtt, r.stratum, r.leap, r.refid) = (None, None, None, None, None);
    r.error = Some("i/o timeout".into());
    r.no_response = true;
    let resp = t.submit(&key_a, &sub).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());

    // Both monitors are asked, in their next (idle) work answer.
    let reason = "monitor mon-a: healthy → i/o timeout";
    let wa = t.work(&key_a).await;
    assert!(wa.servers.is_empty());
    assert_eq!(wa.traceroutes.len(), 1, "{wa:?}");
    assert_eq!(wa.traceroutes[0].ip, "192.0.2.1");
    assert_eq!(wa.traceroutes[0].reason, reason);
    let wb = t.work(&key_b).await;
    assert_eq!(wb.traceroutes.len(), 1, "{wb:?}");
    assert_eq!(wb.traceroutes[0].reason, reason);
    // Handed out once, not with every work call.
    assert!(t.work(&key_a).await.traceroutes.is_empty());

    // Rate limit: another change within 20 minutes asks for nothing new.
    let seq = t.store().create_batch(a.id, &[s.id], now()).await.unwrap();
    let batch_id = server::batch_id_text(seq);
    let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let refused = Submission {
        batch_id: batch_id.clone(),
        results: vec![CheckResult {
            ip,
            ticket: t.state.tickets().sign(a.id, &batch_id, ip),
            ts: now(),
            offset: None,
            rtt: None,
            stratum: None,
            leap: None,
            refid: None,
            error: Some("connection refused".into()),
            no_response: false,
            samples: vec![],
        }],
    };
    let resp = t.submit(&key_a, &refused).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert!(
        t.work(&key_a).await.traceroutes.is_empty(),
        "the pair was asked less than 20 minutes ago"
    );
    assert!(t.work(&key_b).await.traceroutes.is_empty());

    // mon-a answers: stored; a second answer is refused.
    let r = t
        .monitor_call(
            Method::POST,
            PATH,
            Some(&key_a),
            Some(&trace_body("192.0.2.1")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({"stored": true}));
    let r = t
        .monitor_call(
            Method::POST,
            PATH,
            Some(&key_a),
            Some(&trace_body("192.0.2.1")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    // mon-b has no tool.
    let failed = json!({"ip": "192.0.2.1", "ts": now() - 1, "tool": "none", "hops": [],
        "error": "neither mtr nor traceroute is installed; install mtr-tiny or traceroute <b>"});
    let r = t
        .monitor_call(Method::POST, PATH, Some(&key_b), Some(&failed))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let rows = t.store().latest_traceroutes(s.id).await.unwrap();
    assert_eq!(rows.len(), 2);
    let mine = rows.iter().find(|r| r.monitor_id == a.id).unwrap();
    assert_eq!(mine.reason, reason);
    assert_eq!(mine.hops.len(), 3);
    assert_eq!(mine.hops[1].ip, None);

    // The page shows both side by side.
    let page = t.get("/scores/192.0.2.1").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    let at = html
        .find("id=\"traceroutes\"")
        .expect("traceroutes section");
    let sec = &html[at..];
    assert!(sec.contains("class=\"traces\""), "{sec}");
    assert!(sec.contains(&format!("data-monitor=\"{}\"", a.id)));
    assert!(sec.contains(&format!("data-monitor=\"{}\"", b.id)));
    assert!(sec.contains("mon-a") && sec.contains("mon-b"));
    assert!(
        sec.contains("10.0.0.1") && sec.contains("12.5 / 13.0 ms"),
        "{sec}"
    );
    assert!(sec.contains("monitor mon-a: healthy → i/o timeout"));
    assert!(
        sec.contains("install mtr-tiny or traceroute &lt;b&gt;"),
        "{sec}"
    );
    assert!(!sec.contains("<b>"));

    let m = t.get("/metrics").await.text();
    assert!(m.contains("poolwatch_traceroutes_requested_total 2"), "{m}");
    assert!(m.contains("poolwatch_traceroutes_stored_total 2"), "{m}");
}

async fn unrequested_conflicts(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    t.add_server("192.0.2.1").await;
    let (_, key) = t.add_monitor("mon-a", GlobalStatus::Active).await;
    let (_, paused) = t.add_monitor("mon-p", GlobalStatus::Paused).await;
    let body = trace_body("192.0.2.1");
    assert_eq!(
        t.monitor_call(Method::POST, PATH, None, Some(&body))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.monitor_call(Method::POST, PATH, Some(&paused), Some(&body))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    for ip in ["192.0.2.1", "192.0.2.77"] {
        let r = t
            .monitor_call(Method::POST, PATH, Some(&key), Some(&trace_body(ip)))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
        assert!(r.error_detail().contains("ip"), "{}", r.text());
    }
}

async fn bad_bodies(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    let s = t.add_server("192.0.2.1").await;
    let (m, key) = t.add_monitor("mon-a", GlobalStatus::Active).await;
    t.store()
        .request_traceroute(s.id, m.id, "test", now())
        .await
        .unwrap();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = trace_body("192.0.2.1");
        f(&mut v);
        v
    };
    let many: Vec<Value> = (1..=65)
        .map(|i| json!({"ttl": i.min(64), "ip": null, "rtt_ms": [], "sent": 2}))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        (with(&|v| v["hops"][0]["ttl"] = json!(0)), "hops[0].ttl"),
        (with(&|v| v["hops"][2]["ttl"] = json!(65)), "hops[2].ttl"),
        (
            with(&|v| v["hops"][0]["rtt_ms"] = json!([1.0, -2.0])),
            "hops[0].rtt_ms[1]",
        ),
        (
            with(&|v| v["hops"][0]["rtt_ms"] = json!(["x"])),
            "hops[0].rtt_ms",
        ),
        (with(&|v| v["hops"] = json!(many)), "hops"),
        (with(&|v| v["tool"] = json!("t".repeat(33))), "tool"),
        (with(&|v| v["tool"] = json!("")), "tool"),
        (with(&|v| v["error"] = json!("e".repeat(257))), "error"),
        (with(&|v| v["ip"] = json!("not-an-ip")), "ip"),
        (with(&|v| v["ts"] = json!(now() + 3600)), "ts"),
        (
            with(&|v| v["hops"][0]["ip"] = json!("10.0.0.300")),
            "hops[0].ip",
        ),
    ];
    for (body, field) in cases {
        let r = t
            .monitor_call(Method::POST, PATH, Some(&key), Some(&body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.text());
        let d = r.error_detail();
        assert!(d.starts_with(field), "{field}: {d}");
    }
    // Nothing was stored, and the request is still open.
    assert!(t.store().latest_traceroutes(s.id).await.unwrap().is_empty());
    let r = t
        .monitor_call(
            Method::POST,
            PATH,
            Some(&key),
            Some(&trace_body("192.0.2.1")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

async fn requests_in_idle_work(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    let mut ids = Vec::new();
    for ip in [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
        "192.0.2.4",
        "192.0.2.5",
    ] {
        ids.push(t.add_server(ip).await.id);
    }
    let (m, key) = t.add_monitor("mon-a", GlobalStatus::Active).await;
    // Take the due work first, so the next answers are idle.
    let w = t.work(&key).await;
    assert_eq!(w.servers.len(), 5);
    for (i, id) in ids.iter().enumerate() {
        t.store()
            .request_traceroute(*id, m.id, &format!("r{i}"), now() - 10 + i as i64)
            .await
            .unwrap();
    }
    // At most four per answer, oldest first; the rest with the next call.
    let w = t.work(&key).await;
    assert!(w.servers.is_empty() && w.retry_after_s > 0);
    let got: Vec<_> = w.traceroutes.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(got, ["r0", "r1", "r2", "r3"]);
    let w = t.work(&key).await;
    assert_eq!(w.traceroutes.len(), 1);
    assert_eq!(w.traceroutes[0].ip, "192.0.2.5");
    assert!(t.work(&key).await.traceroutes.is_empty());
}

/// A monitor whose own link fails sees every server change in one batch:
/// only the first few changes are traced (for it and for the monitor that
/// still sees them), the rest of the batch is stored as usual.
async fn many_changes_at_once(backend: Backend) {
    let cfg = ServerConfig {
        batch_size: 100,
        ..ServerConfig::default()
    };
    let t = app_or_skip!(backend, cfg);
    t.seed_zones().await;
    let n = server::TRANSITIONS_TRACED_PER_SUBMISSION + 4;
    let (a, key_a) = t.add_monitor("mon-a", GlobalStatus::Active).await;
    let (b, _) = t.add_monitor("mon-b", GlobalStatus::Active).await;
    let mut servers = Vec::new();
    for i in 0..n {
        let s = t.add_server(&format!("192.0.2.{}", i + 1)).await;
        make_healthy(&t, a.id, s.id).await;
        make_healthy(&t, b.id, s.id).await;
        servers.push(s.id);
    }
    let work = t.work(&key_a).await;
    assert_eq!(work.servers.len(), n);
    let mut sub = good_results(&work);
    for r in &mut sub.results {
        (r.offset, r.rtt, r.stratum, r.leap, r.refid) = (None, None, None, None, None);
        r.error = Some("i/o timeout".into());
        r.no_response = true;
    }
    let resp = t.submit(&key_a, &sub).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let v: Value = serde_json::from_str(&resp.text()).unwrap();
    assert_eq!(v["accepted"], n, "{v}");
    let traced = server::TRANSITIONS_TRACED_PER_SUBMISSION;
    for m in [a.id, b.id] {
        let got = t
            .store()
            .take_traceroute_requests(m, now(), 100)
            .await
            .unwrap();
        assert_eq!(got.len(), traced, "monitor {m}: {got:?}");
        assert!(
            got.iter()
                .all(|r| r.2 == "monitor mon-a: healthy → i/o timeout")
        );
    }
}
