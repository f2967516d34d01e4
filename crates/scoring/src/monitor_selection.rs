//! The per-server monitor selector: which monitors are `active` (count in
//! the aggregate), `testing` (on trial) or `candidate` for one server.
//!
//! # API
//!
//! ```text
//! pub fn select(server: &SelectorServer, monitors: &[SelectorMonitor], now: i64) -> Vec<Change>
//! pub fn select_with(cfg: &SelectorConfig, server: &SelectorServer,
//!                    monitors: &[SelectorMonitor], now: i64) -> Vec<Change>
//! ```
//!
//! * [`SelectorConfig`] — targets and limits; `Default` = 7 active, 5
//!   testing, 9/32 data points, 2 active / 3 total per account, bootstrap 5.
//!
//! * [`SelectorServer`] `{ ip: IpAddr, account_id: Option<i64> }`
//! * [`SelectorMonitor`] `{ monitor_id, account_id: Option<i64>, ip: IpAddr,
//!   global_status: GlobalStatus, status: MonitorStatus, stats: MonitorStats }`
//!   — one row per monitor known for the server (its `server_scores` row).
//! * [`MonitorStats`] `{ count: u32, avg_step: f64, avg_rtt_ms: f64 }` — the
//!   monitor's results for this server over the last 24 h.
//! * [`Change`] `{ monitor_id, from, to, reason: Reason }`; `Reason`
//!   implements `Display` with the text to log and show.
//!
//! The result lists at most one change per monitor, in the order the rules
//! made them. Applying them and calling `select` again converges: a stable
//! assignment yields no changes. `now` is accepted for a future periodic
//! constraint recheck; the current rules do not depend on it.
//!
//! # Rules (in order; numbers are the [`SelectorConfig`] defaults)
//!
//! 1. *Block*: an active/testing monitor whose global status is paused,
//!    deleted or pending becomes candidate; a server-active monitor that is
//!    only globally testing becomes testing. Not limited per run.
//! 2. *Unchangeable constraints*: a monitor in the server's /24 (v4) or /48
//!    (v6), or of the server's own account, is paused for this server. Not
//!    limited per run. A paused monitor without such a violation becomes
//!    candidate again ("constraint resolved").
//! 3. *Changeable constraints* over active+testing, best kept first (active
//!    before testing, then by rank): at most 2 active and 3 active+testing per
//!    account, at most one active/testing per /20 (v4) or /44 (v6). Violators
//!    become candidates, within the per-run removal limits.
//! 4. *Excess active* (more than 7) are demoted to testing, worst first.
//! 5. *Testing → active* while fewer than 7 active: globally active, healthy,
//!    ≥ 32 data points, constraints met. **Emergency**: with 0 active, every
//!    globally active testing monitor with ≥ 32 data points may be promoted
//!    (up to 7, best first) regardless of health, account/diversity limits
//!    and the per-run limit.
//! 6. *Active swaps*: the worst active is replaced by the best eligible
//!    testing monitor when the replacer is healthy and either the target is
//!    unhealthy or the replacer's priority is ≥ 5 % and ≥ 5 points lower.
//! 7. *Excess testing* (above `5 + max(0, 7 − active)`) become candidates.
//! 8. *Candidate → testing* while below the testing target: globally active
//!    or testing, healthy, ≥ 9 data points, constraints met.
//! 9. *Testing swaps*: as 6, between testing and candidates.
//! 10. *Bootstrap*: with no active and no testing monitor left, up to 5
//!     eligible candidates (healthy first, data not required) become testing.
//! 11. *Never zero active*: if the run would leave a server that had active
//!     monitors with none, the best demoted one that still measures (globally
//!     active or testing) stays active.
//!
//! An unhealthy monitor leaves active/testing only by replacement (rules 6
//! and 9), never on its own: the reference's gradual removal keeps at least
//! `target − 2` active and makes no removal while fewer healthy monitors
//! than the target exist, which leaves nothing a swap does not already do,
//! and it keeps a real outage (every monitor unhealthy) from emptying the
//! active set. A paused pair is assumed to be paused by rule 2.
//!
//! Per-run limits, per group (active removals, testing removals, promotions):
//! 2; 3 if more than one monitor was blocked by rules 1–2 in this run; 4 when
//! the server had no active monitor at the start of the run. A swap uses one
//! unit of its removal group and one of promotions. Emergency and bootstrap
//! promotions are not counted. Health is `count > 0 && avg_step ≥ 0`;
//! monitors without data rank last. Ties are broken by monitor id.

