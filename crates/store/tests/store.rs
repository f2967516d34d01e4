//! Store behaviour, run against SQLite and PostgreSQL alike.

mod common;

use common::{TestDb, good_result, monitor};
use std::collections::HashSet;
use std::net::IpAddr;
use store::testing::StoreTesting as _;
use store::*;

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

both_backends!(
    migrations_run_twice,
    servers_and_zones,
    duplicate_ip_conflicts,
    monitors_and_keys,
    take_work_intervals,
    take_work_concurrent,
    submit_scores_and_logs,
    submit_duplicate_and_foreign_batch,
    log_rows_filters,
    deletion_and_netspeed,
    accounts,
    concurrent_monitors,
    housekeeping_prunes_batches_and_old_log,
);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn zone(name: &str, parent: Option<&str>, description: &str) -> ZoneSeed {
    ZoneSeed {
        name: name.into(),
        parent: parent.map(Into::into),
        description: description.into(),
    }
}

fn zones() -> Vec<ZoneSeed> {
    vec![
        zone("@", None, "Global"),
        zone("europe", Some("@"), "Europe"),
        zone("north-america", Some("@"), "North America"),
        zone("de", Some("europe"), "Germany"),
        zone("uk", Some("europe"), "United Kingdom"),
        zone("us", Some("north-america"), "United States"),
    ]
}

fn de(addr: &str) -> NewServer {
    NewServer {
        ip: ip(addr),
        netspeed: 10_000,
        account_id: None,
        zones: vec!["de".into(), "europe".into(), "@".into()],
    }
}

/// Issues a batch for `results`' servers and submits them.
async fn submit(s: &Store, monitor_id: i64, results: &[ResultIn], now: i64) -> SubmitOutcome {
    let ids: Vec<i64> = results.iter().map(|r| r.server_id).collect();
    let seq = s.create_batch(monitor_id, &ids, now).await.unwrap();
    s.submit_results(monitor_id, seq, results, now)
        .await
        .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn migrations_run_twice(db: &TestDb) {
    db.store.seed_zones(&zones()).await.unwrap();
    db.store.add_server(de("192.0.2.1"), T0).await.unwrap();
    let again = db.reopen().await;
    let third = db.reopen().await;
    assert_eq!(again.counts().await.unwrap(), (1, 0, 0));
    // Seeding twice is idempotent too.
    third.seed_zones(&zones()).await.unwrap();
    assert_eq!(third.zone_list(T0).await.unwrap().len(), zones().len());
    again.close().await;
    third.close().await;
}

async fn servers_and_zones(db: &TestDb) {
    let s = &db.store;
    s.seed_zones(&zones()).await.unwrap();
    let a = s.add_server(de("192.0.2.1"), T0).await.unwrap();
    assert_eq!(a.ip, ip("192.0.2.1"));
    assert_eq!(a.ip_version, 4);
    assert_eq!(a.netspeed, 10_000);
    assert_eq!(a.score, 0.0);
    assert_eq!(a.score_ts, None);
    assert_eq!(a.created_on, T0);
    assert_eq!(a.zones, vec!["@", "de", "europe"]);
    s.add_server(de("2001:db8::1"), T0).await.unwrap();
    s.add_server(
        NewServer {
            zones: vec!["us".into(), "north-america".into(), "@".into()],
            ..de("198.51.100.7")
        },
        T0,
    )
    .await
    .unwrap();
    // An IPv4-mapped IPv6 address is the IPv4 server.
    let mapped = s
        .server_by_ip(ip("::ffff:192.0.2.1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mapped.id, a.id);
    assert_eq!(s.server_by_id(a.id).await.unwrap().unwrap(), a);
    assert!(s.server_by_ip(ip("192.0.2.99")).await.unwrap().is_none());

    let all = s.list_servers().await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].ip_version, 6);
    assert_eq!(all[2].zones, vec!["@", "north-america", "us"]);

    let unknown = s
        .add_server(
            NewServer {
                zones: vec!["xx".into()],
                ..de("192.0.2.50")
            },
            T0,
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::Invalid(_))),
        "{unknown:?}"
    );
    assert_eq!(s.counts().await.unwrap().0, 3);

    let list = s.zone_list(T0).await.unwrap();
    let z = |n: &str| list.iter().find(|z| z.name == n).unwrap().clone();
    assert_eq!(list[0].name, "@");
    assert_eq!(z("@").parent, None);
    assert_eq!((z("@").v4_registered, z("@").v6_registered), (2, 1));
    assert_eq!((z("de").v4_registered, z("de").v6_registered), (1, 1));
    assert_eq!(z("de").parent.as_deref(), Some("europe"));
    assert_eq!(z("de").description, "Germany");
    assert_eq!(z("us").v4_registered, 1);
    assert_eq!(z("uk").v4_registered, 0);
    assert!(list.iter().all(|z| z.v4_active == 0 && z.v6_active == 0));

    // Enough good results make the server active in its zones: 14 steady
    // +1 steps give 20·(1 − 0.95^14) ≈ 10.25 ≥ 10.
    let m = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    let results: Vec<_> = (0..14).map(|i| good_result(a.id, T0 + i * 60)).collect();
    submit(s, m.id, &results, T0 + 14 * 60).await;
    let list = s.zone_list(T0 + 14 * 60).await.unwrap();
    let z = |n: &str| list.iter().find(|z| z.name == n).unwrap().clone();
    assert_eq!((z("de").v4_active, z("de").v6_active), (1, 0));
    assert_eq!(z("@").v4_active, 1);
    assert_eq!(z("us").v4_active, 0);
}

