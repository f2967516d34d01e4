//! `Store::export_log_page` (issue 16, `admin export`): a time range of the
//! score log in bounded pages, every row once, in (server, ts, id) order,
//! with the server's address and the monitor's name, on both backends.

mod common;

use common::{TestDb, monitor, seed_global};
use store::testing::StoreTesting as _;
use store::*;

/// 2023-11-14 00:00 UTC.
const DAY0: i64 = 1_699_920_000;
const DAY: i64 = 86_400;

both_backends!(
    pages_walk_the_range_once_in_order,
    an_empty_range_is_one_empty_page
);

#[allow(clippy::too_many_arguments)]
fn row(
    id: i64,
    server: (i64, &str),
    monitor: Option<&str>,
    ts: i64,
    offset: Option<f64>,
    error: Option<&str>,
) -> ExportLogRow {
    ExportLogRow {
        id,
        server_id: server.0,
        ts,
        server_ip: server.1.into(),
        monitor_name: monitor.map(str::to_string),
        step: if error.is_some() { -4.0 } else { 1.0 },
        score: 19.123_456_789_012_345,
        offset,
        rtt_us: offset.map(|_| 12_345),
        stratum: offset.map(|_| 2),
        leap: offset.map(|_| 0),
        refid: offset.map(|_| "GPS".into()),
        error: error.map(str::to_string),
        no_response: error == Some("i/o timeout"),
    }
}

async fn pages_walk_the_range_once_in_order(db: &TestDb) {
    let s = &db.store;
    seed_global(s).await;
    // Ids in the order they are made, so b < a < c by id: the page
    // order is by server id, whatever the address.
    let b = (
        common::add_server_in(s, "192.0.2.2", "@", DAY0).await,
        "192.0.2.2",
    );
    let a = (
        common::add_server_in(s, "2001:db8::1", "@", DAY0).await,
        "2001:db8::1",
    );
    let c = (
        common::add_server_in(s, "192.0.2.3", "@", DAY0).await,
        "192.0.2.3",
    );
    let m1 = s
        .add_monitor(monitor("m1", "203.0.113.5"), DAY0)
        .await
        .unwrap()
        .id;
    let m2 = s
        .add_monitor(monitor("m2", "203.0.113.6"), DAY0)
        .await
        .unwrap()
        .id;

    let inside = vec![
        (Some(m1), row(10, b, Some("m1"), DAY0, Some(0.001), None)),
        (None, row(11, b, None, DAY0, None, None)),
        // The same ts as ids 10 and 11, a lower id: first by (ts, id).
        (
            Some(m2),
            row(3, b, Some("m2"), DAY0, None, Some("i/o timeout")),
        ),
        (
            Some(m2),
            row(12, b, Some("m2"), DAY0 + 900, Some(-0.25), None),
        ),
        (
            Some(m1),
            row(13, a, Some("m1"), DAY0 + 5, None, Some("RATE")),
        ),
        (
            Some(m1),
            row(14, a, Some("m1"), DAY - 1 + DAY0, Some(1e-9), None),
        ),
        (None, row(15, a, None, DAY - 1 + DAY0, None, None)),
    ];
    let outside = vec![
        (Some(m1), row(1, b, Some("m1"), DAY0 - 1, Some(0.0), None)),
        (Some(m1), row(2, a, Some("m1"), DAY0 + DAY, Some(0.0), None)),
        (None, row(16, c, None, DAY0 + DAY, None, None)),
        (
            Some(m2),
            row(17, c, Some("m2"), DAY0 - DAY, None, Some("DENY")),
        ),
    ];
    s.insert_log_rows(&inside).await.unwrap();
    s.insert_log_rows(&outside).await.unwrap();

    let mut want: Vec<ExportLogRow> = inside.into_iter().map(|(_, r)| r).collect();
    want.sort_by_key(|r| (r.server_id, r.ts, r.id));
    assert_eq!(want[0].id, 3, "the test's own order");

    for limit in [1, 2, 3, 7, 5_000] {
        let mut got = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = s
                .export_log_page(DAY0, DAY0 + DAY, after, limit)
                .await
                .unwrap();
            assert!(page.len() as i64 <= limit, "limit {limit}: {}", page.len());
            let Some(last) = page.last() else { break };
            after = Some(last.key());
            got.extend(page);
            pages += 1;
            assert!(pages <= 8, "limit {limit}: no end");
        }
        assert_eq!(got, want, "limit {limit}");
    }
}

async fn an_empty_range_is_one_empty_page(db: &TestDb) {
    let s = &db.store;
    seed_global(s).await;
    let a = (
        common::add_server_in(s, "192.0.2.1", "@", DAY0).await,
        "192.0.2.1",
    );
    s.insert_log_rows(&[(None, row(1, a, None, DAY0, None, None))])
        .await
        .unwrap();
    let page = s
        .export_log_page(DAY0 + DAY, DAY0 + 2 * DAY, None, 100)
        .await
        .unwrap();
    assert_eq!(page, vec![]);
}
