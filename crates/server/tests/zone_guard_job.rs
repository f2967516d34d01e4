//! The zone guard in the service, on SQLite and PostgreSQL: a held server
//! stays in the DNS zone (`/api/dns-zone`, `zone_from_store`), the API and
//! the server page say it is held, the zone page shows the event and
//! `/metrics` counts it.

mod common;

use axum::http::StatusCode;
use common::{Backend, now, with_dns_zone, zone_a};
use scoring::ZoneGuardConfig;
use store::GlobalStatus;

const DAY: i64 = 86_400;

on_both_backends!(held_servers_stay_in_dns_and_show);

async fn held_servers_stay_in_dns_and_show(backend: Backend) {
    let t = app_or_skip!(backend, with_dns_zone(true));
    t.seed_zones().await;
    let (near, _) = t.add_monitor("near", GlobalStatus::Active).await;
    let (far, _) = t.add_monitor("far", GlobalStatus::Active).await;
    let mut ids = Vec::new();
    for i in 1..=10 {
        ids.push(t.add_server(&format!("192.0.2.{i}")).await.id);
    }
    let now = now();
    // Ten servers in DNS for two days ...
    t.db.exec(&format!(
        "UPDATE servers SET created_on = {}, score = 15, score_ts = {now}",
        now - 2 * DAY
    ))
    .await;
    t.db.exec(&format!(
        "UPDATE server_scores SET score = 15, score_ts = {}, status = 'active'",
        now - 300
    ))
    .await;
    let share = ZoneGuardConfig::MaxShare(0.10);
    let run = server::zone_guard_job::pass(t.store(), share, now - 120)
        .await
        .unwrap();
    assert!(run.held.is_empty(), "{run:?}");
    // ... then three fall below 10 while `far` still sees them good: one
    // may go (10 % of 10, at least one), two are held.
    for (k, id) in ids[7..].iter().enumerate() {
        t.db.exec(&format!("UPDATE servers SET score = 4 WHERE id = {id}"))
            .await;
        t.db.exec(&format!(
            "UPDATE server_scores SET score = 2, score_ts = {}, last_error = 'bad reply: <short>' \
                 WHERE server_id = {id} AND monitor_id = {}",
            now - 30,
            near.id
        ))
        .await;
        t.db.exec(&format!(
            "UPDATE server_scores SET score = 12, score_ts = {} \
                 WHERE server_id = {id} AND monitor_id = {}",
            now - 100 + k as i64,
            far.id
        ))
        .await;
    }
    let run = server::zone_guard_job::pass(t.store(), share, now)
        .await
        .unwrap();
    let mut held = run.held.clone();
    held.sort();
    assert_eq!(held, vec![ids[8], ids[9]], "{run:?}");
    assert!(run.events.iter().any(|e| e.zone == "de"), "{run:?}");

    // The DNS zone holds the two held servers, not the dropped one.
    let z = t.dns_zone().await;
    let listed = |label: &str| zone_a(&z, label);
    for label in ["", "de"] {
        let ips = listed(label);
        assert_eq!(ips.len(), 9, "{label}: {ips:?}");
        assert!(ips.contains(&"192.0.2.9".to_string()), "{ips:?}");
        assert!(ips.contains(&"192.0.2.10".to_string()), "{ips:?}");
        assert!(!ips.contains(&"192.0.2.8".to_string()), "{ips:?}");
    }
    let direct = server::zone_from_store(t.store(), t.state.cfg().dns_zone.as_ref().unwrap(), now)
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&direct).unwrap()["data"]["de"],
        z["data"]["de"]
    );

    // The API tells held from in-DNS-by-score.
    let v = t.get("/api/v1/servers/192.0.2.10").await.json();
    assert_eq!(
        (v["in_dns"].as_bool(), v["held_by_guard"].as_bool()),
        (Some(true), Some(true))
    );
    let v = t.get("/api/v1/servers/192.0.2.8").await.json();
    assert_eq!(
        (v["in_dns"].as_bool(), v["held_by_guard"].as_bool()),
        (Some(false), Some(false))
    );
    let list = t.get("/api/v1/servers").await.json();
    let held_n = list["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["held_by_guard"] == true)
        .count();
    assert_eq!(held_n, 2);
    let zones = t.get("/api/v1/zones").await.json();
    let de = zones["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["name"] == "de")
        .unwrap()
        .clone();
    assert_eq!(de["v4"]["active"], 9);

    // The server page says so.
    let page = t.get("/scores/192.0.2.10").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text().contains("held by the zone guard"),
        "{}",
        page.text()
    );

    // The zone page shows the event: held servers linked, what each
    // monitor saw (escaped).
    let page = t.get("/zones/de").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    let guard = &html[html.find("id=\"zone-guard\"").expect("guard section")..];
    assert!(guard.contains("href=\"/scores/192.0.2.10\""), "{guard}");
    assert!(guard.contains("far 12.0"), "{guard}");
    assert!(guard.contains("near 2.0"), "{guard}");
    assert!(
        guard.contains("<code>bad reply: &lt;short&gt;</code>"),
        "{guard}"
    );
    assert!(!html.contains("<short>"), "unescaped error");
    assert!(!html.contains("No guard events"));
    assert!(html.contains("yes (held by the zone guard)"));
    // A zone without events says so.
    let other = t.get("/zones/uk").await.text();
    assert!(
        other.contains("No guard events in the last 30 days"),
        "{other}"
    );

    let metrics = t.get("/metrics").await.text();
    assert!(
        metrics.contains("poolwatch_zone_guard_held{zone=\"de\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("poolwatch_zone_guard_events_total{zone=\"de\"} 1"),
        "{metrics}"
    );
}
