//! The zone guard: a zone may lose only a limited share of its in-DNS
//! servers within 24 h while the servers being dropped still answer at
//! least one monitor (a regional link failure, not a server failure).
//!
//! # API
//!
//! ```text
//! pub fn guard(zone: &str, servers: &[ZoneServer], in_dns_24h_ago: usize,
//!              config: ZoneGuardConfig, now: i64) -> GuardDecision
//! ```
//!
//! * [`ZoneServer`] — each server of the zone that was in DNS at some time in
//!   the last 24 h: `{ server_id, in_dns_by_score, last_good_ts,
//!   monitors_seeing_good_now, dropped_at }`.
//! * `in_dns_24h_ago` — how many of the zone's servers were in DNS 24 h ago;
//!   the base of the share.
//! * [`ZoneGuardConfig`] — `Off` or `MaxShare(f64)` (default 0.10).
//! * [`GuardDecision`] `{ held: Vec<i64>, event: Option<GuardEvent> }` — the
//!   servers to keep in DNS despite their score, and the event to record.
//!
//! # Rules
//!
//! * *Lost* servers: those not in DNS by score now — both the ones that
//!   left earlier in the window (`dropped_at` set) and the ones that would
//!   leave now (`dropped_at` unset: still in DNS, possibly held last run).
//! * *Allowed* loss: `max(1, floor(max_share × in_dns_24h_ago))` — at least
//!   one, so small zones can still drop a dead server.
//! * With no more lost than allowed nothing is held and there is no event.
//! * Otherwise the excess (`lost − allowed`) is held, taken from servers
//!   still in DNS (`dropped_at` unset) that at least one monitor sees as
//!   good now, most recently good first (ties: lower id). Servers no monitor
//!   can reach, and servers that already left DNS, are never held (they are
//!   not put back) and count toward the loss. An event is returned whenever
//!   the loss exceeds the allowance, even if nothing could be held.
//! * `Off` holds nothing and records nothing.
//!
//! The decision is recomputed from scratch every run: a held server is
//! released as soon as its score recovers, others leave, or the window moves.

use serde::{Deserialize, Serialize};

/// Default share of a zone's servers that may leave DNS within 24 h.
pub const DEFAULT_MAX_SHARE: f64 = 0.10;

/// Whether and how the guard runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ZoneGuardConfig {
    Off,
    /// Share in `[0, 1]` (clamped; NaN counts as 0).
    MaxShare(f64),
}

impl Default for ZoneGuardConfig {
    fn default() -> Self {
        ZoneGuardConfig::MaxShare(DEFAULT_MAX_SHARE)
    }
}

/// One server of the zone that was in DNS within the last 24 h.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneServer {
    pub server_id: i64,
    /// Whether its score alone keeps it in DNS now.
    pub in_dns_by_score: bool,
    /// Last time any monitor saw it healthy, unix seconds.
    pub last_good_ts: Option<i64>,
    /// Monitors whose latest result for it is good.
    pub monitors_seeing_good_now: usize,
    /// When it actually left DNS, if it has (unset while held).
    pub dropped_at: Option<i64>,
}

/// What the guard did for one zone in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardEvent {
    pub zone: String,
    /// Unix seconds.
    pub ts: i64,
    /// Servers kept in DNS despite their score.
    pub held: Vec<i64>,
    /// Servers out of DNS (or leaving now) within the window, after holding.
    pub dropped: usize,
    /// The allowed loss for the window.
    pub allowed: usize,
    /// In-DNS servers 24 h ago.
    pub baseline: usize,
    pub reason: String,
}

/// The guard's answer for one zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardDecision {
    /// Server ids to keep in DNS despite their score, most recently good first.
    pub held: Vec<i64>,
    pub event: Option<GuardEvent>,
}

/// `max(1, floor(share × baseline))`.
pub fn allowed_loss(share: f64, baseline: usize) -> usize {
    let share = if share.is_nan() {
        0.0
    } else {
        share.clamp(0.0, 1.0)
    };
    ((share * baseline as f64).floor() as usize).max(1)
}

/// Decide which servers of `zone` to hold in DNS; see the module docs.
pub fn guard(
    zone: &str,
    servers: &[ZoneServer],
    in_dns_24h_ago: usize,
    config: ZoneGuardConfig,
    now: i64,
) -> GuardDecision {
    let share = match config {
        ZoneGuardConfig::Off => {
            return GuardDecision {
                held: Vec::new(),
                event: None,
            };
        }
        ZoneGuardConfig::MaxShare(s) => s,
    };
    let allowed = allowed_loss(share, in_dns_24h_ago);
    let lost: Vec<&ZoneServer> = servers.iter().filter(|s| !s.in_dns_by_score).collect();
    if lost.len() <= allowed {
        return GuardDecision {
            held: Vec::new(),
            event: None,
        };
    }
    let excess = lost.len() - allowed;
    let mut holdable: Vec<&ZoneServer> = lost
        .iter()
        .copied()
        .filter(|s| s.dropped_at.is_none() && s.monitors_seeing_good_now > 0)
        .collect();
    // Most recently good first (None last), then by id.
    holdable.sort_by(|a, b| {
        b.last_good_ts
            .cmp(&a.last_good_ts)
            .then_with(|| a.server_id.cmp(&b.server_id))
    });
    let held: Vec<i64> = holdable.iter().take(excess).map(|s| s.server_id).collect();
    let dropped = lost.len() - held.len();
    let unreachable = lost
        .iter()
        .filter(|s| s.monitors_seeing_good_now == 0)
        .count();
    let reason = format!(
        "{} of {} servers would leave DNS within 24 h (allowed {}, {:.0} %); \
         held {} still seen good by at least one monitor; {} seen good by none",
        lost.len(),
        in_dns_24h_ago,
        allowed,
        share * 100.0,
        held.len(),
        unreachable,
    );
    GuardDecision {
        held: held.clone(),
        event: Some(GuardEvent {
            zone: zone.to_string(),
            ts: now,
            held,
            dropped,
            allowed,
            baseline: in_dns_24h_ago,
            reason,
        }),
    }
}
