//! Job leases (issue 16): take, renew, refusal while another holds it,
//! steal after expiry, release; the instances seen; the shared secret;
//! readiness. SQLite and PostgreSQL alike, the lease times from the
//! database's clock.

mod common;

use common::TestDb;

both_backends!(
    a_lease_is_taken_renewed_and_refused_to_another,
    an_expired_lease_is_taken_by_another,
    a_released_lease_is_free_at_once_and_only_its_holder_releases_it,
    two_stores_race_for_a_lease_and_one_wins,
    instances_are_listed_with_their_heartbeat,
    the_first_shared_secret_wins,
    a_migrated_store_is_ready,
);

async fn a_lease_is_taken_renewed_and_refused_to_another(db: &TestDb) {
    let s = &db.store;
    let a = s
        .take_job_lease("selector", "a", 15)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.holder, "a");
    assert_eq!(a.expires_on, a.renewed_on + 15);
    assert_eq!(a.acquired_on, a.renewed_on);
    // Another holder is refused while it runs; the row stays a's.
    assert_eq!(s.take_job_lease("selector", "b", 15).await.unwrap(), None);
    // Another job is free.
    let other = s.take_job_lease("alerts", "b", 15).await.unwrap().unwrap();
    assert_eq!(other.holder, "b");
    // The holder renews: same acquisition, a later or equal expiry.
    let renewed = s
        .take_job_lease("selector", "a", 30)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.acquired_on, a.acquired_on);
    assert_eq!(renewed.expires_on, renewed.renewed_on + 30);
    assert!(renewed.expires_on > a.expires_on);
    let rows = s.job_leases().await.unwrap();
    let who: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.job.as_str(), r.holder.as_str()))
        .collect();
    assert_eq!(who, [("alerts", "b"), ("selector", "a")]);
    assert!(rows.iter().all(|r| r.expires_on > r.db_now));
    assert!(matches!(
        s.take_job_lease("selector", "a", 0).await,
        Err(store::StoreError::Invalid(_))
    ));
}

async fn an_expired_lease_is_taken_by_another(db: &TestDb) {
    let s = &db.store;
    let a = s
        .take_job_lease("housekeeping", "a", 1)
        .await
        .unwrap()
        .unwrap();
    // Until the database's clock passes the expiry, b is refused; then b
    // takes it, with a fresh acquisition time.
    let b = loop {
        if let Some(b) = s.take_job_lease("housekeeping", "b", 15).await.unwrap() {
            break b;
        }
        let now = s.job_leases().await.unwrap()[0].db_now;
        assert!(now <= a.expires_on, "refused after the expiry");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(b.holder, "b");
    assert!(b.renewed_on > a.expires_on);
    assert_eq!(b.acquired_on, b.renewed_on);
    // a, back from a pause, cannot renew what b holds now.
    assert_eq!(
        s.take_job_lease("housekeeping", "a", 15).await.unwrap(),
        None
    );
}

async fn a_released_lease_is_free_at_once_and_only_its_holder_releases_it(db: &TestDb) {
    let s = &db.store;
    s.take_job_lease("zone_guard", "a", 15)
        .await
        .unwrap()
        .unwrap();
    assert!(!s.release_job_lease("zone_guard", "b").await.unwrap());
    assert_eq!(s.take_job_lease("zone_guard", "b", 15).await.unwrap(), None);
    assert!(s.release_job_lease("zone_guard", "a").await.unwrap());
    assert!(!s.release_job_lease("zone_guard", "a").await.unwrap());
    let b = s
        .take_job_lease("zone_guard", "b", 15)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.holder, "b");
}

async fn two_stores_race_for_a_lease_and_one_wins(db: &TestDb) {
    let other = db.reopen().await;
    for round in 0..5 {
        let job = format!("job{round}");
        let (x, y) = tokio::join!(
            db.store.take_job_lease(&job, "a", 15),
            other.take_job_lease(&job, "b", 15)
        );
        let won: Vec<String> = [x.unwrap(), y.unwrap()]
            .into_iter()
            .flatten()
            .map(|l| l.holder)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        let rows = db.store.job_leases().await.unwrap();
        let row = rows.iter().find(|r| r.job == job).unwrap();
        assert_eq!(row.holder, won[0]);
    }
    other.close().await;
}

async fn instances_are_listed_with_their_heartbeat(db: &TestDb) {
    let s = &db.store;
    s.instance_heartbeat("web-1", 100, "0.1.0", false)
        .await
        .unwrap();
    s.instance_heartbeat("web-2", 200, "0.1.0", false)
        .await
        .unwrap();
    s.instance_heartbeat("web-1", 100, "0.1.0", true)
        .await
        .unwrap();
    let rows = s.instances().await.unwrap();
    assert_eq!(rows.len(), 2);
    let one = rows.iter().find(|r| r.name == "web-1").unwrap();
    assert_eq!((one.started_on, one.draining), (100, 1));
    assert!(one.last_seen <= one.db_now && one.last_seen + 5 >= one.db_now);
    // An instance not seen for a week is forgotten at the next heartbeat.
    db.exec("UPDATE serve_instances SET last_seen = last_seen - 700000 WHERE name = 'web-2'")
        .await;
    s.instance_heartbeat("web-1", 100, "0.1.0", false)
        .await
        .unwrap();
    let names: Vec<String> = s
        .instances()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["web-1"]);
}

async fn the_first_shared_secret_wins(db: &TestDb) {
    let other = db.reopen().await;
    let first = db.store.shared_secret("ticket", b"one").await.unwrap();
    let second = other.shared_secret("ticket", b"two").await.unwrap();
    assert_eq!(first, b"one");
    assert_eq!(second, b"one");
    assert_eq!(
        other.shared_secret("else", b"three").await.unwrap(),
        b"three"
    );
    other.close().await;
}

async fn a_migrated_store_is_ready(db: &TestDb) {
    db.store.check_ready().await.unwrap();
    db.exec("DELETE FROM _sqlx_migrations WHERE version = 11")
        .await;
    let e = db.store.check_ready().await.unwrap_err().to_string();
    assert!(
        e.contains("migration 11 (job leases) is not applied"),
        "{e}"
    );
}
