//! A write that fails for a passing reason (a full disk) is reported as
//! transient, leaves nothing half-written, and leaves the store usable: the
//! next calls on the same `Store` succeed, and once the cause is gone the
//! same submission is stored. Both backends.
//!
//! SQLite is made "full" with the store's own size limit
//! (`StoreOptions::sqlite_max_bytes`, i.e. `PRAGMA max_page_count`) over a
//! file that already holds a filler table; deleting the filler frees the
//! space again, as deleting a filler file frees a real disk. PostgreSQL
//! fails the COMMIT itself: a deferred constraint trigger raises
//! `disk_full` (SQLSTATE 53100) at commit time.

mod common;

use common::{TestDb, good_result};
use store::*;

const T0: i64 = 1_700_000_000;
const SERVERS: usize = 250;
/// Servers in the first batch; the rest are due after it.
const FIRST: i64 = 100;

both_backends!(failed_write_leaves_no_transaction_open);

/// Fill the database (a filler table, then a limit at today's size) or
/// arm the failing trigger; the store to use while it is "full".
async fn make_full(db: &TestDb) -> Store {
    match &db.url {
        None => {
            db.exec(
                "CREATE TABLE filler (b BLOB);
                 INSERT INTO filler VALUES (zeroblob(2000000));",
            )
            .await;
            // A limit below the file's size means "no growth at all".
            Store::open_with(
                None,
                db.data_dir(),
                &StoreOptions {
                    sqlite_max_bytes: Some(1),
                },
            )
            .await
            .expect("open with a size limit")
        }
        Some(_) => {
            db.exec(
                "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'
                       USING ERRCODE = 'disk_full'; END $$;
                 CREATE CONSTRAINT TRIGGER disk_full AFTER INSERT ON log_scores
                     DEFERRABLE INITIALLY DEFERRED
                     FOR EACH ROW EXECUTE FUNCTION disk_full();
                 CREATE CONSTRAINT TRIGGER disk_full AFTER INSERT OR UPDATE ON monitor_clock
                     DEFERRABLE INITIALLY DEFERRED
                     FOR EACH ROW EXECUTE FUNCTION disk_full();",
            )
            .await;
            db.store.clone()
        }
    }
}

async fn free_space(db: &TestDb) {
    match &db.url {
        None => db.exec("DELETE FROM filler").await,
        Some(_) => {
            db.exec(
                "DROP TRIGGER disk_full ON log_scores;
                 DROP TRIGGER disk_full ON monitor_clock;",
            )
            .await
        }
    }
}

async fn log_count(s: &Store, ids: &[i64]) -> usize {
    let mut n = 0;
    for id in ids {
        n += s
            .log_rows(*id, MonitorFilter::All, 10_000, None)
            .await
            .unwrap()
            .len();
    }
    n
}

