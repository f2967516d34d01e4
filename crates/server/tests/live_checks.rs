//! Live checks through the monitor API, on SQLite and PostgreSQL: the
//! requests go out with the asked monitors' work answers (idle ones too),
//! each asked monitor answers once, and every other answer is refused with
//! nothing stored.

mod common;

use axum::http::{Method, StatusCode};
use common::{Backend, TestApp, now};
use serde_json::{Value, json};
use server::ServerConfig;
use store::GlobalStatus;

on_both_backends!(handed_out_and_answered_once, bad_reports_store_nothing);

const PATH: &str = "/api/v1/monitor/live-check";

fn report(id: &str, ip: &str) -> Value {
    json!({"id": id, "ip": ip, "ts": now() - 1, "offset": 0.0025, "rtt": 0.0125,
           "stratum": 2, "leap": 0, "refid": "GPS", "error": null, "no_response": false})
}

/// Monitors a and b (active) and c (testing), each having called once so
/// they count as seen; a live check of 198.51.100.7 asked of a and b.
async fn setup(t: &TestApp) -> (store::LiveCheckRow, [(i64, String); 3]) {
    let mut ms = Vec::new();
    for (name, status) in [
        ("mon-a", GlobalStatus::Active),
        ("mon-b", GlobalStatus::Active),
        ("mon-c", GlobalStatus::Testing),
    ] {
        let (m, key) = t.add_monitor(name, status).await;
        assert!(t.work(&key).await.live_checks.is_empty());
        ms.push((m.id, key));
    }
    let acct = t.store().ensure_account("op").await.unwrap();
    let check = t
        .store()
        .create_live_check(acct, "198.51.100.7".parse().unwrap(), now())
        .await
        .unwrap();
    let asked: Vec<i64> = check.monitors.iter().map(|m| m.monitor_id).collect();
    assert_eq!(asked, vec![ms[0].0, ms[1].0]);
    (check, ms.try_into().unwrap())
}

async fn post(t: &TestApp, key: &str, body: &Value) -> common::Resp {
    t.monitor_call(Method::POST, PATH, Some(key), Some(body))
        .await
}

async fn handed_out_and_answered_once(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (check, [(a, key_a), (_, key_b), (_, key_c)]) = setup(&t).await;
    let id = check.id.to_string();

    // In the next (idle) work answer of each asked monitor, once.
    let wa = t.work(&key_a).await;
    assert!(wa.servers.is_empty());
    assert_eq!(wa.live_checks.len(), 1, "{wa:?}");
    assert_eq!(
        (wa.live_checks[0].id.as_str(), wa.live_checks[0].ip.as_str()),
        (id.as_str(), "198.51.100.7")
    );
    assert!(t.work(&key_a).await.live_checks.is_empty());
    assert_eq!(t.work(&key_b).await.live_checks.len(), 1);
    assert!(t.work(&key_c).await.live_checks.is_empty());

    let r = post(&t, &key_a, &report(&id, "198.51.100.7")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    // Twice: refused, the first answer stays.
    let mut second = report(&id, "198.51.100.7");
    second["stratum"] = json!(16);
    let r = post(&t, &key_a, &second).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    // A monitor that was not asked: refused.
    let r = post(&t, &key_c, &report(&id, "198.51.100.7")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(r.error_detail().starts_with("id:"), "{}", r.error_detail());

    let mut timeout = report(&id, "198.51.100.7");
    for f in ["offset", "rtt", "stratum", "leap", "refid"] {
        timeout[f] = Value::Null;
    }
    timeout["error"] = json!("i/o timeout");
    timeout["no_response"] = json!(true);
    let r = post(&t, &key_b, &timeout).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());

    let row = t.store().live_check(check.id).await.unwrap().unwrap();
    let got_a = row.monitors.iter().find(|m| m.monitor_id == a).unwrap();
    let ans = got_a.answer.as_ref().unwrap();
    assert_eq!(
        (ans.stratum, ans.offset, ans.refid.as_deref()),
        (Some(2), Some(0.0025), Some("GPS"))
    );
    let got_b = row
        .monitors
        .iter()
        .find(|m| m.monitor_name == "mon-b")
        .unwrap();
    let ans = got_b.answer.as_ref().unwrap();
    assert_eq!(
        (ans.stratum, ans.error.as_deref(), ans.no_response),
        (None, Some("i/o timeout"), true)
    );
    assert!(row.finished(now()) && row.usable());
}

async fn bad_reports_store_nothing(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (check, [(a, key_a), ..]) = setup(&t).await;
    assert_eq!(t.work(&key_a).await.live_checks.len(), 1);
    let id = check.id.to_string();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = report(&id, "198.51.100.7");
        f(&mut v);
        v
    };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            with(&|v| v["id"] = json!("x1")),
            StatusCode::BAD_REQUEST,
            "id",
        ),
        (
            with(&|v| v["id"] = json!("0")),
            StatusCode::BAD_REQUEST,
            "id",
        ),
        (
            with(&|v| v["stratum"] = json!(17)),
            StatusCode::BAD_REQUEST,
            "stratum",
        ),
        (
            with(&|v| v["leap"] = json!(4)),
            StatusCode::BAD_REQUEST,
            "leap",
        ),
        (
            with(&|v| v["rtt"] = json!(-1.0)),
            StatusCode::BAD_REQUEST,
            "rtt",
        ),
        (
            with(&|v| v["ts"] = json!(now() + 3600)),
            StatusCode::BAD_REQUEST,
            "ts",
        ),
        (
            with(&|v| v["refid"] = json!("r".repeat(65))),
            StatusCode::BAD_REQUEST,
            "refid",
        ),
        (
            with(&|v| v["error"] = json!("e".repeat(257))),
            StatusCode::BAD_REQUEST,
            "error",
        ),
        (
            with(&|v| v["ip"] = json!("not-an-ip")),
            StatusCode::BAD_REQUEST,
            "ip",
        ),
        // Not the check's address.
        (
            with(&|v| v["ip"] = json!("198.51.100.8")),
            StatusCode::BAD_REQUEST,
            "ip",
        ),
        // Not a check of this service at all.
        (
            with(&|v| v["id"] = json!("999999")),
            StatusCode::NOT_FOUND,
            "id",
        ),
    ];
    for (body, status, field) in cases {
        let r = post(&t, &key_a, &body).await;
        assert_eq!(r.status, status, "{field}: {}", r.text());
        let d = r.error_detail();
        assert!(d.starts_with(field), "{field}: {d}");
    }
    // No key: 401.
    let r = t
        .monitor_call(Method::POST, PATH, None, Some(&report(&id, "198.51.100.7")))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Nothing stored: the good report is still the first answer.
    let row = t.store().live_check(check.id).await.unwrap().unwrap();
    assert!(row.monitors.iter().all(|m| m.answer.is_none()));
    let r = post(&t, &key_a, &report(&id, "198.51.100.7")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let row = t.store().live_check(check.id).await.unwrap().unwrap();
    let got = row.monitors.iter().find(|m| m.monitor_id == a).unwrap();
    assert_eq!(got.answer.as_ref().and_then(|x| x.stratum), Some(2));
}
