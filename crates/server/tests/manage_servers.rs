//! The rules of operator-added servers through `server::manage` (the
//! functions the pages and the JSON API call), and `/verify` over HTTP, on
//! SQLite and PostgreSQL.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Backend, TestApp, now};
use server::ServerConfig;
use server::manage::servers_ops::{self as ops, DEFAULT_NETSPEED, RESTART_ADVICE};
use server::manage::verify;
use std::net::IpAddr;
use store::{Added, GlobalStatus, LiveCheckAnswer};

on_both_backends!(
    candidates_say_what_may_be_added,
    added_only_after_a_usable_live_check,
    zone_from_geoip_or_the_operators_pick,
    settings_follow_the_pools_rules,
    verify_from_the_servers_own_address,
);

const ACTOR: &str = "user:op@example.net";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn geoip() -> geo::GeoIp {
    geo::GeoIp::open(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../geo/testdata/GeoLite2-Country-Test.mmdb"
    )))
    .unwrap()
}

fn cfg() -> ServerConfig {
    ServerConfig {
        geoip: Some(geoip()),
        ..ServerConfig::default()
    }
}

/// Two active monitors that have called (so live checks ask them); their keys.
async fn monitors(t: &TestApp) -> Vec<String> {
    let mut keys = Vec::new();
    for name in ["mon-a", "mon-b"] {
        let (_, key) = t.add_monitor(name, GlobalStatus::Active).await;
        t.work(&key).await;
        keys.push(key);
    }
    keys
}

/// A live check of `addr` answered by every monitor asked with `stratum`.
async fn checked(t: &TestApp, acct: i64, addr: &str, stratum: Option<u8>) -> i64 {
    let c = ops::start_live_check(&t.state, acct, ip(addr))
        .await
        .unwrap();
    for m in &c.monitors {
        t.store()
            .take_live_checks(m.monitor_id, now(), 3)
            .await
            .unwrap();
        let a = LiveCheckAnswer {
            ts: now(),
            offset: stratum.map(|_| 0.002),
            rtt: Some(0.01),
            stratum,
            leap: Some(0),
            refid: None,
            error: stratum.is_none().then(|| "i/o timeout".to_string()),
            no_response: stratum.is_none(),
        };
        t.store()
            .record_live_check(m.monitor_id, c.id, c.ip, &a, now())
            .await
            .unwrap();
    }
    c.id
}

async fn candidates_say_what_may_be_added(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    t.seed_zones().await;
    let a = t.store().ensure_account("a").await.unwrap();
    let b = t.store().ensure_account("b").await.unwrap();
    monitors(&t).await;

    let c = ops::candidates(&t.state, a, " 81.2.69.142 ").await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].ip, c[0].refused.as_deref()),
        (ip("81.2.69.142"), None)
    );
    assert_eq!(c[0].country.as_deref(), Some("uk"));
    // IPv6 too, from GeoIP.
    let c = ops::candidates(&t.state, a, "2001:218::1").await.unwrap();
    assert_eq!(c[0].country.as_deref(), Some("jp"));
    // Not public: refused (no --allow-private).
    let c = ops::candidates(&t.state, a, "10.0.0.1").await.unwrap();
    assert!(
        c[0].refused
            .as_deref()
            .unwrap()
            .contains("not a public address")
    );
    let e = ops::start_live_check(&t.state, a, ip("10.0.0.1"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::CONFLICT);
    // Bad input names the field.
    for bad in ["", "not an address", "<script>.x"] {
        let e = ops::candidates(&t.state, a, bad).await.unwrap_err();
        assert!(e.detail().starts_with("address:"), "{bad:?}: {e}");
    }
    let e = ops::candidates(&t.state, a, "no-such-host.invalid")
        .await
        .unwrap_err();
    assert!(
        e.detail()
            .starts_with("address: cannot resolve no-such-host.invalid"),
        "{e}"
    );

    // Added by a: already yours for a, another's for b.
    let id = checked(&t, a, "81.2.69.142", Some(2)).await;
    ops::finish_add(&t.state, a, ACTOR, id, None, None)
        .await
        .unwrap();
    let c = ops::candidates(&t.state, a, "81.2.69.142").await.unwrap();
    assert!(c[0].refused.as_deref().unwrap().contains("already yours"));
    let c = ops::candidates(&t.state, b, "81.2.69.142").await.unwrap();
    assert!(
        c[0].refused
            .as_deref()
            .unwrap()
            .contains("registered by another account; write to the pool's admins")
    );
    // Scheduled for deletion: may be re-added.
    ops::schedule_deletion(&t.state, a, ACTOR, ip("81.2.69.142"), &day_in(20))
        .await
        .unwrap();
    let c = ops::candidates(&t.state, a, "81.2.69.142").await.unwrap();
    assert!(c[0].refused.is_none() && c[0].readd);

    // With --allow-private a lab address may be checked.
    let lab = app_or_skip!(
        backend,
        ServerConfig {
            manage: server::manage::settings::ManageSettings {
                allow_private: true,
                ..Default::default()
            },
            ..cfg()
        }
    );
    let acct = lab.store().ensure_account("lab").await.unwrap();
    let c = ops::candidates(&lab.state, acct, "10.0.0.1").await.unwrap();
    assert_eq!(
        (c[0].refused.as_deref(), c[0].country.as_deref()),
        (None, None)
    );
}

