//! The zone guard's state: which servers are in DNS (by score, or held by
//! the guard), since when, and the guard's events.
//!
//! [`Store::run_zone_guard`] is one pass: in one write transaction it
//! gathers, per DNS zone, the inputs of [`scoring::zone_guard_rules::guard`] from
//! `servers`, `server_scores` and `server_dns`, decides, and writes
//! `server_dns` for every server and a `guard_events` row per zone whose
//! decision changed. The DNS zone, `/api/v1/servers` and the pages read the
//! result through [`DnsMembership`].

use crate::{ServerRow, Store, StoreError};
use scoring::zone_guard_rules::{GuardDecision, ZoneGuardConfig, ZoneServer, guard};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A monitor "sees a server good now" when its score for the server is at
/// least [`scoring::IN_DNS_THRESHOLD`], its per-server status is active or
/// testing, and its latest result is at most this old.
pub const SEEN_GOOD_WITHIN_S: i64 = 3600;
/// The guard's window: a zone may lose only its allowance within this time.
pub const GUARD_WINDOW_S: i64 = 24 * 3600;
/// An unchanged decision is recorded again after this long.
const EVENT_REPEAT_S: i64 = 24 * 3600;
/// Servers not held, listed by address in an event's detail at most.
const NOT_HELD_LISTED: usize = 50;

/// A server's DNS state as the last guard pass wrote it (`server_dns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ServerDns {
    pub server_id: i64,
    /// In DNS after the last pass (by score, or held).
    pub in_dns: bool,
    /// Kept in DNS by the zone guard despite its score.
    pub held: bool,
    /// When it last entered DNS (or, first seen in DNS, when it was added).
    pub in_since: Option<i64>,
    /// When it last left DNS.
    pub left_at: Option<i64>,
}

/// Whether a server is in DNS now, and why.
///
/// * Admin rules first: netspeed 0 or deletion due within 14 days → out,
///   at once and whatever the guard said.
/// * In by score (`scoring::in_dns`) → in, at once.
/// * Otherwise in only while the last guard pass kept it in DNS
///   (`server_dns.in_dns`): held, or dropped by its score since that pass
///   (the next pass decides). Without a `server_dns` row: the score rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DnsMembership {
    pub in_dns: bool,
    /// The score rule alone would put it in DNS.
    pub by_score: bool,
    /// In DNS only because the zone guard holds it.
    pub held: bool,
}

impl DnsMembership {
    pub fn of(
        score: f64,
        netspeed: i64,
        deletion_on: Option<i64>,
        stored: Option<&ServerDns>,
        now: i64,
    ) -> DnsMembership {
        let by_score = scoring::in_dns(score, netspeed, deletion_on, now);
        let eligible = scoring::in_dns(scoring::MAX_SCORE, netspeed, deletion_on, now);
        let kept = eligible && stored.is_some_and(|d| d.in_dns);
        let in_dns = by_score || kept;
        DnsMembership {
            in_dns,
            by_score,
            held: in_dns && !by_score && stored.is_some_and(|d| d.held),
        }
    }

    /// A disabled account's server counts as netspeed 0: out of DNS.
    pub fn for_server(s: &ServerRow, stored: Option<&ServerDns>, now: i64) -> DnsMembership {
        let netspeed = if s.account_disabled { 0 } else { s.netspeed };
        Self::of(s.score, netspeed, s.deletion_on, stored, now)
    }
}

/// What one monitor saw of a held server when the event was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorSaw {
    pub name: String,
    /// Per-server status (candidate, testing, active, paused).
    pub status: String,
    pub score: f64,
    pub score_ts: Option<i64>,
    /// Error code of its latest result (`None`/empty: answered).
    pub error: Option<String>,
    /// Counted as seeing the server good now.
    pub good: bool,
}

/// A server the guard held, with what each monitor saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldServer {
    pub server_id: i64,
    pub ip: String,
    pub score: f64,
    pub last_good_ts: Option<i64>,
    pub monitors: Vec<MonitorSaw>,
}

/// `guard_events.detail` (JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardDetail {
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub held: Vec<HeldServer>,
    /// Addresses of servers lost in the window and not held (none of the
    /// monitors sees them good, or they had left already), at most 50.
    #[serde(default)]
    pub not_held: Vec<String>,
}

