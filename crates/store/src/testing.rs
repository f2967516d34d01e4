//! Store operations only the test suites and the bench need: issuing a
//! batch of chosen servers, taking work without a batch, setting one
//! pair's status or a monitor's configuration directly. The service does
//! these through [`Store::take_work_batch`], [`Store::apply_selector_changes`]
//! and [`Store::request_traceroutes`]; none of them is part of the store's
//! API (`API.md`). One definition serves the tests of `store`, `server`
//! and `poolwatch` and the bench:
//! `use store::testing::StoreTesting as _;`.

use crate::bulk::{self, Due};
use crate::registry::{ServerRead, with_zones};
use crate::work::{batch_json, due_work};
use crate::{
    MonitorStatus, ServerRow, Store, StoreError, WorkIntervals, WorkItem, is_fk_violation, sql,
    touched,
};
use std::collections::HashMap;
use std::future::Future;

/// See the module docs. Futures are `Send` so tests can spawn them.
pub trait StoreTesting {
    /// Up to `limit` servers due for this monitor, longest-waiting first,
    /// marked queued now, without a batch. Concurrent callers never get
    /// the same server: SQLite serialises writers, PostgreSQL skips locked
    /// rows. Empty for `limit` ≤ 0.
    fn take_work(
        &self,
        monitor_id: i64,
        intervals: WorkIntervals,
        limit: i64,
        now: i64,
    ) -> impl Future<Output = Result<Vec<WorkItem>, StoreError>> + Send;

