//! PostgreSQL's time partitions of the score log and the check samples
//! (issue 16, migration 0012): made ahead, a row with no period yet kept in
//! `_after` and moved when its period is made, retention by whole
//! partitions, and the migration keeping the rows it moves. SQLite has no
//! partitions (its tables and retention are the other tests' business), so
//! these run on PostgreSQL only.

mod common;

use common::{TestDb, add_server_in, monitor, seed_global};
use store::*;

const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Rows of `table` at `ts` that live in its partition `part`: `"after"`,
/// `"before"`, or `"period"` for the one named after `ts`'s month (log) or
/// day (samples), as the migration and `store::partitions` name them.
async fn rows_in(db: &TestDb, table: &str, part: &str, ts: i64) -> i64 {
    let fmt = if table == "log_scores" {
        "YYYY_MM"
    } else {
        "YYYY_MM_DD"
    };
    let name = match part {
        "period" => {
            format!("'{table}_p' || to_char(to_timestamp({ts}) AT TIME ZONE 'UTC', '{fmt}')")
        }
        _ => format!("'{table}_{part}'"),
    };
    db.scalar_i64(&format!(
        "SELECT count(*) FROM {table} t JOIN pg_class c ON c.oid = t.tableoid \
         WHERE t.ts = {ts} AND c.relname = {name}"
    ))
    .await
}

/// Whether `table`'s period partition holding `ts` exists.
async fn period_exists(db: &TestDb, table: &str, ts: i64) -> bool {
    let fmt = if table == "log_scores" {
        "YYYY_MM"
    } else {
        "YYYY_MM_DD"
    };
    db.scalar_i64(&format!(
        "SELECT count(*) FROM pg_class WHERE relname = \
         '{table}_p' || to_char(to_timestamp({ts}) AT TIME ZONE 'UTC', '{fmt}')"
    ))
    .await
        == 1
}

/// A server and a monitor to hang rows on; their ids.
async fn server_and_monitor(s: &Store, now: i64) -> (i64, i64) {
    seed_global(s).await;
    let srv = add_server_in(s, "192.0.2.1", "@", now).await;
    let m = s
        .add_monitor(monitor("m1", "203.0.113.5"), now)
        .await
        .unwrap();
    (srv, m.id)
}