async fn duplicate_ip_conflicts(db: &TestDb) {
    let s = &db.store;
    s.seed_zones(&zones()).await.unwrap();
    s.add_server(de("192.0.2.1"), T0).await.unwrap();
    let dup = s.add_server(de("192.0.2.1"), T0).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let dup6 = s.add_server(de("2001:db8::1"), T0).await;
    assert!(dup6.is_ok());
    let dup6 = s.add_server(de("2001:0db8:0::1"), T0).await;
    assert!(matches!(dup6, Err(StoreError::Conflict(_))), "{dup6:?}");
    let neg = s
        .add_server(
            NewServer {
                netspeed: -1,
                ..de("192.0.2.2")
            },
            T0,
        )
        .await;
    assert!(matches!(neg, Err(StoreError::Invalid(_))), "{neg:?}");
    assert_eq!(s.list_servers().await.unwrap().len(), 2);
}

async fn monitors_and_keys(db: &TestDb) {
    let s = &db.store;
    s.seed_zones(&zones()).await.unwrap();
    let v4 = s.add_server(de("192.0.2.1"), T0).await.unwrap();
    let v6 = s.add_server(de("2001:db8::1"), T0).await.unwrap();

    let acct = s.ensure_account("lab").await.unwrap();
    let m = s
        .add_monitor(
            NewMonitor {
                account_id: Some(acct),
                ..monitor("m1", "203.0.113.5")
            },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(m.name, "m1");
    assert_eq!(m.ip_version, 4);
    assert_eq!(m.account_id, Some(acct));
    assert_eq!(m.status, GlobalStatus::Active);
    assert_eq!(
        (m.last_seen, m.last_submit_batch, m.config.clone()),
        (None, None, None)
    );

    let by_key = s.monitor_by_key_hash(&m.key_hash).await.unwrap().unwrap();
    assert_eq!(by_key, m);
    assert!(s.monitor_by_key_hash("00").await.unwrap().is_none());
    assert_eq!(s.monitor_by_name("m1").await.unwrap().unwrap(), m);
    assert_eq!(s.monitor_by_id(m.id).await.unwrap().unwrap(), m);
    assert!(s.monitor_by_name("nope").await.unwrap().is_none());

    let dup_name = s
        .add_monitor(
            NewMonitor {
                key_hash: "ab".repeat(32),
                ..monitor("m1", "203.0.113.6")
            },
            T0,
        )
        .await;
    assert!(
        matches!(dup_name, Err(StoreError::Conflict(_))),
        "{dup_name:?}"
    );
    let dup_key = s
        .add_monitor(
            NewMonitor {
                key_hash: m.key_hash.clone(),
                ..monitor("m2", "203.0.113.6")
            },
            T0,
        )
        .await;
    assert!(
        matches!(dup_key, Err(StoreError::Conflict(_))),
        "{dup_key:?}"
    );

    // A candidate for every server of its IP version, and for servers added
    // later; the selector promotes from there.
    let sm = s.server_monitors(v4.id).await.unwrap();
    assert_eq!(sm.len(), 1);
    assert_eq!(sm[0].status, MonitorStatus::Candidate);
    assert_eq!(sm[0].score, 0.0);
    assert!(s.server_monitors(v6.id).await.unwrap().is_empty());
    let m6 = s
        .add_monitor(monitor("m6", "2001:db8:ffff::5"), T0)
        .await
        .unwrap();
    assert_eq!(m6.ip_version, 6);
    assert_eq!(s.server_monitors(v6.id).await.unwrap()[0].monitor_id, m6.id);
    let later = s.add_server(de("192.0.2.2"), T0).await.unwrap();
    assert_eq!(
        s.server_monitors(later.id).await.unwrap()[0].monitor_id,
        m.id
    );

    s.set_monitor_status("m1", GlobalStatus::Paused)
        .await
        .unwrap();
    s.touch_monitor(m.id, T0 + 5, Some("poolwatch/0.1.0"))
        .await
        .unwrap();
    s.touch_monitor(m.id, T0 + 9, None).await.unwrap();
    s.set_monitor_config("m1", Some(r#"{"samples":4}"#))
        .await
        .unwrap();
    let m = s.monitor_by_id(m.id).await.unwrap().unwrap();
    assert_eq!(m.status, GlobalStatus::Paused);
    assert_eq!(m.last_seen, Some(T0 + 9));
    assert_eq!(m.client_version.as_deref(), Some("poolwatch/0.1.0"));
    assert_eq!(m.config.as_deref(), Some(r#"{"samples":4}"#));
    assert!(matches!(
        s.set_monitor_config("m1", Some("{")).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.set_monitor_status("nope", GlobalStatus::Active).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.touch_monitor(9999, T0, None).await,
        Err(StoreError::NotFound(_))
    ));
    let names: Vec<String> = s
        .list_monitors()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, vec!["m1", "m6"]);
    assert_eq!("deleted".parse(), Ok(GlobalStatus::Deleted));
    assert!("gone".parse::<GlobalStatus>().is_err());

    // A new key: the old hash finds nothing, the new one the monitor.
    s.set_monitor_key_hash("m1", &"ef".repeat(32))
        .await
        .unwrap();
    assert!(s.monitor_by_key_hash(&m.key_hash).await.unwrap().is_none());
    let rotated = s
        .monitor_by_key_hash(&"ef".repeat(32))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rotated.id, rotated.name.as_str()), (m.id, "m1"));
    // Another monitor's hash, or an unknown name: refused, nothing changes.
    assert!(matches!(
        s.set_monitor_key_hash("m1", &m6.key_hash).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.set_monitor_key_hash("nope", &"01".repeat(32)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.monitor_by_key_hash(&"ef".repeat(32))
            .await
            .unwrap()
            .unwrap()
            .id,
        m.id
    );
    assert_eq!(
        s.monitor_by_key_hash(&m6.key_hash)
            .await
            .unwrap()
            .unwrap()
            .id,
        m6.id
    );
}

async fn take_work_intervals(db: &TestDb) {
    let s = &db.store;
    s.seed_zones(&zones()).await.unwrap();
    let a = s.add_server(de("192.0.2.1"), T0).await.unwrap();
    let b = s.add_server(de("192.0.2.2"), T0).await.unwrap();
    let c = s.add_server(de("192.0.2.3"), T0).await.unwrap();
    let d = s.add_server(de("192.0.2.4"), T0).await.unwrap();
    s.add_server(de("2001:db8::1"), T0).await.unwrap();
    let m = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    s.set_server_score_status(a.id, m.id, MonitorStatus::Active)
        .await
        .unwrap();
    s.set_server_score_status(b.id, m.id, MonitorStatus::Testing)
        .await
        .unwrap();
    s.set_server_score_status(c.id, m.id, MonitorStatus::Candidate)
        .await
        .unwrap();
    s.set_server_score_status(d.id, m.id, MonitorStatus::Paused)
        .await
        .unwrap();
    let iv = WorkIntervals {
        active_s: 100,
        testing_s: 1000,
        candidate_s: 10_000,
    };
    let ids = |w: Vec<WorkItem>| w.into_iter().map(|w| w.server_id).collect::<Vec<_>>();

    // Everything never queued (paused aside) is due; only IPv4 servers.
    let first = s.take_work(m.id, iv, 2, T0).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].ip, ip("192.0.2.1"));
    let rest = ids(s.take_work(m.id, iv, 10, T0).await.unwrap());
    assert_eq!(rest, vec![c.id]);
    assert!(s.take_work(m.id, iv, 10, T0 + 99).await.unwrap().is_empty());
    assert_eq!(
        ids(s.take_work(m.id, iv, 10, T0 + 100).await.unwrap()),
        vec![a.id]
    );
    assert_eq!(
        ids(s.take_work(m.id, iv, 10, T0 + 1000).await.unwrap()),
        vec![b.id, a.id],
        "b has waited since T0, a since T0 + 100"
    );
    assert_eq!(
        ids(s.take_work(m.id, iv, 10, T0 + 10_000).await.unwrap()),
        vec![c.id, a.id, b.id],
        "longest waiting first"
    );
    assert!(
        s.take_work(m.id, iv, 0, T0 + 99_999)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.take_work(9999, iv, 10, T0).await,
        Err(StoreError::NotFound(_))
    ));

    // Batches remember what was issued.
    let seq = s.create_batch(m.id, &[a.id, b.id], T0).await.unwrap();
    let seq2 = s.create_batch(m.id, &[c.id], T0).await.unwrap();
    assert!(seq2 > seq);
    let batch = s.batch(seq).await.unwrap().unwrap();
    assert_eq!(
        batch,
        BatchRow {
            seq,
            monitor_id: m.id,
            created: T0,
            submitted: false,
            server_ids: vec![a.id, b.id],
            servers: vec![(a.id, ip("192.0.2.1")), (b.id, ip("192.0.2.2"))],
        }
    );
    assert!(matches!(
        s.create_batch(m.id, &[a.id, 9999], T0).await,
        Err(StoreError::Invalid(_))
    ));

    // Work and its batch in one transaction.
    let (seq3, work) = s.take_work_batch(m.id, iv, 10, T0 + 20_000).await.unwrap();
    assert!(seq3 > seq2);
    // All three were queued at T0 + 10_000: ties go by row order.
    assert_eq!(ids(work.clone()), vec![a.id, b.id, c.id]);
    let b3 = s.batch(seq3).await.unwrap().unwrap();
    assert_eq!(b3.server_ids, vec![a.id, b.id, c.id]);
    assert_eq!(b3.servers[2], (c.id, ip("192.0.2.3")));
    // Nothing due: no batch row is made (idle monitors poll often).
    let (seq4, none) = s.take_work_batch(m.id, iv, 10, T0 + 20_001).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(seq4, 0);
    assert!(s.batch(seq4).await.unwrap().is_none());
    assert!(matches!(
        s.take_work_batch(9999, iv, 10, T0).await,
        Err(StoreError::NotFound(_))
    ));

    // Old batches can be pruned.
    assert_eq!(
        s.housekeep(T0 + 20_000, None, HOUSEKEEPING_CHUNK)
            .await
            .unwrap()
            .batches,
        2
    );
    assert!(s.batch(seq).await.unwrap().is_none());
    assert!(s.batch(seq3).await.unwrap().is_some());
    assert!(s.batch(seq2 + 100).await.unwrap().is_none());
    assert!(matches!(
        s.create_batch(9999, &[a.id], T0).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn take_work_concurrent(db: &TestDb) {
    let s = &db.store;
    s.seed_zones(&zones()).await.unwrap();
    for i in 1..=60 {
        s.add_server(de(&format!("192.0.2.{i}")), T0).await.unwrap();
    }
    let m = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    let iv = WorkIntervals::default();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.take_work(m.id, iv, 15, T0).await.unwrap() })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for w in t.await.unwrap() {
            total += 1;
            assert!(
                seen.insert(w.server_id),
                "server {} handed out twice",
                w.server_id
            );
        }
    }
    assert_eq!(total, 60, "6 × 15 slots cover all 60 servers");
    assert!(s.take_work(m.id, iv, 100, T0 + 1).await.unwrap().is_empty());
}

async fn submit_scores_and_logs(db: &TestDb) {
    let s = &db.store;
    s.seed_zones(&zones()).await.unwrap();
    let srv = s.add_server(de("192.0.2.1"), T0).await.unwrap();
    let m = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();

    let want = [1.0, 1.95, 2.8525];
    for (i, w) in want.iter().enumerate() {
        let ts = T0 + i as i64 * 60;
        let out = submit(s, m.id, &[good_result(srv.id, ts)], ts + 1).await;
        assert_eq!(
            out,
            SubmitOutcome {
                accepted: 1,
                duplicate: false,
                ..Default::default()
            }
        );
        let sm = s.server_monitors(srv.id).await.unwrap();
        assert!(
            close(sm[0].score, *w),
            "after {} results: {}",
            i + 1,
            sm[0].score
        );
        assert_eq!(sm[0].score_ts, Some(ts));
        assert!(close(sm[0].rtt.unwrap(), 0.0125));
        // One monitor: the aggregate is its score.
        let server = s.server_by_id(srv.id).await.unwrap().unwrap();
        assert!(close(server.score, *w));
        assert_eq!(server.score_ts, Some(ts + 1));
    }
    let rows = s
        .log_rows(srv.id, MonitorFilter::Monitor(m.id), 100, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    let newest = &rows[0];
    assert_eq!(newest.ts, T0 + 120);
    assert_eq!(newest.monitor_id, Some(m.id));
    assert_eq!(newest.monitor_name.as_deref(), Some("m1"));
    assert_eq!(newest.step, 1.0);
    assert!(close(newest.score, 2.8525));
    assert_eq!(newest.offset, Some(0.001));
    assert!(close(newest.rtt.unwrap(), 0.0125));
    assert_eq!((newest.stratum, newest.leap), (Some(2), Some(0)));
    assert_eq!(newest.refid.as_deref(), Some("GPS"));
    assert_eq!(newest.error, None);

    let agg = s
        .log_rows(srv.id, MonitorFilter::Aggregate, 100, None)
        .await
        .unwrap();
    assert_eq!(agg.len(), 3, "each change is logged: {agg:?}");
    assert!(
        agg.iter()
            .all(|r| r.monitor_id.is_none() && r.monitor_name.is_none())
    );
    assert!(agg.iter().all(|r| r.offset.is_none() && r.rtt.is_none()));
    assert!(close(agg[0].score, 2.8525));
    assert!(close(agg[0].step, 2.8525 - 1.95));
    assert_eq!(agg[0].ts, T0 + 121);

    // Values read back exactly (SQLite's JSON transport included).
    let odd = ResultIn {
        offset: Some(-0.012_345_678_901_234_567),
        rtt: Some(0.000_123_4),
        ..good_result(srv.id, T0 + 200)
    };
    submit(s, m.id, &[odd], T0 + 200).await;
    let row = &s
        .log_rows(srv.id, MonitorFilter::Monitor(m.id), 1, None)
        .await
        .unwrap()[0];
    assert_eq!(row.offset, Some(-0.012_345_678_901_234_567));
    assert_eq!(row.rtt, Some(0.000_123));
    let sm = s.server_monitors(srv.id).await.unwrap();
    assert_eq!(sm[0].score, row.score);

    // Errors: the step table decides, the error is kept, scores are capped.
    let deny = ResultIn {
        offset: None,
        rtt: None,
        stratum: Some(0),
        refid: Some("DENY".into()),
        error: Some("DENY".into()),
        ..good_result(srv.id, T0 + 300)
    };
    let timeout = ResultIn {
        offset: None,
        rtt: None,
        stratum: None,
        leap: None,
        refid: None,
        error: Some("i/o timeout".into()),
        no_response: true,
        ..good_result(srv.id, T0 + 360)
    };
    submit(s, m.id, &[deny, timeout], T0 + 361).await;
    let before_deny = 2.8525 * 0.95 + 1.0;
    let rows = s
        .log_rows(srv.id, MonitorFilter::Monitor(m.id), 2, None)
        .await
        .unwrap();
    assert_eq!(rows[1].error.as_deref(), Some("DENY"));
    assert_eq!(rows[1].step, -10.0);
    assert_eq!(
        rows[1].score, -50.0,
        "DENY is capped at -50 (from {before_deny})"
    );
    assert_eq!(rows[0].error.as_deref(), Some("i/o timeout"));
    assert!(rows[0].no_response);
    assert_eq!(rows[0].step, -5.0);
    assert!(close(rows[0].score, rows[1].score * 0.95 - 5.0));
    let server = s.server_by_id(srv.id).await.unwrap().unwrap();
    assert!(close(server.score, rows[0].score));

    // Two more monitors: the aggregate is the median of the three.
    let m2 = s
        .add_monitor(monitor("m2", "203.0.113.6"), T0)
        .await
        .unwrap();
    let m3 = s
        .add_monitor(monitor("m3", "203.0.113.7"), T0)
        .await
        .unwrap();
    submit(s, m2.id, &[good_result(srv.id, T0 + 400)], T0 + 400).await;
    submit(
        s,
        m3.id,
        &[good_result(srv.id, T0 + 400), good_result(srv.id, T0 + 401)],
        T0 + 401,
    )
    .await;
    let server = s.server_by_id(srv.id).await.unwrap().unwrap();
    assert!(
        close(server.score, 1.0),
        "median of (-52.5, 1, 1.95): {}",
        server.score
    );
    let sm = s.server_monitors(srv.id).await.unwrap();
    let names: Vec<&str> = sm.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["m1", "m2", "m3"]);
    assert!(close(sm[2].score, 1.95));
    // 9 monitor rows; aggregates logged after each of the first 5 submissions
    // and after m3's (m2's left it at m1's unchanged -52.5: not logged).
    assert_eq!(s.counts().await.unwrap(), (1, 3, 9 + 6));
    assert!(
        s.monitor_by_id(m3.id)
            .await
            .unwrap()
            .unwrap()
            .last_submit_batch
            .is_some()
    );
}

async fn submit_duplicate_and_foreign_batch(db: &TestDb) {
    let s = &db.store;
    s.seed_zones(&zones()).await.unwrap();
    let srv = s.add_server(de("192.0.2.1"), T0).await.unwrap();
    let m1 = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    let m2 = s
        .add_monitor(monitor("m2", "203.0.113.6"), T0)
        .await
        .unwrap();

    let seq = s.create_batch(m1.id, &[srv.id], T0).await.unwrap();
    let results = [good_result(srv.id, T0)];

    // Another monitor's batch: rejected, nothing stored.
    let foreign = s.submit_results(m2.id, seq, &results, T0).await;
    assert!(
        matches!(foreign, Err(StoreError::Invalid(_))),
        "{foreign:?}"
    );
    assert_eq!(s.counts().await.unwrap().2, 0);
    assert!(!s.batch(seq).await.unwrap().unwrap().submitted);
    let missing = s.submit_results(m1.id, seq + 1000, &results, T0).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    // A result for an unknown server: rejected as a whole.
    let bad = s
        .submit_results(
            m1.id,
            seq,
            &[good_result(srv.id, T0), good_result(srv.id + 999, T0)],
            T0,
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    assert_eq!(s.counts().await.unwrap().2, 0);
    assert_eq!(s.server_monitors(srv.id).await.unwrap()[0].score_ts, None);

    let first = s.submit_results(m1.id, seq, &results, T0).await.unwrap();
    assert_eq!(
        first,
        SubmitOutcome {
            accepted: 1,
            duplicate: false,
            ..Default::default()
        }
    );
    let logs = s.counts().await.unwrap().2;
    assert_eq!(logs, 2, "monitor row and aggregate row");
    let again = s
        .submit_results(m1.id, seq, &results, T0 + 5)
        .await
        .unwrap();
    assert_eq!(
        again,
        SubmitOutcome {
            accepted: 0,
            duplicate: true,
            ..Default::default()
        }
    );
    assert_eq!(s.counts().await.unwrap().2, logs);
    assert!(close(
        s.server_monitors(srv.id).await.unwrap()[0].score,
        1.0
    ));
    assert!(s.batch(seq).await.unwrap().unwrap().submitted);
    assert_eq!(
        s.monitor_by_id(m1.id)
            .await
            .unwrap()
            .unwrap()
            .last_submit_batch,
        Some(seq)
    );

    // A batch older than the newest submitted one is refused, nothing stored.
    let older = s.create_batch(m1.id, &[srv.id], T0 + 30).await.unwrap();
    let newer = s.create_batch(m1.id, &[srv.id], T0 + 31).await.unwrap();
    s.submit_results(m1.id, newer, &[good_result(srv.id, T0 + 31)], T0 + 31)
        .await
        .unwrap();
    let logs = s.counts().await.unwrap().2;
    let late = s
        .submit_results(m1.id, older, &[good_result(srv.id, T0 + 30)], T0 + 32)
        .await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    assert_eq!(s.counts().await.unwrap().2, logs);
    assert!(!s.batch(older).await.unwrap().unwrap().submitted);
    assert!(close(
        s.server_monitors(srv.id).await.unwrap()[0].score,
        1.95
    ));

    // Concurrent submissions of one batch store it once.
    let seq = s.create_batch(m1.id, &[srv.id], T0 + 60).await.unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.submit_results(m1.id, seq, &[good_result(srv.id, T0 + 60)], T0 + 60)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        if !t.await.unwrap().duplicate {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
    assert!(close(
        s.server_monitors(srv.id).await.unwrap()[0].score,
        2.8525
    ));
    // An empty batch is accepted and marked.
    let seq = s.create_batch(m1.id, &[], T0 + 70).await.unwrap();
    let out = s.submit_results(m1.id, seq, &[], T0 + 70).await.unwrap();
    assert_eq!(out.accepted, 0);
    assert!(s.batch(seq).await.unwrap().unwrap().submitted);
}

async fn log_rows_filters(db: &TestDb) {
    let s = &db.store;
    s.seed_zones(&zones()).await.unwrap();
    let srv = s.add_server(de("192.0.2.1"), T0).await.unwrap();
    let other = s.add_server(de("192.0.2.2"), T0).await.unwrap();
    let m1 = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    let m2 = s
        .add_monitor(monitor("m2", "203.0.113.6"), T0)
        .await
        .unwrap();
    // Each round: m1 and m2 check both servers; 16 min apart so every
    // aggregate is logged (the same value is re-logged after 15 min).
    for round in 0..5 {
        let t = T0 + round * 960;
        submit(
            s,
            m1.id,
            &[good_result(srv.id, t), good_result(other.id, t)],
            t + 1,
        )
        .await;
        submit(
            s,
            m2.id,
            &[good_result(srv.id, t + 2), good_result(other.id, t + 2)],
            t + 3,
        )
        .await;
    }
    let all = s
        .log_rows(srv.id, MonitorFilter::All, 1000, None)
        .await
        .unwrap();
    let agg = s
        .log_rows(srv.id, MonitorFilter::Aggregate, 1000, None)
        .await
        .unwrap();
    let one = s
        .log_rows(srv.id, MonitorFilter::Monitor(m2.id), 1000, None)
        .await
        .unwrap();
    assert_eq!(one.len(), 5);
    assert!(one.iter().all(|r| r.monitor_id == Some(m2.id)));
    assert!(agg.iter().all(|r| r.monitor_id.is_none()));
    assert!(agg.len() >= 5, "{}", agg.len());
    assert_eq!(all.len(), 10 + agg.len());
    // Newest first, ties by insertion order reversed.
    assert!(
        all.windows(2)
            .all(|w| (w[0].ts, w[0].id) > (w[1].ts, w[1].id))
    );
    assert_eq!(all[0].ts, T0 + 4 * 960 + 3);

    let limited = s
        .log_rows(srv.id, MonitorFilter::All, 3, None)
        .await
        .unwrap();
    assert_eq!(limited, all[..3].to_vec());
    assert!(
        s.log_rows(srv.id, MonitorFilter::All, 0, None)
            .await
            .unwrap()
            .is_empty()
    );

    // `since`: strictly later rows, oldest first, limited.
    let since = T0 + 960;
    let asc = s
        .log_rows(srv.id, MonitorFilter::All, 1000, Some(since))
        .await
        .unwrap();
    let mut want: Vec<LogRow> = all.iter().filter(|r| r.ts > since).cloned().collect();
    want.reverse();
    assert_eq!(asc, want);
    let asc2 = s
        .log_rows(srv.id, MonitorFilter::All, 2, Some(since))
        .await
        .unwrap();
    assert_eq!(asc2, want[..2].to_vec());
    let m1_since = s
        .log_rows(srv.id, MonitorFilter::Monitor(m1.id), 1000, Some(since))
        .await
        .unwrap();
    assert_eq!(
        m1_since.iter().map(|r| r.ts).collect::<Vec<_>>(),
        (2..5).map(|r| T0 + r * 960).collect::<Vec<_>>()
    );
    let agg_since = s
        .log_rows(srv.id, MonitorFilter::Aggregate, 1000, Some(since))
        .await
        .unwrap();
    assert!(
        agg_since
            .iter()
            .all(|r| r.monitor_id.is_none() && r.ts > since)
    );
    assert!(agg_since.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert!(
        s.log_rows(srv.id, MonitorFilter::Monitor(9999), 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.log_rows(9999, MonitorFilter::All, 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn deletion_and_netspeed(db: &TestDb) {
    let s = &db.store;
    s.seed_zones(&zones()).await.unwrap();
    let a = s.add_server(de("192.0.2.1"), T0).await.unwrap();
    let m = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    let results: Vec<_> = (0..20).map(|i| good_result(a.id, T0 + i)).collect();
    submit(s, m.id, &results, T0 + 20).await;
    let now = T0 + 30;
    let de_zone = |list: Vec<ZoneSummary>| list.into_iter().find(|z| z.name == "de").unwrap();
    assert_eq!(de_zone(s.zone_list(now).await.unwrap()).v4_active, 1);

    s.set_netspeed(ip("192.0.2.1"), 0).await.unwrap();
    assert_eq!(
        s.server_by_ip(ip("192.0.2.1"))
            .await
            .unwrap()
            .unwrap()
            .netspeed,
        0
    );
    let z = de_zone(s.zone_list(now).await.unwrap());
    assert_eq!((z.v4_active, z.v4_registered), (0, 1));
    s.set_netspeed(ip("192.0.2.1"), 50_000).await.unwrap();
    assert_eq!(de_zone(s.zone_list(now).await.unwrap()).v4_active, 1);
    assert!(matches!(
        s.set_netspeed(ip("192.0.2.1"), -5).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.set_netspeed(ip("192.0.2.9"), 5).await,
        Err(StoreError::NotFound(_))
    ));

    // Deletion in 10 days: out of DNS now, still registered and monitored.
    let on = (now / DAY + 10) * DAY;
    s.set_deletion(ip("192.0.2.1"), Some(on)).await.unwrap();
    assert_eq!(
        s.server_by_id(a.id).await.unwrap().unwrap().deletion_on,
        Some(on)
    );
    let z = de_zone(s.zone_list(now).await.unwrap());
    assert_eq!((z.v4_active, z.v4_registered), (0, 1));
    let iv = WorkIntervals::default();
    assert_eq!(
        s.take_work(m.id, iv, 10, now + 3600).await.unwrap().len(),
        1
    );
    // Past the date: neither registered nor handed out as work.
    let z = de_zone(s.zone_list(on + 1).await.unwrap());
    assert_eq!((z.v4_active, z.v4_registered), (0, 0));
    assert!(
        s.take_work(m.id, iv, 10, on + 7200)
            .await
            .unwrap()
            .is_empty()
    );
    // Cancelled.
    s.set_deletion(ip("192.0.2.1"), None).await.unwrap();
    assert_eq!(de_zone(s.zone_list(now).await.unwrap()).v4_active, 1);
    assert!(matches!(
        s.set_deletion(ip("192.0.2.9"), None).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn accounts(db: &TestDb) {
    let s = &db.store;
    let id = s.ensure_account("alice").await.unwrap();
    assert_eq!(s.ensure_account("alice").await.unwrap(), id);
    assert_ne!(s.ensure_account("bob").await.unwrap(), id);
    s.set_account_contact("alice", Some("a@example.org"), None)
        .await
        .unwrap();
    let a = s.account_by_name("alice").await.unwrap().unwrap();
    assert_eq!(
        a,
        AccountRow {
            id,
            name: "alice".into(),
            email: Some("a@example.org".into()),
            webhook: None
        }
    );
    assert!(s.account_by_name("carol").await.unwrap().is_none());
    assert!(matches!(
        s.set_account_contact("carol", None, None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.ensure_account("  ").await,
        Err(StoreError::Invalid(_))
    ));
    for bad in ["a".repeat(101), "ali\nce".into()] {
        assert!(
            matches!(s.ensure_account(&bad).await, Err(StoreError::Invalid(ref m)) if m.starts_with("account name")),
            "{bad:?}"
        );
        assert!(s.account_by_name(&bad).await.unwrap().is_none());
    }
    s.seed_zones(&zones()).await.unwrap();
    let srv = s
        .add_server(
            NewServer {
                account_id: Some(id),
                ..de("192.0.2.1")
            },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(srv.account_id, Some(id));
    let bad = s
        .add_server(
            NewServer {
                account_id: Some(id + 100),
                ..de("192.0.2.2")
            },
            T0,
        )
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
}

/// Several monitors fetching work and submitting at once over the same
/// servers: nothing fails, and every server's stored score is the
/// aggregate of its monitors' final scores.
async fn concurrent_monitors(db: &TestDb) {
    let s = &db.store;
    s.seed_zones(&zones()).await.unwrap();
    for i in 1..=20 {
        s.add_server(de(&format!("192.0.2.{i}")), T0).await.unwrap();
    }
    let mut ids = Vec::new();
    for m in 0..3 {
        let row = s
            .add_monitor(
                monitor(&format!("m{m}"), &format!("203.0.113.{}", m + 1)),
                T0,
            )
            .await
            .unwrap();
        ids.push(row.id);
    }
    let iv = WorkIntervals {
        active_s: 0,
        testing_s: 0,
        candidate_s: 0,
    };
    let tasks: Vec<_> = ids
        .iter()
        .map(|&m| {
            let s = s.clone();
            tokio::spawn(async move {
                for round in 0..5 {
                    let now = T0 + round;
                    let (seq, work) = s.take_work_batch(m, iv, 20, now).await.unwrap();
                    let results: Vec<ResultIn> =
                        work.iter().map(|w| good_result(w.server_id, now)).collect();
                    let out = s.submit_results(m, seq, &results, now).await.unwrap();
                    assert_eq!(out.accepted, work.len());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let now = T0 + 4;
    for server in s.list_servers().await.unwrap() {
        let scores: Vec<scoring::MonitorScore> = s
            .server_monitors(server.id)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|r| {
                Some(scoring::MonitorScore {
                    monitor_id: r.monitor_id,
                    status: r.status,
                    score: r.score,
                    ts: r.score_ts?,
                    rtt: r.rtt,
                })
            })
            .collect();
        let want = scoring::aggregate(&scores, now).unwrap();
        assert!(
            close(server.score, want),
            "{}: {} vs {want}",
            server.ip,
            server.score
        );
    }
}

async fn housekeeping_prunes_batches_and_old_log(db: &TestDb) {
    const DAY: i64 = 86_400;
    let s = &db.store;
    s.seed_zones(&zones()).await.unwrap();
    let a = s.add_server(de("192.0.2.1"), T0).await.unwrap();
    let b = s.add_server(de("192.0.2.2"), T0).await.unwrap();
    let m = s
        .add_monitor(monitor("zrh", "203.0.113.1"), T0)
        .await
        .unwrap();
    // Four days of three rounds each, one batch per round; the first
    // round's aggregate rows are logged too.
    for day in 0..4 {
        for round in 0..3 {
            let now = T0 + day * DAY + round * 60;
            submit(
                s,
                m.id,
                &[good_result(a.id, now), good_result(b.id, now)],
                now,
            )
            .await;
        }
    }
    // Issued, never submitted: one old, one recent.
    let old = s.create_batch(m.id, &[a.id], T0 + 10).await.unwrap();
    let recent = s.create_batch(m.id, &[a.id], T0 + 4 * DAY).await.unwrap();
    let all = |id| async move {
        s.log_rows(id, MonitorFilter::All, 10_000, None)
            .await
            .unwrap()
    };
    let before = all(a.id).await.len() + all(b.id).await.len();
    let old_rows = [all(a.id).await, all(b.id).await]
        .iter()
        .flatten()
        .filter(|r| r.ts < T0 + 2 * DAY)
        .count();
    assert!(
        old_rows >= 12,
        "two days × three rounds × two servers: {old_rows}"
    );
    assert!(
        all(a.id)
            .await
            .iter()
            .any(|r| r.monitor_id.is_none() && r.ts < T0 + 2 * DAY),
        "aggregate rows are among the old ones"
    );
    let score_a = s.server_by_id(a.id).await.unwrap().unwrap().score;
    // The metrics' cheap count follows writes (and, below, deletes).
    assert_eq!(s.metric_counts().await.unwrap(), s.counts().await.unwrap());

    assert!(matches!(
        s.housekeep(T0 + 3 * DAY, None, 0).await,
        Err(StoreError::Invalid(_))
    ));
    // Chunks of 2 rows: many small transactions, the same result.
    let done = s
        .housekeep(T0 + 3 * DAY, Some(T0 + 2 * DAY), 2)
        .await
        .unwrap();
    // Days 0–2: 9 submitted batches, and the old unsubmitted one.
    assert_eq!(done.batches, 10);
    assert_eq!(done.log_rows as usize, old_rows);
    let left = [all(a.id).await, all(b.id).await];
    assert_eq!(left[0].len() + left[1].len(), before - old_rows);
    assert!(left.iter().flatten().all(|r| r.ts >= T0 + 2 * DAY));
    assert_eq!(s.metric_counts().await.unwrap(), s.counts().await.unwrap());
    assert!(left[0].iter().any(|r| r.monitor_id.is_none()));
    // Scores are not history: they stay.
    assert_eq!(s.server_by_id(a.id).await.unwrap().unwrap().score, score_a);
    assert!(s.batch(old).await.unwrap().is_none());
    assert!(matches!(
        s.submit_results(m.id, old, &[good_result(a.id, T0 + 10)], T0 + 4 * DAY)
            .await,
        Err(StoreError::NotFound(_))
    ));
    // The recent batch is still there and still takes its results.
    let out = s
        .submit_results(
            m.id,
            recent,
            &[good_result(a.id, T0 + 4 * DAY)],
            T0 + 4 * DAY,
        )
        .await
        .unwrap();
    assert_eq!(out.accepted, 1);
    let now_rows = all(a.id).await.len() + all(b.id).await.len();

    // Nothing more to delete; without a log cutoff no log row goes.
    assert_eq!(
        s.housekeep(T0 + 3 * DAY, Some(T0 + 2 * DAY), 2)
            .await
            .unwrap(),
        Housekeeping::default()
    );
    let kept = s
        .housekeep(T0 + 5 * DAY, None, HOUSEKEEPING_CHUNK)
        .await
        .unwrap();
    assert_eq!(kept.log_rows, 0);
    assert_eq!(kept.batches, 4, "day 3's three rounds and the recent one");
    assert_eq!(all(a.id).await.len() + all(b.id).await.len(), now_rows);
}
