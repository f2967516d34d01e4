//! Live checks: before an operator's address becomes a server, up to
//! [`LIVE_CHECK_MONITORS`] monitors are asked to check it once, at their
//! next work call (the service itself sends no NTP packet).
//!
//! A check is a `live_checks` row and one `live_check_results` row per
//! monitor asked. `handed_out` is NULL until a work call takes the request
//! (it is handed out once); the answer fields stay NULL until that monitor
//! reports, and are written once. A check is answerable and handed out
//! until `expires`; [`Store::prune_live_checks`] deletes it a day later.

use crate::conn::Sql;
use crate::{Store, StoreError, parse_ip};
use std::net::IpAddr;

/// Monitors asked per live check.
pub const LIVE_CHECK_MONITORS: i64 = 3;
/// A check is handed out and answered within this.
pub const LIVE_CHECK_TTL_S: i64 = 15 * 60;
/// Only monitors that called within this are asked: one that has not will
/// probably not take the request before the check expires.
pub const LIVE_CHECK_SEEN_S: i64 = 10 * 60;
/// Expired checks stay readable (the page shows them) this long.
pub const LIVE_CHECK_KEEP_S: i64 = 86_400;

/// A monitor's answer to a live check: a check result without its ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCheckAnswer {
    pub ts: i64,
    /// Seconds.
    pub offset: Option<f64>,
    /// Seconds (stored as microseconds).
    pub rtt: Option<f64>,
    pub stratum: Option<u8>,
    pub leap: Option<u8>,
    pub refid: Option<String>,
    pub error: Option<String>,
    pub no_response: bool,
}

/// One monitor's part of a live check: asked, handed out, answered.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCheckMonitor {
    pub monitor_id: i64,
    pub monitor_name: String,
    pub handed_out: Option<i64>,
    /// `None` until the monitor answers.
    pub answer: Option<LiveCheckAnswer>,
}

/// A live check with every monitor asked, in monitor id order.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveCheckRow {
    pub id: i64,
    pub account_id: i64,
    pub ip: IpAddr,
    pub created_on: i64,
    pub expires: i64,
    pub monitors: Vec<LiveCheckMonitor>,
}

impl LiveCheckRow {
    /// Every monitor asked has answered, or the check expired.
    pub fn finished(&self, now: i64) -> bool {
        now >= self.expires || self.monitors.iter().all(|m| m.answer.is_some())
    }

    /// Some monitor got a usable answer: stratum 1–15, as the pool asks.
    pub fn usable(&self) -> bool {
        self.monitors.iter().any(|m| {
            m.answer
                .as_ref()
                .and_then(|a| a.stratum)
                .is_some_and(|s| (1..=15).contains(&s))
        })
    }
}

/// Monitors to ask: globally active, of the address's IP version, seen
/// since `$2`; the most recently seen first.
const PICK_MONITORS: &str = "SELECT id FROM monitors WHERE status = 'active' \
     AND ip_version = $1 AND last_seen >= $2 ORDER BY last_seen DESC, id LIMIT $3";

const INSERT_CHECK: &str = "INSERT INTO live_checks (account_id, ip, created_on, expires) \
     VALUES ($1, $2, $3, $4) RETURNING id";

const INSERT_PENDING: &str =
    "INSERT INTO live_check_results (check_id, monitor_id) VALUES ($1, $2)";

/// Requests of a monitor not handed out yet, of checks not expired. The
/// PostgreSQL form locks what it hands out, so two concurrent work calls
/// of one monitor never both get a request.
const PENDING_PEEK: &str = "SELECT r.check_id, c.ip FROM live_check_results r \
     JOIN live_checks c ON c.id = r.check_id \
     WHERE r.monitor_id = $1 AND r.handed_out IS NULL AND c.expires > $2 \
     ORDER BY r.check_id LIMIT $3";
const PENDING: Sql = Sql {
    sqlite: PENDING_PEEK,
    pg: concat!(
        "SELECT r.check_id, c.ip FROM live_check_results r \
         JOIN live_checks c ON c.id = r.check_id \
         WHERE r.monitor_id = $1 AND r.handed_out IS NULL AND c.expires > $2 \
         ORDER BY r.check_id LIMIT $3",
        " FOR UPDATE OF r SKIP LOCKED"
    ),
};

const MARK_HANDED_OUT: &str =
    "UPDATE live_check_results SET handed_out = $3 WHERE check_id = $1 AND monitor_id = $2";

const ASSIGNMENT: &str = "SELECT c.ip, c.expires, r.handed_out, r.ts FROM live_check_results r \
     JOIN live_checks c ON c.id = r.check_id WHERE r.check_id = $1 AND r.monitor_id = $2";