use crate::{GlobalStatus, MonitorStatus};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;

/// Target number of active monitors per server.
pub const TARGET_ACTIVE: usize = 7;
/// Base number of testing monitors per server.
pub const BASE_TESTING: usize = 5;
/// Data points (24 h) a candidate needs to become testing.
pub const MIN_COUNT_TESTING: u32 = 9;
/// Data points (24 h) a testing monitor needs to become active.
pub const MIN_COUNT_ACTIVE: u32 = 32;
/// Monitors of one account: at most this many active per server …
pub const ACCOUNT_ACTIVE_LIMIT: usize = 2;
/// … and at most this many active + testing.
pub const ACCOUNT_TOTAL_LIMIT: usize = 3;
/// Candidates promoted by bootstrap.
pub const BOOTSTRAP_TESTING: usize = 5;

/// The selector's targets and limits; [`Default`] is the pool's values
/// (the constants above). Smaller targets suit small test fleets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectorConfig {
    pub target_active: usize,
    pub base_testing: usize,
    pub min_count_testing: u32,
    pub min_count_active: u32,
    pub account_active_limit: usize,
    pub account_total_limit: usize,
    pub bootstrap_testing: usize,
}

impl Default for SelectorConfig {
    fn default() -> Self {
        SelectorConfig {
            target_active: TARGET_ACTIVE,
            base_testing: BASE_TESTING,
            min_count_testing: MIN_COUNT_TESTING,
            min_count_active: MIN_COUNT_ACTIVE,
            account_active_limit: ACCOUNT_ACTIVE_LIMIT,
            account_total_limit: ACCOUNT_TOTAL_LIMIT,
            bootstrap_testing: BOOTSTRAP_TESTING,
        }
    }
}

/// The server being assigned monitors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectorServer {
    pub ip: IpAddr,
    pub account_id: Option<i64>,
}

/// A monitor's results for the server over the last 24 h.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MonitorStats {
    pub count: u32,
    pub avg_step: f64,
    pub avg_rtt_ms: f64,
}

impl MonitorStats {
    /// `avg_step ≥ 0` with at least one data point.
    pub fn healthy(&self) -> bool {
        self.count > 0 && self.avg_step >= 0.0
    }

    /// `round(avg_rtt_ms × (1 + 2 × (1 − avg_step)))`, lower is better;
    /// `i64::MAX` without usable data.
    pub fn priority(&self) -> i64 {
        let p = (self.avg_rtt_ms * (1.0 + 2.0 * (1.0 - self.avg_step))).round();
        if self.count == 0 || !p.is_finite() {
            i64::MAX
        } else {
            p as i64
        }
    }
}

/// One monitor as seen by the selector for one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectorMonitor {
    pub monitor_id: i64,
    pub account_id: Option<i64>,
    pub ip: IpAddr,
    pub global_status: GlobalStatus,
    /// Current per-server status.
    pub status: MonitorStatus,
    pub stats: MonitorStats,
}

