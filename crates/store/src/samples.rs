//! Every sample of a check (issue 15), kept as evidence beside the log row
//! of its result: one `check_samples` row per check, the samples packed in
//! a small binary encoding (see crates/store/API.md "Check samples").
//!
//! Encoding, version 1: one header byte `(1 << 5) | count` (count ≤ 16),
//! then 11 bytes per sample in position order, then the texts of samples
//! whose error is not in [`ERRORS`], in position order. A sample is a
//! 56-bit word (7 bytes, little-endian) and the offset:
//!
//! | bits / bytes | field |
//! |---|---|
//! | bits 0–15 | send time after the check's first query, ms |
//! | bits 16–41 | rtt, µs; 2²⁶−1 = none (so at most 67.1 s) |
//! | bit 42 | answered |
//! | bit 43, bits 44–45 | leap present, leap |
//! | bits 46–50 | stratum; 31 = none |
//! | bits 51–55 | error: 0 none, k = `ERRORS[k−1]`, 31 other (text follows the samples) |
//! | bytes 7–10 | offset, seconds, f32 LE; NaN = none (relative precision 6e-8: 60 ns at 1 s) |
//!
//! An "other" text is one length byte then up to 255 bytes of UTF-8.

use crate::conn::Conn;
use crate::{Store, StoreError};
use std::sync::OnceLock;

/// The errors a sample names by index: the KoD codes a monitor sees and the
/// socket errors `ntp::ErrorCode` names. Append only: stored rows keep
/// their indexes.
pub const ERRORS: &[&str] = &[
    "i/o timeout",
    "connection refused",
    "network unreachable",
    "host unreachable",
    "RATE",
    "DENY",
    "RSTR",
    "INIT",
    "STEP",
    "AUTH",
    "AUTO",
    "BCST",
    "CRYP",
    "DROP",
    "MCST",
    "NKEY",
    "NTSN",
    "RMOT",
];

const VERSION: u8 = 1;
// Error indexes are 5 bits, 0 and 31 taken.
const _: () = assert!(ERRORS.len() < 31);
const SAMPLE_BYTES: usize = 11;
const OTHER: u64 = 31;
const NO_RTT: u64 = (1 << 26) - 1;
const NO_STRATUM: u64 = 31;
/// The most samples one check may carry (the service checks it first).
pub const MAX_SAMPLES: usize = 16;

/// One query of a check, as stored: the scoring crate's pure type.
pub use scoring::Sample as SampleRow;

/// The samples of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSamples {
    pub server_id: i64,
    pub monitor_id: i64,
    /// The check's (and its log row's) ts.
    pub ts: i64,
    pub samples: Vec<SampleRow>,
}

/// Packs `samples` (at most [`MAX_SAMPLES`], in position order).
pub fn encode(samples: &[SampleRow]) -> Result<Vec<u8>, StoreError> {
    if samples.len() > MAX_SAMPLES {
        return Err(StoreError::Invalid(format!(
            "samples: {} given, at most {MAX_SAMPLES}",
            samples.len()
        )));
    }
    let mut out = Vec::with_capacity(1 + SAMPLE_BYTES * samples.len());
    let mut tail = Vec::new();
    out.push((VERSION << 5) | samples.len() as u8);
    for (j, s) in samples.iter().enumerate() {
        let bad = |f: &str, why: &str| StoreError::Invalid(format!("samples[{j}].{f}: {why}"));
        if s.position as usize != j {
            return Err(bad("position", "must be 0, 1, … in order"));
        }
        if s.leap.is_some_and(|l| l > 3) {
            return Err(bad("leap", "must be 0..=3"));
        }
        let rtt = match s.rtt_us {
            Some(r) if u64::from(r) < NO_RTT => u64::from(r),
            Some(_) => return Err(bad("rtt_us", "at most 67.1 s")),
            None => NO_RTT,
        };
        let stratum = match s.stratum {
            Some(v) if u64::from(v) < NO_STRATUM => u64::from(v),
            Some(_) => return Err(bad("stratum", "must be 0..=30")),
            None => NO_STRATUM,
        };
        if s.offset.is_some_and(|o| !o.is_finite()) {
            return Err(bad("offset", "not a number"));
        }
        let err = match s.error.as_deref() {
            None => 0,
            Some(e) => match ERRORS.iter().position(|k| *k == e) {
                Some(k) => k as u64 + 1,
                None => {
                    if e.len() > 255 {
                        return Err(bad("error", "longer than 255 bytes"));
                    }
                    tail.push(e.len() as u8);
                    tail.extend_from_slice(e.as_bytes());
                    OTHER
                }
            },
        };
        let word = u64::from(s.send_ms)
            | rtt << 16
            | u64::from(s.answered) << 42
            | u64::from(s.leap.is_some()) << 43
            | u64::from(s.leap.unwrap_or(0)) << 44
            | stratum << 46
            | err << 51;
        out.extend_from_slice(&word.to_le_bytes()[..7]);
        let offset = s.offset.map_or(f32::NAN, |o| o as f32);
        out.extend_from_slice(&offset.to_le_bytes());
    }
    out.extend_from_slice(&tail);
    Ok(out)
}