/// One recorded guard event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardEventRow {
    pub id: i64,
    pub zone: String,
    pub ts: i64,
    /// Servers held.
    pub held: i64,
    /// Servers lost in the window after holding.
    pub dropped: i64,
    /// The allowed loss.
    pub allowed: i64,
    /// In-DNS servers 24 h before.
    pub baseline: i64,
    pub detail: GuardDetail,
}

/// What one guard pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuardRun {
    /// Server ids held (in DNS despite their score), ascending.
    pub held: Vec<i64>,
    /// Events recorded by this pass.
    pub events: Vec<GuardEventRow>,
    /// Servers that entered / left DNS with this pass.
    pub entered: usize,
    pub left: usize,
}

/// Per zone, for metrics: servers of the zone held now and events so far.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ZoneGuardStat {
    pub zone: String,
    pub held: i64,
    pub events: i64,
}

#[derive(sqlx::FromRow)]
struct ServerRead {
    id: i64,
    ip: String,
    score: f64,
    netspeed: i64,
    deletion_on: Option<i64>,
    created_on: i64,
}

/// A server of a DNS zone.
#[derive(sqlx::FromRow)]
struct MemberRead {
    server_id: i64,
    zone_id: i64,
    zone: String,
}

/// A pair scoring its server in DNS.
#[derive(sqlx::FromRow)]
struct GoodPair {
    server_id: i64,
    score_ts: Option<i64>,
    status: String,
    monitor_status: String,
}

/// What one monitor sees of a held server.
#[derive(sqlx::FromRow)]
struct PairRead {
    name: String,
    status: String,
    score: f64,
    score_ts: Option<i64>,
    last_error: Option<String>,
    monitor_status: String,
}

/// A `guard_events` row with its zone's name; `detail` is JSON.
#[derive(sqlx::FromRow)]
struct EventRead {
    id: i64,
    zone: String,
    ts: i64,
    held: i64,
    dropped: i64,
    allowed: i64,
    baseline: i64,
    detail: String,
}

/// `netspeed` is 0 for a disabled account's servers: the guard never holds
/// them in DNS.
const SERVERS: &str = "SELECT s.id, s.ip, s.score, \
     CASE WHEN a.disabled THEN 0 ELSE s.netspeed END AS netspeed, s.deletion_on, s.created_on \
     FROM servers s LEFT JOIN accounts a ON a.id = s.account_id ORDER BY s.id";
const MEMBERS: &str = "SELECT sz.server_id, z.id AS zone_id, z.name AS zone FROM server_zones sz \
     JOIN zones z ON z.id = sz.zone_id WHERE z.dns ORDER BY z.name, sz.server_id";
const DNS_ALL: &str = "SELECT server_id, in_dns, held, in_since, left_at FROM server_dns";
const DNS_ONE: &str =
    "SELECT server_id, in_dns, held, in_since, left_at FROM server_dns WHERE server_id = $1";
/// Pairs scoring the server in DNS: (server, score_ts, per-server status, monitor status).
/// Candidates are left out (they do not count for the aggregate, and there
/// are hundreds per server in a big pool): `status <> 'candidate'` walks
/// the small partial index `server_scores_counted` instead of every pair.
const GOOD_PAIRS: &str = "SELECT ss.server_id, ss.score_ts, ss.status, m.status AS monitor_status \
     FROM server_scores ss JOIN monitors m ON m.id = ss.monitor_id \
     WHERE ss.status <> 'candidate' AND ss.score >= $1 AND ss.score_ts IS NOT NULL";
const PAIRS_OF: &str = "SELECT m.name, ss.status, ss.score, ss.score_ts, ss.last_error, \
     m.status AS monitor_status \
     FROM server_scores ss JOIN monitors m ON m.id = ss.monitor_id \
     WHERE ss.server_id = $1 AND m.status <> 'deleted' ORDER BY m.name";
const LAST_EVENTS: &str = "SELECT e.id, z.name AS zone, e.ts, e.held, e.dropped, e.allowed, e.baseline, e.detail \
     FROM guard_events e JOIN zones z ON z.id = e.zone_id \
     WHERE e.id IN (SELECT MAX(id) FROM guard_events GROUP BY zone_id)";
const UPSERT_DNS: &str = "INSERT INTO server_dns (server_id, in_dns, held, in_since, left_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (server_id) DO UPDATE SET in_dns = excluded.in_dns, \
     held = excluded.held, in_since = excluded.in_since, left_at = excluded.left_at";
