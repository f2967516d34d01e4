//! `scoring::submission`: what one submission writes, decided without a
//! database. The stores' tests run the same decisions end to end on both
//! backends; these pin the decision's own rules.

use scoring::submission::{
    Before, OwnWindow, PairBefore, PairState, ResultIn, ServerBefore, UnknownServer, decide,
    needs_candidates,
};
use scoring::{GlobalStatus, MonitorStatus};

const NOW: i64 = 1_800_000_000;
const ME: i64 = 7;

fn good(server_id: i64) -> ResultIn {
    ResultIn {
        server_id,
        ts: NOW - 5,
        offset: Some(0.001),
        rtt: Some(0.020),
        stratum: Some(2),
        ..ResultIn::default()
    }
}

fn pair(server_id: i64, monitor_id: i64, score: f64, ts: Option<i64>) -> PairBefore {
    PairBefore {
        server_id,
        monitor_id,
        status: MonitorStatus::Active,
        global: GlobalStatus::Active,
        score,
        score_ts: ts,
        rtt_us: Some(20_000),
    }
}

fn server(server_id: i64) -> ServerBefore {
    ServerBefore {
        server_id,
        last_logged: None,
    }
}

#[test]
fn first_result_of_a_new_pair_scores_logs_and_is_no_transition() {
    let w = decide(
        ME,
        &[good(1)],
        &[1],
        Before {
            servers: vec![server(1)],
            ..Before::default()
        },
        NOW,
    )
    .unwrap();
    assert_eq!(w.accepted, 1);
    assert_eq!(w.scores.len(), 1);
    assert_eq!(w.scores[0].score, 1.0, "0 × 0.95 + 1");
    assert_eq!(w.scores[0].score_ts, NOW - 5);
    assert_eq!(w.scores[0].rtt_us, Some(20_000));
    assert_eq!(w.scores[0].window.cur.n, 1);
    // A monitor row, then the first aggregate row (nothing logged before).
    assert_eq!(w.logs.len(), 2);
    assert_eq!(w.logs[0].monitor_id, Some(ME));
    assert_eq!(w.logs[1].monitor_id, None);
    assert!(w.transitions.is_empty(), "a new pair has nothing to leave");
}

#[test]
fn a_healthy_pair_timing_out_is_a_transition_and_the_error_sticks() {
    let timeout = ResultIn {
        server_id: 1,
        ts: NOW - 5,
        error: Some("i/o timeout".into()),
        no_response: true,
        ..ResultIn::default()
    };
    // From 10.5: −5 then ×0.95 would be 4.975 — below 10, so unhealthy.
    let before = Before {
        servers: vec![server(1)],
        pairs: vec![pair(1, ME, 10.5, Some(NOW - 600))],
        windows: vec![OwnWindow {
            server_id: 1,
            ..OwnWindow::default()
        }],
    };
    let w = decide(ME, &[timeout], &[1], before, NOW).unwrap();
    assert_eq!(w.transitions.len(), 1);
    assert_eq!(w.transitions[0].from, PairState::Healthy);
    assert_eq!(
        w.transitions[0].to,
        PairState::Unhealthy {
            error: "i/o timeout".into()
        }
    );
    assert_eq!(w.scores[0].last_error, "i/o timeout");
}

#[test]
fn a_result_for_a_server_not_read_is_refused() {
    let err = decide(ME, &[good(9)], &[9], Before::default(), NOW).unwrap_err();
    assert_eq!(err, UnknownServer(9));
    assert_eq!(err.to_string(), "unknown server id 9");
}

#[test]
fn a_paused_monitor_counts_for_nothing_in_the_aggregate() {
    // Another monitor at 20, globally paused: the aggregate is ours alone.
    let mut other = pair(1, 8, 20.0, Some(NOW - 60));
    other.global = GlobalStatus::Paused;
    let before = Before {
        servers: vec![server(1)],
        pairs: vec![pair(1, ME, 15.0, Some(NOW - 600)), other.clone()],
        windows: vec![],
    };
    let alone = decide(ME, &[good(1)], &[1], before, NOW).unwrap();
    other.global = GlobalStatus::Active;
    let before = Before {
        servers: vec![server(1)],
        pairs: vec![pair(1, ME, 15.0, Some(NOW - 600)), other],
        windows: vec![],
    };
    let with = decide(ME, &[good(1)], &[1], before, NOW).unwrap();
    assert_ne!(alone.aggregates, with.aggregates);
    assert_eq!(alone.aggregates, vec![(1, alone.scores[0].score)]);
}

#[test]
fn candidates_are_read_only_where_no_trusted_monitor_scored_recently() {
    let recent = pair(1, 8, 20.0, Some(NOW - 60));
    let stale = pair(2, 8, 20.0, Some(NOW - scoring::WINDOW_TRUSTED_S - 1));
    let mut candidate = pair(3, 8, 20.0, Some(NOW - 60));
    candidate.status = MonitorStatus::Candidate;
    let mine = pair(4, ME, 20.0, Some(NOW - 60));
    let need = needs_candidates(ME, &[1, 2, 3, 4], &[recent, stale, candidate, mine], NOW);
    assert_eq!(need, vec![2, 3, 4]);
}
