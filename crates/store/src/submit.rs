//! Stored rows of the touched servers → the state
//! [`scoring::submission::decide`] works on. The decision itself lives in
//! `scoring`; the store only reads and writes.

use crate::conn::{Conn, positional_row};
use crate::samples::SampleWrite;
use crate::sql::WindowCols;
use crate::{ResultIn, SampleRow, SubmitOutcome, bulk, sql};
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

pub(crate) fn servers_before(rows: Vec<ServerRead>) -> Vec<ServerBefore> {
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

// ------------------------------------------------------------ the submission

/// One submitted batch, owned so it can wait in a [`Groups`] queue; its
/// samples already encoded (and checked) so a bad one holds no lock.
pub(crate) struct Job {
    pub monitor_id: i64,
    pub batch_seq: i64,
    pub results: Vec<ResultIn>,
    pub packed: Vec<SampleWrite>,
    /// The results' servers, sorted, once each.
    pub touched: Vec<i64>,
    pub now: i64,
}

impl Job {
    pub(crate) fn new(
        monitor_id: i64,
        batch_seq: i64,
        results: &[ResultIn],
        samples: &[Vec<SampleRow>],
        now: i64,
    ) -> Result<Job, StoreError> {
        let mut packed = Vec::new();
        for (i, (r, s)) in results.iter().zip(samples).enumerate() {
            if s.is_empty() {
                continue;
            }
            let data = crate::samples::encode(s).map_err(|e| match e {
                StoreError::Invalid(m) => StoreError::Invalid(format!("results[{i}].{m}")),
                e => e,
            })?;
            packed.push(SampleWrite {
                server_id: r.server_id,
                ts: r.ts,
                data,
            });
        }
        let mut touched: Vec<i64> = results.iter().map(|r| r.server_id).collect();
        touched.sort_unstable();
        touched.dedup();
        Ok(Job {
            monitor_id,
            batch_seq,
            results: results.to_vec(),
            packed,
            touched,
            now,
        })
    }

    /// Whether the batch may be stored, from its locked row (owner,
    /// submitted at) and the monitor's newest submitted batch: `Ok(None)`
    /// yes, `Ok(Some(_))` it already was (a duplicate changes nothing).
    pub(crate) fn gate(
        &self,
        batch: Option<(i64, Option<i64>)>,
        last: Option<i64>,
    ) -> Result<Option<SubmitOutcome>, StoreError> {
        let seq = self.batch_seq;
        let Some((owner, submitted_at)) = batch else {
            return Err(StoreError::NotFound(format!("batch {seq}")));
        };
        if owner != self.monitor_id {
            return Err(StoreError::Invalid(format!(
                "batch {seq} does not belong to monitor {}",
                self.monitor_id
            )));
        }
        if submitted_at.is_some() {
            return Ok(Some(SubmitOutcome {
                accepted: 0,
                duplicate: true,
                transitions: Vec::new(),
            }));
        }
        if let Some(last) = last
            && seq < last
        {
            return Err(StoreError::Conflict(format!(
                "batch {seq} is older than batch {last}, already submitted"
            )));
        }
        Ok(None)
    }
}

/// One submission in its own transaction: SQLite's path, and PostgreSQL's
/// when its group failed. Locks in the group's order (batch, monitor,
/// servers), so it never deadlocks with a group.
pub(crate) async fn single(c: &mut Conn<'_>, job: &Job) -> Result<SubmitOutcome, StoreError> {
    let batch: Option<(i64, Option<i64>)> = c
        .query(sql::BATCH_LOCK)
        .bind(job.batch_seq)
        .fetch_optional()
        .await?;
    let last: Option<(Option<i64>,)> = c
        .query(sql::MONITOR_LAST_BATCH_LOCK)
        .bind(job.monitor_id)
        .fetch_optional()
        .await?;
    if let Some(done) = job.gate(batch, last.and_then(|l| l.0))? {
        return Ok(done);
    }
    bulk::lock_servers(c, &job.touched).await?;
    store(c, job).await
}

/// Reads, decides and writes an admitted submission whose rows are locked.
pub(crate) async fn store(c: &mut Conn<'_>, job: &Job) -> Result<SubmitOutcome, StoreError> {
    let (monitor_id, now, touched) = (job.monitor_id, job.now, &job.touched);
    let mut writes = scoring::submission::Writes::default();
    if !touched.is_empty() {
        let (servers, scores) = bulk::submit_state(c, touched, monitor_id).await?;
        let mut pairs = pairs(scores)?;
        let need = scoring::submission::needs_candidates(monitor_id, touched, &pairs, now);
        if !need.is_empty() {
            let since = now - scoring::WINDOW_WIDEST_S;
            let candidates = bulk::submit_candidates(c, &need, monitor_id, since).await?;
            pairs.extend(self::pairs(candidates)?);
        }
        let before = scoring::submission::Before {
            servers: servers_before(servers),
            pairs,
            windows: windows(bulk::own_windows(c, monitor_id, touched).await?),
        };
        writes = scoring::submission::decide(monitor_id, &job.results, touched, before, now)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
    }
    bulk::write_submission(c, job, &writes).await?;
    Ok(SubmitOutcome {
        accepted: writes.accepted,
        duplicate: false,
        transitions: writes.transitions,
    })
}
