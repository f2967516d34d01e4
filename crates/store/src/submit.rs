//! Stored rows of the touched servers → the state
//! [`scoring::submission::decide`] works on. The decision itself lives in
//! `scoring`; the store only reads and writes.

use crate::conn::positional_row;
use crate::sql::WindowCols;
use crate::{StoreError, parse_global, parse_status};
use scoring::submission::{OwnWindow, PairBefore, ServerBefore};

/// A touched server with its last logged aggregate.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ServerRead {
    pub server_id: i64,
    pub last_score: Option<f64>,
    pub last_ts: Option<i64>,
}

/// One monitor's standing for a touched server.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PairRead {
    pub server_id: i64,
    pub monitor_id: i64,
    pub status: String,
    pub score: f64,
    pub score_ts: Option<i64>,
    pub rtt_us: Option<i64>,
    /// The monitor's global status.
    pub monitor_status: String,
}

/// The submitting monitor's window and last error for a touched server.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct OwnWindowRead {
    pub server_id: i64,
    pub window: WindowCols,
    pub last_error: Option<String>,
}

// In the column order of `bulk::SUBMIT_*` and `bulk::own_windows`.
positional_row!(ServerRead {
    server_id,
    last_score,
    last_ts
});
positional_row!(PairRead {
    server_id,
    monitor_id,
    status,
    score,
    score_ts,
    rtt_us,
    monitor_status
});
positional_row!(OwnWindowRead { server_id, window(WindowCols), last_error });

pub(crate) fn servers(rows: Vec<ServerRead>) -> Vec<ServerBefore> {
    rows.into_iter()
        .map(|r| ServerBefore {
            server_id: r.server_id,
            last_logged: r.last_score.zip(r.last_ts),
        })
        .collect()
}

pub(crate) fn pairs(rows: Vec<PairRead>) -> Result<Vec<PairBefore>, StoreError> {
    rows.into_iter()
        .map(|r| {
            Ok(PairBefore {
                server_id: r.server_id,
                monitor_id: r.monitor_id,
                status: parse_status(&r.status)?,
                global: parse_global(&r.monitor_status)?,
                score: r.score,
                score_ts: r.score_ts,
                rtt_us: r.rtt_us,
            })
        })
        .collect()
}

pub(crate) fn windows(rows: Vec<OwnWindowRead>) -> Vec<OwnWindow> {
    rows.into_iter()
        .map(|r| OwnWindow {
            server_id: r.server_id,
            window: r.window.window(),
            last_error: r.last_error.unwrap_or_default(),
        })
        .collect()
}
