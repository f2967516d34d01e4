//! Client distribution's store side (issue 17 item 3, migration 0014):
//! reports stored once per id in the hour of their `to`, unknown addresses
//! skipped, the window reads, the share flag and pruning, on SQLite and
//! PostgreSQL.

mod common;

use api::dns_counts::{CountReport, CountsStored, ServerCount};
use common::{TestDb, add_server_in, seed_global};
use std::collections::BTreeMap;
use store::*;

/// 2023-11-14 22:00:00 UTC, the start of an hour.
const H0: i64 = 1_699_999_200;
const HOUR: i64 = 3600;

both_backends!(
    a_report_lands_in_the_hour_of_its_to,
    a_repeated_report_id_adds_nothing,
    a_concurrent_double_submit_is_stored_once,
    concurrent_reports_of_one_hour_all_count,
    unknown_addresses_are_skipped,
    the_window_starts_at_its_hour,
    the_flag_needs_the_ratio_and_enough_answers,
    pruning_drops_old_buckets_and_their_ids,
    a_count_the_database_cannot_hold_stores_nothing,
);

fn by_country(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(c, n)| (c.to_string(), *n)).collect()
}

fn server(ip: &str, answers: &[(&str, u64)], zone_answers: u64, expected: f64) -> ServerCount {
    ServerCount {
        ip: ip.parse().unwrap(),
        answers: by_country(answers),
        zone_answers,
        expected,
    }
}

fn report(id: &str, to: i64, countries: &[(&str, u64)], servers: Vec<ServerCount>) -> CountReport {
    CountReport {
        report_id: id.into(),
        instance: "dns-1".into(),
        from: to - 60,
        to,
        answers_by_country: by_country(countries),
        servers,
    }
}

/// Two servers in `@`; their ids.
async fn two_servers(db: &TestDb) -> (i64, i64) {
    seed_global(&db.store).await;
    let a = add_server_in(&db.store, "192.0.2.1", "@", H0 - 86_400).await;
    let b = add_server_in(&db.store, "2001:db8::1", "@", H0 - 86_400).await;
    (a, b)
}

async fn a_report_lands_in_the_hour_of_its_to(db: &TestDb) {
    let (a, b) = two_servers(db).await;
    let r = report(
        "r1",
        H0 + 120,
        &[("de", 100), ("fr", 50), ("-", 10)],
        vec![
            server("192.0.2.1", &[("de", 40), ("fr", 5)], 150, 30.5),
            server("2001:db8::1", &[("-", 3)], 10, 2.0),
        ],
    );
    let stored = db.store.record_dns_counts(&r, H0 + 125).await.unwrap();
    assert_eq!(
        stored,
        CountsStored {
            new: true,
            servers: 2,
            unknown: 0
        }
    );
    // A second report of the same hour adds to the same bucket.
    let r2 = report(
        "r2",
        H0 + 180,
        &[("de", 60)],
        vec![server("192.0.2.1", &[("de", 20)], 60, 9.5)],
    );
    db.store.record_dns_counts(&r2, H0 + 185).await.unwrap();
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM dns_server_hours").await,
        2,
        "one bucket per server for the hour"
    );
    let got = db.store.dns_counts_for_server(a, H0).await.unwrap();
    assert_eq!((got.answers, got.zone_answers), (65, 210));
    assert!((got.expected - 40.0).abs() < 1e-9, "{}", got.expected);
    assert_eq!(
        got.countries,
        vec![
            DnsCountryCount {
                country: "de".into(),
                answers: 60,
                country_answers: 160
            },
            DnsCountryCount {
                country: "fr".into(),
                answers: 5,
                country_answers: 50
            },
        ]
    );
    let got = db.store.dns_counts_for_server(b, H0).await.unwrap();
    assert_eq!((got.answers, got.zone_answers), (3, 10));
    assert_eq!(got.countries[0].country_answers, 10);
    // The next hour is a bucket of its own, read by a window from H0.
    let r3 = report(
        "r3",
        H0 + HOUR,
        &[("de", 7)],
        vec![server("192.0.2.1", &[("de", 7)], 7, 1.0)],
    );
    db.store.record_dns_counts(&r3, H0 + HOUR).await.unwrap();
    assert_eq!(
        db.scalar_i64(&format!(
            "SELECT COUNT(*) FROM dns_server_hours WHERE hour = {}",
            H0 + HOUR
        ))
        .await,
        1
    );
    assert_eq!(
        db.store.dns_counts_for_server(a, H0).await.unwrap().answers,
        72
    );
}

