//! Traceroute requests and results, on SQLite and PostgreSQL alike.

mod common;

use common::TestDb;
use std::net::IpAddr;
use store::testing::StoreTesting as _;
use store::*;

const T0: i64 = 1_700_000_000;

both_backends!(
    request_rate_limit,
    take_hands_out_and_retakes,
    store_and_latest,
    good_monitor,
    pending_cap_per_monitor,
);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn monitor(name: &str, addr: &str, status: GlobalStatus) -> NewMonitor {
    NewMonitor {
        name: name.into(),
        location: "Lab".into(),
        ip: ip(addr),
        account_id: None,
        status,
        key_hash: format!("{name:0>64}"),
    }
}

/// A zone, two servers and three monitors: (servers, monitors).
async fn setup(s: &Store) -> (Vec<i64>, Vec<i64>) {
    common::seed_global(s).await;
    let mut servers = Vec::new();
    for a in ["198.51.100.1", "198.51.100.2"] {
        servers.push(common::add_server_in(s, a, "@", T0).await);
    }
    let mut monitors = Vec::new();
    for (n, a, st) in [
        ("mon-a", "203.0.113.1", GlobalStatus::Active),
        ("mon-b", "203.0.113.2", GlobalStatus::Active),
        ("mon-c", "203.0.113.3", GlobalStatus::Testing),
    ] {
        monitors.push(s.add_monitor(monitor(n, a, st), T0).await.unwrap().id);
    }
    (servers, monitors)
}

fn trace(ts: i64) -> TracerouteIn {
    TracerouteIn {
        ts,
        tool: "mtr".into(),
        hops: vec![
            TracerouteHop {
                ttl: 1,
                ip: Some(ip("10.0.0.1")),
                rtt_ms: vec![0.3, 0.4],
                sent: 2,
            },
            TracerouteHop {
                ttl: 2,
                ip: None,
                rtt_ms: vec![],
                sent: 2,
            },
            TracerouteHop {
                ttl: 3,
                ip: Some(ip("198.51.100.1")),
                rtt_ms: vec![12.5],
                sent: 2,
            },
        ],
        error: None,
    }
}

