//! Automatic traceroutes: requests the service makes of a monitor when its
//! view of a server changes (handed out with the monitor's next work call)
//! and the traceroutes monitors send back, kept with the server's history.
//!
//! A request row lives per (server, monitor) pair and is never deleted
//! while the server exists: its `requested_at` is the pair's rate limit
//! (one request per [`TRACEROUTE_REQUEST_INTERVAL_S`]). `taken_at` is NULL
//! until a work call hands it out, then the time it was handed out; once
//! answered it holds minus the answer time, so it is neither handed out nor
//! answerable again.

use crate::conn::Sql;
use crate::{Store, StoreError, parse_ip};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// At most one traceroute request per (server, monitor) pair this often.
pub const TRACEROUTE_REQUEST_INTERVAL_S: i64 = 20 * 60;
/// A request handed out but not answered within this is handed out again.
pub const TRACEROUTE_RETAKE_S: i64 = 10 * 60;
/// Requests not handed out within this are stale and no longer handed out.
pub const TRACEROUTE_STALE_S: i64 = 60 * 60;
/// At most this many requests pending per monitor (asked within the last
/// [`TRACEROUTE_STALE_S`] and not answered): a monitor that loses its own
/// network sees every server change at once, and a handful of traceroutes
/// show that as well as a thousand would.
pub const TRACEROUTE_MAX_PENDING: i64 = 16;

/// One hop of a traceroute. `ip` is `None` when no probe for this TTL was
/// answered; `rtt_ms` holds the answered probes' round trips, `sent` how
/// many probes went out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracerouteHop {
    pub ttl: u8,
    pub ip: Option<IpAddr>,
    #[serde(default)]
    pub rtt_ms: Vec<f64>,
    #[serde(default)]
    pub sent: u32,
}

/// A traceroute as a monitor sends it back.
#[derive(Debug, Clone, PartialEq)]
pub struct TracerouteIn {
    /// When it was run (unix seconds, the agent's clock).
    pub ts: i64,
    /// `mtr`, `traceroute`, or what the agent used.
    pub tool: String,
    pub hops: Vec<TracerouteHop>,
    /// Why it failed (no tool installed, the tool's error), if it did.
    pub error: Option<String>,
}

/// A stored traceroute with its monitor's name.
#[derive(Debug, Clone, PartialEq)]
pub struct TracerouteRow {
    pub id: i64,
    pub server_id: i64,
    pub monitor_id: i64,
    pub monitor_name: String,
    pub ts: i64,
    /// Why it was requested ("monitor X: healthy → i/o timeout").
    pub reason: String,
    pub tool: String,
    pub hops: Vec<TracerouteHop>,
    pub error: Option<String>,
}

/// Insert, or renew a request last made at or before `$5` (the rate limit),
/// unless the monitor has `$7` other requests pending since `$6`.
const REQUEST_UPSERT: &str = "INSERT INTO traceroute_requests \
     (server_id, monitor_id, requested_at, reason, taken_at) SELECT $1, $2, $3, $4, NULL \
     WHERE (SELECT COUNT(*) FROM traceroute_requests p WHERE p.monitor_id = $2 \
       AND p.server_id <> $1 AND p.requested_at > $6 \
       AND (p.taken_at IS NULL OR p.taken_at >= 0)) < $7 \
     ON CONFLICT (server_id, monitor_id) DO UPDATE SET requested_at = excluded.requested_at, \
     reason = excluded.reason, taken_at = NULL \
     WHERE traceroute_requests.requested_at <= $5";

/// Pending requests of a monitor, oldest first. The PostgreSQL form locks
/// the rows it hands out, so two concurrent work calls of one monitor never
/// get the same request (SQLite has a single writer anyway).
const TAKE_PEEK: &str = "SELECT r.server_id, s.ip, r.reason FROM traceroute_requests r \
     JOIN servers s ON s.id = r.server_id WHERE r.monitor_id = $1 AND r.requested_at > $2 \
     AND (r.taken_at IS NULL OR (r.taken_at >= 0 AND r.taken_at <= $3)) \
     AND (s.deletion_on IS NULL OR s.deletion_on > $4) \
     ORDER BY r.requested_at, r.server_id LIMIT $5";