/// `ts IS NULL` again: the answer is written once even if two reports race.
const ANSWER: &str = "UPDATE live_check_results SET ts = $3, \"offset\" = $4, rtt = $5, \
     stratum = $6, leap = $7, refid = $8, error = $9, no_response = $10 \
     WHERE check_id = $1 AND monitor_id = $2 AND ts IS NULL";

const GET_CHECK: &str =
    "SELECT id, account_id, ip, created_on, expires FROM live_checks WHERE id = $1";

const GET_RESULTS: &str = "SELECT r.monitor_id, m.name AS monitor_name, r.handed_out, r.ts, \
     r.\"offset\", r.rtt, r.stratum, r.leap, r.refid, r.error, r.no_response \
     FROM live_check_results r JOIN monitors m ON m.id = r.monitor_id \
     WHERE r.check_id = $1 ORDER BY r.monitor_id";

const PRUNE_RESULTS: &str = "DELETE FROM live_check_results WHERE check_id IN \
     (SELECT id FROM live_checks WHERE expires < $1)";
const PRUNE: &str = "DELETE FROM live_checks WHERE expires < $1";

#[derive(sqlx::FromRow)]
struct Pending {
    check_id: i64,
    ip: String,
}

#[derive(sqlx::FromRow)]
struct Assignment {
    ip: String,
    expires: i64,
    handed_out: Option<i64>,
    ts: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct CheckRead {
    id: i64,
    account_id: i64,
    ip: String,
    created_on: i64,
    expires: i64,
}

#[derive(sqlx::FromRow)]
struct ResultRead {
    monitor_id: i64,
    monitor_name: String,
    handed_out: Option<i64>,
    ts: Option<i64>,
    offset: Option<f64>,
    rtt: Option<i64>,
    stratum: Option<i64>,
    leap: Option<i64>,
    refid: Option<String>,
    error: Option<String>,
    no_response: Option<bool>,
}

impl ResultRead {
    fn into_monitor(self) -> LiveCheckMonitor {
        let answer = self.ts.map(|ts| LiveCheckAnswer {
            ts,
            offset: self.offset,
            rtt: self.rtt.map(|us| us as f64 / 1e6),
            // Written from u8 values; anything else reads as absent.
            stratum: self.stratum.and_then(|s| u8::try_from(s).ok()),
            leap: self.leap.and_then(|l| u8::try_from(l).ok()),
            refid: self.refid,
            error: self.error,
            no_response: self.no_response.unwrap_or(false),
        });
        LiveCheckMonitor {
            monitor_id: self.monitor_id,
            monitor_name: self.monitor_name,
            handed_out: self.handed_out,
            answer,
        }
    }
}

impl Store {
    /// Make a live check of `ip` for `account_id`, asking up to three
    /// monitors (see [`PICK_MONITORS`]); returns it. `Conflict` with
    /// nothing stored when no monitor can be asked; `NotFound` for an
    /// unknown account.
    pub async fn create_live_check(
        &self,
        account_id: i64,
        ip: IpAddr,
        now: i64,
    ) -> Result<LiveCheckRow, StoreError> {
        let ip = ip.to_canonical();
        let version: i64 = if ip.is_ipv4() { 4 } else { 6 };
        let id = self
            .write(async |c| {
                let monitors: Vec<(i64,)> = c
                    .query(PICK_MONITORS)
                    .bind(version)
                    .bind(now - LIVE_CHECK_SEEN_S)
                    .bind(LIVE_CHECK_MONITORS)
                    .fetch_all()
                    .await?;
                if monitors.is_empty() {
                    return Err(StoreError::Conflict(format!(
                        "no active IPv{version} monitor has called in the last {} minutes to check it",
                        LIVE_CHECK_SEEN_S / 60
                    )));
                }
                let inserted: Result<(i64,), sqlx::Error> = c
                    .query(INSERT_CHECK)
                    .bind(account_id)
                    .bind(ip.to_string())
                    .bind(now)
                    .bind(now + LIVE_CHECK_TTL_S)
                    .fetch_one()
                    .await;
                let (id,) = match inserted {
                    Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                        return Err(StoreError::NotFound(format!("account {account_id}")));
                    }
                    r => r?,
                };
                for (m,) in monitors {
                    c.query(INSERT_PENDING).bind(id).bind(m).execute().await?;
                }
                Ok(id)
            })
            .await?;
        self.live_check(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("live check {id} vanished")))
    }

    /// Hand out up to `limit` pending live checks of `monitor_id` (not
    /// expired, not handed out before), oldest first, as (check id,
    /// address), and mark them handed out.
    pub async fn take_live_checks(
        &self,
        monitor_id: i64,
        now: i64,
        limit: i64,
    ) -> Result<Vec<(i64, IpAddr)>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        // Nearly every work call has none: find that out on a reader, so
        // the common case never queues for the write lock.
        let any: Vec<Pending> = self
            .read(async |c| {
                Ok(c.query(PENDING_PEEK)
                    .bind(monitor_id)
                    .bind(now)
                    .bind(1i64)
                    .fetch_all()
                    .await?)
            })
            .await?;
        if any.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Pending> = self
            .write(async |c| {
                let rows: Vec<Pending> = c
                    .query(PENDING)
                    .bind(monitor_id)
                    .bind(now)
                    .bind(limit)
                    .fetch_all()
                    .await?;
                for r in &rows {
                    c.query(MARK_HANDED_OUT)
                        .bind(r.check_id)
                        .bind(monitor_id)
                        .bind(now)
                        .execute()
                        .await?;
                }
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|r| Ok((r.check_id, parse_ip(&r.ip)?)))
            .collect()
    }

    /// Store `monitor_id`'s answer to live check `check_id` of `ip`.
    /// Refused with nothing changed: `NotFound` when the check was not
    /// asked of this monitor, `Invalid` when `ip` is not the check's
    /// address, `Conflict` when it was not handed out, has expired or was
    /// answered already.
    pub async fn record_live_check(
        &self,
        monitor_id: i64,
        check_id: i64,
        ip: IpAddr,
        a: &LiveCheckAnswer,
        now: i64,
    ) -> Result<(), StoreError> {
        let ip = ip.to_canonical();
        self.write(async |c| {
            let row: Option<Assignment> = c
                .query(ASSIGNMENT)
                .bind(check_id)
                .bind(monitor_id)
                .fetch_optional()
                .await?;
            let Some(row) = row else {
                return Err(StoreError::NotFound(format!(
                    "live check {check_id} was not asked of this monitor"
                )));
            };
            if parse_ip(&row.ip)? != ip {
                return Err(StoreError::Invalid(format!(
                    "ip: live check {check_id} is of {}, not {ip}",
                    row.ip
                )));
            }
            if row.ts.is_some() {
                return Err(StoreError::Conflict(format!(
                    "live check {check_id}: answered already"
                )));
            }
            if row.handed_out.is_none() {
                return Err(StoreError::Conflict(format!(
                    "live check {check_id}: not handed out to this monitor yet"
                )));
            }
            if now >= row.expires {
                return Err(StoreError::Conflict(format!(
                    "live check {check_id}: expired"
                )));
            }
            let n = c
                .query(ANSWER)
                .bind(check_id)
                .bind(monitor_id)
                .bind(a.ts)
                .bind(a.offset)
                .bind(a.rtt.map(|s| (s * 1e6).round() as i64))
                .bind(a.stratum.map(i64::from))
                .bind(a.leap.map(i64::from))
                .bind(a.refid.as_deref().filter(|s| !s.is_empty()))
                .bind(a.error.as_deref().filter(|s| !s.is_empty()))
                .bind(a.no_response)
                .execute()
                .await?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "live check {check_id}: answered already"
                )));
            }
            Ok(())
        })
        .await
    }

    /// A live check with every monitor's part; `None` if there is none
    /// (never made, or pruned).
    pub async fn live_check(&self, id: i64) -> Result<Option<LiveCheckRow>, StoreError> {
        let (check, results) = self
            .read(async |c| {
                let check: Option<CheckRead> = c.query(GET_CHECK).bind(id).fetch_optional().await?;
                let results: Vec<ResultRead> = match check {
                    Some(_) => c.query(GET_RESULTS).bind(id).fetch_all().await?,
                    None => Vec::new(),
                };
                Ok((check, results))
            })
            .await?;
        let Some(check) = check else {
            return Ok(None);
        };
        Ok(Some(LiveCheckRow {
            id: check.id,
            account_id: check.account_id,
            ip: parse_ip(&check.ip)?,
            created_on: check.created_on,
            expires: check.expires,
            monitors: results.into_iter().map(ResultRead::into_monitor).collect(),
        }))
    }

    /// Housekeeping: delete checks expired more than a day ago; how many.
    pub async fn prune_live_checks(&self, now: i64) -> Result<u64, StoreError> {
        let cutoff = now - LIVE_CHECK_KEEP_S;
        self.write(async |c| {
            c.query(PRUNE_RESULTS).bind(cutoff).execute().await?;
            Ok(c.query(PRUNE).bind(cutoff).execute().await?)
        })
        .await
    }
}
