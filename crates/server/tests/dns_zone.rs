//! `GET /api/dns-zone`: the zone stand-alone `poolwatch dns` servers pull,
//! on SQLite and PostgreSQL: closed without a token, only in-DNS servers.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Backend, CLIENT, DNS_TOKEN, good_results, with_dns_zone, zone_a};
use store::GlobalStatus;

on_both_backends!(
    zone_needs_the_token,
    zone_holds_only_in_dns_servers,
    disabled_accounts_servers_leave_the_zone,
    vendor_zones_are_aliases_in_the_zone
);

async fn zone_needs_the_token(backend: Backend) {
    let t = app_or_skip!(backend, with_dns_zone(true));
    assert_eq!(
        t.get("/api/dns-zone").await.status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = t
        .send_from(
            CLIENT,
            Method::GET,
            "/api/dns-zone",
            &[("authorization", "Bearer nope")],
            Body::empty(),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json()["error"], "unauthorized");
    // Without a configured token the route stays closed for everyone.
    let t = app_or_skip!(backend, with_dns_zone(false));
    let r = t
        .send_from(
            CLIENT,
            Method::GET,
            "/api/dns-zone",
            &[("authorization", &format!("Bearer {DNS_TOKEN}"))],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn zone_holds_only_in_dns_servers(backend: Backend) {
    let t = app_or_skip!(backend, with_dns_zone(true));
    t.seed_zones().await;
    t.add_server("192.0.2.10").await;
    t.add_server("192.0.2.11").await;
    let (_, key) = t.add_monitor("m1", GlobalStatus::Active).await;
    // 20 good results for both servers lift them to ≥ 10 ...
    for _ in 0..20 {
        let w = t.work(&key).await;
        if w.servers.is_empty() {
            break;
        }
        assert_eq!(
            t.submit(&key, &good_results(&w)).await.status,
            StatusCode::OK
        );
        // Make both due again at once.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let z = t.dns_zone().await;
    assert_eq!(z["ttl"], 150);
    assert_eq!(z["max_hosts"], 4);
    let ips = |label: &str| zone_a(&z, label);
    let scores: Vec<f64> = ["192.0.2.10", "192.0.2.11"]
        .iter()
        .map(|ip| futures_score(&t, ip))
        .collect();
    for (ip, score) in ["192.0.2.10", "192.0.2.11"].iter().zip(&scores) {
        let listed = ips("").contains(&ip.to_string()) && ips("de").contains(&ip.to_string());
        assert_eq!(
            listed,
            *score >= 10.0,
            "{ip} with score {score}: apex {:?}",
            ips("")
        );
    }
}

fn futures_score(t: &common::TestApp, ip: &str) -> f64 {
    let store = t.store().clone();
    let ip = ip.parse().unwrap();
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current()
            .block_on(async { store.server_by_ip(ip).await.unwrap().unwrap().score })
    })
}

/// A disabled account's servers leave the zone (and say so in the API);
/// enabled again, they are back, their netspeed untouched.
async fn disabled_accounts_servers_leave_the_zone(backend: Backend) {
    let t = app_or_skip!(backend, with_dns_zone(true));
    t.seed_zones().await;
    t.add_server("192.0.2.10").await;
    t.add_server("192.0.2.11").await;
    let acct = t.store().ensure_account("op").await.unwrap();
    t.db.exec(&format!(
        "UPDATE servers SET score = 20; UPDATE servers SET account_id = {acct} WHERE ip = '192.0.2.11'"
    ))
    .await;
    let apex = |z: &serde_json::Value| {
        let mut v = zone_a(z, "");
        v.sort();
        v
    };
    assert_eq!(apex(&t.dns_zone().await), ["192.0.2.10", "192.0.2.11"]);
    t.db.exec(&format!(
        "UPDATE accounts SET disabled = TRUE WHERE id = {acct}"
    ))
    .await;
    assert_eq!(apex(&t.dns_zone().await), ["192.0.2.10"]);
    let s = t.get("/api/v1/servers/192.0.2.11").await.json();
    assert_eq!(s["in_dns"], false, "{s}");
    assert_eq!(s["netspeed"], 10_000, "{s}");
    t.db.exec(&format!(
        "UPDATE accounts SET disabled = FALSE WHERE id = {acct}"
    ))
    .await;
    assert_eq!(apex(&t.dns_zone().await).len(), 2);
}

/// The stored vendor zones reach `/api/dns-zone` as GeoDNS aliases, and
/// leave it when removed.
async fn vendor_zones_are_aliases_in_the_zone(backend: Backend) {
    let t = app_or_skip!(backend, with_dns_zone(true));
    t.seed_zones().await;
    let s = t.store();
    s.add_vendor("debian", "@", "", false, 1).await.unwrap();
    s.add_vendor("acme", "de", "", false, 1).await.unwrap();
    let z = t.dns_zone().await;
    let alias = |z: &serde_json::Value, label: &str| z["data"][label]["alias"].clone();
    assert_eq!(alias(&z, "debian"), "");
    assert_eq!(alias(&z, "2.debian"), "2");
    assert_eq!(alias(&z, "acme"), "de");
    assert_eq!(alias(&z, "3.acme"), "3.de");
    // Pool labels carry no alias.
    assert_eq!(alias(&z, "de"), serde_json::Value::Null);
    s.remove_vendor("acme").await.unwrap();
    let z = t.dns_zone().await;
    assert_eq!(z["data"].get("acme"), None);
    assert_eq!(z["data"].get("0.acme"), None);
    assert_eq!(alias(&z, "0.debian"), "0");
}