const TAKE: Sql = Sql {
    sqlite: TAKE_PEEK,
    pg: concat!(
        "SELECT r.server_id, s.ip, r.reason FROM traceroute_requests r \
         JOIN servers s ON s.id = r.server_id WHERE r.monitor_id = $1 AND r.requested_at > $2 \
         AND (r.taken_at IS NULL OR (r.taken_at >= 0 AND r.taken_at <= $3)) \
         AND (s.deletion_on IS NULL OR s.deletion_on > $4) \
         ORDER BY r.requested_at, r.server_id LIMIT $5",
        " FOR UPDATE OF r SKIP LOCKED"
    ),
};

const MARK_TAKEN: &str =
    "UPDATE traceroute_requests SET taken_at = $3 WHERE server_id = $1 AND monitor_id = $2";

const SERVER_ID_BY_IP: &str = "SELECT id FROM servers WHERE ip = $1";

const OPEN_REQUEST: &str = "SELECT reason FROM traceroute_requests \
     WHERE server_id = $1 AND monitor_id = $2 AND (taken_at IS NULL OR taken_at >= 0)";

const INSERT: &str = "INSERT INTO traceroutes (server_id, monitor_id, ts, reason, tool, hops, error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

const LAST_ID: &str = "SELECT MAX(id) FROM traceroutes WHERE server_id = $1 AND monitor_id = $2";

const LATEST: &str = "SELECT t.id, t.monitor_id, m.name AS monitor_name, t.ts, t.reason, t.tool, t.hops, t.error \
     FROM traceroutes t JOIN monitors m ON m.id = t.monitor_id \
     WHERE t.server_id = $1 AND t.id = (SELECT MAX(t2.id) FROM traceroutes t2 \
       WHERE t2.server_id = t.server_id AND t2.monitor_id = t.monitor_id) \
     ORDER BY t.ts DESC, t.id DESC";

const GOOD_MONITOR: &str = "SELECT ss.monitor_id FROM server_scores ss \
     JOIN monitors m ON m.id = ss.monitor_id \
     WHERE ss.server_id = $1 AND ss.monitor_id <> $2 AND m.status IN ('active', 'testing') \
     AND ss.status <> 'paused' AND ss.score >= $3 \
     ORDER BY ss.score DESC, ss.monitor_id LIMIT 1";

/// A pending request with its server's address.
#[derive(sqlx::FromRow)]
struct Request {
    server_id: i64,
    ip: String,
    reason: String,
}

/// A stored traceroute; `hops` is JSON.
#[derive(sqlx::FromRow)]
struct LatestRead {
    id: i64,
    monitor_id: i64,
    monitor_name: String,
    ts: i64,
    reason: String,
    tool: String,
    hops: String,
    error: Option<String>,
}

