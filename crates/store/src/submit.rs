//! Stored rows of the touched servers → the state
//! [`scoring::submission::decide`] works on. The decision itself lives in
//! `scoring`; the store only reads and writes.

use crate::sql::{ScoreTuple, ServerTuple, WindowTuple, window_of};
use crate::{StoreError, parse_global, parse_status};
use scoring::submission::{OwnWindow, PairBefore, ServerBefore};

pub(crate) fn servers(rows: Vec<ServerTuple>) -> Vec<ServerBefore> {
    rows.into_iter()
        .map(|(server_id, score, ts)| ServerBefore {
            server_id,
            last_logged: score.zip(ts),
        })
        .collect()
}

pub(crate) fn pairs(rows: Vec<ScoreTuple>) -> Result<Vec<PairBefore>, StoreError> {
    rows.into_iter()
        .map(
            |(server_id, monitor_id, status, score, score_ts, rtt_us, global)| {
                Ok(PairBefore {
                    server_id,
                    monitor_id,
                    status: parse_status(&status)?,
                    global: parse_global(&global)?,
                    score,
                    score_ts,
                    rtt_us,
                })
            },
        )
        .collect()
}

pub(crate) fn windows(rows: Vec<WindowTuple>) -> Vec<OwnWindow> {
    rows.iter()
        .map(|t| OwnWindow {
            server_id: t.0,
            window: window_of(t),
            last_error: t.10.clone().unwrap_or_default(),
        })
        .collect()
}