/// A network or account rule a monitor breaks for this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Constraint {
    /// Same /24 (v4) or /48 (v6) as the server; `prefix_len` says which.
    SameSubnet {
        prefix_len: u8,
    },
    SameAccount,
    AccountLimit,
    /// Another active/testing monitor in the same /20 (v4) or /44 (v6).
    NetworkDiversity {
        prefix_len: u8,
    },
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constraint::SameSubnet { prefix_len } => {
                write!(f, "same /{prefix_len} as the server")
            }
            Constraint::SameAccount => f.write_str("same account as the server"),
            Constraint::AccountLimit => f.write_str("account limit"),
            Constraint::NetworkDiversity { prefix_len } => {
                write!(f, "network diversity /{prefix_len}")
            }
        }
    }
}

/// Why a monitor's status changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reason {
    /// Moved up on merit (rules 5 and 8).
    Promoted {
        count: u32,
        healthy: bool,
        priority: i64,
    },
    /// Moved up in place of another monitor (rules 6 and 9).
    Replacing {
        monitor_id: i64,
        count: u32,
        priority: i64,
    },
    /// Moved down in a swap while unhealthy.
    Unhealthy { avg_step: f64, replaced_by: i64 },
    /// Moved down in a swap for a clearly better monitor.
    ReplacedBy { monitor_id: i64 },
    /// More than the target in its status.
    Excess,
    /// A network or account constraint.
    Constraint(Constraint),
    /// The monitor's global status does not allow its per-server status.
    MonitorStatus(GlobalStatus),
    /// Paused for a constraint that no longer applies.
    ConstraintResolved,
    /// No active monitor: promoted regardless of the usual limits.
    Emergency { count: u32 },
    /// Neither active nor testing monitors: started testing without data.
    Bootstrap,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Promoted {
                count,
                healthy,
                priority,
            } => {
                let h = if *healthy { "healthy" } else { "unhealthy" };
                write!(f, "promoted: {count} data points, {h}, priority {priority}")
            }
            Reason::Replacing {
                monitor_id,
                count,
                priority,
            } => write!(
                f,
                "promoted: replaces monitor {monitor_id}, {count} data points, priority {priority}"
            ),
            Reason::Unhealthy {
                avg_step,
                replaced_by,
            } => write!(
                f,
                "demoted: unhealthy (avg step {avg_step:.1}), replaced by monitor {replaced_by}"
            ),
            Reason::ReplacedBy { monitor_id } => {
                write!(f, "replaced by better monitor {monitor_id}")
            }
            Reason::Excess => f.write_str("demoted: more than the target"),
            Reason::Constraint(c) => write!(f, "constraint: {c}"),
            Reason::MonitorStatus(g) => write!(f, "blocked: monitor is {g}"),
            Reason::ConstraintResolved => f.write_str("constraint resolved"),
            Reason::Emergency { count } => {
                write!(f, "emergency: no active monitor, {count} data points")
            }
            Reason::Bootstrap => f.write_str("bootstrap"),
        }
    }
}

/// One status change for one monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub monitor_id: i64,
    pub from: MonitorStatus,
    pub to: MonitorStatus,
    pub reason: Reason,
}

/// Whether `a` and `b` share the first `v4` (IPv4) or `v6` (IPv6) bits.
/// Addresses of different families never share a prefix.
fn same_prefix(a: IpAddr, b: IpAddr, v4: u32, v6: u32) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX << (32 - v4);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX << (128 - v6);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn prefix_len(ip: IpAddr, v4: u8, v6: u8) -> u8 {
    if ip.is_ipv4() { v4 } else { v6 }
}

/// Rank: healthy first, then priority, avg step (desc), avg rtt, id.
fn rank_cmp(a: &SelectorMonitor, b: &SelectorMonitor) -> Ordering {
    rank_key(a).cmp(&rank_key(b)).then_with(|| rank_rest(a, b))
}

/// The leading part of the rank, computed once per monitor when sorting
/// (`priority` rounds; a sort would round in every comparison).
fn rank_key(m: &SelectorMonitor) -> (bool, i64) {
    (!m.stats.healthy(), m.stats.priority())
}

