//! Submissions committed together (PostgreSQL's group commit, issue 16):
//! each keeps its own outcome, and several store handles on one database
//! (several `serve` processes) store every result exactly once.

mod common;

use common::{TestDb, good_result, monitor, seed_global};
use store::testing::StoreTesting as _;
use store::{Store, StoreError, SubmitOutcome};

const T0: i64 = 1_800_000_000;

both_backends!(group_keeps_each_outcome);

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn servers(s: &Store, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(common::add_server_in(s, &format!("192.0.2.{}", i + 1), "@", T0).await);
    }
    ids
}

/// One group holding two good submissions, a duplicate of a stored batch,
/// a batch with a result for an unknown server, another monitor's batch
/// and a second copy of one of the good batches: the good ones are stored,
/// the others refused or reported duplicate, each on its own.
async fn group_keeps_each_outcome(db: &TestDb) {
    let s = &db.store;
    seed_global(s).await;
    let ids = servers(s, 3).await;
    let m1 = add_monitor(s, "m1", "203.0.113.5").await;
    let m2 = add_monitor(s, "m2", "203.0.113.6").await;
    let m3 = add_monitor(s, "m3", "203.0.113.7").await;
    let good = |t| ids.iter().map(|&id| good_result(id, t)).collect::<Vec<_>>();

    let stored = s.create_batch(m3, &ids, T0).await.unwrap();
    s.submit_results(m3, stored, &good(T0), T0).await.unwrap();
    let logs_before = s.counts().await.unwrap().2;

    let b1 = s.create_batch(m1, &ids, T0 + 10).await.unwrap();
    let b2 = s.create_batch(m2, &ids, T0 + 10).await.unwrap();
    let bad = s.create_batch(m3, &ids, T0 + 10).await.unwrap();
    let mut unknown = good(T0 + 10);
    unknown.push(good_result(ids[2] + 999, T0 + 10));
    let out = s
        .submit_group(vec![
            (m1, b1, good(T0 + 10), T0 + 10),
            (m3, stored, good(T0 + 10), T0 + 10),
            (m3, bad, unknown, T0 + 10),
            (m2, b1, good(T0 + 10), T0 + 10),
            (m2, b2, good(T0 + 10), T0 + 10),
            (m1, b1, good(T0 + 10), T0 + 10),
        ])
        .await;
    let fresh = SubmitOutcome {
        accepted: 3,
        duplicate: false,
        transitions: Vec::new(),
    };
    let dup = SubmitOutcome {
        accepted: 0,
        duplicate: true,
        transitions: Vec::new(),
    };
    assert_eq!(out[0].as_ref().unwrap(), &fresh);
    assert_eq!(out[1].as_ref().unwrap(), &dup);
    assert!(
        matches!(out[2], Err(StoreError::Invalid(_))),
        "{:?}",
        out[2]
    );
    assert!(
        matches!(out[3], Err(StoreError::Invalid(_))),
        "{:?}",
        out[3]
    );
    assert_eq!(out[4].as_ref().unwrap(), &fresh);
    assert_eq!(
        out[5].as_ref().unwrap(),
        &dup,
        "the group's own earlier copy"
    );

    // m1 and m2 stored one monitor row per server each (+ aggregates);
    // the refused batch nothing, and it can still be submitted later.
    let monitor_rows = db
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM log_scores WHERE monitor_id IN ({m1}, {m2}) AND ts = {}",
            T0 + 10
        ))
        .await;
    assert_eq!(monitor_rows, 6);
    let m3_rows = db
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM log_scores WHERE monitor_id = {m3}"
        ))
        .await;
    assert_eq!(m3_rows, 3, "only the batch stored before the group");
    assert!(s.counts().await.unwrap().2 >= logs_before + 6);
    assert!(s.batch(b1).await.unwrap().unwrap().submitted);
    assert!(s.batch(b2).await.unwrap().unwrap().submitted);
    assert!(!s.batch(bad).await.unwrap().unwrap().submitted);
    for &id in &ids {
        for (m, score) in s
            .server_monitors(id)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.monitor_id, r.score))
        {
            assert!(close(score, 1.0), "server {id} monitor {m}: {score}");
        }
    }
    let again = s
        .submit_results(m3, bad, &good(T0 + 20), T0 + 20)
        .await
        .unwrap();
    assert_eq!(again.accepted, 3);
}

