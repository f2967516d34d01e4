//! /healthz, /readyz and the admin instances page (issue 16), on SQLite and
//! PostgreSQL: ready while the store answers and is fully migrated, 503
//! once draining or with a migration missing; probes are not rate-limited;
//! the page shows who holds which job's lease, for admins only.

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
#[macro_use]
#[path = "support/manage.rs"]
mod manage_support;

use axum::http::StatusCode;
use common::Backend;
use manage_support::*;

on_both_backends!(probes_answer_readiness, instances_page_for_admins_only);

async fn probes_answer_readiness(backend: Backend) {
    let (t, _sink, _) = setup!(backend);
    let h = t.get("/healthz").await;
    assert_eq!((h.status, h.text().as_str()), (StatusCode::OK, "ok\n"));
    assert_eq!(h.header("cache-control"), "no-store");
    // Far past the public burst: probes are not rate-limited.
    for _ in 0..60 {
        let r = t.get("/readyz").await;
        assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "ready\n"));
    }
    // A build whose migration is missing in the database is not ready.
    t.db.exec("DELETE FROM _sqlx_migrations WHERE version = 11")
        .await;
    // One store check answers the probes of a second (READY_CACHE).
    tokio::time::sleep(server::health::READY_CACHE + std::time::Duration::from_millis(100)).await;
    let r = t.get("/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().contains("migration 11"), "{}", r.text());
    // Draining: not ready, whatever the store says; still alive.
    t.state.draining().start();
    let r = t.get("/readyz").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: draining\n")
    );
    assert_eq!(t.get("/healthz").await.status, StatusCode::OK);
}

async fn instances_page_for_admins_only(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let vic = sign_in(&t, &sink, "vic@example.org").await;
    let wyn = sign_in(&t, &sink, "wyn@example.org").await;
    server::admin::set_account_flags(t.store(), "vic", Some(true), None, T0)
        .await
        .unwrap();
    t.store()
        .take_job_lease("selector", "web-<b>", 15)
        .await
        .unwrap()
        .unwrap();
    t.store()
        .instance_heartbeat("web-<b>", T0, "0.1.0", false)
        .await
        .unwrap();
    let page = vic.get(&t, "/manage/admin/instances").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains(&t.state.cfg().instance_name), "{html}");
    // The selector's holder, escaped; a job nobody holds.
    assert!(
        html.contains("<td>selector</td><td class=\"holder\">web-&lt;b&gt;</td>"),
        "{html}"
    );
    assert!(html.contains("<td>alerts</td>"), "{html}");
    assert!(html.contains("0.1.0"), "{html}");
    assert!(!html.contains("web-<b>"), "escaped");
    assert!(
        vic.get(&t, "/manage/admin")
            .await
            .text()
            .contains("/manage/admin/instances")
    );
    assert_eq!(
        wyn.get(&t, "/manage/admin/instances").await.status,
        StatusCode::NOT_FOUND
    );
}