const INSERT_EVENT: &str = "INSERT INTO guard_events \
     (zone_id, ts, held, dropped, allowed, baseline, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const LAST_ID: &str = "SELECT MAX(id) FROM guard_events WHERE zone_id = $1";
const EVENTS_OF: &str = "SELECT e.id, z.name AS zone, e.ts, e.held, e.dropped, e.allowed, e.baseline, e.detail \
     FROM guard_events e JOIN zones z ON z.id = e.zone_id \
     WHERE z.name = $1 ORDER BY e.ts DESC, e.id DESC LIMIT $2";
const STATS: &str = "SELECT z.name AS zone, \
     (SELECT COUNT(*) FROM server_zones sz JOIN server_dns d ON d.server_id = sz.server_id \
      WHERE sz.zone_id = z.id AND d.held) AS held, \
     (SELECT COUNT(*) FROM guard_events e WHERE e.zone_id = z.id) AS events \
     FROM zones z WHERE z.dns AND (EXISTS (SELECT 1 FROM server_zones sz WHERE sz.zone_id = z.id) \
     OR EXISTS (SELECT 1 FROM guard_events e WHERE e.zone_id = z.id)) ORDER BY z.name";

impl EventRead {
    fn row(self) -> GuardEventRow {
        GuardEventRow {
            id: self.id,
            zone: self.zone,
            ts: self.ts,
            held: self.held,
            dropped: self.dropped,
            allowed: self.allowed,
            baseline: self.baseline,
            // A detail that does not parse still shows the counts.
            detail: serde_json::from_str(&self.detail).unwrap_or_default(),
        }
    }
}

/// One server as the pass sees it.
struct Srv {
    id: i64,
    ip: String,
    score: f64,
    created_on: i64,
    by_score: bool,
    eligible: bool,
    stored: Option<ServerDns>,
    last_good_ts: Option<i64>,
    seeing_good: usize,
}

impl Srv {
    /// In DNS before this pass.
    fn was_in(&self) -> bool {
        match &self.stored {
            Some(d) => d.in_dns,
            // Never recorded: the score rule was the DNS rule.
            None => self.by_score,
        }
    }

    /// Whether it was in DNS at `t0` (24 h ago), as far as we know.
    fn in_at(&self, t0: i64) -> bool {
        match &self.stored {
            Some(d) if d.in_dns => d.in_since.is_none_or(|t| t <= t0),
            Some(d) => d.left_at.is_some_and(|l| l > t0) && d.in_since.is_none_or(|t| t <= t0),
            None => self.by_score && self.created_on <= t0,
        }
    }
}

/// Decision for one zone, with what is needed to record it.
struct ZoneDecision {
    zone_id: i64,
    zone: String,
    decision: GuardDecision,
    /// Lost servers not held (ids).
    not_held: Vec<i64>,
}

fn good_monitor(status: &str, monitor_status: &str) -> bool {
    matches!(status, "active" | "testing") && matches!(monitor_status, "active" | "testing")
}

