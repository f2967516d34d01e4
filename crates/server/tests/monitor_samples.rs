//! Every sample of a check (issue 15) through the monitor API, on SQLite
//! and PostgreSQL: stored with the result, results without samples still
//! accepted, and a bad sample field refused (400 naming
//! `results[i].samples[j].field`) with nothing stored.

mod common;

use axum::http::{Method, StatusCode};
use common::{Backend, good_results};
use serde_json::json;
use server::ServerConfig;
use store::GlobalStatus;

on_both_backends!(
    samples_stored_with_the_result,
    bad_sample_fields_name_the_field
);

fn samples() -> Vec<api::Sample> {
    vec![
        api::Sample {
            position: 0,
            send_ms: 0,
            answered: true,
            rtt: Some(0.020),
            offset: Some(0.001),
            stratum: Some(2),
            leap: Some(0),
            error: None,
        },
        api::Sample {
            position: 1,
            send_ms: 4_001,
            answered: true,
            rtt: Some(0.019),
            offset: None,
            stratum: Some(0),
            leap: Some(3),
            error: Some("RATE".into()),
        },
        api::Sample {
            position: 2,
            send_ms: 6_002,
            answered: false,
            rtt: None,
            offset: None,
            stratum: None,
            leap: None,
            error: Some("i/o timeout".into()),
        },
    ]
}

async fn samples_stored_with_the_result(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    let a = t.add_server("192.0.2.1").await;
    let b = t.add_server("192.0.2.2").await;
    let (m, key) = t.add_monitor("m1", GlobalStatus::Active).await;
    let work = t.work(&key).await;
    let mut sub = good_results(&work);
    let ia = sub
        .results
        .iter()
        .position(|r| r.ip.to_string() == "192.0.2.1")
        .unwrap();
    // One result with its samples, the other without (an older agent).
    sub.results[ia].samples = samples();
    let r = t.submit(&key, &sub).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let got = t
        .store()
        .samples(a.id, Some(m.id), 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ts, sub.results[ia].ts);
    let s = &got[0].samples;
    assert_eq!(s.len(), 3);
    assert_eq!(
        (s[0].answered, s[0].rtt_us, s[0].stratum, s[0].leap),
        (true, Some(20_000), Some(2), Some(0))
    );
    assert!((s[0].offset.unwrap() - 0.001).abs() < 1e-9);
    assert_eq!((s[1].send_ms, s[1].error.as_deref()), (4_001, Some("RATE")));
    assert_eq!(
        (s[2].answered, s[2].rtt_us, s[2].error.as_deref()),
        (false, None, Some("i/o timeout"))
    );
    assert!(
        t.store()
            .samples(b.id, None, 0, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    // The result itself went in as ever.
    assert!(t.log_count().await > 0);
}

async fn bad_sample_fields_name_the_field(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    let a = t.add_server("192.0.2.1").await;
    let (_, key) = t.add_monitor("m1", GlobalStatus::Active).await;
    let work = t.work(&key).await;
    let mut sub = good_results(&work);
    sub.results[0].samples = samples();
    let good = serde_json::to_value(&sub).unwrap();
    let before = t.log_count().await;

    let mut cases = Vec::new();
    let set = |j: usize, field: &str, v: serde_json::Value| {
        let mut body = good.clone();
        body["results"][0]["samples"][j][field] = v;
        body
    };
    cases.push((
        set(1, "position", json!(2)),
        "results[0].samples[1].position",
    ));
    cases.push((
        set(0, "send_ms", json!(60_001)),
        "results[0].samples[0].send_ms",
    ));
    cases.push((set(0, "rtt", json!(61.0)), "results[0].samples[0].rtt"));
    cases.push((set(2, "offset", json!(2e9)), "results[0].samples[2].offset"));
    cases.push((
        set(0, "stratum", json!(17)),
        "results[0].samples[0].stratum",
    ));
    cases.push((set(0, "leap", json!(4)), "results[0].samples[0].leap"));
    cases.push((
        set(2, "error", json!("x".repeat(256))),
        "results[0].samples[2].error",
    ));
    cases.push((set(0, "answered", json!("yes")), "answered"));
    let mut many = good.clone();
    many["results"][0]["samples"] = json!(
        (0..17)
            .map(|p| json!({"position": p, "send_ms": 0, "answered": false}))
            .collect::<Vec<_>>()
    );
    cases.push((many, "results[0].samples: 17 given"));

    for (body, field) in cases {
        let r = t
            .monitor_call(
                Method::POST,
                "/api/v1/monitor/results",
                Some(&key),
                Some(&body),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.text());
        let detail = r.error_detail();
        assert!(detail.contains(field), "{field} not named in {detail:?}");
    }
    assert_eq!(t.log_count().await, before);
    assert!(
        t.store()
            .samples(a.id, None, 0, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    // The same batch, fixed, is then taken.
    let r = t.submit(&key, &sub).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        t.store()
            .samples(a.id, None, 0, i64::MAX)
            .await
            .unwrap()
            .len(),
        1
    );
}
