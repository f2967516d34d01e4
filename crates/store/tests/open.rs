//! Opening the store: paths, URLs and error messages.

use store::{Store, StoreError};

#[tokio::test]
async fn default_sqlite_file_in_new_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a/b");
    let s = Store::open(None, &data).await.unwrap();
    assert_eq!(s.backend_name(), "sqlite");
    assert!(data.join("poolwatch.db").exists());
    s.close().await;
    // A sqlite: URL names another file; the data dir is then unused.
    let file = dir.path().join("other/x.db");
    let url = format!("sqlite:{}", file.display());
    let s = Store::open(Some(&url), dir.path()).await.unwrap();
    assert_eq!(s.counts().await.unwrap(), (0, 0, 0));
    s.close().await;
    assert!(file.exists());
}

#[tokio::test]
async fn unusable_data_dir_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let err = Store::open(None, &blocker.join("sub")).await.unwrap_err();
    assert!(matches!(err, StoreError::Open(_)), "{err:?}");
    assert!(err.to_string().contains("sub"), "{err}");
}

#[tokio::test]
async fn errors_never_show_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: refused at once, nothing leaves the machine.
    let err = Store::open(
        Some("postgres://poolwatch:s3cret-pw@127.0.0.1:1/poolwatch?connect_timeout=2"),
        dir.path(),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains("s3cret-pw"), "{msg}");
    assert!(
        msg.contains("postgres://poolwatch:***@127.0.0.1:1/poolwatch"),
        "{msg}"
    );

    let err = Store::open(Some("mysql://u:s3cret-pw@h/db"), dir.path())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");
}