impl Store {
    /// One zone guard pass at `now` (see the module docs): decides per DNS
    /// zone which servers to hold, writes `server_dns` for every server and
    /// records an event per zone whose decision is new (held servers or the
    /// loss changed, or the last event is a day old). `Off` holds nothing
    /// but still keeps `server_dns` up to date.
    pub async fn run_zone_guard(
        &self,
        config: ZoneGuardConfig,
        now: i64,
    ) -> Result<GuardRun, StoreError> {
        self.write(async |c| {
            let servers: Vec<ServerRead> = c.query(SERVERS).fetch_all().await?;
            let members: Vec<MemberRead> = c.query(MEMBERS).fetch_all().await?;
            let stored: Vec<ServerDns> = c.query(DNS_ALL).fetch_all().await?;
            let good: Vec<GoodPair> = c
                .query(GOOD_PAIRS)
                .bind(scoring::IN_DNS_THRESHOLD)
                .fetch_all()
                .await?;
            let last: Vec<EventRead> = c.query(LAST_EVENTS).fetch_all().await?;

            let mut stored: HashMap<i64, ServerDns> =
                stored.into_iter().map(|d| (d.server_id, d)).collect();
            let mut srv: BTreeMap<i64, Srv> = servers
                .into_iter()
                .map(|r| {
                    (
                        r.id,
                        Srv {
                            id: r.id,
                            by_score: scoring::in_dns(r.score, r.netspeed, r.deletion_on, now),
                            eligible: scoring::in_dns(
                                scoring::MAX_SCORE,
                                r.netspeed,
                                r.deletion_on,
                                now,
                            ),
                            stored: stored.remove(&r.id),
                            ip: r.ip,
                            score: r.score,
                            created_on: r.created_on,
                            last_good_ts: None,
                            seeing_good: 0,
                        },
                    )
                })
                .collect();
            for g in good {
                let Some(s) = srv.get_mut(&g.server_id) else {
                    continue;
                };
                s.last_good_ts = s.last_good_ts.max(g.score_ts);
                if good_monitor(&g.status, &g.monitor_status)
                    && g.score_ts.is_some_and(|t| t >= now - SEEN_GOOD_WITHIN_S)
                {
                    s.seeing_good += 1;
                }
            }
            let mut zones: BTreeMap<(String, i64), Vec<i64>> = BTreeMap::new();
            for m in members {
                zones
                    .entry((m.zone, m.zone_id))
                    .or_default()
                    .push(m.server_id);
            }

            // Decide per zone.
            let t0 = now - GUARD_WINDOW_S;
            let mut decisions = Vec::new();
            let mut held_any: BTreeSet<i64> = BTreeSet::new();
            for ((zname, zid), ids) in &zones {
                let mut inputs = Vec::new();
                let mut baseline = 0usize;
                for s in ids.iter().filter_map(|id| srv.get(id)) {
                    if s.in_at(t0) {
                        baseline += 1;
                    }
                    if !s.eligible {
                        // Taken out by the operator: never held, not a loss.
                        continue;
                    }
                    let was_in = s.was_in();
                    let left = s.stored.and_then(|d| d.left_at).filter(|&l| l > t0);
                    if !was_in && left.is_none() {
                        continue;
                    }
                    inputs.push(ZoneServer {
                        server_id: s.id,
                        in_dns_by_score: s.by_score,
                        last_good_ts: s.last_good_ts,
                        monitors_seeing_good_now: s.seeing_good,
                        dropped_at: if was_in { None } else { left },
                    });
                }
                let decision = guard(zname, &inputs, baseline, config, now);
                held_any.extend(decision.held.iter().copied());
                if decision.event.is_some() {
                    let not_held = inputs
                        .iter()
                        .filter(|i| !i.in_dns_by_score && !decision.held.contains(&i.server_id))
                        .map(|i| i.server_id)
                        .collect();
                    decisions.push(ZoneDecision {
                        zone_id: *zid,
                        zone: zname.clone(),
                        decision,
                        not_held,
                    });
                }
            }

            // Apply to server_dns.
            let mut run = GuardRun::default();
            for s in srv.values() {
                let held = !s.by_score && s.eligible && held_any.contains(&s.id);
                let in_dns = s.by_score || held;
                let next = match s.stored {
                    None => ServerDns {
                        server_id: s.id,
                        in_dns,
                        held,
                        in_since: in_dns.then_some(s.created_on.min(now)),
                        left_at: None,
                    },
                    Some(d) => ServerDns {
                        server_id: s.id,
                        in_dns,
                        held,
                        in_since: if in_dns && !d.in_dns {
                            Some(now)
                        } else {
                            d.in_since
                        },
                        left_at: if !in_dns && d.in_dns {
                            Some(now)
                        } else {
                            d.left_at
                        },
                    },
                };
                // A server first seen has no transition: its score rule
                // was the DNS rule until now.
                if let Some(d) = s.stored
                    && d.in_dns != in_dns
                {
                    if in_dns {
                        run.entered += 1;
                    } else {
                        run.left += 1;
                    }
                }
                if s.stored != Some(next) {
                    c.query(UPSERT_DNS)
                        .bind(next.server_id)
                        .bind(next.in_dns)
                        .bind(next.held)
                        .bind(next.in_since)
                        .bind(next.left_at)
                        .execute()
                        .await?;
                }
            }
            run.held = held_any.iter().copied().collect();

            // Record the events that are new.
            let last: HashMap<String, GuardEventRow> = last
                .into_iter()
                .map(EventRead::row)
                .map(|e| (e.zone.clone(), e))
                .collect();
            for zd in decisions {
                let Some(ev) = &zd.decision.event else {
                    continue;
                };
                let same = last.get(&zd.zone).is_some_and(|l| {
                    l.ts > now - EVENT_REPEAT_S
                        && l.dropped == ev.dropped as i64
                        && l.detail
                            .held
                            .iter()
                            .map(|h| h.server_id)
                            .collect::<Vec<_>>()
                            == ev.held
                });
                if same {
                    continue;
                }
                let mut held = Vec::with_capacity(ev.held.len());
                for id in &ev.held {
                    let Some(s) = srv.get(id) else { continue };
                    let pairs: Vec<PairRead> = c.query(PAIRS_OF).bind(*id).fetch_all().await?;
                    held.push(HeldServer {
                        server_id: s.id,
                        ip: s.ip.clone(),
                        score: s.score,
                        last_good_ts: s.last_good_ts,
                        monitors: pairs
                            .into_iter()
                            .map(|p| {
                                let good = p.score >= scoring::IN_DNS_THRESHOLD
                                    && good_monitor(&p.status, &p.monitor_status)
                                    && p.score_ts.is_some_and(|t| t >= now - SEEN_GOOD_WITHIN_S);
                                MonitorSaw {
                                    name: p.name,
                                    status: p.status,
                                    score: p.score,
                                    score_ts: p.score_ts,
                                    error: p.last_error.filter(|e| !e.is_empty()),
                                    good,
                                }
                            })
                            .collect(),
                    });
                }
                let detail = GuardDetail {
                    reason: ev.reason.clone(),
                    held,
                    not_held: zd
                        .not_held
                        .iter()
                        .filter_map(|id| srv.get(id))
                        .take(NOT_HELD_LISTED)
                        .map(|s| s.ip.clone())
                        .collect(),
                };
                let text = serde_json::to_string(&detail)
                    .map_err(|e| StoreError::Invalid(format!("guard event detail: {e}")))?;
                c.query(INSERT_EVENT)
                    .bind(zd.zone_id)
                    .bind(now)
                    .bind(ev.held.len() as i64)
                    .bind(ev.dropped as i64)
                    .bind(ev.allowed as i64)
                    .bind(ev.baseline as i64)
                    .bind(&text)
                    .execute()
                    .await?;
                let (id,): (Option<i64>,) = c.query(LAST_ID).bind(zd.zone_id).fetch_one().await?;
                run.events.push(GuardEventRow {
                    id: id.unwrap_or(0),
                    zone: zd.zone,
                    ts: now,
                    held: ev.held.len() as i64,
                    dropped: ev.dropped as i64,
                    allowed: ev.allowed as i64,
                    baseline: ev.baseline as i64,
                    detail,
                });
            }
            Ok(run)
        })
        .await
    }

