//! A monitor's own check settings (`admin monitor set`, the admin pages)
//! reach its agent through `GET /api/v1/monitor/config`; values out of
//! serve's ranges are refused with nothing stored. Both backends.

mod common;

use axum::http::{Method, StatusCode};
use common::{Backend, now};
use server::ServerConfig;
use server::admin::{AdminError, MonitorSettings, set_monitor_settings};
use store::GlobalStatus;

on_both_backends!(settings_reach_the_config, bad_values_store_nothing);

/// A monitor of the account "vol"; its key and the account's id.
async fn volunteer_monitor(t: &common::TestApp, name: &str) -> (String, i64) {
    let (_, key) = server::admin::add_monitor(
        t.store(),
        server::admin::AddMonitor {
            name: name.into(),
            ip: "192.0.2.201".parse().unwrap(),
            location: "Lab".into(),
            account: Some("vol".into()),
            status: GlobalStatus::Active,
        },
        now(),
    )
    .await
    .unwrap();
    (key, t.store().ensure_account("vol").await.unwrap())
}

/// The account's `monitor.settings` audit entries, newest first.
async fn audited(t: &common::TestApp, account: i64) -> Vec<store::AuditRow> {
    let mut rows = t.store().audit_log(account, 100).await.unwrap();
    rows.retain(|r| r.action == "monitor.settings");
    rows
}

async fn config(t: &common::TestApp, key: &str) -> api::MonitorConfig {
    let r = t
        .monitor_call(Method::GET, api::CONFIG_PATH, Some(key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

async fn settings_reach_the_config(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (key, account) = volunteer_monitor(&t, "tuned").await;
    let before = config(&t, &key).await;
    assert_eq!((before.samples, before.batch_size), (4, 10));
    let set = MonitorSettings {
        samples: Some(2),
        timeout_ms: Some(1500),
        ..Default::default()
    };
    set_monitor_settings(t.store(), "tuned", set, false, "admin:cli", now())
        .await
        .unwrap();
    let c = config(&t, &key).await;
    assert_eq!(
        (c.samples, c.timeout_ms, c.sample_interval_ms, c.batch_size),
        (2, 1500, 2000, 10)
    );
    // A later change keeps the earlier ones; --clear drops them all.
    let set = MonitorSettings {
        batch_size: Some(3),
        ..Default::default()
    };
    set_monitor_settings(t.store(), "tuned", set, false, "admin:cli", now())
        .await
        .unwrap();
    let c = config(&t, &key).await;
    assert_eq!((c.samples, c.batch_size), (2, 3));
    assert_eq!(t.work(&key).await.servers.len(), 0, "no servers yet");
    set_monitor_settings(
        t.store(),
        "tuned",
        MonitorSettings::default(),
        true,
        "admin:cli",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(config(&t, &key).await, before);
    let row = t.store().monitor_by_name("tuned").await.unwrap().unwrap();
    assert_eq!(row.config, None);
    // Each change is audited as the admin who made it.
    let log = audited(&t, account).await;
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(
        log.iter()
            .all(|r| r.actor == "admin:cli" && r.subject == "tuned")
    );
    assert_eq!(log[0].detail, "cleared");
    assert_eq!(log[2].detail, "samples 2, timeout_ms 1500");
}

async fn bad_values_store_nothing(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (key, account) = volunteer_monitor(&t, "strict").await;
    let before = config(&t, &key).await;
    for (set, field) in [
        (
            MonitorSettings {
                samples: Some(0),
                ..Default::default()
            },
            "samples",
        ),
        (
            MonitorSettings {
                samples: Some(17),
                timeout_ms: Some(1000),
                ..Default::default()
            },
            "samples",
        ),
        (
            MonitorSettings {
                timeout_ms: Some(0),
                ..Default::default()
            },
            "timeout",
        ),
        (
            MonitorSettings {
                sample_interval_ms: Some(61_000),
                ..Default::default()
            },
            "sample_interval",
        ),
        (
            MonitorSettings {
                batch_size: Some(1001),
                ..Default::default()
            },
            "batch_size",
        ),
    ] {
        match set_monitor_settings(t.store(), "strict", set, true, "admin:cli", now()).await {
            Err(AdminError::Usage(msg)) => assert!(msg.starts_with(field), "{msg}"),
            other => panic!("{set:?}: {other:?}"),
        }
    }
    let unknown = MonitorSettings {
        samples: Some(2),
        ..Default::default()
    };
    let e = set_monitor_settings(t.store(), "nobody", unknown, false, "admin:cli", now())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nobody"), "{e}");
    assert_eq!(config(&t, &key).await, before);
    assert!(audited(&t, account).await.is_empty());
}
