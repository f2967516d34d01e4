//! Alert targets, state, attempts and evidence, on SQLite and PostgreSQL.

mod common;

use common::TestDb;
use std::net::IpAddr;
use store::testing::StoreTesting as _;
use store::*;

const T0: i64 = 1_700_000_000;

both_backends!(
    targets_need_a_contact,
    state_round_trip,
    attempts_newest_first,
    evidence_latest_per_monitor,
);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn server(s: &Store, addr: &str, account_id: Option<i64>) -> ServerRow {
    common::seed_global(s).await;
    s.add_server(
        NewServer {
            ip: ip(addr),
            netspeed: 10_000,
            account_id,
            zones: vec!["@".into()],
        },
        T0,
    )
    .await
    .unwrap()
}

async fn monitor(s: &Store, name: &str, addr: &str) -> MonitorRow {
    s.add_monitor(
        NewMonitor {
            name: name.into(),
            location: "Lab".into(),
            ip: ip(addr),
            account_id: None,
            status: GlobalStatus::Active,
            key_hash: format!("{name:0>64}"),
        },
        T0,
    )
    .await
    .unwrap()
}

fn result(server_id: i64, ts: i64, offset: Option<f64>, error: Option<&str>) -> ResultIn {
    ResultIn {
        server_id,
        ts,
        offset,
        rtt: offset.map(|_| 0.02),
        stratum: offset.map(|_| 2),
        leap: Some(0),
        refid: None,
        error: error.map(Into::into),
        no_response: offset.is_none() && error.is_none(),
    }
}

async fn submit(s: &Store, monitor_id: i64, results: &[ResultIn], now: i64) {
    let ids: Vec<i64> = results.iter().map(|r| r.server_id).collect();
    let seq = s.create_batch(monitor_id, &ids, now).await.unwrap();
    s.submit_results(monitor_id, seq, results, now)
        .await
        .unwrap();
}

async fn targets_need_a_contact(db: &TestDb) {
    let s = &db.store;
    let quiet = s.ensure_account("quiet").await.unwrap();
    let mailer = s.ensure_account("mailer").await.unwrap();
    let hooked = s.ensure_account("hooked").await.unwrap();
    s.set_account_contact("mailer", Some("ops@example.net"), None)
        .await
        .unwrap();
    s.set_account_contact("hooked", Some(""), Some("http://127.0.0.1:9/hook"))
        .await
        .unwrap();
    server(s, "192.0.2.1", None).await;
    server(s, "192.0.2.2", Some(quiet)).await;
    let a = server(s, "192.0.2.3", Some(mailer)).await;
    let b = server(s, "192.0.2.4", Some(hooked)).await;

    let t = s.alert_targets().await.unwrap();
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(t[0].server_id, a.id);
    assert_eq!(t[0].ip, ip("192.0.2.3"));
    assert_eq!(t[0].account, "mailer");
    assert_eq!(t[0].email.as_deref(), Some("ops@example.net"));
    assert_eq!(t[0].webhook, None);
    assert_eq!(t[0].score_ts, None);
    assert_eq!(t[0].state, None);
    assert_eq!(t[0].last_attempt_at, None);
    assert_eq!(t[1].server_id, b.id);
    assert_eq!(t[1].email, None, "a blank address is no address");
    assert_eq!(t[1].webhook.as_deref(), Some("http://127.0.0.1:9/hook"));
}

async fn state_round_trip(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("a").await.unwrap();
    s.set_account_contact("a", Some("a@example.net"), None)
        .await
        .unwrap();
    let srv = server(s, "192.0.2.1", Some(acct)).await;

    let armed = AlertState::default();
    s.save_alert_state(srv.id, &armed).await.unwrap();
    assert_eq!(
        s.alert_targets().await.unwrap()[0].state,
        Some(armed.clone())
    );

    let down = AlertState {
        down_since: Some(T0),
        last_sent_at: Some(T0 + 60),
        last_kind: Some(AlertKind::Reminder),
        reminders: 3,
    };
    s.save_alert_state(srv.id, &down).await.unwrap();
    assert_eq!(s.alert_targets().await.unwrap()[0].state, Some(down));

    let e = s.save_alert_state(9999, &armed).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
}