/// The rank's tie-breaks after [`rank_key`].
fn rank_rest(a: &SelectorMonitor, b: &SelectorMonitor) -> Ordering {
    let (sa, sb) = (&a.stats, &b.stats);
    sb.avg_step
        .total_cmp(&sa.avg_step)
        .then_with(|| sa.avg_rtt_ms.total_cmp(&sb.avg_rtt_ms))
        .then_with(|| a.monitor_id.cmp(&b.monitor_id))
}

/// Whether `r` may replace `t`: `r` healthy and `t` not, or (`r` healthy)
/// a priority at least 5 % and 5 points better.
fn better(r: &MonitorStats, t: &MonitorStats) -> bool {
    if !r.healthy() {
        return false;
    }
    if !t.healthy() {
        return true;
    }
    let (rp, tp) = (r.priority(), t.priority());
    if tp == i64::MAX || rp == i64::MAX {
        return false;
    }
    let gain = tp - rp;
    gain >= 5 && (gain as f64) >= 0.05 * tp as f64
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    ActiveRemovals = 0,
    TestingRemovals = 1,
    Promotions = 2,
}

struct Run<'a> {
    cfg: &'a SelectorConfig,
    server: &'a SelectorServer,
    mons: Vec<&'a SelectorMonitor>,
    cur: Vec<MonitorStatus>,
    changed: Vec<bool>,
    changes: Vec<Change>,
    budget: [usize; 3],
}

impl<'a> Run<'a> {
    fn set(&mut self, i: usize, to: MonitorStatus, reason: Reason) {
        self.changes.push(Change {
            monitor_id: self.mons[i].monitor_id,
            from: self.mons[i].status,
            to,
            reason,
        });
        self.cur[i] = to;
        self.changed[i] = true;
    }

    fn take(&mut self, g: Group) -> bool {
        let b = &mut self.budget[g as usize];
        if *b == 0 {
            false
        } else {
            *b -= 1;
            true
        }
    }

    fn has(&self, g: Group) -> bool {
        self.budget[g as usize] > 0
    }

    fn count(&self, st: MonitorStatus) -> usize {
        self.cur.iter().filter(|&&s| s == st).count()
    }

    /// Indices with status `st` not yet changed this run, best first.
    fn ranked(&self, st: MonitorStatus) -> Vec<usize> {
        let mut v: Vec<((bool, i64), usize)> = (0..self.mons.len())
            .filter(|&i| self.cur[i] == st && !self.changed[i])
            .map(|i| (rank_key(self.mons[i]), i))
            .collect();
        v.sort_by(|(ka, a), (kb, b)| {
            ka.cmp(kb)
                .then_with(|| rank_rest(self.mons[*a], self.mons[*b]))
        });
        v.into_iter().map(|(_, i)| i).collect()
    }

    fn unchangeable(&self, m: &SelectorMonitor) -> Option<Constraint> {
        if same_prefix(m.ip, self.server.ip, 24, 48) {
            return Some(Constraint::SameSubnet {
                prefix_len: prefix_len(self.server.ip, 24, 48),
            });
        }
        match (m.account_id, self.server.account_id) {
            (Some(a), Some(b)) if a == b => Some(Constraint::SameAccount),
            _ => None,
        }
    }

