//! Live checks: which monitors are asked, handing out, answering once,
//! reading and pruning, on SQLite and PostgreSQL alike.

mod common;

use common::TestDb;
use std::net::IpAddr;
use store::*;

const T0: i64 = 1_700_000_000;

both_backends!(
    asks_up_to_three_recent_active_monitors_of_the_version,
    no_monitor_to_ask_stores_nothing,
    handed_out_once_and_not_after_expiry,
    answered_once_by_an_asked_monitor_only,
    pruned_a_day_after_expiry,
);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Adds a monitor seen at `seen` (none: never called); its id.
async fn monitor(
    s: &Store,
    name: &str,
    addr: &str,
    status: GlobalStatus,
    seen: Option<i64>,
) -> i64 {
    let id = s
        .add_monitor(
            NewMonitor {
                name: name.into(),
                location: "Lab".into(),
                ip: ip(addr),
                account_id: None,
                status,
                key_hash: format!("{name:0>64}"),
            },
            T0 - 3600,
        )
        .await
        .unwrap()
        .id;
    if let Some(t) = seen {
        s.touch_monitor(id, t, None).await.unwrap();
    }
    id
}

fn answer(stratum: Option<u8>, error: Option<&str>) -> LiveCheckAnswer {
    LiveCheckAnswer {
        ts: T0 + 5,
        offset: Some(0.0025),
        rtt: Some(0.0125),
        stratum,
        leap: Some(0),
        refid: Some("GPS".into()),
        error: error.map(str::to_string),
        no_response: false,
    }
}

/// Four active v4 monitors seen lately, one stale, one testing, one v6:
/// only three of the four recent active v4 ones are asked for a v4
/// address, the v6 one alone for a v6 address.
async fn asks_up_to_three_recent_active_monitors_of_the_version(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("op").await.unwrap();
    let mut recent = Vec::new();
    for (i, seen) in [T0 - 10, T0 - 20, T0 - 30, T0 - 40].into_iter().enumerate() {
        recent.push(
            monitor(
                s,
                &format!("v4-{i}"),
                &format!("203.0.113.{}", i + 1),
                GlobalStatus::Active,
                Some(seen),
            )
            .await,
        );
    }
    monitor(
        s,
        "stale",
        "203.0.113.9",
        GlobalStatus::Active,
        Some(T0 - LIVE_CHECK_SEEN_S - 1),
    )
    .await;
    monitor(s, "trial", "203.0.113.10", GlobalStatus::Testing, Some(T0)).await;
    let v6 = monitor(s, "v6", "2001:db8::10", GlobalStatus::Active, Some(T0)).await;

    let c = s
        .create_live_check(acct, ip("198.51.100.7"), T0)
        .await
        .unwrap();
    assert_eq!((c.account_id, c.ip), (acct, ip("198.51.100.7")));
    assert_eq!(c.expires, T0 + LIVE_CHECK_TTL_S);
    let asked: Vec<i64> = c.monitors.iter().map(|m| m.monitor_id).collect();
    // The three most recently seen.
    assert_eq!(asked, recent[..3].to_vec());
    assert!(
        c.monitors
            .iter()
            .all(|m| m.handed_out.is_none() && m.answer.is_none())
    );
    assert!(!c.finished(T0) && !c.usable());

    let c6 = s
        .create_live_check(acct, ip("2001:db8::7"), T0)
        .await
        .unwrap();
    let asked: Vec<i64> = c6.monitors.iter().map(|m| m.monitor_id).collect();
    assert_eq!(asked, vec![v6]);
    // Read back the same.
    assert_eq!(s.live_check(c.id).await.unwrap().unwrap(), c);
    assert_eq!(s.live_check(c.id + c6.id + 100).await.unwrap(), None);
}

async fn no_monitor_to_ask_stores_nothing(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("op").await.unwrap();
    monitor(s, "v4", "203.0.113.1", GlobalStatus::Active, Some(T0)).await;
    let err = s
        .create_live_check(acct, ip("2001:db8::7"), T0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("IPv6")),
        "{err}"
    );
    // An unknown account: nothing stored either.
    let err = s
        .create_live_check(acct + 99, ip("198.51.100.7"), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    // One check made now, and pruning everything finds only it: the
    // refused ones left nothing behind.
    s.create_live_check(acct, ip("198.51.100.7"), T0)
        .await
        .unwrap();
    assert_eq!(
        s.prune_live_checks(T0 + 10 * LIVE_CHECK_KEEP_S)
            .await
            .unwrap(),
        1
    );
}

async fn handed_out_once_and_not_after_expiry(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("op").await.unwrap();
    let a = monitor(s, "a", "203.0.113.1", GlobalStatus::Active, Some(T0)).await;
    let b = monitor(s, "b", "203.0.113.2", GlobalStatus::Active, Some(T0)).await;
    let c1 = s
        .create_live_check(acct, ip("198.51.100.7"), T0)
        .await
        .unwrap();
    let c2 = s
        .create_live_check(acct, ip("198.51.100.8"), T0 + 1)
        .await
        .unwrap();

    // The limit holds; the oldest first.
    let got = s.take_live_checks(a, T0 + 2, 1).await.unwrap();
    assert_eq!(got, vec![(c1.id, ip("198.51.100.7"))]);
    let got = s.take_live_checks(a, T0 + 3, 5).await.unwrap();
    assert_eq!(got, vec![(c2.id, ip("198.51.100.8"))]);
    // Handed out once.
    assert!(s.take_live_checks(a, T0 + 4, 5).await.unwrap().is_empty());
    let row = s.live_check(c1.id).await.unwrap().unwrap();
    let ma = row.monitors.iter().find(|m| m.monitor_id == a).unwrap();
    assert_eq!(ma.handed_out, Some(T0 + 2));
    // b never called: expired checks are not handed out.
    assert!(
        s.take_live_checks(b, T0 + 1 + LIVE_CHECK_TTL_S, 5)
            .await
            .unwrap()
            .is_empty()
    );
    let got = s
        .take_live_checks(b, T0 + LIVE_CHECK_TTL_S, 5)
        .await
        .unwrap();
    assert_eq!(got, vec![(c2.id, ip("198.51.100.8"))]);
    assert!(s.take_live_checks(a, T0, 0).await.unwrap().is_empty());
}

