//! The batch size a monitor's config names is the one its work answers
//! use (a `monitors.config` override included), and never more than
//! `MAX_BATCH_SIZE`: the agent caps what it reads of a work answer by it.

mod common;

use axum::http::Method;
use common::Backend;
use server::{MAX_BATCH_SIZE, ServerConfig};
use store::GlobalStatus;
use store::testing::StoreTesting as _;

on_both_backends!(work_follows_the_configured_batch_size);

async fn work_follows_the_configured_batch_size(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    t.seed_zones().await;
    for ip in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"] {
        t.add_server(ip).await;
    }
    let (_, key) = t.add_monitor("small", GlobalStatus::Active).await;
    let config = |key: String| {
        let t = &t;
        async move {
            t.monitor_call(Method::GET, "/api/v1/monitor/config", Some(&key), None)
                .await
                .json()
        }
    };
    t.store()
        .set_monitor_config("small", Some(r#"{"batch_size": 3}"#))
        .await
        .unwrap();
    assert_eq!(config(key.clone()).await["batch_size"], 3);
    // The service-wide size is 10; the monitor's override says 3.
    assert_eq!(t.work(&key).await.servers.len(), 3);
    assert_eq!(t.work(&key).await.servers.len(), 1, "the fourth server");

    t.store()
        .set_monitor_config("small", Some(r#"{"batch_size": 1000000}"#))
        .await
        .unwrap();
    assert_eq!(config(key.clone()).await["batch_size"], MAX_BATCH_SIZE);
    t.store()
        .set_monitor_config("small", Some(r#"{"batch_size": 0}"#))
        .await
        .unwrap();
    assert_eq!(config(key).await["batch_size"], 1);
}