    /// The changeable constraint monitor `i` would break at status `to`,
    /// given the others in `others` (their current statuses) — `skip` is
    /// left out (a monitor being swapped out).
    fn changeable(
        &self,
        i: usize,
        to: MonitorStatus,
        others: impl Iterator<Item = usize>,
        skip: Option<usize>,
    ) -> Option<Constraint> {
        let m = self.mons[i];
        let (mut same_active, mut same_total) = (0, 0);
        let mut diversity = false;
        for j in others {
            if j == i || Some(j) == skip {
                continue;
            }
            let st = self.cur[j];
            if !matches!(st, MonitorStatus::Active | MonitorStatus::Testing) {
                continue;
            }
            let o = self.mons[j];
            if m.account_id.is_some() && o.account_id == m.account_id {
                same_total += 1;
                if st == MonitorStatus::Active {
                    same_active += 1;
                }
            }
            if same_prefix(m.ip, o.ip, 20, 44) {
                diversity = true;
            }
        }
        if m.account_id.is_some()
            && (same_total + 1 > self.cfg.account_total_limit
                || (to == MonitorStatus::Active && same_active + 1 > self.cfg.account_active_limit))
        {
            return Some(Constraint::AccountLimit);
        }
        if diversity {
            return Some(Constraint::NetworkDiversity {
                prefix_len: prefix_len(m.ip, 20, 44),
            });
        }
        None
    }

    fn eligible_for(&self, i: usize, to: MonitorStatus) -> bool {
        let m = self.mons[i];
        match to {
            MonitorStatus::Active => m.global_status == GlobalStatus::Active,
            MonitorStatus::Testing => m.global_status.measures(),
            _ => true,
        }
    }

    fn testing_target(&self) -> usize {
        self.cfg.base_testing
            + self
                .cfg
                .target_active
                .saturating_sub(self.count(MonitorStatus::Active))
    }

    /// Best not-yet-changed monitor with status `from` that may move to
    /// `to` (healthy, enough data, constraints met with `skip` left out).
    fn best_replacer(
        &self,
        from: MonitorStatus,
        to: MonitorStatus,
        skip: Option<usize>,
    ) -> Option<usize> {
        let min = if to == MonitorStatus::Active {
            self.cfg.min_count_active
        } else {
            self.cfg.min_count_testing
        };
        self.ranked(from).into_iter().find(|&i| {
            let m = self.mons[i];
            self.eligible_for(i, to)
                && m.stats.healthy()
                && m.stats.count >= min
                && self.changeable(i, to, 0..self.mons.len(), skip).is_none()
        })
    }

    fn block(&mut self) -> usize {
        let mut blocked = 0;
        for i in 0..self.mons.len() {
            let m = self.mons[i];
            let g = m.global_status;
            match self.cur[i] {
                MonitorStatus::Active | MonitorStatus::Testing if !g.measures() => {
                    self.set(i, MonitorStatus::Candidate, Reason::MonitorStatus(g));
                    blocked += 1;
                }
                MonitorStatus::Active if g == GlobalStatus::Testing => {
                    self.set(i, MonitorStatus::Testing, Reason::MonitorStatus(g));
                    blocked += 1;
                }
                _ => {}
            }
        }
        for i in 0..self.mons.len() {
            let bad = self.unchangeable(self.mons[i]);
            match (self.cur[i], bad) {
                (MonitorStatus::Paused, None) => {
                    self.set(i, MonitorStatus::Candidate, Reason::ConstraintResolved)
                }
                (MonitorStatus::Paused, Some(_)) => {}
                (_, Some(c)) => {
                    if self.changed[i] {
                        // Already blocked this run; one change per monitor.
                        continue;
                    }
                    self.set(i, MonitorStatus::Paused, Reason::Constraint(c));
                    blocked += 1;
                }
                (_, None) => {}
            }
        }
        blocked
    }

    fn changeable_constraints(&mut self) {
        let order: Vec<usize> = self
            .ranked(MonitorStatus::Active)
            .into_iter()
            .chain(self.ranked(MonitorStatus::Testing))
            .collect();
        let mut kept: Vec<usize> = Vec::new();
        for i in order {
            let st = self.cur[i];
            if let Some(c) = self.changeable(i, st, kept.iter().copied(), None) {
                let g = if st == MonitorStatus::Active {
                    Group::ActiveRemovals
                } else {
                    Group::TestingRemovals
                };
                if self.take(g) {
                    self.set(i, MonitorStatus::Candidate, Reason::Constraint(c));
                    continue;
                }
            }
            kept.push(i);
        }
    }