async fn attempts_newest_first(db: &TestDb) {
    let s = &db.store;
    let acct = s.ensure_account("a").await.unwrap();
    s.set_account_contact("a", None, Some("http://127.0.0.1:9/"))
        .await
        .unwrap();
    let srv = server(s, "192.0.2.1", Some(acct)).await;
    let other = server(s, "192.0.2.2", None).await;
    let mut ids = Vec::new();
    for (i, (kind, channel, ok)) in [
        (AlertKind::Down, AlertChannel::Email, true),
        (AlertKind::Down, AlertChannel::Webhook, false),
        (AlertKind::Recovered, AlertChannel::Webhook, true),
    ]
    .into_iter()
    .enumerate()
    {
        ids.push(
            s.record_alert(&NewAlert {
                server_id: srv.id,
                ts: T0 + i as i64,
                kind,
                channel,
                target: "t".into(),
                ok,
                error: (!ok).then(|| "connection refused".to_string()),
                body: format!("body {i}"),
            })
            .await
            .unwrap(),
        );
    }
    s.record_alert(&NewAlert {
        server_id: other.id,
        ts: T0 + 10,
        kind: AlertKind::Down,
        channel: AlertChannel::Email,
        target: "x".into(),
        ok: true,
        error: Some(String::new()),
        body: String::new(),
    })
    .await
    .unwrap();

    let rows = s.alerts_for_server(srv.id, 10).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].id, ids[2]);
    assert_eq!(rows[0].kind, AlertKind::Recovered);
    assert_eq!(rows[1].channel, AlertChannel::Webhook);
    assert!(!rows[1].ok);
    assert_eq!(rows[1].error.as_deref(), Some("connection refused"));
    assert_eq!(rows[2].body, "body 0");
    assert_eq!(rows[2].error, None);
    assert_eq!(s.alerts_for_server(srv.id, 1).await.unwrap().len(), 1);
    assert_eq!(
        s.alerts_for_server(other.id, 10).await.unwrap()[0].error,
        None,
        "an empty error is no error"
    );
    let t = s.alert_targets().await.unwrap();
    assert_eq!(t[0].last_attempt_at, Some(T0 + 2));

    let e = s
        .record_alert(&NewAlert {
            server_id: 9999,
            ts: T0,
            kind: AlertKind::Down,
            channel: AlertChannel::Email,
            target: "t".into(),
            ok: true,
            error: None,
            body: String::new(),
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
}

async fn evidence_latest_per_monitor(db: &TestDb) {
    let s = &db.store;
    let srv = server(s, "192.0.2.1", None).await;
    let a = monitor(s, "alpha", "198.51.100.1").await;
    let b = monitor(s, "bravo", "198.51.100.2").await;
    let c = monitor(s, "charlie", "198.51.100.3").await;
    for (m, st) in [
        (&a, MonitorStatus::Active),
        (&b, MonitorStatus::Testing),
        (&c, MonitorStatus::Candidate),
    ] {
        s.set_server_score_status(srv.id, m.id, st).await.unwrap();
    }
    // alpha: fine, then a timeout; bravo: a KoD; charlie: nothing.
    submit(
        s,
        a.id,
        &[result(srv.id, T0 + 10, Some(0.001), None)],
        T0 + 10,
    )
    .await;
    submit(s, a.id, &[result(srv.id, T0 + 20, None, None)], T0 + 20).await;
    submit(
        s,
        b.id,
        &[result(srv.id, T0 + 15, Some(0.25), Some("RATE"))],
        T0 + 15,
    )
    .await;
    let sid = srv.id;
    let (ma, mb) = (a.id, b.id);
    db.exec(&format!(
            "INSERT INTO traceroutes (server_id, monitor_id, ts, reason, tool, hops, error) VALUES \
             ({sid}, {ma}, {}, 'old', 'mtr', '[]', NULL), \
             ({sid}, {ma}, {}, 'status change', 'mtr', '[{{\"ttl\":1,\"ip\":\"192.0.2.254\"}}]', NULL), \
             ({sid}, {mb}, {}, 'status change', 'traceroute', '[]', 'no route'), \
             ({sid}, {mb}, {}, 'ancient', 'traceroute', '[]', NULL)",
            T0 + 1,
            T0 + 25,
            T0 - 5000,
            T0 - 9000
        ),
    )
    .await;

    let ev = s.alert_evidence(srv.id, T0 - 6000).await.unwrap();
    let names: Vec<&str> = ev.monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["alpha", "bravo", "charlie"], "active first");
    let alpha = &ev.monitors[0];
    assert_eq!(alpha.ts, Some(T0 + 20));
    assert!(alpha.no_response);
    assert_eq!(alpha.offset, None);
    assert_eq!(alpha.status, MonitorStatus::Active);
    let bravo = &ev.monitors[1];
    assert_eq!(bravo.error.as_deref(), Some("RATE"));
    assert_eq!(bravo.offset, Some(0.25));
    assert!((bravo.rtt.unwrap() - 0.02).abs() < 1e-9);
    assert!(!bravo.no_response);
    assert_eq!(bravo.status, MonitorStatus::Testing);
    let charlie = &ev.monitors[2];
    assert_eq!(charlie.status, MonitorStatus::Candidate);
    assert_eq!(charlie.ts, None);

    assert_eq!(ev.traceroutes.len(), 2, "{:?}", ev.traceroutes);
    assert_eq!(ev.traceroutes[0].monitor, "alpha");
    assert_eq!(ev.traceroutes[0].ts, T0 + 25);
    assert!(ev.traceroutes[0].hops.contains("192.0.2.254"));
    assert_eq!(ev.traceroutes[1].monitor, "bravo");
    assert_eq!(ev.traceroutes[1].error.as_deref(), Some("no route"));

    // Only traceroutes at or after `since`.
    let ev = s.alert_evidence(srv.id, T0 + 2).await.unwrap();
    assert_eq!(ev.traceroutes.len(), 1);
    let empty = s.alert_evidence(9999, 0).await.unwrap();
    assert_eq!(empty, AlertEvidence::default());
}
