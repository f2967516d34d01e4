//! A volunteer's monitors, on SQLite and PostgreSQL alike: the account's
//! rows only, the servers one monitor sees unhealthy while most others see
//! them healthy, its checks and traceroutes, and pause/resume with the
//! audit log, refused for the wrong status or another account.

mod common;

use common::TestDb;
use store::testing::StoreTesting as _;
use store::*;

const T0: i64 = 1_700_000_000;
const HEALTHY: f64 = 10.0;

both_backends!(
    lists_only_the_accounts_monitors,
    blind_spots_are_where_most_others_disagree,
    checks_clock_and_traceroutes_of_one_monitor,
    pause_and_resume_restore_the_status,
    pause_refused_for_the_wrong_status_or_account,
);

async fn monitor(s: &Store, name: &str, addr: &str, account: Option<i64>, st: GlobalStatus) -> i64 {
    s.add_monitor(
        NewMonitor {
            name: name.into(),
            location: "Lab".into(),
            ip: addr.parse().unwrap(),
            account_id: account,
            status: st,
            key_hash: format!("{name:0>64}"),
        },
        T0 - 3600,
    )
    .await
    .unwrap()
    .id
}

/// Sets the pair's per-server status, score and error by hand.
async fn pair(db: &TestDb, monitor: i64, server: i64, status: &str, score: f64, err: &str) {
    db.exec(&format!(
        "UPDATE server_scores SET status = '{status}', score = {score}, score_ts = {T0}, \
         last_error = '{err}' WHERE monitor_id = {monitor} AND server_id = {server}"
    ))
    .await;
}

async fn lists_only_the_accounts_monitors(db: &TestDb) {
    let s = &db.store;
    let a = s.ensure_account("a").await.unwrap();
    let b = s.ensure_account("b").await.unwrap();
    monitor(s, "zrh1-v6", "2001:db8::7", Some(a), GlobalStatus::Pending).await;
    monitor(s, "zrh1", "198.51.100.7", Some(a), GlobalStatus::Pending).await;
    monitor(s, "other", "198.51.100.8", Some(b), GlobalStatus::Active).await;
    monitor(s, "admins", "198.51.100.9", None, GlobalStatus::Active).await;
    let names: Vec<String> = s
        .account_monitors(a)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["zrh1", "zrh1-v6"]);
    assert!(s.account_monitor(a, "zrh1").await.unwrap().is_some());
    assert_eq!(s.account_monitor(a, "other").await.unwrap(), None);
    assert_eq!(s.account_monitor(a, "admins").await.unwrap(), None);
    assert_eq!(s.account_monitor(a, "nope").await.unwrap(), None);
}