    /// The zone `zone_name`'s guard events, newest first, at most `limit`.
    pub async fn guard_events(
        &self,
        zone_name: &str,
        limit: i64,
    ) -> Result<Vec<GuardEventRow>, StoreError> {
        let rows: Vec<EventRead> = self
            .read(async |c| {
                Ok(c.query(EVENTS_OF)
                    .bind(zone_name)
                    .bind(limit)
                    .fetch_all()
                    .await?)
            })
            .await?;
        Ok(rows.into_iter().map(EventRead::row).collect())
    }

    /// One server's DNS state from the last guard pass.
    pub async fn server_dns(&self, server_id: i64) -> Result<Option<ServerDns>, StoreError> {
        self.read(async |c| Ok(c.query(DNS_ONE).bind(server_id).fetch_optional().await?))
            .await
    }

    /// Every server's DNS state from the last guard pass, by server id.
    pub async fn server_dns_all(&self) -> Result<HashMap<i64, ServerDns>, StoreError> {
        let rows: Vec<ServerDns> = self
            .read(async |c| Ok(c.query(DNS_ALL).fetch_all().await?))
            .await?;
        Ok(rows.into_iter().map(|d| (d.server_id, d)).collect())
    }

    /// Per DNS zone with servers or events: servers held now, events so far.
    pub async fn zone_guard_stats(&self) -> Result<Vec<ZoneGuardStat>, StoreError> {
        self.read(async |c| Ok(c.query(STATS).fetch_all().await?))
            .await
    }
}