/// `YYYY-MM-DD` of the day `days` after today.
fn day_in(days: i64) -> String {
    server::admin::format_date(now() + days * 86_400)
}

async fn added_only_after_a_usable_live_check(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    t.seed_zones().await;
    let a = t.store().ensure_account("a").await.unwrap();
    monitors(&t).await;

    // Still running: not added yet.
    let c = ops::start_live_check(&t.state, a, ip("81.2.69.142"))
        .await
        .unwrap();
    let e = ops::finish_add(&t.state, a, ACTOR, c.id, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::CONFLICT);
    assert!(e.detail().contains("not answered yet"), "{e}");

    // No usable answer: not added, with every monitor's answer and the advice.
    let id = checked(&t, a, "89.160.20.112", None).await;
    let e = ops::finish_add(&t.state, a, ACTOR, id, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::CONFLICT);
    let d = e.detail();
    assert!(
        d.contains("mon-a:") && d.contains("mon-b:") && d.contains("error i/o timeout"),
        "{d}"
    );
    assert!(d.ends_with(RESTART_ADVICE), "{d}");
    let id16 = checked(&t, a, "216.160.83.56", Some(16)).await;
    let e = ops::finish_add(&t.state, a, ACTOR, id16, None, None)
        .await
        .unwrap_err();
    assert!(e.detail().contains("stratum 16 offset"), "{e}");
    assert!(t.store().account_servers(a).await.unwrap().is_empty());

    // Another account's check: 404.
    let b = t.store().ensure_account("b").await.unwrap();
    let good = checked(&t, a, "81.2.69.142", Some(2)).await;
    let e = ops::finish_add(&t.state, b, ACTOR, good, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::NOT_FOUND);
    // A bad hostname: 400, nothing added.
    let e = ops::finish_add(&t.state, a, ACTOR, good, None, Some("<b>x</b>"))
        .await
        .unwrap_err();
    assert!(e.detail().starts_with("hostname:"), "{e}");

    let Added::New(s) = ops::finish_add(&t.state, a, ACTOR, good, None, Some("NTP1.example.net"))
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    assert_eq!(s.hostname.as_deref(), Some("ntp1.example.net"));
    assert_eq!((s.netspeed, s.verified_on), (DEFAULT_NETSPEED, None));
    assert_eq!(s.zones, ["@", "europe", "uk"]);
    let log = t.store().audit_log(a, 10).await.unwrap();
    assert_eq!(
        (log[0].action.as_str(), log[0].actor.as_str()),
        ("server.add", ACTOR)
    );
}