async fn blind_spots_are_where_most_others_disagree(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let a = s.ensure_account("a").await.unwrap();
    let blind = common::add_server_in(s, "192.0.2.1", "@", T0).await;
    let down = common::add_server_in(s, "192.0.2.2", "@", T0).await;
    let split = common::add_server_in(s, "192.0.2.3", "@", T0).await;
    let fine = common::add_server_in(s, "192.0.2.4", "@", T0).await;
    let mine = monitor(s, "zrh1", "198.51.100.7", Some(a), GlobalStatus::Active).await;
    let o1 = monitor(s, "o1", "198.51.100.8", None, GlobalStatus::Active).await;
    let o2 = monitor(s, "o2", "198.51.100.9", None, GlobalStatus::Testing).await;
    let o3 = monitor(s, "o3", "198.51.100.10", None, GlobalStatus::Paused).await;
    let cand = monitor(s, "cand", "198.51.100.11", None, GlobalStatus::Active).await;

    // blind: zrh1 times out, both others that count see it healthy (the
    // paused monitor and the candidate pair, which see it badly, do not count).
    pair(db, mine, blind, "active", -20.0, "i/o timeout").await;
    pair(db, o1, blind, "active", 19.0, "").await;
    pair(db, o2, blind, "testing", 15.0, "").await;
    pair(db, o3, blind, "active", -5.0, "i/o timeout").await;
    pair(db, cand, blind, "candidate", -5.0, "i/o timeout").await;
    // down: everyone sees it down.
    pair(db, mine, down, "active", -10.0, "i/o timeout").await;
    pair(db, o1, down, "active", -12.0, "i/o timeout").await;
    pair(db, o2, down, "active", 2.0, "").await;
    // split: one of two others healthy is not most.
    pair(db, mine, split, "active", 3.0, "").await;
    pair(db, o1, split, "active", 18.0, "").await;
    pair(db, o2, split, "active", 1.0, "").await;
    // fine: zrh1 sees it healthy too.
    pair(db, mine, fine, "active", 17.0, "").await;
    pair(db, o1, fine, "active", 18.0, "").await;

    let spots = s.monitor_blind_spots(mine, HEALTHY, 10).await.unwrap();
    assert_eq!(spots.len(), 1, "{spots:?}");
    let b = &spots[0];
    assert_eq!(b.server_id, blind);
    assert_eq!(b.ip.to_string(), "192.0.2.1");
    assert_eq!((b.score, b.score_ts), (-20.0, T0));
    assert_eq!(b.last_error, "i/o timeout");
    assert_eq!((b.others, b.others_healthy), (2, 2));

    // The other side's view: o1 sees none of them unhealthy alone.
    assert!(
        s.monitor_blind_spots(o1, HEALTHY, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // o2 disagrees with zrh1 and o1 on `split`: 1 of 2 is not most.
    assert!(
        s.monitor_blind_spots(o2, HEALTHY, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A server zrh1 never checked says nothing.
    db.exec(&format!(
        "UPDATE server_scores SET score_ts = NULL WHERE monitor_id = {mine} AND server_id = {blind}"
    ))
    .await;
    assert!(
        s.monitor_blind_spots(mine, HEALTHY, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.monitor_blind_spots(mine, HEALTHY, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn checks_clock_and_traceroutes_of_one_monitor(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let srv = common::add_server_in(s, "192.0.2.1", "@", T0).await;
    let mine = monitor(s, "zrh1", "198.51.100.7", None, GlobalStatus::Active).await;
    let other = monitor(s, "o1", "198.51.100.8", None, GlobalStatus::Active).await;
    for (m, n) in [(mine, 3), (other, 2)] {
        for i in 0..n {
            let ts = T0 + i;
            let seq = s.create_batch(m, &[srv], ts).await.unwrap();
            s.submit_results(m, seq, &[common::good_result(srv, ts)], ts)
                .await
                .unwrap();
        }
    }
    assert_eq!(s.monitor_checks_since(mine, T0 - 1).await.unwrap(), 3);
    assert_eq!(s.monitor_checks_since(mine, T0).await.unwrap(), 2);
    assert_eq!(s.monitor_checks_since(other, T0 - 1).await.unwrap(), 2);

    assert_eq!(s.monitor_clock(mine).await.unwrap(), None);
    let clock = MonitorClock {
        monitor_id: mine,
        ok: false,
        detail: "2 of 3 reference servers disagree".into(),
        ts: T0,
    };
    s.set_monitor_clock(&clock).await.unwrap();
    assert_eq!(s.monitor_clock(mine).await.unwrap(), Some(clock));
    assert_eq!(s.monitor_clock(other).await.unwrap(), None);

    let hops = r#"[{"ttl":1,"ip":"10.0.0.1","rtt_ms":[0.3],"sent":2},{"ttl":2,"ip":null,"rtt_ms":[],"sent":2}]"#;
    for (m, ts, reason) in [
        (mine, T0, "first"),
        (other, T0 + 1, "theirs"),
        (mine, T0 + 2, "second"),
    ] {
        db.exec(&format!(
            "INSERT INTO traceroutes (server_id, monitor_id, ts, reason, tool, hops, error) \
             VALUES ({srv}, {m}, {ts}, '{reason}', 'mtr', '{hops}', NULL)"
        ))
        .await;
    }
    let t = s.monitor_traceroutes(mine, 10).await.unwrap();
    let reasons: Vec<&str> = t.iter().map(|t| t.reason.as_str()).collect();
    assert_eq!(reasons, ["second", "first"]);
    assert_eq!(t[0].server_ip.to_string(), "192.0.2.1");
    assert_eq!(t[0].hops.len(), 2);
    assert_eq!(t[0].hops[1].ip, None);
    assert_eq!(s.monitor_traceroutes(mine, 1).await.unwrap().len(), 1);
}

async fn status_of(s: &Store, name: &str) -> GlobalStatus {
    s.monitor_by_name(name).await.unwrap().unwrap().status
}

async fn pause_and_resume_restore_the_status(db: &TestDb) {
    let s = &db.store;
    let a = s.ensure_account("a").await.unwrap();
    monitor(s, "act", "198.51.100.7", Some(a), GlobalStatus::Active).await;
    monitor(s, "tst", "198.51.100.8", Some(a), GlobalStatus::Testing).await;
    for (name, was) in [
        ("act", GlobalStatus::Active),
        ("tst", GlobalStatus::Testing),
    ] {
        let m = s
            .set_account_monitor_paused(a, name, true, "user:v@example.net", T0)
            .await
            .unwrap();
        assert_eq!(m.status, GlobalStatus::Paused);
        assert_eq!(s.monitor_paused_from(m.id).await.unwrap(), Some(was));
        assert_eq!(status_of(s, name).await, GlobalStatus::Paused);
        let m = s
            .set_account_monitor_paused(a, name, false, "user:v@example.net", T0 + 1)
            .await
            .unwrap();
        assert_eq!(m.status, was);
        assert_eq!(s.monitor_paused_from(m.id).await.unwrap(), None);
        assert_eq!(status_of(s, name).await, was);
    }
    let log = s.audit_log(a, 10).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = log
        .iter()
        .rev()
        .map(|r| (r.action.as_str(), r.subject.as_str(), r.detail.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("monitor.pause", "act", "active → paused"),
            ("monitor.resume", "act", "paused → active"),
            ("monitor.pause", "tst", "testing → paused"),
            ("monitor.resume", "tst", "paused → testing"),
        ]
    );
    assert!(log.iter().all(|r| r.actor == "user:v@example.net"));
}

async fn pause_refused_for_the_wrong_status_or_account(db: &TestDb) {
    let s = &db.store;
    let a = s.ensure_account("a").await.unwrap();
    let b = s.ensure_account("b").await.unwrap();
    monitor(s, "pend", "198.51.100.7", Some(a), GlobalStatus::Pending).await;
    monitor(s, "gone", "198.51.100.8", Some(a), GlobalStatus::Deleted).await;
    monitor(s, "act", "198.51.100.9", Some(a), GlobalStatus::Active).await;
    monitor(s, "theirs", "198.51.100.10", Some(b), GlobalStatus::Active).await;
    let who = "user:v@example.net";
    let invalid = |r: Result<MonitorRow, StoreError>, has: &str| match r {
        Err(StoreError::Invalid(m)) => assert!(m.contains(has), "{m}"),
        other => panic!("{other:?}"),
    };
    // Pending and deleted can be neither paused nor resumed by the volunteer.
    for name in ["pend", "gone"] {
        invalid(
            s.set_account_monitor_paused(a, name, true, who, T0).await,
            "only an active or testing",
        );
        invalid(
            s.set_account_monitor_paused(a, name, false, who, T0).await,
            "not paused",
        );
    }
    assert_eq!(status_of(s, "pend").await, GlobalStatus::Pending);
    assert_eq!(status_of(s, "gone").await, GlobalStatus::Deleted);
    // Not paused: nothing to resume.
    invalid(
        s.set_account_monitor_paused(a, "act", false, who, T0).await,
        "not paused",
    );
    // An admin's pause (also one over the volunteer's) is the admin's to lift.
    s.set_account_monitor_paused(a, "act", true, who, T0)
        .await
        .unwrap();
    s.set_monitor_status("act", GlobalStatus::Paused)
        .await
        .unwrap();
    let act = s.monitor_by_name("act").await.unwrap().unwrap().id;
    assert_eq!(s.monitor_paused_from(act).await.unwrap(), None);
    invalid(
        s.set_account_monitor_paused(a, "act", false, who, T0).await,
        "pool's admins",
    );
    assert_eq!(status_of(s, "act").await, GlobalStatus::Paused);
    // Another account's monitor, or none: NotFound, nothing changed.
    for name in ["theirs", "nope"] {
        let e = s
            .set_account_monitor_paused(a, name, true, who, T0)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    }
    assert_eq!(status_of(s, "theirs").await, GlobalStatus::Active);
    let actions: Vec<String> = s
        .audit_log(a, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(actions, ["monitor.pause"]);
    assert!(s.audit_log(b, 10).await.unwrap().is_empty());
}