    /// Remembers that these servers were issued to the monitor; returns
    /// the batch's sequence number (global, strictly increasing).
    /// `NotFound` for an unknown monitor, `Invalid` for an unknown server.
    fn create_batch(
        &self,
        monitor_id: i64,
        server_ids: &[i64],
        now: i64,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    fn server_by_id(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<ServerRow>, StoreError>> + Send;

    /// Sets or clears the monitor's configuration (JSON text); `Invalid`
    /// if not JSON, `NotFound` for an unknown name.
    fn set_monitor_config(
        &self,
        name: &str,
        config: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sets one monitor's per-server status, whatever it was.
    fn set_server_score_status(
        &self,
        server_id: i64,
        monitor_id: i64,
        status: MonitorStatus,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sets a server's aggregate score directly, as if scored (the in-DNS
    /// rule reads it), so a test can put servers in DNS without monitors.
    fn set_server_score(
        &self,
        server_id: i64,
        score: f64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores samples of checks by one monitor directly, one transaction,
    /// without results or scoring (`(server_id, ts, packed samples)`, see
    /// [`crate::encode_samples`]): the replay bench's generator.
    fn insert_samples(
        &self,
        monitor_id: i64,
        rows: &[(i64, i64, Vec<u8>)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores score log rows as they are (their ids, no scoring), one
    /// transaction: the export tests' known rows. `monitor_id` per row
    /// (None: the aggregate); each row's `server_ip` and `monitor_name`
    /// are not stored, they come from `server_id` and the monitor.
    fn insert_log_rows(
        &self,
        rows: &[(Option<i64>, crate::ExportLogRow)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// [`Store::request_traceroutes`] for one request: `false` when skipped.
    fn request_traceroute(
        &self,
        server_id: i64,
        monitor_id: i64,
        reason: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Submits `(monitor_id, batch_seq, results, now)` as ONE group on
    /// PostgreSQL (one transaction, as concurrent submissions may be
    /// grouped, see `group_commit.rs`), each alone on SQLite; the outcome
    /// of each, in order. Makes the grouping a test can rely on.
    fn submit_group(
        &self,
        jobs: Vec<(i64, i64, Vec<crate::ResultIn>, i64)>,
    ) -> impl Future<Output = Vec<Result<crate::SubmitOutcome, StoreError>>> + Send;
}

impl StoreTesting for Store {
    async fn take_work(
        &self,
        monitor_id: i64,
        intervals: WorkIntervals,
        limit: i64,
        now: i64,
    ) -> Result<Vec<WorkItem>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let rows = self
            .write(async |c| due_work(c, monitor_id, intervals, limit, now).await)
            .await?;
        rows.into_iter().map(Due::item).collect()
    }

    async fn create_batch(
        &self,
        monitor_id: i64,
        server_ids: &[i64],
        now: i64,
    ) -> Result<i64, StoreError> {
        self.write(async |c| {
            let found: HashMap<i64, String> = bulk::server_ips(c, server_ids)
                .await?
                .into_iter()
                .map(|d| (d.server_id, d.ip))
                .collect();
            let mut rows = Vec::with_capacity(server_ids.len());
            for id in server_ids {
                match found.get(id) {
                    Some(ip) => rows.push((*id, ip.as_str())),
                    None => return Err(StoreError::Invalid(format!("unknown server id {id}"))),
                }
            }
            let (seq,): (i64,) = c
                .query(sql::BATCH_INSERT)
                .bind(monitor_id)
                .bind(now)
                .bind(batch_json(rows.iter().copied()))
                .fetch_one()
                .await
                .map_err(|e| {
                    if is_fk_violation(&e) {
                        StoreError::NotFound(format!("monitor id {monitor_id}"))
                    } else {
                        StoreError::from(e)
                    }
                })?;
            Ok(seq)
        })
        .await
    }

    async fn server_by_id(&self, id: i64) -> Result<Option<ServerRow>, StoreError> {
        self.read(async |c| {
            let row: Option<ServerRead> =
                c.query(sql::SERVER_BY_ID).bind(id).fetch_optional().await?;
            with_zones(c, row).await
        })
        .await
    }

    async fn set_monitor_config(&self, name: &str, config: Option<&str>) -> Result<(), StoreError> {
        if let Some(cfg) = config {
            serde_json::from_str::<serde_json::Value>(cfg)
                .map_err(|e| StoreError::Invalid(format!("monitor config is not JSON: {e}")))?;
        }
        self.write(async |c| {
            let n = c
                .query(sql::MONITOR_SET_CONFIG)
                .bind(name)
                .bind(config)
                .execute()
                .await?;
            touched(n, || format!("monitor {name:?}"))
        })
        .await
    }

    async fn insert_samples(
        &self,
        monitor_id: i64,
        rows: &[(i64, i64, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let rows: Vec<crate::samples::SampleWrite> = rows
            .iter()
            .map(|(server_id, ts, data)| crate::samples::SampleWrite {
                server_id: *server_id,
                ts: *ts,
                data: data.clone(),
            })
            .collect();
        self.write(async |c| Ok(crate::samples::insert(c, monitor_id, &rows).await?))
            .await
    }

    async fn insert_log_rows(
        &self,
        rows: &[(Option<i64>, crate::ExportLogRow)],
    ) -> Result<(), StoreError> {
        const INSERT: &str = "INSERT INTO log_scores (id, server_id, monitor_id, ts, step, score, \
             \"offset\", rtt, stratum, leap, refid, error, no_response) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
        self.write(async |c| {
            for (monitor_id, r) in rows {
                c.query(INSERT)
                    .bind(r.id)
                    .bind(r.server_id)
                    .bind(*monitor_id)
                    .bind(r.ts)
                    .bind(r.step)
                    .bind(r.score)
                    .bind(r.offset)
                    .bind(r.rtt_us)
                    .bind(r.stratum)
                    .bind(r.leap)
                    .bind(r.refid.clone())
                    .bind(r.error.clone())
                    .bind(r.no_response)
                    .execute()
                    .await?;
            }
            Ok(())
        })
        .await
    }

    async fn submit_group(
        &self,
        jobs: Vec<(i64, i64, Vec<crate::ResultIn>, i64)>,
    ) -> Vec<Result<crate::SubmitOutcome, StoreError>> {
        let mut built = Vec::new();
        for (monitor_id, seq, results, now) in jobs {
            built.push(crate::submit::Job::new(monitor_id, seq, &results, &[], now).unwrap());
        }
        match &self.inner {
            crate::Backend::Postgres(pool) => crate::group_commit::run(self, pool, &built).await,
            crate::Backend::Sqlite { .. } => {
                let mut out = Vec::new();
                for job in &built {
                    out.push(
                        self.write(async |c| crate::submit::single(c, job).await)
                            .await,
                    );
                }
                out
            }
        }
    }

    async fn set_server_score_status(
        &self,
        server_id: i64,
        monitor_id: i64,
        status: MonitorStatus,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let n = c
                .query(sql::SERVER_SCORE_SET_STATUS)
                .bind(server_id)
                .bind(monitor_id)
                .bind(status.as_str())
                .execute()
                .await?;
            touched(n, || {
                format!("server id {server_id} / monitor id {monitor_id}")
            })
        })
        .await
    }

    async fn set_server_score(&self, server_id: i64, score: f64) -> Result<(), StoreError> {
        self.write(async |c| {
            let n = c
                .query("UPDATE servers SET score = $2 WHERE id = $1")
                .bind(server_id)
                .bind(score)
                .execute()
                .await?;
            touched(n, || format!("server id {server_id}"))
        })
        .await
    }

    async fn request_traceroute(
        &self,
        server_id: i64,
        monitor_id: i64,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .request_traceroutes(&[(server_id, monitor_id, reason.to_string())], now)
            .await?;
        Ok(n > 0)
    }
}
