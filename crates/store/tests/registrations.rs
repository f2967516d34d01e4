//! Monitor registrations (`agent setup`): both families on one secret,
//! acceptance by code (once, before expiry, under the account's monitor
//! limit), keys collected once, approval of both rows; SQLite and
//! PostgreSQL alike.

mod common;

use common::TestDb;
use store::*;

const T0: i64 = 1_700_000_000;
const HOUR: i64 = 3600;

both_backends!(
    same_secret_from_both_families_is_one_registration,
    accepted_once_into_pending_rows_per_family,
    expired_registration_is_neither_accepted_nor_extended,
    account_monitor_limit_counts_agents_and_can_be_raised,
    keys_are_collected_once,
    approving_one_name_approves_its_pair_only,
    taken_name_refuses_and_stores_nothing,
);

fn new(secret: &str, ip: &str) -> NewRegistration {
    NewRegistration {
        secret_hash: format!("s-{secret}"),
        code_hash: format!("c-{secret}"),
        hostname: "mon.example.net".into(),
        client_version: "poolwatch-agent/0.1".into(),
        name_hint: "zrh1".into(),
        ip: ip.parse().unwrap(),
    }
}

fn accept<'a>(secret: &'a str, account_id: i64, name: &'a str, code: &'a str) -> Acceptance<'a> {
    let _ = secret;
    Acceptance {
        code_hash: code,
        account_id,
        user_id: None,
        actor: "user:vol@example.net",
        name,
        location: "Zürich, CH",
        default_limit: 3,
        collect_ttl: HOUR,
    }
}

async fn waiting(s: &Store, secret: &str, ip: &str, now: i64) -> RegistrationRow {
    match s
        .register_monitor(new(secret, ip), now, now + HOUR)
        .await
        .unwrap()
    {
        Registered::Waiting(r) => *r,
        other => panic!("{other:?}"),
    }
}

async fn same_secret_from_both_families_is_one_registration(db: &TestDb) {
    let s = &db.store;
    let a = waiting(s, "a", "81.2.69.142", T0).await;
    assert_eq!(a.ipv4.as_deref(), Some("81.2.69.142"));
    assert_eq!(a.ipv6, None);
    // The other family, a minute later: same row, its address added, the
    // expiry of the first request kept.
    let b = waiting(s, "a", "2a02:d180::1", T0 + 60).await;
    assert_eq!(b.id, a.id);
    assert_eq!(b.ipv4.as_deref(), Some("81.2.69.142"));
    assert_eq!(b.ipv6.as_deref(), Some("2a02:d180::1"));
    assert_eq!(b.expires, T0 + HOUR);
    // An IPv4-mapped source counts as IPv4.
    let c = waiting(s, "c", "::ffff:192.0.2.7", T0).await;
    assert_eq!(
        (c.ipv4.as_deref(), c.ipv6.as_deref()),
        (Some("192.0.2.7"), None)
    );
    assert_ne!(c.id, a.id);
    let by_code = s.registration_by_code("c-a").await.unwrap().unwrap();
    assert_eq!(by_code, b);
    assert!(s.registration_by_code("c-nope").await.unwrap().is_none());
}

async fn accepted_once_into_pending_rows_per_family(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("vol").await.unwrap();
    waiting(s, "a", "81.2.69.142", T0).await;
    waiting(s, "a", "2a02:d180::1", T0 + 1).await;
    let rows = s
        .accept_registration(accept("a", acct, "zrh1", "c-a"), T0 + 10)
        .await
        .unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|m| (m.name.as_str(), m.ip.to_string(), m.status, m.account_id))
        .collect();
    assert_eq!(
        got,
        [
            (
                "zrh1",
                "81.2.69.142".to_string(),
                GlobalStatus::Pending,
                Some(acct)
            ),
            (
                "zrh1-v6",
                "2a02:d180::1".to_string(),
                GlobalStatus::Pending,
                Some(acct)
            ),
        ]
    );
    assert!(rows.iter().all(|m| m.location == "Zürich, CH"));
    let r = s.registration_by_code("c-a").await.unwrap().unwrap();
    assert_eq!(r.accepted_on, Some(T0 + 10));
    assert_eq!(r.account_id, Some(acct));
    assert_eq!(r.monitor_name.as_deref(), Some("zrh1"));
    assert!(!r.usable(T0 + 11));
    // The code is spent: a second acceptance (any account) is refused.
    let other = s.ensure_account("other").await.unwrap();
    let e = s
        .accept_registration(accept("a", other, "zrh2", "c-a"), T0 + 20)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    assert!(s.monitor_by_name("zrh2").await.unwrap().is_none());
    // Registering the same secret again changes nothing.
    assert_eq!(
        s.register_monitor(new("a", "81.2.69.9"), T0 + 30, T0 + HOUR)
            .await
            .unwrap(),
        Registered::Accepted
    );
    let e = s
        .accept_registration(accept("x", acct, "zrh3", "c-x"), T0)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    let log = s.audit_log(acct, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].action.as_str(), log[0].subject.as_str()),
        ("monitor.accept", "zrh1")
    );
    assert!(
        log[0].detail.contains("IPv6 2a02:d180::1"),
        "{}",
        log[0].detail
    );
}