/// One log row and one samples row of `srv` by `mon` at each time.
async fn insert_at(db: &TestDb, srv: i64, mon: i64, times: &[i64]) {
    for ts in times {
        db.exec(&format!(
            "INSERT INTO log_scores (server_id, monitor_id, ts, step, score) \
             VALUES ({srv}, {mon}, {ts}, 1, 20); \
             INSERT INTO check_samples (server_id, ts, monitor_id, data) \
             VALUES ({srv}, {ts}, {mon}, '\\x00')"
        ))
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_ahead_and_after_rows_moved_in() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let s = &db.store;
    let now = now();
    let (srv, mon) = server_and_monitor(s, now).await;
    // No period covers these yet (the migration made up to the current
    // month and day): the catch-all takes them.
    let far = now + 200 * DAY;
    insert_at(&db, srv, mon, &[far]).await;
    assert_eq!(rows_in(&db, "log_scores", "after", far).await, 1);
    assert_eq!(rows_in(&db, "check_samples", "after", far).await, 1);
    let id = s.log_rows(srv, MonitorFilter::All, 10, None).await.unwrap()[0].id;

    let made = s.ensure_partitions(now).await.unwrap();
    let [log, samples] = made.as_slice() else {
        panic!("{made:?}")
    };
    assert_eq!((log.table, log.created, log.moved), ("log_scores", 2, 0));
    assert_eq!(
        (samples.table, samples.created, samples.moved),
        ("check_samples", u64::from(SAMPLE_DAYS_AHEAD), 0)
    );
    assert_eq!(u64::from(LOG_MONTHS_AHEAD), log.created);
    for p in &made {
        let parts = db
            .scalar_i64(&format!(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = '{}'::regclass",
                p.table
            ))
            .await;
        assert_eq!(parts as u64, p.partitions + 2, "{p:?} and two catch-alls");
        assert!(p.oldest <= now && p.newest_end > now, "{p:?}");
        // The chain: the newest period ends where `_after` begins.
        insert_at(&db, srv, mon, &[p.newest_end - 1, p.newest_end]).await;
        assert_eq!(rows_in(&db, p.table, "period", p.newest_end - 1).await, 1);
        assert_eq!(rows_in(&db, p.table, "after", p.newest_end).await, 1);
    }
    assert!(log.newest_end >= now + 2 * 28 * DAY);
    assert!(samples.newest_end >= now + i64::from(SAMPLE_DAYS_AHEAD) * DAY);
    // Made already: nothing to do.
    let again = s.ensure_partitions(now).await.unwrap();
    assert!(again.iter().all(|p| p.created == 0), "{again:?}");

    // Time passes: the far row's period is made and the row moves there,
    // the same row (id) as before, readable as before.
    let made = s.ensure_partitions(far).await.unwrap();
    assert!(made.iter().all(|p| p.moved >= 2), "{made:?}");
    for table in ["log_scores", "check_samples"] {
        assert_eq!(rows_in(&db, table, "after", far).await, 0, "{table}");
        assert_eq!(rows_in(&db, table, "period", far).await, 1, "{table}");
    }
    let rows = s.log_rows(srv, MonitorFilter::All, 10, None).await.unwrap();
    assert_eq!((rows[0].id, rows[0].ts), (id, far));
    assert_eq!(rows.len(), 5, "nothing lost in the moves: {rows:?}");
    assert_eq!(db.scalar_i64("SELECT count(*) FROM check_samples").await, 5);
    // A deleted server's rows go with it, from every partition.
    db.exec(&format!("DELETE FROM servers WHERE id = {srv}"))
        .await;
    assert_eq!(s.counts().await.unwrap().2, 0);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM check_samples").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_whole_partitions() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let s = &db.store;
    let now = now();
    let (srv, mon) = server_and_monitor(s, now).await;
    let later = now + 150 * DAY;
    s.ensure_partitions(later).await.unwrap();
    // A row every 10 days over 150 days, and one in `_before`.
    let old = now - 3 * 365 * DAY;
    let times: Vec<i64> = std::iter::once(old)
        .chain((0..15).map(|k| now + k * 10 * DAY))
        .collect();
    insert_at(&db, srv, mon, &times).await;
    assert_eq!(rows_in(&db, "log_scores", "before", old).await, 1);
    let cutoff = now + 95 * DAY;
    let expired = times.iter().filter(|&&t| t < cutoff).count() as u64;
    assert!(period_exists(&db, "log_scores", now).await);
    assert!(period_exists(&db, "check_samples", now).await);

    let done = s
        .housekeep(later - BATCH_KEEP_S, Some(cutoff), HOUSEKEEPING_CHUNK)
        .await
        .unwrap();
    assert_eq!(done.log_rows, expired);
    assert_eq!(
        s.prune_samples(cutoff, HOUSEKEEPING_CHUNK).await.unwrap(),
        expired
    );
    for table in ["log_scores", "check_samples"] {
        // Whole periods went as partitions; the boundary period stays,
        // holding only what is inside the retention.
        assert!(!period_exists(&db, table, now).await, "{table}");
        assert!(
            !period_exists(&db, table, cutoff - 31 * DAY).await,
            "{table}"
        );
        assert!(period_exists(&db, table, cutoff).await, "{table}");
        let left = db
            .scalar_i64(&format!("SELECT count(*) FROM {table} WHERE ts < {cutoff}"))
            .await;
        assert_eq!(left, 0, "{table}");
        let kept = db
            .scalar_i64(&format!("SELECT count(*) FROM {table}"))
            .await;
        assert_eq!(kept as usize, times.len() - expired as usize, "{table}");
    }
    let rows = s
        .log_rows(srv, MonitorFilter::All, 100, None)
        .await
        .unwrap();
    assert!(rows.iter().all(|r| r.ts >= cutoff), "{rows:?}");
    // `_before` now reaches the boundary period: an old row still has a home.
    insert_at(&db, srv, mon, &[now]).await;
    assert_eq!(rows_in(&db, "log_scores", "before", now).await, 1);
    assert_eq!(rows_in(&db, "check_samples", "before", now).await, 1);
    // And the next pass finds only that row to delete.
    let done = s
        .housekeep(later - BATCH_KEEP_S, Some(cutoff), HOUSEKEEPING_CHUNK)
        .await
        .unwrap();
    assert_eq!(done.log_rows, 1);
    assert_eq!(
        s.prune_samples(cutoff, HOUSEKEEPING_CHUNK).await.unwrap(),
        1
    );
}

/// A database with rows made before 0012 keeps every one of them, ids and
/// all, in the partition of its time; new ids continue after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_moves_existing_rows() {
    let Some(empty) = common::empty_postgres().await else {
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let migrator = sqlx::migrate::Migrator::new(dir).await.unwrap();
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&empty.url)
        .await
        .unwrap();
    // Everything before this migration.
    migrator.run_to(11, &mut c).await.unwrap();
    let now = now();
    // 3 years back (older than the periods the migration makes), a year
    // back, and now.
    let times = [now - 3 * 365 * DAY, now - 365 * DAY, now];
    let setup = format!(
        "INSERT INTO servers (id, ip, ip_version, created_on) VALUES (7, '192.0.2.7', 4, 0); \
         INSERT INTO monitors (id, name, ip, ip_version, status, key_hash, created_on) \
         VALUES (3, 'm3', '203.0.113.3', 4, 'active', 'k', 0); \
         INSERT INTO log_scores (id, server_id, monitor_id, ts, step, score) \
         VALUES (40, 7, 3, {}, 1, 20), (41, 7, NULL, {}, 1, 19.5), (42, 7, 3, {}, -5, 14); \
         INSERT INTO check_samples (server_id, ts, monitor_id, data) \
         VALUES (7, {0}, 3, '\\x01'), (7, {1}, 3, '\\x02'), (7, {2}, 3, '\\x03')",
        times[0], times[1], times[2]
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(setup))
        .execute(&mut c)
        .await
        .unwrap();
    let _ = sqlx::Connection::close(c).await;

    let tmp = tempfile::tempdir().unwrap();
    let s = Store::open(Some(&empty.url), tmp.path()).await.unwrap();
    let db = TestDb::wrap(s, empty, tmp);
    let s = &db.store;
    let rows = s.log_rows(7, MonitorFilter::All, 10, None).await.unwrap();
    let got: Vec<(i64, i64, f64)> = rows.iter().map(|r| (r.id, r.ts, r.score)).collect();
    assert_eq!(
        got,
        vec![
            (42, times[2], 14.0),
            (41, times[1], 19.5),
            (40, times[0], 20.0)
        ]
    );
    for table in ["log_scores", "check_samples"] {
        assert_eq!(rows_in(&db, table, "before", times[0]).await, 1, "{table}");
        assert_eq!(rows_in(&db, table, "period", times[2]).await, 1, "{table}");
    }
    assert_eq!(rows_in(&db, "log_scores", "period", times[1]).await, 1);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM check_samples").await, 3);
    db.exec(&format!(
        "INSERT INTO log_scores (server_id, ts, step, score) VALUES (7, {now}, 1, 1)"
    ))
    .await;
    assert_eq!(
        db.scalar_i64("SELECT max(id) FROM log_scores").await,
        43,
        "the identity continues after the moved rows"
    );
}
