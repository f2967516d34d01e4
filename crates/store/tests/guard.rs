//! The zone guard's store side (`run_zone_guard`, `server_dns`,
//! `guard_events`), on SQLite and PostgreSQL: a zone of 20 in-DNS servers
//! losing some of them in different ways.

mod common;

use common::TestDb;
use scoring::ZoneGuardConfig;
use std::net::IpAddr;
use store::testing::StoreTesting as _;
use store::*;

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;
/// Two days after the servers were added: all count in the 24 h baseline.
const T1: i64 = T0 + 2 * DAY;
const SHARE: ZoneGuardConfig = ZoneGuardConfig::MaxShare(0.10);

both_backends!(
    holds_the_excess_while_a_monitor_sees_them,
    an_outage_holds_nothing,
    a_trickle_stays_under_the_cap,
    off_holds_nothing,
);

fn zone(name: &str, parent: Option<&str>) -> ZoneSeed {
    ZoneSeed {
        name: name.into(),
        parent: parent.map(Into::into),
        description: name.into(),
    }
}

struct Pool {
    /// Server ids of 192.0.2.1 … 192.0.2.20, in that order.
    ids: Vec<i64>,
    /// The monitor that sees the failures and the one that does not.
    near: i64,
    far: i64,
}

/// Sets a server's aggregate score and one monitor's score for it.
async fn score(db: &TestDb, server: i64, aggregate: f64) {
    db.exec(&format!(
        "UPDATE servers SET score = {aggregate}, score_ts = {T1} WHERE id = {server}"
    ))
    .await;
}

async fn pair(db: &TestDb, server: i64, monitor: i64, score: f64, ts: i64, error: &str) {
    db.exec(&format!(
        "UPDATE server_scores SET score = {score}, score_ts = {ts}, status = 'active', \
             last_error = '{error}' WHERE server_id = {server} AND monitor_id = {monitor}"
    ))
    .await;
}

/// 20 servers in zone `de`, two monitors, everything scoring 15, and one
/// guard pass at `T1 − 600` that records them all in DNS.
async fn pool(db: &TestDb, config: ZoneGuardConfig) -> Pool {
    let s = &db.store;
    s.seed_zones(&[
        zone("@", None),
        zone("europe", Some("@")),
        zone("de", Some("europe")),
    ])
    .await
    .unwrap();
    let mut monitors = Vec::new();
    for (name, addr) in [("near", "198.51.100.1"), ("far", "203.0.113.1")] {
        let m = s
            .add_monitor(
                NewMonitor {
                    name: name.into(),
                    location: name.into(),
                    ip: addr.parse().unwrap(),
                    account_id: None,
                    status: GlobalStatus::Active,
                    key_hash: format!("{name:0>64}"),
                },
                T0,
            )
            .await
            .unwrap();
        monitors.push(m.id);
    }
    let mut ids = Vec::new();
    for i in 1..=20 {
        ids.push(common::add_server_in(s, &format!("192.0.2.{i}"), "de", T0).await);
    }
    db.exec(&format!("UPDATE servers SET score = 15, score_ts = {T1}"))
        .await;
    db.exec(&format!(
        "UPDATE server_scores SET score = 15, score_ts = {}, last_error = ''",
        T1 - 900
    ))
    .await;
    let run = s.run_zone_guard(config, T1 - 600).await.unwrap();
    assert!(run.held.is_empty() && run.events.is_empty(), "{run:?}");
    assert_eq!(active(db).await, 20);
    Pool {
        ids,
        near: monitors[0],
        far: monitors[1],
    }
}

/// IPv4 servers of `de` in DNS now, as `zone_list` counts them.
async fn active(db: &TestDb) -> i64 {
    db.store
        .zone_list(T1)
        .await
        .unwrap()
        .into_iter()
        .find(|z| z.name == "de")
        .unwrap()
        .v4_active
}

async fn membership(db: &TestDb, id: i64, now: i64) -> DnsMembership {
    let s = db.store.server_by_id(id).await.unwrap().unwrap();
    let d = db.store.server_dns(id).await.unwrap();
    DnsMembership::for_server(&s, d.as_ref(), now)
}