async fn answered_once_by_an_asked_monitor_only(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("op").await.unwrap();
    let a = monitor(s, "a", "203.0.113.1", GlobalStatus::Active, Some(T0)).await;
    let b = monitor(s, "b", "203.0.113.2", GlobalStatus::Active, Some(T0)).await;
    let c = s
        .create_live_check(acct, ip("198.51.100.7"), T0)
        .await
        .unwrap();
    // Asked of a and b; a third monitor registered later was not asked.
    let late = monitor(s, "late", "203.0.113.3", GlobalStatus::Active, Some(T0)).await;
    let good = answer(Some(2), None);

    // Not handed out yet → refused.
    let err = s
        .record_live_check(a, c.id, c.ip, &good, T0 + 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    s.take_live_checks(a, T0 + 1, 3).await.unwrap();
    s.take_live_checks(b, T0 + 1, 3).await.unwrap();

    // Another monitor, an unknown check, the wrong address: refused.
    let err = s
        .record_live_check(late, c.id, c.ip, &good, T0 + 2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = s
        .record_live_check(a, c.id + 1, c.ip, &good, T0 + 2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let err = s
        .record_live_check(a, c.id, ip("198.51.100.8"), &good, T0 + 2)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.starts_with("ip:")),
        "{err}"
    );
    assert_eq!(
        s.live_check(c.id)
            .await
            .unwrap()
            .unwrap()
            .monitors
            .iter()
            .filter(|m| m.answer.is_some())
            .count(),
        0
    );

    s.record_live_check(a, c.id, c.ip, &good, T0 + 2)
        .await
        .unwrap();
    // A second answer of a: refused, the first stays.
    let err = s
        .record_live_check(a, c.id, c.ip, &answer(Some(16), Some("RATE")), T0 + 3)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let row = s.live_check(c.id).await.unwrap().unwrap();
    let got = row.monitors.iter().find(|m| m.monitor_id == a).unwrap();
    assert_eq!(got.monitor_name, "a");
    assert_eq!(got.answer.as_ref(), Some(&good));
    assert!(row.usable() && !row.finished(T0 + 3));

    // b answers after the check expired → refused.
    let err = s
        .record_live_check(b, c.id, c.ip, &answer(None, Some("i/o timeout")), c.expires)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let row = s.live_check(c.id).await.unwrap().unwrap();
    assert!(
        row.monitors
            .iter()
            .find(|m| m.monitor_id == b)
            .unwrap()
            .answer
            .is_none()
    );
    assert!(row.finished(c.expires));

    // Only stratum 1–15 is usable (asked of a, b and late now).
    let c2 = s
        .create_live_check(acct, ip("198.51.100.9"), T0)
        .await
        .unwrap();
    assert_eq!(c2.monitors.len(), 3);
    for m in [a, b, late] {
        s.take_live_checks(m, T0 + 1, 3).await.unwrap();
    }
    s.record_live_check(late, c2.id, c2.ip, &answer(None, Some("RATE")), T0 + 2)
        .await
        .unwrap();
    let mut timeout = answer(None, Some("i/o timeout"));
    timeout.no_response = true;
    timeout.offset = None;
    s.record_live_check(a, c2.id, c2.ip, &answer(Some(16), None), T0 + 2)
        .await
        .unwrap();
    s.record_live_check(b, c2.id, c2.ip, &timeout, T0 + 2)
        .await
        .unwrap();
    let row = s.live_check(c2.id).await.unwrap().unwrap();
    assert!(row.finished(T0 + 2) && !row.usable());
    let got = row.monitors.iter().find(|m| m.monitor_id == b).unwrap();
    assert_eq!(got.answer.as_ref(), Some(&timeout));
}

async fn pruned_a_day_after_expiry(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("op").await.unwrap();
    let a = monitor(s, "a", "203.0.113.1", GlobalStatus::Active, Some(T0)).await;
    let old = s
        .create_live_check(acct, ip("198.51.100.7"), T0)
        .await
        .unwrap();
    s.take_live_checks(a, T0, 3).await.unwrap();
    s.record_live_check(a, old.id, old.ip, &answer(Some(2), None), T0 + 1)
        .await
        .unwrap();
    s.touch_monitor(a, T0 + LIVE_CHECK_KEEP_S, None)
        .await
        .unwrap();
    let new = s
        .create_live_check(acct, ip("198.51.100.8"), T0 + LIVE_CHECK_KEEP_S)
        .await
        .unwrap();
    // Expired, but not a day ago yet.
    assert_eq!(
        s.prune_live_checks(old.expires + LIVE_CHECK_KEEP_S)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.prune_live_checks(old.expires + LIVE_CHECK_KEEP_S + 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.live_check(old.id).await.unwrap(), None);
    assert!(s.live_check(new.id).await.unwrap().is_some());
}
