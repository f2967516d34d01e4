//! Vendor zones (issue 17): add, list, replace, remove; a second add of a
//! name is refused and changes nothing. SQLite and PostgreSQL alike.

mod common;

use common::TestDb;
use store::StoreError;

both_backends!(
    vendors_are_added_listed_and_removed,
    a_name_is_added_once_unless_replaced,
    bad_input_stores_nothing,
);

async fn vendors_are_added_listed_and_removed(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.vendors().await.unwrap(), []);
    let debian = s
        .add_vendor("debian", "@", "for the debian pool", false, 1_000)
        .await
        .unwrap();
    assert_eq!(
        (
            debian.name.as_str(),
            debian.zone.as_str(),
            debian.created_on
        ),
        ("debian", "@", 1_000)
    );
    s.add_vendor("acme", "de", "", false, 2_000).await.unwrap();
    let all = s.vendors().await.unwrap();
    let names: Vec<(&str, &str, &str, i64)> = all
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.zone.as_str(),
                v.note.as_str(),
                v.created_on,
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("acme", "de", "", 2_000),
            ("debian", "@", "for the debian pool", 1_000)
        ]
    );
    assert_eq!(all[1], debian);
    s.remove_vendor("acme").await.unwrap();
    assert_eq!(s.vendors().await.unwrap(), [debian]);
    // A second removal finds nothing, and says what.
    match s.remove_vendor("acme").await {
        Err(StoreError::NotFound(m)) => assert!(m.contains("acme"), "{m}"),
        other => panic!("{other:?}"),
    }
}

async fn a_name_is_added_once_unless_replaced(db: &TestDb) {
    let s = &db.store;
    let first = s
        .add_vendor("debian", "@", "one", false, 1_000)
        .await
        .unwrap();
    match s.add_vendor("debian", "de", "two", false, 2_000).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("debian") && m.contains("--replace")),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.vendors().await.unwrap(), [first]);
    // Replacing changes the zone and note, not when it was first added.
    let replaced = s
        .add_vendor("debian", "de", "two", true, 3_000)
        .await
        .unwrap();
    assert_eq!(
        (
            replaced.zone.as_str(),
            replaced.note.as_str(),
            replaced.created_on
        ),
        ("de", "two", 1_000)
    );
    assert_eq!(s.vendors().await.unwrap(), [replaced]);
    // Replace on a new name adds it.
    s.add_vendor("acme", "@", "", true, 4_000).await.unwrap();
    assert_eq!(s.vendors().await.unwrap().len(), 2);
}

async fn bad_input_stores_nothing(db: &TestDb) {
    let s = &db.store;
    let long = "n".repeat(store::VENDOR_NOTE_MAX + 1);
    for (name, zone, note) in [("", "@", ""), ("debian", " ", ""), ("debian", "@", &*long)] {
        assert!(matches!(
            s.add_vendor(name, zone, note, false, 1).await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert_eq!(s.vendors().await.unwrap(), []);
    let at_most = "n".repeat(store::VENDOR_NOTE_MAX);
    s.add_vendor("debian", "@", &at_most, false, 1)
        .await
        .unwrap();
}