async fn expired_registration_is_neither_accepted_nor_extended(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("vol").await.unwrap();
    waiting(s, "a", "81.2.69.142", T0).await;
    assert_eq!(
        s.register_monitor(new("a", "2a02:d180::1"), T0 + HOUR, T0 + 2 * HOUR)
            .await
            .unwrap(),
        Registered::Expired
    );
    let e = s
        .accept_registration(accept("a", acct, "zrh1", "c-a"), T0 + HOUR)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    assert!(s.list_monitors().await.unwrap().is_empty());
    assert_eq!(
        s.collect_registration("s-a", "k4", "k6", T0 + HOUR)
            .await
            .unwrap(),
        Collected::Expired
    );
    // Pruned after expiry; an accepted one is kept.
    assert_eq!(s.prune_registrations(T0 + HOUR + 1).await.unwrap(), 1);
    assert!(s.registration_by_code("c-a").await.unwrap().is_none());
}

async fn account_monitor_limit_counts_agents_and_can_be_raised(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("vol").await.unwrap();
    let mut lim = accept("", acct, "", "");
    lim.default_limit = 2;
    // Two dual-stack agents: four rows, two monitors.
    for (i, name) in ["m1", "m2", "m3"].iter().enumerate() {
        waiting(s, name, &format!("81.2.69.{}", 10 + i), T0).await;
        waiting(s, name, &format!("2a02:d180::{}", 10 + i), T0).await;
    }
    for name in ["m1", "m2"] {
        let code = format!("c-{name}");
        let a = Acceptance {
            code_hash: &code,
            name,
            ..lim.clone()
        };
        assert_eq!(s.accept_registration(a, T0 + 5).await.unwrap().len(), 2);
    }
    let a = Acceptance {
        code_hash: "c-m3",
        name: "m3",
        ..lim.clone()
    };
    let e = s.accept_registration(a.clone(), T0 + 6).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if m.contains("has 2 monitor(s), its limit is 2")),
        "{e}"
    );
    assert!(s.monitor_by_name("m3").await.unwrap().is_none());
    assert!(
        s.registration_by_code("c-m3")
            .await
            .unwrap()
            .unwrap()
            .usable(T0 + 6)
    );
    // A deleted monitor no longer counts; the account's own limit wins.
    s.set_monitor_status("m1", GlobalStatus::Deleted)
        .await
        .unwrap();
    s.set_monitor_status("m1-v6", GlobalStatus::Deleted)
        .await
        .unwrap();
    s.set_account_max_monitors("vol", Some(1)).await.unwrap();
    assert!(s.accept_registration(a.clone(), T0 + 7).await.is_err());
    s.set_account_max_monitors("vol", Some(5)).await.unwrap();
    assert_eq!(s.accept_registration(a, T0 + 8).await.unwrap().len(), 2);
    assert!(matches!(
        s.set_account_max_monitors("nobody", Some(5)).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn keys_are_collected_once(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("vol").await.unwrap();
    waiting(s, "a", "81.2.69.142", T0).await;
    waiting(s, "a", "2a02:d180::1", T0).await;
    assert_eq!(
        s.collect_registration("s-a", "k4", "k6", T0 + 5)
            .await
            .unwrap(),
        Collected::Waiting
    );
    assert!(matches!(
        s.collect_registration("s-nope", "k4", "k6", T0 + 5).await,
        Err(StoreError::NotFound(_))
    ));
    s.accept_registration(accept("a", acct, "zrh1", "c-a"), T0 + 10)
        .await
        .unwrap();
    // Accepted rows have no usable key yet.
    assert!(s.monitor_by_key_hash("k4").await.unwrap().is_none());
    // Accepted 59 minutes in: the agent still has its hour to collect.
    let got = s
        .collect_registration("s-a", &"4".repeat(64), &"6".repeat(64), T0 + HOUR + 5)
        .await
        .unwrap();
    assert_eq!(
        got,
        Collected::Now(vec![(4, "zrh1".into()), (6, "zrh1-v6".into())])
    );
    assert_eq!(
        s.monitor_by_key_hash(&"4".repeat(64))
            .await
            .unwrap()
            .unwrap()
            .name,
        "zrh1"
    );
    assert_eq!(
        s.monitor_by_key_hash(&"6".repeat(64))
            .await
            .unwrap()
            .unwrap()
            .name,
        "zrh1-v6"
    );
    // Never again: other hashes are not stored.
    assert_eq!(
        s.collect_registration("s-a", &"7".repeat(64), &"8".repeat(64), T0 + HOUR + 6)
            .await
            .unwrap(),
        Collected::Delivered
    );
    assert!(
        s.monitor_by_key_hash(&"7".repeat(64))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.registration_by_code("c-a")
            .await
            .unwrap()
            .unwrap()
            .delivered_on,
        Some(T0 + HOUR + 5)
    );
}

async fn approving_one_name_approves_its_pair_only(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let server = common::add_server_in(s, "81.2.69.200", "@", T0).await;
    let acct = s.ensure_account("vol").await.unwrap();
    for (sec, n) in [("a", 1), ("b", 2)] {
        waiting(s, sec, &format!("81.2.69.{n}"), T0).await;
        waiting(s, sec, &format!("2a02:d180::{n}"), T0).await;
    }
    s.accept_registration(accept("a", acct, "zrh1", "c-a"), T0 + 1)
        .await
        .unwrap();
    s.accept_registration(accept("b", acct, "zrh2", "c-b"), T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        s.approve_monitor("zrh1-v6", "admin:cli", T0 + 2)
            .await
            .unwrap(),
        ["zrh1", "zrh1-v6"]
    );
    let status = async |n: &str| s.monitor_by_name(n).await.unwrap().unwrap().status;
    assert_eq!(status("zrh1").await, GlobalStatus::Testing);
    assert_eq!(status("zrh1-v6").await, GlobalStatus::Testing);
    assert_eq!(status("zrh2").await, GlobalStatus::Pending);
    assert_eq!(status("zrh2-v6").await, GlobalStatus::Pending);
    // The IPv4 row scores the IPv4 server as a candidate.
    let ms = s.server_monitors(server).await.unwrap();
    assert!(ms.iter().any(|m| m.name == "zrh1"), "{ms:?}");
    let e = s
        .approve_monitor("zrh1", "admin:cli", T0 + 3)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Invalid(m) if m.contains("is testing, not pending")),
        "{e}"
    );
    assert!(matches!(
        s.approve_monitor("nope", "admin:cli", T0).await,
        Err(StoreError::NotFound(_))
    ));
    // A monitor added by hand has no pair.
    s.add_monitor(
        NewMonitor {
            name: "solo".into(),
            location: String::new(),
            ip: "81.2.69.99".parse().unwrap(),
            account_id: None,
            status: GlobalStatus::Pending,
            key_hash: "f".repeat(64),
        },
        T0,
    )
    .await
    .unwrap();
    assert_eq!(
        s.approve_monitor("solo", "admin:cli", T0).await.unwrap(),
        ["solo"]
    );
    assert_eq!(status("zrh2").await, GlobalStatus::Pending);
    let log = s.audit_log(acct, 10).await.unwrap();
    let approvals: Vec<_> = log
        .iter()
        .filter(|e| e.action == "monitor.approve")
        .map(|e| e.subject.as_str())
        .collect();
    assert_eq!(approvals.len(), 2, "{approvals:?}");
}

async fn taken_name_refuses_and_stores_nothing(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("vol").await.unwrap();
    s.add_monitor(
        NewMonitor {
            name: "zrh1-v6".into(),
            location: String::new(),
            ip: "2a02:d180::9".parse().unwrap(),
            account_id: None,
            status: GlobalStatus::Active,
            key_hash: "e".repeat(64),
        },
        T0,
    )
    .await
    .unwrap();
    waiting(s, "a", "81.2.69.142", T0).await;
    waiting(s, "a", "2a02:d180::1", T0).await;
    let e = s
        .accept_registration(accept("a", acct, "zrh1", "c-a"), T0 + 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if m.contains("zrh1-v6")),
        "{e}"
    );
    // The IPv4 row inserted before the clash was rolled back with it.
    assert!(s.monitor_by_name("zrh1").await.unwrap().is_none());
    assert!(
        s.registration_by_code("c-a")
            .await
            .unwrap()
            .unwrap()
            .usable(T0 + 1)
    );
    assert!(s.audit_log(acct, 10).await.unwrap().is_empty());
}