/// Servers 16–20 (indices 15..20) fall to an aggregate of 4: `near` scores
/// them 2 with a timeout; `far` scores them `far_score` at `far_ts(i)`.
async fn drop_five(db: &TestDb, p: &Pool, far_score: f64, far_ts: impl Fn(usize) -> i64) {
    for i in 15..20 {
        score(db, p.ids[i], 4.0).await;
        pair(db, p.ids[i], p.near, 2.0, T1 - 30, "i/o timeout").await;
        pair(db, p.ids[i], p.far, far_score, far_ts(i), "").await;
    }
}

async fn holds_the_excess_while_a_monitor_sees_them(db: &TestDb) {
    let p = pool(db, SHARE).await;
    // The most recently good at `far` are the last ones.
    drop_five(db, &p, 12.0, |i| T1 - 100 + i as i64).await;
    let run = db.store.run_zone_guard(SHARE, T1).await.unwrap();
    let want = vec![p.ids[17], p.ids[18], p.ids[19]];
    let mut held = run.held.clone();
    held.sort();
    assert_eq!(held, want, "{run:?}");
    assert_eq!(run.left, 2);
    assert_eq!(run.events.len(), 1, "{run:?}");

    let events = db.store.guard_events("de", 10).await.unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (
            e.zone.as_str(),
            e.ts,
            e.held,
            e.dropped,
            e.allowed,
            e.baseline
        ),
        ("de", T1, 3, 2, 2, 20)
    );
    assert_eq!(e, &run.events[0]);
    let ips: Vec<&str> = e.detail.held.iter().map(|h| h.ip.as_str()).collect();
    assert_eq!(ips, ["192.0.2.20", "192.0.2.19", "192.0.2.18"]);
    assert!(e.detail.reason.contains("5 of 20"), "{}", e.detail.reason);
    let mut not_held = e.detail.not_held.clone();
    not_held.sort();
    assert_eq!(not_held, ["192.0.2.16", "192.0.2.17"]);
    let h = &e.detail.held[0];
    assert_eq!(h.last_good_ts, Some(T1 - 100 + 19));
    assert_eq!(h.monitors.len(), 2);
    let far = h.monitors.iter().find(|m| m.name == "far").unwrap();
    let near = h.monitors.iter().find(|m| m.name == "near").unwrap();
    assert!(
        far.good && far.score >= 10.0 && far.error.is_none(),
        "{far:?}"
    );
    assert!(!near.good, "{near:?}");
    assert_eq!(near.error.as_deref(), Some("i/o timeout"));
    assert_eq!(near.status, "active");

    // In DNS: held ones yes (and flagged), the two dropped ones not.
    for &id in &want {
        let m = membership(db, id, T1).await;
        assert_eq!((m.in_dns, m.by_score, m.held), (true, false, true), "{id}");
    }
    for &id in &p.ids[15..17] {
        let m = membership(db, id, T1).await;
        assert!(!m.in_dns && !m.held, "{id}: {m:?}");
        let d = db.store.server_dns(id).await.unwrap().unwrap();
        assert_eq!((d.in_dns, d.left_at), (false, Some(T1)));
    }
    assert!(membership(db, p.ids[0], T1).await.by_score);
    assert_eq!(active(db).await, 18);
    let stats = db.store.zone_guard_stats().await.unwrap();
    let de = stats.iter().find(|s| s.zone == "de").unwrap();
    assert_eq!((de.held, de.events), (3, 1));

    // The same situation a minute later: the same holds, no new event.
    let again = db.store.run_zone_guard(SHARE, T1 + 60).await.unwrap();
    assert_eq!(again.held, run.held);
    assert!(again.events.is_empty(), "{again:?}");
    assert_eq!(db.store.guard_events("de", 10).await.unwrap().len(), 1);

    // The servers recover: nothing held any more, all back in DNS.
    for i in 15..20 {
        score(db, p.ids[i], 15.0).await;
        pair(db, p.ids[i], p.near, 15.0, T1 + 100, "").await;
    }
    let back = db.store.run_zone_guard(SHARE, T1 + 120).await.unwrap();
    assert!(back.held.is_empty() && back.events.is_empty(), "{back:?}");
    assert_eq!(back.entered, 2);
    assert_eq!(active(db).await, 20);
    let d = db.store.server_dns(p.ids[15]).await.unwrap().unwrap();
    assert_eq!(
        (d.in_dns, d.held, d.in_since),
        (true, false, Some(T1 + 120))
    );
    let d = db.store.server_dns(p.ids[19]).await.unwrap().unwrap();
    assert_eq!((d.in_dns, d.held, d.in_since), (true, false, Some(T0)));
}