/// Unpacks what [`encode`] packed.
pub fn decode(b: &[u8]) -> Result<Vec<SampleRow>, StoreError> {
    let corrupt = |why: &str| StoreError::Invalid(format!("stored samples: {why}"));
    match b.first() {
        Some(h) if h >> 5 == VERSION => {}
        _ => return Err(corrupt("unknown encoding")),
    }
    let n = (b[0] & 31) as usize;
    if n > MAX_SAMPLES || b.len() < 1 + n * SAMPLE_BYTES {
        return Err(corrupt("short"));
    }
    let mut out = Vec::with_capacity(n);
    let mut others = Vec::new();
    let mut at = 1;
    for _ in 0..n {
        let s = &b[at..at + SAMPLE_BYTES];
        let mut w = [0u8; 8];
        w[..7].copy_from_slice(&s[..7]);
        let word = u64::from_le_bytes(w);
        let bits = |from: u32, n: u32| (word >> from) & ((1 << n) - 1);
        let error = match bits(51, 5) {
            0 => None,
            OTHER => {
                others.push(out.len());
                Some(String::new())
            }
            k => Some(
                ERRORS
                    .get(k as usize - 1)
                    .ok_or_else(|| corrupt("unknown error index"))?
                    .to_string(),
            ),
        };
        let offset = f32::from_le_bytes([s[7], s[8], s[9], s[10]]);
        out.push(SampleRow {
            position: out.len() as u8,
            send_ms: bits(0, 16) as u16,
            answered: bits(42, 1) == 1,
            rtt_us: Some(bits(16, 26))
                .filter(|&r| r != NO_RTT)
                .map(|r| r as u32),
            offset: (!offset.is_nan()).then_some(offset as f64),
            stratum: Some(bits(46, 5))
                .filter(|&v| v != NO_STRATUM)
                .map(|v| v as u8),
            leap: (bits(43, 1) == 1).then_some(bits(44, 2) as u8),
            error,
        });
        at += SAMPLE_BYTES;
    }
    for j in others {
        let len = *b.get(at).ok_or_else(|| corrupt("missing error text"))? as usize;
        let text = b
            .get(at + 1..at + 1 + len)
            .ok_or_else(|| corrupt("short error text"))?;
        out[j].error = Some(String::from_utf8_lossy(text).into_owned());
        at += 1 + len;
    }
    if at != b.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
}

/// One check's samples to store with its result.
pub(crate) struct SampleWrite {
    pub server_id: i64,
    pub ts: i64,
    pub data: Vec<u8>,
}

