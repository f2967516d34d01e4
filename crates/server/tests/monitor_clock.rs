//! `POST /api/v1/monitor/clock`: agents report their clock sanity check and
//! `/monitors` shows it, on SQLite and PostgreSQL.

mod common;

use axum::http::{Method, StatusCode};
use common::Backend;
use server::ServerConfig;
use store::GlobalStatus;

on_both_backends!(clock_reports);

async fn clock_reports(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (m, key) = t.add_monitor("zrh", GlobalStatus::Active).await;
    let row = |body: &str| {
        let at = body
            .find(&format!("<tr data-monitor=\"{}\">", m.id))
            .expect("row");
        body[at..at + body[at..].find("</tr>").unwrap()].to_string()
    };
    assert!(
        row(&t.get("/monitors").await.text()).contains("<td class=\"clock-unknown\">unknown</td>")
    );

    let path = "/api/v1/monitor/clock";
    let failing =
        serde_json::json!({"ok": false, "detail": "2 of 3 reference server(s) disagree <b>"});
    assert_eq!(
        t.monitor_call(Method::POST, path, None, Some(&failing))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = t
        .monitor_call(
            Method::POST,
            path,
            Some(&key),
            Some(&serde_json::json!({"ok": "yes"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error_detail().contains("ok"), "{}", r.text());
    let long = serde_json::json!({"ok": true, "detail": "x".repeat(1001)});
    assert_eq!(
        t.monitor_call(Method::POST, path, Some(&key), Some(&long))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert!(
        row(&t.get("/monitors").await.text()).contains("clock-unknown"),
        "a refused report stores nothing"
    );

    assert_eq!(
        t.monitor_call(Method::POST, path, Some(&key), Some(&failing))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = row(&t.get("/monitors").await.text());
    assert!(
        r.contains("class=\"clock-failing\"") && r.contains("disagree &lt;b&gt;"),
        "{r}"
    );
    let ok = serde_json::json!({"ok": true, "detail": "clock agrees with 3 reference server(s)"});
    assert_eq!(
        t.monitor_call(Method::POST, path, Some(&key), Some(&ok))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(row(&t.get("/monitors").await.text()).contains("class=\"clock-ok\""));
}
