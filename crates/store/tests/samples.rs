//! Every sample of a check (issue 15): stored with its result in one
//! transaction, read back per check, pruned by retention, and its size on
//! disk, on SQLite and PostgreSQL alike.

mod common;

use common::{TestDb, good_result, monitor, seed_global};
use store::testing::StoreTesting as _;
use store::*;

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

both_backends!(
    every_field_round_trips,
    results_without_samples_store_as_before,
    a_bad_sample_stores_nothing,
    pruned_by_retention_in_chunks,
    bytes_per_sample_on_disk,
);

/// A check of four samples with every kind of sample: answered, RATE
/// (answered, stratum 0), a timeout, and an error outside the closed table.
fn four() -> Vec<SampleRow> {
    vec![
        SampleRow {
            position: 0,
            send_ms: 0,
            answered: true,
            rtt_us: Some(12_345),
            offset: Some(-0.25),
            stratum: Some(2),
            leap: Some(1),
            error: None,
        },
        SampleRow {
            position: 1,
            send_ms: 2_003,
            answered: true,
            rtt_us: Some(11_000),
            offset: None,
            stratum: Some(0),
            leap: Some(3),
            error: Some("RATE".into()),
        },
        SampleRow {
            position: 2,
            send_ms: 6_010,
            answered: false,
            rtt_us: None,
            offset: None,
            stratum: None,
            leap: None,
            error: Some("i/o timeout".into()),
        },
        SampleRow {
            position: 3,
            send_ms: 65_535,
            answered: false,
            rtt_us: Some((1 << 26) - 2),
            offset: Some(1234.5),
            stratum: Some(16),
            leap: Some(0),
            error: Some("socket: too many open files".into()),
        },
    ]
}

fn deny() -> Vec<SampleRow> {
    vec![SampleRow {
        position: 0,
        send_ms: 0,
        answered: true,
        rtt_us: Some(900),
        offset: None,
        stratum: Some(0),
        leap: Some(3),
        error: Some("DENY".into()),
    }]
}

/// Issues a batch for `results`' servers and submits them with `samples`.
async fn submit(
    s: &Store,
    monitor_id: i64,
    results: &[ResultIn],
    samples: &[Vec<SampleRow>],
    now: i64,
) -> Result<SubmitOutcome, StoreError> {
    let ids: Vec<i64> = results.iter().map(|r| r.server_id).collect();
    let seq = s.create_batch(monitor_id, &ids, now).await.unwrap();
    s.submit_results_with_samples(monitor_id, seq, results, samples, now)
        .await
}

async fn every_field_round_trips(db: &TestDb) {
    let s = &db.store;
    seed_global(s).await;
    let a = common::add_server_in(s, "192.0.2.1", "@", T0).await;
    let b = common::add_server_in(s, "192.0.2.2", "@", T0).await;
    let m1 = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    let m2 = s
        .add_monitor(monitor("m2", "203.0.113.6"), T0)
        .await
        .unwrap();

    let out = submit(
        s,
        m1.id,
        &[good_result(a, T0), good_result(b, T0)],
        &[four(), deny()],
        T0,
    )
    .await
    .unwrap();
    assert_eq!(out.accepted, 2);
    submit(s, m2.id, &[good_result(a, T0 + 60)], &[deny()], T0 + 60)
        .await
        .unwrap();

    let got = s.samples(a, Some(m1.id), T0, T0 + DAY).await.unwrap();
    assert_eq!(
        got,
        vec![CheckSamples {
            server_id: a,
            monitor_id: m1.id,
            ts: T0,
            samples: four(),
        }]
    );
    // Every monitor, oldest first; the window's end is exclusive.
    let all = s.samples(a, None, T0, T0 + DAY).await.unwrap();
    let who: Vec<(i64, i64)> = all.iter().map(|c| (c.monitor_id, c.ts)).collect();
    assert_eq!(who, vec![(m1.id, T0), (m2.id, T0 + 60)]);
    assert_eq!(all[1].samples, deny());
    assert_eq!(s.samples(a, None, T0, T0 + 60).await.unwrap().len(), 1);
    assert_eq!(s.samples(a, None, T0 + 61, T0 + DAY).await.unwrap(), vec![]);
    let other = s.samples(b, None, 0, T0 + DAY).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].samples, deny());
}

async fn results_without_samples_store_as_before(db: &TestDb) {
    let s = &db.store;
    seed_global(s).await;
    let a = common::add_server_in(s, "192.0.2.1", "@", T0).await;
    let m = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    let before = s.counts().await.unwrap();
    let out = submit(s, m.id, &[good_result(a, T0)], &[], T0)
        .await
        .unwrap();
    assert_eq!(out.accepted, 1);
    // Its log row (and the aggregate's) as ever; no samples.
    assert_eq!(s.counts().await.unwrap().2, before.2 + 2);
    assert_eq!(s.samples(a, None, 0, T0 + DAY).await.unwrap(), vec![]);
    // The plain entry point too.
    let seq = s.create_batch(m.id, &[a], T0 + 60).await.unwrap();
    s.submit_results(m.id, seq, &[good_result(a, T0 + 60)], T0 + 60)
        .await
        .unwrap();
    assert_eq!(s.samples(a, None, 0, T0 + DAY).await.unwrap(), vec![]);
}