/// Stores the checks' samples in one statement per chunk (SQLite) or one
/// statement (PostgreSQL). A second check of the same server by the same
/// monitor in the same second keeps the first one's samples.
pub(crate) async fn insert(
    c: &mut Conn<'_>,
    monitor_id: i64,
    rows: &[SampleWrite],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    match c {
        Conn::Sqlite(c) => {
            // Chunks of multi-row VALUES bind the blobs as they are; short
            // chunks are padded with NULL rows (filtered out) so only one
            // statement shape is prepared.
            const CHUNK: usize = 64;
            static SQL: OnceLock<String> = OnceLock::new();
            let sql: &'static str = SQL.get_or_init(|| {
                format!(
                    "INSERT INTO check_samples (server_id, ts, monitor_id, data) \
                     SELECT column1, column2, ?, column3 FROM (VALUES {}) \
                     WHERE column1 IS NOT NULL ON CONFLICT DO NOTHING",
                    vec!["(?, ?, ?)"; CHUNK].join(", ")
                )
            });
            for chunk in rows.chunks(CHUNK) {
                let mut q = sqlx::query(sql).bind(monitor_id);
                for r in chunk {
                    q = q.bind(r.server_id).bind(r.ts).bind(r.data.clone());
                }
                for _ in chunk.len()..CHUNK {
                    q = q.bind(None::<i64>).bind(None::<i64>).bind(None::<Vec<u8>>);
                }
                q.execute(&mut **c).await?;
            }
            Ok(())
        }
        // A submission's samples go in with its other writes in one
        // statement (`bulk::PG_WRITE`); this serves the tests and bench.
        Conn::Pg(c) => {
            let ids: Vec<i64> = rows.iter().map(|r| r.server_id).collect();
            let ts: Vec<i64> = rows.iter().map(|r| r.ts).collect();
            let data: Vec<Vec<u8>> = rows.iter().map(|r| r.data.clone()).collect();
            sqlx::query(
                "INSERT INTO check_samples (server_id, ts, monitor_id, data) \
                 SELECT s, t, $3, d FROM UNNEST($1::bigint[], $2::bigint[], $4::bytea[]) AS u(s, t, d) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(ids)
            .bind(ts)
            .bind(monitor_id)
            .bind(data)
            .execute(&mut **c)
            .await?;
            Ok(())
        }
    }
}

/// The servers with samples before the cutoff.
const SERVERS_WITH_OLD_SAMPLES: &str = "SELECT s.id FROM servers s WHERE EXISTS \
     (SELECT 1 FROM check_samples x WHERE x.server_id = s.id AND x.ts < $1) ORDER BY s.id";
/// One server's oldest samples before the cutoff: one range of the
/// (server_id, ts, monitor_id) key.
pub(crate) const SAMPLES_DELETE: &str = "DELETE FROM check_samples \
     WHERE (server_id, ts, monitor_id) IN \
     (SELECT server_id, ts, monitor_id FROM check_samples WHERE server_id = $1 AND ts < $2 \
      ORDER BY ts LIMIT $3)";

impl Store {
    /// The samples of `server_id`'s checks with `since <= ts < until`, by
    /// one monitor or (`None`) all, oldest first (then by monitor).
    pub async fn samples(
        &self,
        server_id: i64,
        monitor_id: Option<i64>,
        since: i64,
        until: i64,
    ) -> Result<Vec<CheckSamples>, StoreError> {
        let rows: Vec<(i64, i64, Vec<u8>)> = self
            .read(async |c| {
                Ok(c.query(
                    "SELECT monitor_id, ts, data FROM check_samples \
                     WHERE server_id = $1 AND ts >= $2 AND ts < $3 \
                     AND ($4 IS NULL OR monitor_id = $4) ORDER BY ts, monitor_id",
                )
                .bind(server_id)
                .bind(since)
                .bind(until)
                .bind(monitor_id)
                .fetch_all()
                .await?)
            })
            .await?;
        rows.into_iter()
            .map(|(monitor_id, ts, data)| {
                Ok(CheckSamples {
                    server_id,
                    monitor_id,
                    ts,
                    samples: decode(&data)?,
                })
            })
            .collect()
    }

    /// Deletes samples of checks before `before`, `chunk` rows per
    /// transaction (the housekeeping job, `--sample-retention`). On
    /// PostgreSQL the days wholly before `before` go as whole partitions
    /// first (`crate::partitions`).
    pub async fn prune_samples(&self, before: i64, chunk: i64) -> Result<u64, StoreError> {
        if chunk < 1 {
            return Err(StoreError::Invalid(format!(
                "housekeeping chunk {chunk}: give at least 1"
            )));
        }
        let dropped = self
            .drop_expired_partitions(crate::SAMPLES_TABLE, before)
            .await?;
        let ids: Vec<(i64,)> = self
            .read(async |c| {
                Ok(c.query(SERVERS_WITH_OLD_SAMPLES)
                    .bind(before)
                    .fetch_all()
                    .await?)
            })
            .await?;
        let mut total = dropped;
        for (id,) in ids {
            loop {
                let n = self
                    .write(async |c| {
                        Ok(c.query(SAMPLES_DELETE)
                            .bind(id)
                            .bind(before)
                            .bind(chunk)
                            .execute()
                            .await?)
                    })
                    .await?;
                total += n;
                if n < chunk as u64 {
                    break;
                }
            }
        }
        Ok(total)
    }
}