    fn excess_active(&mut self) {
        let ranked = self.ranked(MonitorStatus::Active);
        let excess = self
            .count(MonitorStatus::Active)
            .saturating_sub(self.cfg.target_active);
        for &i in ranked.iter().rev().take(excess) {
            if !self.take(Group::ActiveRemovals) {
                break;
            }
            self.set(i, MonitorStatus::Testing, Reason::Excess);
        }
    }

    fn promote_active(&mut self) {
        if self.count(MonitorStatus::Active) == 0 {
            let picks: Vec<usize> = self
                .ranked(MonitorStatus::Testing)
                .into_iter()
                .filter(|&i| {
                    self.eligible_for(i, MonitorStatus::Active)
                        && self.mons[i].stats.count >= self.cfg.min_count_active
                })
                .take(self.cfg.target_active)
                .collect();
            for i in picks {
                let count = self.mons[i].stats.count;
                self.set(i, MonitorStatus::Active, Reason::Emergency { count });
            }
            return;
        }
        while self.count(MonitorStatus::Active) < self.cfg.target_active
            && self.has(Group::Promotions)
        {
            let Some(i) = self.best_replacer(MonitorStatus::Testing, MonitorStatus::Active, None)
            else {
                break;
            };
            self.take(Group::Promotions);
            let s = self.mons[i].stats;
            let reason = Reason::Promoted {
                count: s.count,
                healthy: s.healthy(),
                priority: s.priority(),
            };
            self.set(i, MonitorStatus::Active, reason);
        }
    }

    /// Swap the worst `upper` monitors for better `lower` ones.
    fn swaps(&mut self, upper: MonitorStatus, lower: MonitorStatus) {
        let removal = if upper == MonitorStatus::Active {
            Group::ActiveRemovals
        } else {
            Group::TestingRemovals
        };
        let down_to = lower;
        let targets: Vec<usize> = self.ranked(upper).into_iter().rev().collect();
        for t in targets {
            if !self.has(removal) || !self.has(Group::Promotions) {
                break;
            }
            let Some(r) = self.best_replacer(lower, upper, Some(t)) else {
                break;
            };
            let (rs, ts) = (self.mons[r].stats, self.mons[t].stats);
            if !better(&rs, &ts) {
                continue;
            }
            self.take(removal);
            self.take(Group::Promotions);
            let (rid, tid) = (self.mons[r].monitor_id, self.mons[t].monitor_id);
            let down = if ts.healthy() {
                Reason::ReplacedBy { monitor_id: rid }
            } else {
                Reason::Unhealthy {
                    avg_step: ts.avg_step,
                    replaced_by: rid,
                }
            };
            self.set(t, down_to, down);
            let up = Reason::Replacing {
                monitor_id: tid,
                count: rs.count,
                priority: rs.priority(),
            };
            self.set(r, upper, up);
        }
    }

    fn excess_testing(&mut self) {
        let excess = self
            .count(MonitorStatus::Testing)
            .saturating_sub(self.testing_target());
        let ranked = self.ranked(MonitorStatus::Testing);
        for &i in ranked.iter().rev().take(excess) {
            if !self.take(Group::TestingRemovals) {
                break;
            }
            self.set(i, MonitorStatus::Candidate, Reason::Excess);
        }
    }

    fn promote_testing(&mut self) {
        while self.count(MonitorStatus::Testing) < self.testing_target()
            && self.has(Group::Promotions)
        {
            let Some(i) =
                self.best_replacer(MonitorStatus::Candidate, MonitorStatus::Testing, None)
            else {
                break;
            };
            self.take(Group::Promotions);
            let s = self.mons[i].stats;
            let reason = Reason::Promoted {
                count: s.count,
                healthy: s.healthy(),
                priority: s.priority(),
            };
            self.set(i, MonitorStatus::Testing, reason);
        }
    }

