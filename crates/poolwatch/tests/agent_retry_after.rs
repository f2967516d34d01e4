//! The real `poolwatch agent --lab` against a fake service whose `/results`
//! answers 503 with `Retry-After` twice (its database is full), then takes
//! the batch: the agent keeps the batch in its spool, sends it again no
//! sooner than the service asked each time, and it is accepted once;
//! nothing is dropped.

mod common;

use common::e2e::{agent_tally, free_tcp_port};
use common::fake_api::{FakeApi, Reply, agent_with_backoff, config, idle};
use std::time::{Duration, Instant};

const RETRY_AFTER_S: u64 = 2;
/// `/results` answers 503 this many times, then 200.
const FAILURES: usize = 2;

fn route(path: &str, n: usize) -> Reply {
    match path {
        p if p.ends_with("/config") => config(&[], 1),
        p if p.ends_with("/work") && n == 0 => Reply::Json(
            r#"{"batch_id":"00000000000000000007","retry_after_s":0,
                "servers":[{"ip":"127.0.0.1","ticket":"t1"}]}"#
                .into(),
        ),
        p if p.ends_with("/work") => idle(),
        p if p.ends_with("/results") && n < FAILURES => Reply::Busy(RETRY_AFTER_S),
        p if p.ends_with("/results") => Reply::Json(r#"{"accepted":1,"duplicate":false}"#.into()),
        _ => Reply::Json(String::new()),
    }
}

#[test]
fn a_503_with_retry_after_is_spooled_and_replayed_no_sooner() {
    let api = FakeApi::start(route);
    let dir = tempfile::tempdir().unwrap();
    // A minimum back-off far below Retry-After: only honouring it
    // explains the waits.
    let mut agent = agent_with_backoff(&api, dir.path(), free_tcp_port(), "50ms", "10s");

    let start = Instant::now();
    while api.times("/results").len() <= FAILURES {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the batch was not sent {} times: {}",
            FAILURES + 1,
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the accepted answer be counted before stopping.
    std::thread::sleep(Duration::from_millis(300));
    agent.signal("TERM");
    assert_eq!(
        agent.wait(Duration::from_secs(10)),
        Some(0),
        "{}",
        agent.log()
    );

    let times = api.times("/results");
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_secs(RETRY_AFTER_S),
            "sent again after {gap:?}; the service asked for {RETRY_AFTER_S} s: {}",
            agent.log()
        );
    }
    let (checks, accepted, spooled, dropped) = agent_tally(&agent.log());
    assert_eq!(
        (checks, accepted, spooled, dropped),
        (1, 1, 1, 0),
        "one check, spooled at the first 503, accepted once: {}",
        agent.log()
    );
    assert!(
        !dir.path().join("spool.jsonl").exists(),
        "the spool is empty once the batch is accepted"
    );
}