async fn a_repeated_report_id_adds_nothing(db: &TestDb) {
    let (a, _) = two_servers(db).await;
    let r = report(
        "same",
        H0 + 60,
        &[("de", 10)],
        vec![server("192.0.2.1", &[("de", 10)], 10, 5.0)],
    );
    assert!(db.store.record_dns_counts(&r, H0 + 60).await.unwrap().new);
    let again = db.store.record_dns_counts(&r, H0 + 70).await.unwrap();
    assert_eq!(
        again,
        CountsStored {
            new: false,
            servers: 0,
            unknown: 0
        }
    );
    // Even with other counts under the same id: the id decides.
    let mut changed = r.clone();
    changed.servers[0].answers = by_country(&[("de", 999)]);
    assert!(
        !db.store
            .record_dns_counts(&changed, H0 + 80)
            .await
            .unwrap()
            .new
    );
    let got = db.store.dns_counts_for_server(a, H0).await.unwrap();
    assert_eq!((got.answers, got.zone_answers), (10, 10));
    assert_eq!(got.countries[0].country_answers, 10);
}

async fn a_concurrent_double_submit_is_stored_once(db: &TestDb) {
    let (a, _) = two_servers(db).await;
    let r = report(
        "twice",
        H0 + 60,
        &[("de", 10)],
        vec![server("192.0.2.1", &[("de", 4)], 10, 2.5)],
    );
    let (s1, s2) = (db.store.clone(), db.store.clone());
    let (r1, r2) = (r.clone(), r.clone());
    let (x, y) = tokio::join!(
        tokio::spawn(async move { s1.record_dns_counts(&r1, H0 + 60).await }),
        tokio::spawn(async move { s2.record_dns_counts(&r2, H0 + 60).await }),
    );
    let (x, y) = (x.unwrap().unwrap(), y.unwrap().unwrap());
    assert!(x.new != y.new, "exactly one is new: {x:?} {y:?}");
    let got = db.store.dns_counts_for_server(a, H0).await.unwrap();
    assert_eq!((got.answers, got.zone_answers), (4, 10));
    assert_eq!(got.countries[0].country_answers, 10);
}

/// Several DNS processes' reports of the same hour at once, listing the
/// same servers in opposite orders: every one is stored, none lost to a
/// deadlock, and the sums are exact.
async fn concurrent_reports_of_one_hour_all_count(db: &TestDb) {
    let (a, b) = two_servers(db).await;
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let mut servers = vec![
            server("192.0.2.1", &[("de", i + 1), ("fr", 1)], 10, 1.0),
            server("2001:db8::1", &[("de", 2)], 10, 1.0),
        ];
        if i % 2 == 1 {
            servers.reverse();
        }
        let r = report(
            &format!("c{i}"),
            H0 + 60,
            &[("de", 100), ("fr", 1)],
            servers,
        );
        let s = db.store.clone();
        tasks.push(tokio::spawn(async move {
            s.record_dns_counts(&r, H0 + 60).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap().new);
    }
    let got = db.store.dns_counts_for_server(a, H0).await.unwrap();
    // de: 1 + 2 + … + 8 = 36, fr: 8.
    assert_eq!((got.answers, got.zone_answers), (44, 80));
    assert_eq!(got.countries[0].country_answers, 800);
    let got = db.store.dns_counts_for_server(b, H0).await.unwrap();
    assert_eq!(got.answers, 16);
}

async fn unknown_addresses_are_skipped(db: &TestDb) {
    let (a, _) = two_servers(db).await;
    let r = report(
        "u",
        H0 + 60,
        &[("de", 10)],
        vec![
            server("198.51.100.7", &[("de", 9)], 10, 1.0),
            server("192.0.2.1", &[("de", 1)], 10, 1.0),
            server("2001:db8::99", &[("-", 2)], 3, 1.0),
        ],
    );
    let stored = db.store.record_dns_counts(&r, H0 + 60).await.unwrap();
    assert_eq!(
        stored,
        CountsStored {
            new: true,
            servers: 1,
            unknown: 2
        }
    );
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM dns_server_countries")
            .await,
        1
    );
    assert_eq!(
        db.store.dns_counts_for_server(a, H0).await.unwrap().answers,
        1
    );
}