    fn bootstrap(&mut self) {
        if self.count(MonitorStatus::Active) > 0 || self.count(MonitorStatus::Testing) > 0 {
            return;
        }
        let mut promoted = 0;
        for i in self.ranked(MonitorStatus::Candidate) {
            if promoted == self.cfg.bootstrap_testing {
                break;
            }
            if self.eligible_for(i, MonitorStatus::Testing)
                && self
                    .changeable(i, MonitorStatus::Testing, 0..self.mons.len(), None)
                    .is_none()
            {
                self.set(i, MonitorStatus::Testing, Reason::Bootstrap);
                promoted += 1;
            }
        }
    }

    fn never_zero(&mut self) {
        let had_active = self.mons.iter().any(|m| m.status == MonitorStatus::Active);
        if !had_active || self.count(MonitorStatus::Active) > 0 {
            return;
        }
        let keep = (0..self.mons.len())
            .filter(|&i| {
                self.mons[i].status == MonitorStatus::Active
                    && self.mons[i].global_status.measures()
            })
            .min_by(|&a, &b| rank_cmp(self.mons[a], self.mons[b]));
        if let Some(i) = keep {
            let id = self.mons[i].monitor_id;
            self.changes.retain(|c| c.monitor_id != id);
            self.cur[i] = MonitorStatus::Active;
            self.changed[i] = false;
        }
    }
}

/// Whether the selector may want a candidate for a server whose active,
/// testing and paused monitors are `counted` (status, 24 h stats): none is
/// active or testing (bootstrap), testing is below its target (promotion),
/// or a testing monitor is unhealthy (replacement). Swaps for merely better
/// candidates can wait, so a pass need not read every server's candidates
/// (the service's `selector_job`, the pool simulation).
pub fn needs_candidates(
    cfg: &SelectorConfig,
    counted: impl IntoIterator<Item = (MonitorStatus, MonitorStats)>,
) -> bool {
    let (mut active, mut testing, mut unhealthy) = (0, 0, false);
    for (status, stats) in counted {
        match status {
            MonitorStatus::Active => active += 1,
            MonitorStatus::Testing => {
                testing += 1;
                unhealthy |= !stats.healthy();
            }
            _ => {}
        }
    }
    let target = cfg.base_testing + cfg.target_active.saturating_sub(active);
    active + testing == 0 || testing < target || unhealthy
}

/// Run the selector once for one server with the pool's targets and
/// limits; see the module docs for the rules.
pub fn select(server: &SelectorServer, monitors: &[SelectorMonitor], now: i64) -> Vec<Change> {
    select_with(&SelectorConfig::default(), server, monitors, now)
}

/// [`select`] with explicit targets and limits.
pub fn select_with(
    cfg: &SelectorConfig,
    server: &SelectorServer,
    monitors: &[SelectorMonitor],
    now: i64,
) -> Vec<Change> {
    let _ = now;
    let mut mons: Vec<&SelectorMonitor> = monitors.iter().collect();
    mons.sort_by_key(|m| m.monitor_id);
    mons.dedup_by_key(|m| m.monitor_id);
    let n = mons.len();
    let mut run = Run {
        cfg,
        server,
        cur: mons.iter().map(|m| m.status).collect(),
        mons,
        changed: vec![false; n],
        changes: Vec::new(),
        budget: [0; 3],
    };
    let zero_active = run.count(MonitorStatus::Active) == 0;
    let blocked = run.block();
    let limit = if zero_active {
        4
    } else if blocked > 1 {
        3
    } else {
        2
    };
    run.budget = [limit; 3];
    run.changeable_constraints();
    run.excess_active();
    run.promote_active();
    run.swaps(MonitorStatus::Active, MonitorStatus::Testing);
    run.excess_testing();
    run.promote_testing();
    run.swaps(MonitorStatus::Testing, MonitorStatus::Candidate);
    run.bootstrap();
    run.never_zero();
    run.changes
}