async fn a_bad_sample_stores_nothing(db: &TestDb) {
    let s = &db.store;
    seed_global(s).await;
    let a = common::add_server_in(s, "192.0.2.1", "@", T0).await;
    let b = common::add_server_in(s, "192.0.2.2", "@", T0).await;
    let m = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    let before = s.counts().await.unwrap();
    let mut gap = four();
    gap.remove(1);
    let too_many: Vec<SampleRow> = (0..17)
        .map(|p| SampleRow {
            position: p,
            ..deny()[0].clone()
        })
        .collect();
    for (bad, want) in [
        (gap, "results[1].samples[1].position"),
        (too_many, "results[1].samples: 17 given"),
    ] {
        let err = submit(
            s,
            m.id,
            &[good_result(a, T0), good_result(b, T0)],
            &[deny(), bad],
            T0,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(want)),
            "{err:?}"
        );
    }
    assert_eq!(s.counts().await.unwrap(), before);
    assert_eq!(s.samples(a, None, 0, T0 + DAY).await.unwrap(), vec![]);
}

async fn pruned_by_retention_in_chunks(db: &TestDb) {
    let s = &db.store;
    seed_global(s).await;
    let a = common::add_server_in(s, "192.0.2.1", "@", T0).await;
    let b = common::add_server_in(s, "192.0.2.2", "@", T0).await;
    let m = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    // Three old checks of each server, then one 20 days on.
    for k in 0..3 {
        let ts = T0 + 600 * k;
        submit(
            s,
            m.id,
            &[good_result(a, ts), good_result(b, ts)],
            &[four(), deny()],
            ts,
        )
        .await
        .unwrap();
    }
    let late = T0 + 20 * DAY;
    submit(s, m.id, &[good_result(a, late)], &[four()], late)
        .await
        .unwrap();
    let logs = s.counts().await.unwrap().2;

    // Chunks of 2: server a's three old checks take two transactions.
    let n = s.prune_samples(late - 15 * DAY, 2).await.unwrap();
    assert_eq!(n, 6);
    let left = s.samples(a, None, 0, late + 1).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].ts, &left[0].samples), (late, &four()));
    assert_eq!(s.samples(b, None, 0, late + 1).await.unwrap(), vec![]);
    // The score log is the log retention's, not this one's.
    assert_eq!(s.counts().await.unwrap().2, logs);
    assert_eq!(s.prune_samples(late - 15 * DAY, 2).await.unwrap(), 0);
    assert!(matches!(
        s.prune_samples(late, 0).await,
        Err(StoreError::Invalid(_))
    ));
}

/// Bytes per sample on disk for a realistic load: 100 servers checked 50
/// times each by one monitor, 4 samples per check (20,000 samples). The
/// numbers go to BENCHMARKS.md; the bounds hold what was measured.
async fn bytes_per_sample_on_disk(db: &TestDb) {
    let s = &db.store;
    seed_global(s).await;
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(common::add_server_in(s, &format!("198.51.100.{i}"), "@", T0).await);
    }
    let m = s
        .add_monitor(monitor("m1", "203.0.113.5"), T0)
        .await
        .unwrap();
    let checks = 50;
    for k in 0..checks {
        let ts = T0 + 540 * k;
        let results: Vec<ResultIn> = ids.iter().map(|&id| good_result(id, ts)).collect();
        let samples: Vec<Vec<SampleRow>> = ids
            .iter()
            .map(|&id| {
                (0..4u8)
                    .map(|p| SampleRow {
                        position: p,
                        send_ms: 2_000 * p as u16 + (id % 7) as u16,
                        answered: true,
                        rtt_us: Some(10_000 + (id as u32 * 37 + p as u32 * 101) % 5_000),
                        offset: Some(0.0001 * ((id + k) % 13) as f64),
                        stratum: Some(2),
                        leap: Some(0),
                        error: None,
                    })
                    .collect()
            })
            .collect();
        submit(s, m.id, &results, &samples, ts).await.unwrap();
    }
    let n = (ids.len() as i64) * checks * 4;
    let (backend, bytes) = match &db.url {
        None => (
            "sqlite",
            db.scalar_i64("SELECT SUM(pgsize) FROM dbstat WHERE name = 'check_samples'")
                .await,
        ),
        Some(_) => (
            "postgres",
            // Partitioned (migration 0012): the parent has no storage.
            db.scalar_i64(
                "SELECT sum(pg_total_relation_size(relid))::bigint \
                 FROM pg_partition_tree('check_samples')",
            )
            .await,
        ),
    };
    let per = bytes as f64 / n as f64;
    eprintln!("check_samples on {backend}: {bytes} bytes for {n} samples = {per:.1} B/sample");
    // 11 bytes packed per sample; the key and row overhead are shared by
    // the check's 4 samples.
    assert!(per >= 11.0, "{per}");
    let bound = if backend == "sqlite" { 18.0 } else { 45.0 };
    assert!(per <= bound, "{backend}: {per} bytes per sample");
}