impl Store {
    /// [`Store::request_traceroute`] for several `(server, monitor, reason)`
    /// requests in one transaction; how many were made. `NotFound` (nothing
    /// stored) if any names an unknown server or monitor.
    pub async fn request_traceroutes(
        &self,
        requests: &[(i64, i64, String)],
        now: i64,
    ) -> Result<usize, StoreError> {
        if requests.is_empty() {
            return Ok(0);
        }
        self.write(async |c| {
            let mut made = 0;
            for (server_id, monitor_id, reason) in requests {
                let r = c
                    .query(REQUEST_UPSERT)
                    .bind(server_id)
                    .bind(monitor_id)
                    .bind(now)
                    .bind(reason)
                    .bind(now - TRACEROUTE_REQUEST_INTERVAL_S)
                    .bind(now - TRACEROUTE_STALE_S)
                    .bind(TRACEROUTE_MAX_PENDING)
                    .execute()
                    .await;
                match r {
                    Ok(n) => made += n as usize,
                    Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                        return Err(StoreError::NotFound(format!(
                            "server {server_id} or monitor {monitor_id}"
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(made)
        })
        .await
    }

    /// Hand out up to `limit` pending traceroute requests of `monitor_id`,
    /// oldest first, as (server id, address, reason), and mark them taken.
    /// Pending: requested within the last hour, not answered, and not
    /// handed out yet or handed out more than 10 minutes ago.
    pub async fn take_traceroute_requests(
        &self,
        monitor_id: i64,
        now: i64,
        limit: i64,
    ) -> Result<Vec<(i64, IpAddr, String)>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        // Nearly every work call has nothing to take: find that out on a
        // reader, so the common case never queues for the write lock.
        let any: Vec<Request> = self
            .read(async |c| {
                Ok(c.query(TAKE_PEEK)
                    .bind(monitor_id)
                    .bind(now - TRACEROUTE_STALE_S)
                    .bind(now - TRACEROUTE_RETAKE_S)
                    .bind(now)
                    .bind(1i64)
                    .fetch_all()
                    .await?)
            })
            .await?;
        if any.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Request> = self
            .write(async |c| {
                let rows: Vec<Request> = c
                    .query(TAKE)
                    .bind(monitor_id)
                    .bind(now - TRACEROUTE_STALE_S)
                    .bind(now - TRACEROUTE_RETAKE_S)
                    .bind(now)
                    .bind(limit)
                    .fetch_all()
                    .await?;
                for r in &rows {
                    c.query(MARK_TAKEN)
                        .bind(r.server_id)
                        .bind(monitor_id)
                        .bind(now)
                        .execute()
                        .await?;
                }
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|r| Ok((r.server_id, parse_ip(&r.ip)?, r.reason)))
            .collect()
    }

    /// Store the traceroute `monitor_id` ran to `ip` and close its request.
    /// `NotFound`: no server has that address; `Conflict`: this monitor has
    /// no open request for it (never asked, or already answered). Returns
    /// the new row's id.
    pub async fn store_traceroute(
        &self,
        monitor_id: i64,
        ip: IpAddr,
        t: &TracerouteIn,
        now: i64,
    ) -> Result<i64, StoreError> {
        let ip_text = ip.to_canonical().to_string();
        let hops = serde_json::to_string(&t.hops)
            .map_err(|e| StoreError::Invalid(format!("hops: {e}")))?;
        let error = t.error.as_deref().filter(|e| !e.is_empty());
        self.write(async |c| {
            let server: Option<(i64,)> = c
                .query(SERVER_ID_BY_IP)
                .bind(&ip_text)
                .fetch_optional()
                .await?;
            let Some((server_id,)) = server else {
                return Err(StoreError::NotFound(format!("server {ip_text}")));
            };
            let open: Option<(String,)> = c
                .query(OPEN_REQUEST)
                .bind(server_id)
                .bind(monitor_id)
                .fetch_optional()
                .await?;
            let Some((reason,)) = open else {
                return Err(StoreError::Conflict(format!(
                    "no open traceroute request for {ip_text} from this monitor"
                )));
            };
            c.query(INSERT)
                .bind(server_id)
                .bind(monitor_id)
                .bind(t.ts)
                .bind(&reason)
                .bind(&t.tool)
                .bind(&hops)
                .bind(error)
                .execute()
                .await?;
            c.query(MARK_TAKEN)
                .bind(server_id)
                .bind(monitor_id)
                .bind(-now.max(1))
                .execute()
                .await?;
            let (id,): (Option<i64>,) = c
                .query(LAST_ID)
                .bind(server_id)
                .bind(monitor_id)
                .fetch_one()
                .await?;
            id.ok_or_else(|| StoreError::Corrupt("traceroute row vanished".into()))
        })
        .await
    }

    /// The newest traceroute of each monitor for `server_id`, newest first.
    pub async fn latest_traceroutes(
        &self,
        server_id: i64,
    ) -> Result<Vec<TracerouteRow>, StoreError> {
        let rows: Vec<LatestRead> = self
            .read(async |c| Ok(c.query(LATEST).bind(server_id).fetch_all().await?))
            .await?;
        rows.into_iter()
            .map(|t| {
                let hops = serde_json::from_str(&t.hops)
                    .map_err(|e| StoreError::Corrupt(format!("traceroute {}: hops: {e}", t.id)))?;
                Ok(TracerouteRow {
                    id: t.id,
                    server_id,
                    monitor_id: t.monitor_id,
                    monitor_name: t.monitor_name,
                    ts: t.ts,
                    reason: t.reason,
                    tool: t.tool,
                    hops,
                    error: t.error,
                })
            })
            .collect()
    }

    /// A monitor (globally active or testing, not paused for this server)
    /// other than `except_monitor` that sees `server_id` well: its score
    /// for the server is at least 10. The best score first.
    pub async fn good_monitor_for(
        &self,
        server_id: i64,
        except_monitor: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = self
            .read(async |c| {
                Ok(c.query(GOOD_MONITOR)
                    .bind(server_id)
                    .bind(except_monitor)
                    .bind(scoring::IN_DNS_THRESHOLD)
                    .fetch_optional()
                    .await?)
            })
            .await?;
        Ok(row.map(|(id,)| id))
    }
}
