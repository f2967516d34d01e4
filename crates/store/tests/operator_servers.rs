//! The rules of operator-added servers in the store, on SQLite and
//! PostgreSQL alike: adding (already in the pool, re-adding, limits),
//! per-server settings scoped to the account with the audit log written,
//! deletion and removal, muted alerts, disabled accounts out of DNS, and
//! ownership verification.

mod common;

use common::TestDb;
use std::net::IpAddr;
use store::*;

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;
const LIMITS: AddLimits = AddLimits {
    max_servers: 3,
    max_unverified: 2,
};

both_backends!(
    add_refuses_what_the_pool_refuses,
    limits_of_an_account,
    settings_are_the_accounts_own_and_audited,
    deletion_stops_work_and_housekeeping_removes,
    muted_servers_get_no_alerts,
    disabled_accounts_servers_leave_dns,
    verification_once_by_the_owner,
);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn add(account_id: i64, addr: &str) -> OperatorAdd {
    OperatorAdd {
        account_id,
        ip: ip(addr),
        hostname: Some("ntp1.example.net".into()),
        netspeed: 1500,
        zones: vec!["@".into()],
    }
}

async fn audit_actions(s: &Store, account_id: i64) -> Vec<String> {
    s.audit_log(account_id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {} {}", r.action, r.subject, r.actor))
        .collect()
}

fn conflict(e: StoreError, has: &str) {
    assert!(
        matches!(&e, StoreError::Conflict(m) if m.contains(has)),
        "{e}"
    );
}

async fn add_refuses_what_the_pool_refuses(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let a = s.ensure_account("a").await.unwrap();
    let b = s.ensure_account("b").await.unwrap();
    let Added::New(row) = s
        .add_operator_server(&add(a, "198.51.100.1"), LIMITS, "user:a@example.net", T0)
        .await
        .unwrap()
    else {
        panic!("not new")
    };
    assert_eq!(row.account_id, Some(a));
    assert_eq!(row.hostname.as_deref(), Some("ntp1.example.net"));
    assert_eq!(
        (row.netspeed, row.verified_on, row.alerts_on),
        (1500, None, true)
    );
    assert_eq!(row.zones, ["@"]);
    assert_eq!(
        audit_actions(s, a).await,
        ["server.add 198.51.100.1 user:a@example.net"]
    );
    assert_eq!(
        s.check_operator_add(a, ip("198.51.100.2"), LIMITS)
            .await
            .unwrap(),
        AddCheck::New
    );

    // Already in the pool: the account's own, or another's. Nothing written.
    conflict(
        s.check_operator_add(a, ip("198.51.100.1"), LIMITS)
            .await
            .unwrap_err(),
        "already yours",
    );
    let e = s
        .add_operator_server(&add(a, "198.51.100.1"), LIMITS, "user:a@example.net", T0)
        .await
        .unwrap_err();
    conflict(e, "already yours");
    let e = s
        .add_operator_server(&add(b, "198.51.100.1"), LIMITS, "user:b@example.net", T0)
        .await
        .unwrap_err();
    conflict(
        e,
        "registered by another account; write to the pool's admins",
    );
    // An admin-added server (no account) is another's too.
    common::add_server_in(s, "198.51.100.9", "@", T0).await;
    conflict(
        s.check_operator_add(a, ip("198.51.100.9"), LIMITS)
            .await
            .unwrap_err(),
        "another account",
    );
    assert!(audit_actions(s, b).await.is_empty());
    assert_eq!(audit_actions(s, a).await.len(), 1);

    // Scheduled for deletion: re-adding cancels the deletion.
    s.set_account_server_deletion(
        a,
        ip("198.51.100.1"),
        Some(T0 + 30 * DAY),
        "user:a@example.net",
        T0,
    )
    .await
    .unwrap();
    assert_eq!(
        s.check_operator_add(a, ip("198.51.100.1"), LIMITS)
            .await
            .unwrap(),
        AddCheck::Readd
    );
    // Another account still may not.
    conflict(
        s.check_operator_add(b, ip("198.51.100.1"), LIMITS)
            .await
            .unwrap_err(),
        "another account",
    );
    let Added::Readded(row) = s
        .add_operator_server(
            &add(a, "198.51.100.1"),
            LIMITS,
            "user:a@example.net",
            T0 + 1,
        )
        .await
        .unwrap()
    else {
        panic!("not re-added")
    };
    assert_eq!(row.deletion_on, None);
    assert_eq!(
        audit_actions(s, a).await[0],
        "server.readd 198.51.100.1 user:a@example.net"
    );
    // An unknown zone: refused, nothing stored.
    let mut bad = add(a, "198.51.100.3");
    bad.zones = vec!["nowhere".into()];
    let e = s
        .add_operator_server(&bad, LIMITS, "user:a@example.net", T0)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    assert!(s.server_by_ip(ip("198.51.100.3")).await.unwrap().is_none());
}

async fn limits_of_an_account(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let a = s.ensure_account("a").await.unwrap();
    for addr in ["198.51.100.1", "198.51.100.2"] {
        s.add_operator_server(&add(a, addr), LIMITS, "user:a@example.net", T0)
            .await
            .unwrap();
    }
    // Two unverified: verify first.
    let e = s
        .add_operator_server(&add(a, "198.51.100.3"), LIMITS, "user:a@example.net", T0)
        .await
        .unwrap_err();
    conflict(e, "verify your servers before adding more");
    db.exec("UPDATE servers SET verified_on = 1700000000 WHERE ip = '198.51.100.1'")
        .await;
    s.add_operator_server(&add(a, "198.51.100.3"), LIMITS, "user:a@example.net", T0)
        .await
        .unwrap();
    db.exec("UPDATE servers SET verified_on = 1700000000").await;
    // Three servers: the most.
    let e = s
        .add_operator_server(&add(a, "198.51.100.4"), LIMITS, "user:a@example.net", T0)
        .await
        .unwrap_err();
    conflict(e, "the most one account may have (3)");
    assert_eq!(s.account_servers(a).await.unwrap().len(), 3);
    // Another account has its own count.
    let b = s.ensure_account("b").await.unwrap();
    s.add_operator_server(&add(b, "198.51.100.4"), LIMITS, "user:b@example.net", T0)
        .await
        .unwrap();
}

async fn settings_are_the_accounts_own_and_audited(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let a = s.ensure_account("a").await.unwrap();
    let b = s.ensure_account("b").await.unwrap();
    let x = ip("198.51.100.1");
    s.add_operator_server(&add(a, "198.51.100.1"), LIMITS, "user:a@example.net", T0)
        .await
        .unwrap();
    // Another account: not found, nothing changed, nothing logged.
    let e = s
        .set_account_server_netspeed(b, x, 1000, 1500, "user:b@example.net", T0)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    assert!(matches!(
        s.set_account_server_note(b, x, "mine", "user:b@example.net", T0)
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert!(matches!(
        s.set_account_server_alerts(b, x, false, "user:b@example.net", T0)
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert!(matches!(
        s.set_account_server_deletion(b, x, Some(T0 + 30 * DAY), "user:b@example.net", T0)
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert_eq!(s.account_server(b, x).await.unwrap(), None);
    assert!(audit_actions(s, b).await.is_empty());

    // Unverified: not above the cap.
    let e = s
        .set_account_server_netspeed(a, x, 25_000, 1500, "user:a@example.net", T0)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Invalid(m) if m.starts_with("netspeed: verify")),
        "{e}"
    );
    let row = s
        .set_account_server_netspeed(a, x, 0, 1500, "user:a@example.net", T0)
        .await
        .unwrap();
    assert_eq!(row.netspeed, 0);
    db.exec("UPDATE servers SET verified_on = 1700000000").await;
    let row = s
        .set_account_server_netspeed(a, x, 25_000, 1500, "token:ci", T0)
        .await
        .unwrap();
    assert_eq!(row.netspeed, 25_000);
    let row = s
        .set_account_server_note(a, x, "<b>rack 4</b>", "user:a@example.net", T0)
        .await
        .unwrap();
    assert_eq!(row.note, "<b>rack 4</b>");
    let row = s
        .set_account_server_alerts(a, x, false, "user:a@example.net", T0)
        .await
        .unwrap();
    assert!(!row.alerts_on);
    assert_eq!(s.account_server(a, x).await.unwrap().unwrap(), row);
    let log = s.audit_log(a, 100).await.unwrap();
    let got: Vec<(&str, &str)> = log
        .iter()
        .map(|r| (r.action.as_str(), r.detail.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("server.alerts", "off"),
            ("server.note", "<b>rack 4</b>"),
            ("server.netspeed", "0 → 25000 kbit"),
            ("server.netspeed", "1500 → 0 kbit"),
            (
                "server.add",
                "zones @; netspeed 1500 kbit; hostname ntp1.example.net"
            ),
        ]
    );
    assert_eq!(log[2].actor, "token:ci");
}

async fn deletion_stops_work_and_housekeeping_removes(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let a = s.ensure_account("a").await.unwrap();
    for addr in ["198.51.100.1", "198.51.100.2"] {
        s.add_operator_server(&add(a, addr), LIMITS, "user:a@example.net", T0)
            .await
            .unwrap();
    }
    let m = s
        .add_monitor(
            NewMonitor {
                name: "m".into(),
                location: "Lab".into(),
                ip: ip("203.0.113.1"),
                account_id: None,
                status: GlobalStatus::Active,
                key_hash: "0".repeat(64),
            },
            T0,
        )
        .await
        .unwrap();
    let x = ip("198.51.100.1");
    let on = T0 + 20 * DAY;
    // Cancelling what is not scheduled: refused.
    conflict(
        s.set_account_server_deletion(a, x, None, "user:a@example.net", T0)
            .await
            .unwrap_err(),
        "not scheduled",
    );
    s.set_account_server_deletion(a, x, Some(on), "user:a@example.net", T0)
        .await
        .unwrap();
    // Cancel, then schedule again.
    let row = s
        .set_account_server_deletion(a, x, None, "user:a@example.net", T0)
        .await
        .unwrap();
    assert_eq!(row.deletion_on, None);
    s.set_account_server_deletion(a, x, Some(on), "user:a@example.net", T0)
        .await
        .unwrap();

    // Before the date both are handed out; on it only the other one.
    let (_, items) = s
        .take_work_batch(m.id, WorkIntervals::default(), 10, on - 1)
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    let (_, items) = s
        .take_work_batch(m.id, WorkIntervals::default(), 10, on + 10 * DAY)
        .await
        .unwrap();
    let ips: Vec<IpAddr> = items.iter().map(|w| w.ip).collect();
    assert_eq!(ips, [ip("198.51.100.2")]);

    assert_eq!(s.remove_due_servers(on - 1).await.unwrap(), 0);
    assert_eq!(s.remove_due_servers(on).await.unwrap(), 1);
    assert!(s.server_by_ip(x).await.unwrap().is_none());
    assert!(s.server_by_ip(ip("198.51.100.2")).await.unwrap().is_some());
    let log = audit_actions(s, a).await;
    assert_eq!(log[0], "server.remove 198.51.100.1 system");
    assert_eq!(
        &log[1..4],
        [
            "server.delete 198.51.100.1 user:a@example.net",
            "server.delete_cancel 198.51.100.1 user:a@example.net",
            "server.delete 198.51.100.1 user:a@example.net",
        ]
    );
}

async fn muted_servers_get_no_alerts(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let a = s.ensure_account("a").await.unwrap();
    s.set_account_contact("a", Some("noc@example.net"), None)
        .await
        .unwrap();
    for addr in ["198.51.100.1", "198.51.100.2"] {
        s.add_operator_server(&add(a, addr), LIMITS, "user:a@example.net", T0)
            .await
            .unwrap();
    }
    let targets = |v: Vec<AlertTarget>| v.into_iter().map(|t| t.ip).collect::<Vec<_>>();
    assert_eq!(targets(s.alert_targets().await.unwrap()).len(), 2);
    s.set_account_server_alerts(a, ip("198.51.100.1"), false, "user:a@example.net", T0)
        .await
        .unwrap();
    assert_eq!(
        targets(s.alert_targets().await.unwrap()),
        [ip("198.51.100.2")]
    );
}

async fn disabled_accounts_servers_leave_dns(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let a = s.ensure_account("a").await.unwrap();
    s.add_operator_server(&add(a, "198.51.100.1"), LIMITS, "user:a@example.net", T0)
        .await
        .unwrap();
    common::add_server_in(s, "198.51.100.2", "@", T0).await;
    db.exec("UPDATE servers SET score = 20").await;
    let in_dns = async || {
        let dns = s.server_dns_all().await.unwrap();
        let mut v: Vec<IpAddr> = s
            .list_servers()
            .await
            .unwrap()
            .iter()
            .filter(|r| DnsMembership::for_server(r, dns.get(&r.id), T0).in_dns)
            .map(|r| r.ip)
            .collect();
        v.sort();
        v
    };
    let v4_active = async || {
        s.zone_list(T0)
            .await
            .unwrap()
            .iter()
            .find(|z| z.name == "@")
            .unwrap()
            .v4_active
    };
    assert_eq!(in_dns().await.len(), 2);
    assert_eq!(v4_active().await, 2);
    db.exec(&format!(
        "UPDATE accounts SET disabled = TRUE WHERE id = {a}"
    ))
    .await;
    assert_eq!(in_dns().await, [ip("198.51.100.2")]);
    assert_eq!(v4_active().await, 1);
    let row = s.server_by_ip(ip("198.51.100.1")).await.unwrap().unwrap();
    // Its settings are untouched: enabling the account brings it back.
    assert!(row.account_disabled && row.netspeed == 1500);
    db.exec(&format!(
        "UPDATE accounts SET disabled = FALSE WHERE id = {a}"
    ))
    .await;
    assert_eq!(in_dns().await.len(), 2);
}

async fn verification_once_by_the_owner(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let a = s.ensure_account("a").await.unwrap();
    let b = s.ensure_account("b").await.unwrap();
    let x = ip("198.51.100.1");
    s.add_operator_server(&add(a, "198.51.100.1"), LIMITS, "user:a@example.net", T0)
        .await
        .unwrap();
    common::add_server_in(s, "198.51.100.9", "@", T0).await;
    // Only an unverified operator server gets a token.
    for other in ["198.51.100.2", "198.51.100.9"] {
        let e = s
            .create_server_verification(ip(other), "h0", T0, T0 + 3600)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    }
    s.create_server_verification(x, "h1", T0, T0 + 3600)
        .await
        .unwrap();
    s.create_server_verification(x, "h2", T0, T0 + 3600)
        .await
        .unwrap();
    // Another account, an unknown token: not found, nothing changed.
    for (acct, h) in [(b, "h1"), (a, "nope")] {
        let e = s
            .verify_server(acct, h, "user:x", T0 + 1)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)), "{e}");
        let e = s.verification_server(acct, h, T0 + 1).await.unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    }
    // Expired: refused.
    conflict(
        s.verify_server(a, "h2", "user:a@example.net", T0 + 3600)
            .await
            .unwrap_err(),
        "expired",
    );
    assert_eq!(
        s.account_server(a, x).await.unwrap().unwrap().verified_on,
        None
    );
    assert_eq!(s.verification_server(a, "h1", T0 + 1).await.unwrap(), x);
    let row = s
        .verify_server(a, "h1", "user:a@example.net", T0 + 2)
        .await
        .unwrap();
    assert_eq!(row.verified_on, Some(T0 + 2));
    // Used: refused. And a verified server gets no new token.
    conflict(
        s.verify_server(a, "h1", "user:a@example.net", T0 + 3)
            .await
            .unwrap_err(),
        "used already",
    );
    assert!(
        s.create_server_verification(x, "h3", T0, T0 + 3600)
            .await
            .is_err()
    );
    assert_eq!(
        audit_actions(s, a).await[0],
        "server.verify 198.51.100.1 user:a@example.net"
    );
    assert_eq!(s.prune_server_verifications(T0 + 3601).await.unwrap(), 2);
}
