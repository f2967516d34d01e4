//! What `policy replay` reads (issue 15): the servers with samples in a
//! window with their zones, netspeed, deletion date and each monitor's
//! current status, the samples per server in key order, and saved reports,
//! on SQLite and PostgreSQL alike.

mod common;

use common::{TestDb, monitor, seed_global};
use store::testing::StoreTesting as _;
use store::*;

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

both_backends!(
    servers_in_the_window_with_what_scoring_needs,
    reports_saved_and_listed,
);

fn one(answered: bool) -> Vec<SampleRow> {
    vec![SampleRow {
        answered,
        rtt_us: answered.then_some(1_000),
        offset: answered.then_some(0.001),
        stratum: answered.then_some(2),
        error: (!answered).then(|| "i/o timeout".to_string()),
        ..SampleRow::default()
    }]
}

async fn servers_in_the_window_with_what_scoring_needs(db: &TestDb) {
    let s = &db.store;
    seed_global(s).await;
    s.seed_zones(&[ZoneSeed {
        name: "de".into(),
        parent: Some("@".into()),
        description: "Germany".into(),
    }])
    .await
    .unwrap();
    let m1 = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    let m2 = s
        .add_monitor(monitor("m2", "203.0.113.6"), T0)
        .await
        .unwrap();
    let a = common::add_server_in(s, "192.0.2.1", "de", T0).await;
    let b = common::add_server_in(s, "192.0.2.2", "@", T0).await;
    let c = common::add_server_in(s, "192.0.2.3", "@", T0).await;
    s.set_server_score_status(a, m1.id, MonitorStatus::Active)
        .await
        .unwrap();
    s.set_deletion("192.0.2.1".parse().unwrap(), Some(T0 + 30 * DAY))
        .await
        .unwrap();
    // a: two checks in the window (one per monitor) and one after it;
    // b: only before the window; c: none.
    s.insert_samples(
        m2.id,
        &[(a, T0 + 120, encode_samples(&one(false)).unwrap())],
    )
    .await
    .unwrap();
    s.insert_samples(
        m1.id,
        &[
            (a, T0 + 60, encode_samples(&one(true)).unwrap()),
            (a, T0 + DAY, encode_samples(&one(true)).unwrap()),
            (b, T0 - 60, encode_samples(&one(true)).unwrap()),
        ],
    )
    .await
    .unwrap();

    let got = s.replay_servers(T0, T0 + DAY).await.unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(r.server.id, a);
    assert_eq!(r.server.zones, vec!["de".to_string()]);
    assert_eq!(r.server.netspeed, 1000);
    assert_eq!(r.server.deletion_on, Some(T0 + 30 * DAY));
    assert_eq!(r.status(m1.id), MonitorStatus::Active);
    assert_eq!(r.status(m2.id), MonitorStatus::Candidate);
    assert_eq!(r.monitors.len(), 2);
    // The window's start is inclusive, its end exclusive.
    let ids = |v: Vec<ReplayServer>| v.iter().map(|r| r.server.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.replay_servers(T0 - 60, T0 + DAY + 1).await.unwrap()),
        vec![a, b]
    );
    assert_eq!(
        ids(s.replay_servers(T0 + 121, T0 + DAY).await.unwrap()),
        Vec::<i64>::new()
    );
    assert!(!ids(s.replay_servers(0, i64::MAX).await.unwrap()).contains(&c));

    // Its checks in key order: by ts, then monitor, samples decoded.
    let checks = s.samples(a, None, T0, T0 + DAY).await.unwrap();
    let order: Vec<(i64, i64)> = checks.iter().map(|c| (c.ts, c.monitor_id)).collect();
    assert_eq!(order, vec![(T0 + 60, m1.id), (T0 + 120, m2.id)]);
    assert_eq!(checks[1].samples, one(false));
}

async fn reports_saved_and_listed(db: &TestDb) {
    let s = &db.store;
    assert!(s.policy_reports().await.unwrap().is_empty());
    assert_eq!(s.policy_report(1).await.unwrap(), None);
    let row = |created| PolicyReportRow {
        id: 0,
        created,
        from_ts: T0,
        to_ts: T0 + DAY,
        policies: "current,all-must-answer".into(),
    };
    let first = s
        .save_policy_report(&row(T0 + DAY), "{\"a\":1}")
        .await
        .unwrap();
    let second = s
        .save_policy_report(&row(T0 + 2 * DAY), "{}")
        .await
        .unwrap();
    assert!(second > first);
    let listed = s.policy_reports().await.unwrap();
    assert_eq!(
        listed.iter().map(|r| (r.id, r.created)).collect::<Vec<_>>(),
        vec![(second, T0 + 2 * DAY), (first, T0 + DAY)]
    );
    let (r, json) = s.policy_report(first).await.unwrap().unwrap();
    assert_eq!(
        (r.id, r.policies.as_str(), json.as_str()),
        (first, "current,all-must-answer", "{\"a\":1}")
    );
    let big = "x".repeat(POLICY_REPORT_MAX_BYTES + 1);
    let err = s.save_policy_report(&row(T0), &big).await.unwrap_err();
    assert!(err.to_string().contains("policy report"), "{err}");
    assert_eq!(s.policy_reports().await.unwrap().len(), 2, "nothing stored");
}