async fn request_rate_limit(db: &TestDb) {
    let s = &db.store;
    let (srv, mon) = setup(s).await;
    assert!(
        s.request_traceroute(srv[0], mon[0], "first", T0)
            .await
            .unwrap()
    );
    // Within 20 minutes: skipped, the pending request keeps its reason.
    assert!(
        !s.request_traceroute(srv[0], mon[0], "second", T0 + 60)
            .await
            .unwrap()
    );
    assert!(
        !s.request_traceroute(
            srv[0],
            mon[0],
            "third",
            T0 + TRACEROUTE_REQUEST_INTERVAL_S - 1
        )
        .await
        .unwrap()
    );
    // Other pairs are independent.
    assert!(
        s.request_traceroute(srv[0], mon[1], "b", T0 + 60)
            .await
            .unwrap()
    );
    assert!(
        s.request_traceroute(srv[1], mon[0], "other server", T0 + 60)
            .await
            .unwrap()
    );
    let got = s
        .take_traceroute_requests(mon[0], T0 + 120, 10)
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            (srv[0], ip("198.51.100.1"), "first".to_string()),
            (srv[1], ip("198.51.100.2"), "other server".to_string()),
        ]
    );
    // After 20 minutes the pending request is replaced.
    let later = T0 + TRACEROUTE_REQUEST_INTERVAL_S;
    assert!(
        s.request_traceroute(srv[0], mon[0], "renewed", later)
            .await
            .unwrap()
    );
    let got = s.take_traceroute_requests(mon[0], later, 10).await.unwrap();
    // (The other server's request, unanswered for 10 minutes, comes again.)
    assert_eq!(
        got,
        vec![
            (srv[1], ip("198.51.100.2"), "other server".to_string()),
            (srv[0], ip("198.51.100.1"), "renewed".to_string()),
        ]
    );
    // Unknown server or monitor.
    assert!(matches!(
        s.request_traceroute(9999, mon[0], "x", T0).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.request_traceroute(srv[0], 9999, "x", T0).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn take_hands_out_and_retakes(db: &TestDb) {
    let s = &db.store;
    let (srv, mon) = setup(s).await;
    assert!(
        s.take_traceroute_requests(mon[0], T0, 4)
            .await
            .unwrap()
            .is_empty()
    );
    s.request_traceroute(srv[1], mon[0], "later", T0 + 1)
        .await
        .unwrap();
    s.request_traceroute(srv[0], mon[0], "earlier", T0)
        .await
        .unwrap();
    // Oldest first, at most `limit`.
    let got = s.take_traceroute_requests(mon[0], T0 + 5, 1).await.unwrap();
    assert_eq!(got, vec![(srv[0], ip("198.51.100.1"), "earlier".into())]);
    let got = s.take_traceroute_requests(mon[0], T0 + 5, 4).await.unwrap();
    assert_eq!(got, vec![(srv[1], ip("198.51.100.2"), "later".into())]);
    // Taken: not handed out again within 10 minutes, and never to another monitor.
    assert!(
        s.take_traceroute_requests(mon[0], T0 + 60, 4)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.take_traceroute_requests(mon[1], T0 + 60, 4)
            .await
            .unwrap()
            .is_empty()
    );
    // Unanswered after 10 minutes: handed out again.
    let again = s
        .take_traceroute_requests(mon[0], T0 + 5 + TRACEROUTE_RETAKE_S, 4)
        .await
        .unwrap();
    assert_eq!(again.len(), 2);
    // Answered: never handed out again.
    s.store_traceroute(mon[0], ip("198.51.100.1"), &trace(T0 + 700), T0 + 700)
        .await
        .unwrap();
    let again = s
        .take_traceroute_requests(mon[0], T0 + 5 + 2 * TRACEROUTE_RETAKE_S, 4)
        .await
        .unwrap();
    assert_eq!(again, vec![(srv[1], ip("198.51.100.2"), "later".into())]);
    // Stale (an hour without being answered): dropped.
    assert!(
        s.take_traceroute_requests(mon[0], T0 + 2 + TRACEROUTE_STALE_S, 4)
            .await
            .unwrap()
            .is_empty()
    );
    // A server past its deletion date is not traced.
    s.request_traceroute(srv[0], mon[2], "gone", T0)
        .await
        .unwrap();
    s.set_deletion(ip("198.51.100.1"), Some(T0 + 10))
        .await
        .unwrap();
    assert!(
        s.take_traceroute_requests(mon[2], T0 + 20, 4)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn store_and_latest(db: &TestDb) {
    let s = &db.store;
    let (srv, mon) = setup(s).await;
    // Never requested: Conflict; unknown address: NotFound.
    assert!(matches!(
        s.store_traceroute(mon[0], ip("198.51.100.1"), &trace(T0), T0)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.store_traceroute(mon[0], ip("192.0.2.99"), &trace(T0), T0)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(s.latest_traceroutes(srv[0]).await.unwrap().is_empty());

    s.request_traceroute(srv[0], mon[0], "monitor mon-a: healthy → i/o timeout", T0)
        .await
        .unwrap();
    s.request_traceroute(srv[0], mon[1], "monitor mon-a: healthy → i/o timeout", T0)
        .await
        .unwrap();
    s.take_traceroute_requests(mon[0], T0, 4).await.unwrap();
    let id = s
        .store_traceroute(mon[0], ip("198.51.100.1"), &trace(T0 + 30), T0 + 31)
        .await
        .unwrap();
    // Answered once: a second submission is a Conflict, even before the
    // 20 minutes are over.
    assert!(matches!(
        s.store_traceroute(mon[0], ip("198.51.100.1"), &trace(T0 + 40), T0 + 41)
            .await,
        Err(StoreError::Conflict(_))
    ));
    // And the rate limit still holds after the answer.
    assert!(
        !s.request_traceroute(srv[0], mon[0], "again", T0 + 60)
            .await
            .unwrap()
    );
    // The other monitor answers with an error (as an agent without a tool does).
    let failed = TracerouteIn {
        ts: T0 + 50,
        tool: "none".into(),
        hops: vec![],
        error: Some("neither mtr nor traceroute is installed".into()),
    };
    s.store_traceroute(mon[1], ip("198.51.100.1"), &failed, T0 + 51)
        .await
        .unwrap();

    let rows = s.latest_traceroutes(srv[0]).await.unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].monitor_name, "mon-b");
    assert_eq!(
        rows[0].error.as_deref(),
        Some("neither mtr nor traceroute is installed")
    );
    assert!(rows[0].hops.is_empty());
    let a = &rows[1];
    assert_eq!(a.id, id);
    assert_eq!((a.server_id, a.monitor_id, a.ts), (srv[0], mon[0], T0 + 30));
    assert_eq!(a.monitor_name, "mon-a");
    assert_eq!(a.reason, "monitor mon-a: healthy → i/o timeout");
    assert_eq!(a.tool, "mtr");
    assert_eq!(a.hops, trace(0).hops);
    assert_eq!(a.error, None);

    // A newer one from mon-a replaces it on the latest list.
    let later = T0 + TRACEROUTE_REQUEST_INTERVAL_S + 100;
    assert!(
        s.request_traceroute(srv[0], mon[0], "second", later)
            .await
            .unwrap()
    );
    let mut t = trace(later + 5);
    t.tool = "traceroute".into();
    s.store_traceroute(mon[0], ip("198.51.100.1"), &t, later + 6)
        .await
        .unwrap();
    let rows = s.latest_traceroutes(srv[0]).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].monitor_name, "mon-a");
    assert_eq!(rows[0].tool, "traceroute");
    assert_eq!(rows[0].reason, "second");
    assert!(s.latest_traceroutes(srv[1]).await.unwrap().is_empty());
}

fn good(server_id: i64, ts: i64) -> ResultIn {
    ResultIn {
        server_id,
        ts,
        offset: Some(0.001),
        rtt: Some(0.01),
        stratum: Some(2),
        leap: Some(0),
        refid: Some("GPS".into()),
        error: None,
        no_response: false,
    }
}

async fn good_monitor(db: &TestDb) {
    let s = &db.store;
    let (srv, mon) = setup(s).await;
    // Nobody has a score yet.
    assert_eq!(s.good_monitor_for(srv[0], mon[0]).await.unwrap(), None);
    // mon-b and mon-c build scores for server 0: mon-c (testing) a bit
    // higher than mon-b.
    let mut now = T0;
    for (m, n) in [(mon[1], 14), (mon[2], 20)] {
        for _ in 0..n {
            now += 1;
            let seq = s.create_batch(m, &[srv[0]], now).await.unwrap();
            s.submit_results(m, seq, &[good(srv[0], now)], now)
                .await
                .unwrap();
        }
    }
    let best = s.good_monitor_for(srv[0], mon[0]).await.unwrap();
    assert_eq!(best, Some(mon[2]));
    // Excluding the best one gives the next.
    assert_eq!(
        s.good_monitor_for(srv[0], mon[2]).await.unwrap(),
        Some(mon[1])
    );
    // A paused monitor does not count.
    s.set_monitor_status("mon-c", GlobalStatus::Paused)
        .await
        .unwrap();
    assert_eq!(
        s.good_monitor_for(srv[0], mon[0]).await.unwrap(),
        Some(mon[1])
    );
    // No one sees server 1.
    assert_eq!(s.good_monitor_for(srv[1], mon[0]).await.unwrap(), None);
}

/// A monitor that loses its own network changes state for every server at
/// once: its pending requests stop at TRACEROUTE_MAX_PENDING, other
/// monitors are not affected, and answering one frees a place.
async fn pending_cap_per_monitor(db: &TestDb) {
    let s = &db.store;
    let (_, mon) = setup(s).await;
    let cap = TRACEROUTE_MAX_PENDING as usize;
    let mut srv = Vec::new();
    for i in 0..cap + 4 {
        let a = format!("198.51.100.{}", 10 + i);
        srv.push(common::add_server_in(s, &a, "@", T0).await);
    }
    let reqs: Vec<(i64, i64, String)> = srv
        .iter()
        .map(|&id| (id, mon[0], "monitor mon-a: healthy → i/o timeout".into()))
        .collect();
    assert_eq!(s.request_traceroutes(&reqs, T0).await.unwrap(), cap);
    // Full: nothing more for mon-a, but mon-b is its own count.
    assert!(
        !s.request_traceroute(srv[cap + 1], mon[0], "more", T0 + 1)
            .await
            .unwrap()
    );
    assert!(
        s.request_traceroute(srv[cap + 1], mon[1], "other monitor", T0 + 1)
            .await
            .unwrap()
    );
    // Handed out but not answered still counts as pending.
    let taken = s.take_traceroute_requests(mon[0], T0 + 2, 4).await.unwrap();
    assert_eq!(taken.len(), 4);
    assert!(
        !s.request_traceroute(srv[cap + 1], mon[0], "more", T0 + 3)
            .await
            .unwrap()
    );
    // An answer frees a place.
    s.store_traceroute(mon[0], taken[0].1, &trace(T0 + 4), T0 + 4)
        .await
        .unwrap();
    assert!(
        s.request_traceroute(srv[cap + 1], mon[0], "now there is room", T0 + 5)
            .await
            .unwrap()
    );
    // Stale requests (an hour old, never taken) no longer count.
    let later = T0 + TRACEROUTE_STALE_S + 10;
    assert!(
        s.request_traceroute(srv[cap + 2], mon[0], "after an hour", later)
            .await
            .unwrap()
    );
    // A batch naming an unknown server stores none of it.
    let bad = vec![
        (srv[cap + 3], mon[1], "fine".to_string()),
        (9999, mon[1], "unknown".to_string()),
    ];
    assert!(matches!(
        s.request_traceroutes(&bad, later).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        s.take_traceroute_requests(mon[1], later + 1, 16)
            .await
            .unwrap()
            .iter()
            .all(|r| r.0 != srv[cap + 3])
    );
}
