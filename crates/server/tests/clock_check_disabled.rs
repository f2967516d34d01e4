//! With no reference servers the agents' clock check is off; `serve` must
//! say so loudly: a warning at start and every hour, the
//! `poolwatch_clock_check_disabled` gauge, and a line on `/monitors`. With
//! reference servers, none of that. Real sockets (`serve_on`), both
//! backends. Its own test binary: the log capture is the process's global
//! subscriber (see secret_logs.rs for why not a thread-local one).

mod common;

use common::{Backend, Capture, TestDb, raw_get};
use server::ServerConfig;
use server::clock_check::{WARNING, warn_while_disabled};
use std::time::{Duration, Instant};

/// Start warnings logged so far.
fn warnings(cap: &Capture) -> usize {
    cap.text().matches("clock check disabled").count()
}

/// `serve_on` with `reference_servers`: the warning at start, the gauge
/// and the page agree with whether there are any.
async fn serve_says_so(backend: Backend, cap: &Capture, reference_servers: Vec<String>) {
    let Some(db) = TestDb::open(backend).await else {
        return;
    };
    let disabled = reference_servers.is_empty();
    cap.clear();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve_on(
        listener,
        ServerConfig {
            reference_servers,
            ..ServerConfig::default()
        },
        db.store.clone(),
        async {
            let _ = rx.await;
        },
    ));
    let metrics = raw_get(addr, "/metrics").await;
    let want = format!("poolwatch_clock_check_disabled {}", u8::from(disabled));
    assert!(metrics.contains(&want), "{backend:?}: {metrics}");
    let page = raw_get(addr, "/monitors").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert_eq!(
        page.contains("id=\"clock-check-disabled\""),
        disabled,
        "{backend:?}: {page}"
    );
    if disabled {
        assert!(page.contains("clock check disabled: no reference servers are configured"));
    }
    // The start warning comes from a task of its own: wait for it a little.
    let deadline = Instant::now() + Duration::from_secs(5);
    while disabled && warnings(cap) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(warnings(cap), usize::from(disabled), "{backend:?}");
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_warns_exports_and_shows_a_disabled_clock_check() {
    let cap = Capture::default();
    let writer = cap.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    for backend in [Backend::Sqlite, Backend::Postgres] {
        serve_says_so(backend, &cap, Vec::new()).await;
        serve_says_so(backend, &cap, vec!["127.0.0.1:11123".into()]).await;
    }

    // The warning repeats (hourly in serve; a short period here). With
    // reference servers the task ends at once and says nothing.
    cap.clear();
    tokio::time::timeout(
        Duration::from_secs(1),
        warn_while_disabled(false, Duration::from_millis(1)),
    )
    .await
    .expect("returns at once when the check is on");
    assert_eq!(warnings(&cap), 0);
    let repeating = tokio::spawn(warn_while_disabled(true, Duration::from_millis(100)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while warnings(&cap) < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    repeating.abort();
    assert!(warnings(&cap) >= 3, "repeated: {}", warnings(&cap));
    let logged = cap.text();
    assert!(
        logged.contains(WARNING) && logged.contains("WARN"),
        "{logged}"
    );
}