async fn zone_from_geoip_or_the_operators_pick(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    t.seed_zones().await;
    let a = t.store().ensure_account("a").await.unwrap();
    monitors(&t).await;
    // GeoIP has no country for it: the operator must pick (no default).
    let c = ops::candidates(&t.state, a, "8.8.8.8").await.unwrap();
    assert_eq!(c[0].country, None);
    let id = checked(&t, a, "8.8.8.8", Some(1)).await;
    let e = ops::finish_add(&t.state, a, ACTOR, id, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    assert!(
        e.detail()
            .starts_with("country: GeoIP does not know where 8.8.8.8 is; pick"),
        "{e}"
    );
    let e = ops::finish_add(&t.state, a, ACTOR, id, Some("xx"), None)
        .await
        .unwrap_err();
    assert!(e.detail().starts_with("country: 'xx'"), "{e}");
    assert!(t.store().account_servers(a).await.unwrap().is_empty());
    // gb is uk.
    let Added::New(s) = ops::finish_add(&t.state, a, ACTOR, id, Some("GB"), None)
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    assert_eq!(s.zones, ["@", "europe", "uk"]);
}

async fn settings_follow_the_pools_rules(backend: Backend) {
    let t = app_or_skip!(backend, cfg());
    t.seed_zones().await;
    let a = t.store().ensure_account("a").await.unwrap();
    let b = t.store().ensure_account("b").await.unwrap();
    monitors(&t).await;
    let id = checked(&t, a, "81.2.69.142", Some(2)).await;
    ops::finish_add(&t.state, a, ACTOR, id, None, None)
        .await
        .unwrap();
    let x = ip("81.2.69.142");

    // Netspeed: the pool's choices only; unverified not above the default.
    let e = ops::set_netspeed(&t.state, a, ACTOR, x, 1000)
        .await
        .unwrap_err();
    assert!(
        e.detail()
            .starts_with("netspeed: 1000 is not one of the pool's choices"),
        "{e}"
    );
    let e = ops::set_netspeed(&t.state, a, ACTOR, x, 3000)
        .await
        .unwrap_err();
    assert!(e.detail().starts_with("netspeed: verify"), "{e}");
    assert_eq!(
        ops::set_netspeed(&t.state, a, ACTOR, x, 0)
            .await
            .unwrap()
            .netspeed,
        0
    );
    assert_eq!(
        ops::set_netspeed(&t.state, a, ACTOR, x, 512)
            .await
            .unwrap()
            .netspeed,
        512
    );
    // Another account's server: 404 for every operation.
    assert_eq!(
        ops::set_netspeed(&t.state, b, ACTOR, x, 512)
            .await
            .unwrap_err()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ops::set_alerts(&t.state, b, ACTOR, x, false)
            .await
            .unwrap_err()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ops::set_note(&t.state, b, ACTOR, x, "n")
            .await
            .unwrap_err()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ops::cancel_deletion(&t.state, b, ACTOR, x)
            .await
            .unwrap_err()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ops::server(&t.state, b, x).await.unwrap_err().status(),
        StatusCode::NOT_FOUND
    );

    // Deletion: at least 14 days ahead; cancellable.
    let e = ops::schedule_deletion(&t.state, a, ACTOR, x, &day_in(13))
        .await
        .unwrap_err();
    assert!(
        e.detail().starts_with("date: at least 14 days ahead"),
        "{e}"
    );
    let s = ops::schedule_deletion(&t.state, a, ACTOR, x, &day_in(14))
        .await
        .unwrap();
    assert_eq!(
        s.deletion_on,
        Some(server::admin::today(now()) + 14 * 86_400)
    );
    let s = ops::cancel_deletion(&t.state, a, ACTOR, x).await.unwrap();
    assert_eq!(s.deletion_on, None);
    assert_eq!(
        ops::cancel_deletion(&t.state, a, ACTOR, x)
            .await
            .unwrap_err()
            .status(),
        StatusCode::CONFLICT
    );

    // Note and alerts.
    let e = ops::set_note(&t.state, a, ACTOR, x, &"n".repeat(501))
        .await
        .unwrap_err();
    assert!(e.detail().starts_with("note:"), "{e}");
    let e = ops::set_note(&t.state, a, ACTOR, x, "a\u{1b}[31m")
        .await
        .unwrap_err();
    assert!(e.detail().starts_with("note:"), "{e}");
    assert_eq!(
        ops::set_note(&t.state, a, ACTOR, x, " rack 4\n")
            .await
            .unwrap()
            .note,
        "rack 4"
    );
    assert!(
        !ops::set_alerts(&t.state, a, ACTOR, x, false)
            .await
            .unwrap()
            .alerts_on
    );
    let s = ops::server(&t.state, a, x).await.unwrap();
    assert_eq!(
        (s.netspeed, s.note.as_str(), s.alerts_on),
        (512, "rack 4", false)
    );

    // Adds are rate-limited per account: a burst, then 429 with a wait.
    for _ in 0..ops::ADD_BURST as usize {
        ops::check_add_rate(&t.state, a).unwrap();
    }
    let e = ops::check_add_rate(&t.state, a).unwrap_err();
    assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
    ops::check_add_rate(&t.state, b).unwrap();
}

async fn verify_from_the_servers_own_address(backend: Backend) {
    let mut c = cfg();
    c.rate_limit.trusted_proxies = vec!["10.0.0.1/32".parse().unwrap()];
    let t = app_or_skip!(backend, c);
    t.seed_zones().await;
    let a = t.store().ensure_account("a").await.unwrap();
    let b = t.store().ensure_account("b").await.unwrap();
    monitors(&t).await;
    let id = checked(&t, a, "81.2.69.142", Some(2)).await;
    ops::finish_add(&t.state, a, ACTOR, id, None, None)
        .await
        .unwrap();

    // From another address: refused, with what to do.
    for method in [Method::GET, Method::POST] {
        let r = t
            .send_from("81.2.69.143:5000", method, "/verify", &[], Body::empty())
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert!(r.header("content-type").starts_with("text/plain"));
        assert!(
            r.text()
                .contains("81.2.69.143 is not a server waiting for verification"),
            "{}",
            r.text()
        );
        assert!(
            r.text().contains("curl --interface ADDRESS"),
            "{}",
            r.text()
        );
    }
    // X-Forwarded-For from an untrusted peer is not believed.
    let r = t
        .send_from(
            "81.2.69.143:5000",
            Method::GET,
            "/verify",
            &[("x-forwarded-for", "81.2.69.142")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    // Through a trusted proxy, X-Forwarded-For names the client.
    let r = t
        .send_from(
            "10.0.0.1:5000",
            Method::GET,
            "/verify",
            &[("x-forwarded-for", "81.2.69.142")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // From the server's own address: a one-time URL.
    let r = t
        .send_from(
            "81.2.69.142:5000",
            Method::POST,
            "/verify",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    let url = text
        .lines()
        .find(|l| l.contains("/manage/verify/"))
        .expect("a URL")
        .trim();
    let token = url.rsplit('/').next().unwrap();
    assert!(url.starts_with("http://"), "{url}");
    // Stored hashed: the store knows it by its hash, not by itself.
    let hashed = server::keys::hash_key(token);
    assert!(
        t.store()
            .verification_server(a, &hashed, now())
            .await
            .is_ok()
    );
    assert!(
        t.store()
            .verification_server(a, token, now())
            .await
            .is_err()
    );

    // Another account: 404, nothing changed.
    let e = verify::confirm(&t.state, b, token).await.unwrap_err();
    assert_eq!(e.status(), StatusCode::NOT_FOUND);
    let e = verify::use_token(&t.state, b, "user:b@example.net", token)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        verify::confirm(&t.state, a, token).await.unwrap(),
        ip("81.2.69.142")
    );
    let s = verify::use_token(&t.state, a, ACTOR, token).await.unwrap();
    assert!(s.verified_on.is_some());
    // Used: refused.
    let e = verify::use_token(&t.state, a, ACTOR, token)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::CONFLICT);
    // Verified: netspeed may go up, and /verify has nothing more to give.
    assert_eq!(
        ops::set_netspeed(&t.state, a, ACTOR, ip("81.2.69.142"), 25000)
            .await
            .unwrap()
            .netspeed,
        25000
    );
    let r = t
        .send_from(
            "81.2.69.142:5000",
            Method::GET,
            "/verify",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}