/// A submission that fails inside the database (here a trigger refuses one
/// server's log rows) rolls its group back; the group's other submissions
/// are then stored alone, and only the failing one reports the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_error_fails_only_its_submission() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let s = &db.store;
    seed_global(s).await;
    let ids = servers(s, 2).await;
    let m1 = add_monitor(s, "m1", "203.0.113.5").await;
    let m2 = add_monitor(s, "m2", "203.0.113.6").await;
    db.exec(&format!(
        "CREATE FUNCTION refuse_m2() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.monitor_id = {m2} THEN RAISE EXCEPTION 'refused by test'; END IF; \
         RETURN NEW; END $$; \
         CREATE TRIGGER refuse_m2 BEFORE INSERT ON log_scores \
         FOR EACH ROW EXECUTE FUNCTION refuse_m2();"
    ))
    .await;
    let b1 = s.create_batch(m1, &ids, T0).await.unwrap();
    let b2 = s.create_batch(m2, &ids, T0).await.unwrap();
    let results: Vec<_> = ids.iter().map(|&id| good_result(id, T0)).collect();
    let out = s
        .submit_group(vec![
            (m2, b2, results.clone(), T0),
            (m1, b1, results.clone(), T0),
        ])
        .await;
    assert!(matches!(out[0], Err(StoreError::Db(_))), "{:?}", out[0]);
    assert_eq!(out[1].as_ref().unwrap().accepted, 2);
    assert!(!s.batch(b2).await.unwrap().unwrap().submitted);
    assert!(s.batch(b1).await.unwrap().unwrap().submitted);
    let rows = db
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM log_scores WHERE monitor_id = {m1}"
        ))
        .await;
    assert_eq!(rows, 2);
    db.store.close().await;
}

/// Two store handles on one PostgreSQL database (two `serve` processes):
/// monitors submit round after round, every batch sent to both handles at
/// once. Every batch is stored exactly once and every score and aggregate
/// is what one sequential submitter would have left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_store_each_batch_once() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let a = db.store.clone();
    let b = db.reopen().await;
    seed_global(&a).await;
    let ids = servers(&a, 20).await;
    let mut monitors = Vec::new();
    for i in 0..4 {
        let m = a
            .add_monitor(
                monitor(&format!("m{i}"), &format!("203.0.113.{}", i + 5)),
                T0,
            )
            .await
            .unwrap();
        monitors.push(m.id);
    }
    const ROUNDS: i64 = 6;
    let mut tasks = Vec::new();
    for &m in &monitors {
        let (a, b, ids) = (a.clone(), b.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut fresh = 0;
            for round in 0..ROUNDS {
                let t = T0 + 60 * round;
                let seq = a.create_batch(m, &ids, t).await.unwrap();
                let results: Vec<_> = ids.iter().map(|&id| good_result(id, t)).collect();
                let (x, y) = tokio::join!(
                    a.submit_results(m, seq, &results, t),
                    b.submit_results(m, seq, &results, t)
                );
                let (x, y) = (x.unwrap(), y.unwrap());
                assert!(x.duplicate != y.duplicate, "{x:?} {y:?}");
                fresh += x.accepted + y.accepted;
            }
            fresh
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), ids.len() * ROUNDS as usize);
    }
    let per_monitor = db
        .scalar_i64("SELECT COUNT(*) FROM log_scores WHERE monitor_id IS NOT NULL")
        .await;
    assert_eq!(per_monitor, (monitors.len() * ids.len()) as i64 * ROUNDS);
    let distinct = db
        .scalar_i64(
            "SELECT COUNT(*) FROM (SELECT DISTINCT server_id, monitor_id, ts FROM log_scores \
             WHERE monitor_id IS NOT NULL) x",
        )
        .await;
    assert_eq!(distinct, per_monitor, "no result stored twice");
    // Six +1 steps from 0: 1 + 0.95 + … + 0.95^5.
    let expected: f64 = (0..ROUNDS).map(|k| 0.95f64.powi(k as i32)).sum();
    for &id in &ids {
        let rows = a.server_monitors(id).await.unwrap();
        assert_eq!(rows.len(), monitors.len());
        for r in rows {
            assert!(close(r.score, expected), "server {id}: {r:?}");
        }
        let srv = a.server_by_id(id).await.unwrap().unwrap();
        assert!(
            close(srv.score, expected),
            "server {id} aggregate {}",
            srv.score
        );
    }
    b.close().await;
    db.store.close().await;
}

/// A new monitor's id.
async fn add_monitor(s: &Store, name: &str, ip: &str) -> i64 {
    s.add_monitor(monitor(name, ip), T0).await.unwrap().id
}
