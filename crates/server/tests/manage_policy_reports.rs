//! The saved `policy replay` reports on the admin pages, on SQLite and
//! PostgreSQL: listed and shown (with the in-DNS chart) to admins, 404 for
//! everyone else and for unknown ids; stored text escaped.

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
#[macro_use]
#[path = "support/manage.rs"]
mod manage_support;

use axum::http::StatusCode;
use common::Backend;
use manage_support::*;
use scoring::Policy;
use server::policy_replay::{ChangedServer, PolicyReport, Report, ZoneReport};

on_both_backends!(reports_for_admins_only);

fn report() -> Report {
    let marks: Vec<i64> = (0..4).map(|h| T0 + h * 3600).collect();
    let zone = |mean, left| ZoneReport {
        zone: "de".into(),
        servers: 2,
        mean_in_dns: mean,
        left,
        joined: 0,
    };
    let strict = Policy::preset("all-must-answer").unwrap();
    Report {
        from: T0 - 12 * 3600,
        to: T0 + 3 * 3600,
        warmup_h: 12,
        every_s: 3600,
        marks,
        servers: 2,
        checks: 1234,
        policies: vec![
            PolicyReport {
                policy: Policy::current(),
                in_dns: vec![2, 2, 2, 2],
                changed: 0,
                left: 0,
                joined: 0,
                servers: vec![],
                zones: vec![zone(2.0, 0)],
            },
            PolicyReport {
                policy: strict,
                in_dns: vec![2, 1, 1, 1],
                changed: 1,
                left: 1,
                joined: 0,
                servers: vec![ChangedServer {
                    ip: "192.0.2.7".into(),
                    zones: vec!["de".into()],
                    marks_in_baseline: 4,
                    marks_in: 1,
                    why: "RATE at 3 of 3 monitors <script>".into(),
                }],
                zones: vec![zone(1.25, 1)],
            },
        ],
    }
}

async fn reports_for_admins_only(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let vic = sign_in(&t, &sink, "vic@example.org").await;
    let wyn = sign_in(&t, &sink, "wyn@example.org").await;
    server::admin::set_account_flags(t.store(), "vic", Some(true), None, T0)
        .await
        .unwrap();
    let empty = vic.get(&t, "/manage/admin/policy-reports").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(
        empty.text().contains("No saved reports"),
        "{}",
        empty.text()
    );

    let id = server::policy_replay::save(t.store(), &report(), T0 + 4 * 3600)
        .await
        .unwrap();
    let list = vic.get(&t, "/manage/admin/policy-reports").await;
    assert!(
        list.text()
            .contains(&format!("href=\"/manage/admin/policy-reports/{id}\"")),
        "{}",
        list.text()
    );
    assert!(list.text().contains("current,all-must-answer"));
    assert!(
        vic.get(&t, "/manage/admin")
            .await
            .text()
            .contains("/manage/admin/policy-reports")
    );

    let page = vic
        .get(&t, &format!("/manage/admin/policy-reports/{id}"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    // One line per policy in the chart, the changed server and why.
    assert!(html.contains("data-policy=\"current\""), "{html}");
    assert!(html.contains("data-policy=\"all-must-answer\""), "{html}");
    assert!(html.contains("<svg class=\"chart\""), "{html}");
    assert!(html.contains("href=\"/scores/192.0.2.7\""), "{html}");
    assert!(
        html.contains("RATE at 3 of 3 monitors &lt;script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "escaped");
    assert!(
        html.contains("1.2 (−1 / +0)") || html.contains("1.3 (−1 / +0)"),
        "{html}"
    );

    // Not an admin: no such pages. Unknown or malformed ids: 404 too.
    for uri in [
        "/manage/admin/policy-reports".to_string(),
        format!("/manage/admin/policy-reports/{id}"),
    ] {
        assert_eq!(
            wyn.get(&t, &uri).await.status,
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }
    for uri in [
        format!("/manage/admin/policy-reports/{}", id + 1),
        "/manage/admin/policy-reports/x".into(),
        "/manage/admin/policy-reports/-1".into(),
    ] {
        assert_eq!(
            vic.get(&t, &uri).await.status,
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }
}