async fn the_window_starts_at_its_hour(db: &TestDb) {
    let (a, _) = two_servers(db).await;
    for (i, to) in [H0 - 2 * HOUR + 5, H0 - HOUR + 5, H0 + 5]
        .into_iter()
        .enumerate()
    {
        let r = report(
            &format!("w{i}"),
            to,
            &[("de", 10)],
            vec![server("192.0.2.1", &[("de", 1)], 10, 1.0)],
        );
        db.store.record_dns_counts(&r, to).await.unwrap();
    }
    // `since` in the middle of an hour takes that whole hour.
    let got = db
        .store
        .dns_counts_for_server(a, H0 - HOUR + 1800)
        .await
        .unwrap();
    assert_eq!((got.answers, got.zone_answers), (2, 20));
    assert_eq!(got.countries[0].country_answers, 20);
    let none = db.store.dns_counts_for_server(a, H0 + HOUR).await.unwrap();
    assert_eq!(none, DnsServerCounts::default());
}

async fn the_flag_needs_the_ratio_and_enough_answers(db: &TestDb) {
    let (a, _) = two_servers(db).await;
    let c = add_server_in(&db.store, "192.0.2.3", "@", H0 - 86_400).await;
    let d = add_server_in(&db.store, "192.0.2.4", "@", H0 - 86_400).await;
    let r = report(
        "f",
        H0 + 60,
        &[("de", 10_000)],
        vec![
            // 3× its netspeed share with plenty of answers: flagged.
            server("192.0.2.1", &[("de", 3000)], 10_000, 1000.0),
            // 3× as well, but too few answers to mean anything.
            server("192.0.2.3", &[("de", 30)], 10_000, 10.0),
            // Enough answers, 1.5× only.
            server("192.0.2.4", &[("de", 1500)], 10_000, 1000.0),
        ],
    );
    db.store.record_dns_counts(&r, H0 + 60).await.unwrap();
    let rows = db.store.dns_share_outliers(H0, 1000, 2.0).await.unwrap();
    assert_eq!(
        rows,
        vec![DnsShareRow {
            server_id: a,
            ip: "192.0.2.1".into(),
            answers: 3000,
            zone_answers: 10_000,
            expected: 1000.0
        }]
    );
    let lower = db.store.dns_share_outliers(H0, 10, 1.4).await.unwrap();
    let ids: Vec<i64> = lower.iter().map(|r| r.server_id).collect();
    assert_eq!(ids, {
        let mut v = vec![a, c, d];
        v.sort();
        v
    });
    // A window after the counts sees nothing.
    assert!(
        db.store
            .dns_share_outliers(H0 + HOUR, 10, 1.4)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn pruning_drops_old_buckets_and_their_ids(db: &TestDb) {
    let (a, _) = two_servers(db).await;
    let old = report(
        "old",
        H0 + 60,
        &[("de", 5)],
        vec![server("192.0.2.1", &[("de", 5)], 5, 1.0)],
    );
    let new = report(
        "new",
        H0 + HOUR + 60,
        &[("de", 7)],
        vec![server("192.0.2.1", &[("de", 7)], 7, 1.0)],
    );
    db.store.record_dns_counts(&old, H0 + 60).await.unwrap();
    db.store
        .record_dns_counts(&new, H0 + HOUR + 60)
        .await
        .unwrap();
    // One row in each of the four tables for the old hour.
    assert_eq!(db.store.prune_dns_counts(H0 + HOUR).await.unwrap(), 4);
    let got = db.store.dns_counts_for_server(a, 0).await.unwrap();
    assert_eq!((got.answers, got.zone_answers), (7, 7));
    assert_eq!(got.countries[0].country_answers, 7);
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM dns_count_reports")
            .await,
        1
    );
    assert_eq!(db.store.prune_dns_counts(H0 + HOUR).await.unwrap(), 0);
}

async fn a_count_the_database_cannot_hold_stores_nothing(db: &TestDb) {
    let (a, _) = two_servers(db).await;
    let huge = report(
        "huge",
        H0 + 60,
        &[("de", 5)],
        vec![server("192.0.2.1", &[("de", u64::MAX)], 5, 1.0)],
    );
    let e = db
        .store
        .record_dns_counts(&huge, H0 + 60)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    let nan = report(
        "nan",
        H0 + 60,
        &[("de", 5)],
        vec![server("192.0.2.1", &[("de", 1)], 5, f64::NAN)],
    );
    assert!(matches!(
        db.store.record_dns_counts(&nan, H0 + 60).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM dns_count_reports")
            .await,
        0
    );
    assert_eq!(
        db.store.dns_counts_for_server(a, 0).await.unwrap().answers,
        0
    );
    // Refused, so the same id may come again with sane counts.
    let mut fixed = huge.clone();
    fixed.servers[0].answers = by_country(&[("de", 5)]);
    assert!(
        db.store
            .record_dns_counts(&fixed, H0 + 60)
            .await
            .unwrap()
            .new
    );
}