async fn an_outage_holds_nothing(db: &TestDb) {
    let p = pool(db, SHARE).await;
    // No monitor sees them good: `far` scores them low, except one whose
    // good score at `far` is two hours old (not "now").
    drop_five(db, &p, 3.0, |_| T1 - 60).await;
    pair(db, p.ids[19], p.far, 12.0, T1 - 7200, "").await;
    let run = db.store.run_zone_guard(SHARE, T1).await.unwrap();
    assert!(run.held.is_empty(), "{run:?}");
    assert_eq!(run.left, 5);
    // The loss exceeded the allowance: an event, with nothing held.
    let events = db.store.guard_events("de", 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].held, events[0].dropped), (0, 5));
    assert!(events[0].detail.held.is_empty());
    assert_eq!(events[0].detail.not_held.len(), 5);
    for &id in &p.ids[15..20] {
        assert!(!membership(db, id, T1).await.in_dns, "{id}");
    }
    assert_eq!(active(db).await, 15);
    let ip: IpAddr = "192.0.2.20".parse().unwrap();
    let s = db.store.server_by_ip(ip).await.unwrap().unwrap();
    assert_eq!(s.id, p.ids[19]);
}

async fn a_trickle_stays_under_the_cap(db: &TestDb) {
    let p = pool(db, SHARE).await;
    // One server per run, each still good at `far`.
    let mut now = T1;
    for i in [19usize, 18] {
        score(db, p.ids[i], 4.0).await;
        pair(db, p.ids[i], p.near, 2.0, now - 30, "i/o timeout").await;
        pair(db, p.ids[i], p.far, 12.0, now - 30, "").await;
        let run = db.store.run_zone_guard(SHARE, now).await.unwrap();
        assert!(run.held.is_empty() && run.events.is_empty(), "{run:?}");
        assert_eq!(run.left, 1);
        now += 3600;
    }
    assert!(db.store.guard_events("de", 10).await.unwrap().is_empty());
    assert_eq!(active(db).await, 18);
    // A third within the day is over the cap: it is held; the two that
    // left already are not put back.
    score(db, p.ids[17], 4.0).await;
    pair(db, p.ids[17], p.far, 12.0, now - 30, "").await;
    let run = db.store.run_zone_guard(SHARE, now).await.unwrap();
    assert_eq!(run.held, vec![p.ids[17]]);
    assert_eq!(run.events.len(), 1);
    assert_eq!((run.events[0].held, run.events[0].dropped), (1, 2));
    assert!(!membership(db, p.ids[19], now).await.in_dns);
    // A day later the window has moved past the first two: the share of
    // the remaining 18 allows one loss, so it is released.
    let later = now + DAY;
    pair(db, p.ids[17], p.far, 12.0, later - 30, "").await;
    let run = db.store.run_zone_guard(SHARE, later).await.unwrap();
    assert!(run.held.is_empty() && run.events.is_empty(), "{run:?}");
    assert_eq!(run.left, 1);
}

async fn off_holds_nothing(db: &TestDb) {
    let p = pool(db, ZoneGuardConfig::Off).await;
    drop_five(db, &p, 12.0, |i| T1 - 100 + i as i64).await;
    let run = db
        .store
        .run_zone_guard(ZoneGuardConfig::Off, T1)
        .await
        .unwrap();
    assert!(run.held.is_empty() && run.events.is_empty(), "{run:?}");
    assert_eq!(run.left, 5);
    assert!(db.store.guard_events("de", 10).await.unwrap().is_empty());
    assert_eq!(active(db).await, 15);
}