async fn failed_write_leaves_no_transaction_open(db: &TestDb) {
    let s = &db.store;
    common::seed_global(s).await;
    let mut ids = Vec::new();
    for i in 0..SERVERS {
        let row = s
            .add_server(
                NewServer {
                    ip: format!("192.0.2.{}", i + 1).parse().unwrap(),
                    netspeed: 1000,
                    account_id: None,
                    zones: vec!["@".into()],
                },
                T0,
            )
            .await
            .unwrap();
        ids.push(row.id);
    }
    let m = s
        .add_monitor(
            NewMonitor {
                name: "m1".into(),
                location: "Lab".into(),
                ip: "203.0.113.5".parse().unwrap(),
                account_id: None,
                status: GlobalStatus::Active,
                key_hash: format!("{:0>64}", 1),
            },
            T0,
        )
        .await
        .unwrap();
    let iv = WorkIntervals::default();
    // A first batch of work, taken while there is space.
    let (seq_a, work_a) = s.take_work_batch(m.id, iv, FIRST, T0).await.unwrap();
    assert_eq!(work_a.len(), FIRST as usize);
    let results_a: Vec<ResultIn> = work_a
        .iter()
        .map(|w| good_result(w.server_id, T0 + 10))
        .collect();

    let full = make_full(db).await;
    // Its submission fails (on SQLite inside a statement, on PostgreSQL at
    // COMMIT) ...
    let err = full
        .submit_results(m.id, seq_a, &results_a, T0 + 11)
        .await
        .expect_err("a full database refuses the batch");
    assert!(err.is_transient(), "{err:?}");
    // ... and so does a clock report too big for the free space: on SQLite
    // that one-row upsert has no statement journal, so SQLite rolls the
    // whole transaction back by itself (as after a failed COMMIT) and sqlx's
    // own ROLLBACK then fails; on PostgreSQL the COMMIT fails.
    let clock = MonitorClock {
        monitor_id: m.id,
        ok: true,
        detail: "x".repeat(5000),
        ts: T0 + 11,
    };
    let err = full
        .set_monitor_clock(&clock)
        .await
        .expect_err("a full database takes no clock report");
    assert!(err.is_transient(), "{err:?}");

    // The connections that failed went back to the pool; the next writes
    // must not find one inside a transaction ("begin_with at non-zero
    // transaction depth"), even while the database is still full.
    for round in 0..3 {
        full.touch_monitor(m.id, T0 + 12 + round, None)
            .await
            .unwrap_or_else(|e| panic!("write after the failure, round {round}: {e:?}"));
        for e in [
            full.submit_results(m.id, seq_a, &results_a, T0 + 13)
                .await
                .expect_err("still full"),
            full.set_monitor_clock(&clock)
                .await
                .expect_err("still full"),
        ] {
            assert!(e.is_transient(), "round {round}: {e:?}");
        }
    }

    // Nothing half-written: no log row, the batch still open, no score.
    assert_eq!(log_count(&full, &ids).await, 0);
    assert!(!full.batch(seq_a).await.unwrap().unwrap().submitted);
    for id in &ids {
        for sm in full.server_monitors(*id).await.unwrap() {
            assert_eq!(sm.score_ts, None, "no score from a failed batch");
        }
    }

    assert_eq!(full.monitor_clocks().await.unwrap().len(), 0);

    // Space comes back: the same store takes the same batch, whole, and
    // hands out the servers no failed call took.
    free_space(db).await;
    full.set_monitor_clock(&clock).await.unwrap();
    let out = full
        .submit_results(m.id, seq_a, &results_a, T0 + 20)
        .await
        .expect("stored once space is back");
    assert_eq!((out.accepted, out.duplicate), (FIRST as usize, false));
    let (seq_b, work_b) = full
        .take_work_batch(m.id, iv, SERVERS as i64, T0 + 20)
        .await
        .unwrap();
    assert_eq!(work_b.len(), SERVERS - FIRST as usize, "the rest is due");
    let results_b: Vec<ResultIn> = work_b
        .iter()
        .map(|w| good_result(w.server_id, T0 + 21))
        .collect();
    full.submit_results(m.id, seq_b, &results_b, T0 + 22)
        .await
        .unwrap();
    for id in &ids {
        let mine = full
            .log_rows(*id, MonitorFilter::Monitor(m.id), 10, None)
            .await
            .unwrap();
        assert_eq!(mine.len(), 1, "one log row per result");
        let sm = full.server_monitors(*id).await.unwrap();
        assert_eq!(sm.len(), 1);
        assert_eq!(sm[0].score, mine[0].score);
    }
    assert_eq!(
        log_count(&full, &ids).await,
        2 * SERVERS,
        "a monitor row and an aggregate row per server"
    );
    // A replay changes nothing.
    let replay = full
        .submit_results(m.id, seq_a, &results_a, T0 + 23)
        .await
        .unwrap();
    assert!(replay.duplicate);
    assert_eq!(log_count(&full, &ids).await, 2 * SERVERS);
    full.close().await;
}
