//! `poolwatch policy replay` and its admin page (issue 15): stored history
//! replayed under other scoring policies. The scoring is `scoring`'s
//! ([`scoring::replay::Replayer`], a [`scoring::Ledger`] per policy); this
//! module reads the store server by server (never more than one server's
//! window at once), sums the outcomes into a [`Report`] and renders it
//! ([`render`]). Policies come from files or presets ([`load`]).
//!
//! History is replayed with today's monitor statuses (the store keeps none
//! of the past), from fresh scores at `from`: the first `warmup` hours are
//! scored but not reported, so every policy is measured from a settled
//! score.

pub mod load;
pub mod render;

use futures::{StreamExt, TryStreamExt};
use scoring::Policy;
use scoring::replay::{Check, ReplayedServer, Replayer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use store::{Store, StoreError};

/// Hours scored but not reported by default: a clean server reaches the
/// in-DNS threshold after about 14 checks per monitor (8 h at one check
/// every 35 minutes).
pub const DEFAULT_WARMUP_H: u32 = 12;
/// Servers listed per policy among those whose membership changed (the
/// counts cover them all).
pub const CHANGED_LISTED: usize = 500;
const HOUR: i64 = 3600;

/// What to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRequest {
    pub from: i64,
    pub to: i64,
    /// The first is the baseline the others are compared with.
    pub policies: Vec<Policy>,
    pub warmup_h: u32,
    /// Seconds between membership marks (`--every`, an hour by default).
    pub every_s: i64,
}

/// Why a request cannot run; names the flag.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{flag}: {why}")]
pub struct RequestError {
    pub flag: &'static str,
    pub why: String,
}

impl ReplayRequest {
    /// Checks the window against `now` and the sample retention (the
    /// oldest samples kept), and that at least one hour is reported.
    pub fn check(&self, now: i64, retention_s: i64) -> Result<(), RequestError> {
        let bad = |flag, why: String| Err(RequestError { flag, why });
        if self.from >= self.to {
            return bad("--from", "must be before --to".into());
        }
        if self.from < now - retention_s {
            return bad(
                "--from",
                format!(
                    "samples are kept {} days (--sample-retention); start at {} or later",
                    retention_s / 86_400,
                    crate::admin::format_date(now - retention_s + 86_399)
                ),
            );
        }
        if self.to > now + HOUR {
            return bad("--to", "is in the future".into());
        }
        if self.from + i64::from(self.warmup_h) * HOUR >= self.to {
            return bad(
                "--warmup",
                format!("{} h leaves nothing of the window to report", self.warmup_h),
            );
        }
        if !(60..=86_400).contains(&self.every_s) {
            return bad("--every", "must be from 1 minute to 1 day".into());
        }
        if self.policies.is_empty() {
            return bad("--policy", "give at least one".into());
        }
        let mut names: Vec<&str> = self.policies.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return bad("--policy", format!("{:?} named twice", w[0]));
        }
        Ok(())
    }

    /// When membership is counted: every `every_s` from the end of the
    /// warm-up.
    pub fn marks(&self) -> Vec<i64> {
        let first = self.from + i64::from(self.warmup_h) * HOUR;
        (0..)
            .map(|h| first + h * self.every_s)
            .take_while(|t| *t <= self.to)
            .collect()
    }
}

/// A replay's outcome (the `--format json` output, and what `--save`
/// keeps for the admin page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub from: i64,
    pub to: i64,
    pub warmup_h: u32,
    /// Seconds between marks.
    pub every_s: i64,
    /// Membership was counted at these times (unix seconds).
    pub marks: Vec<i64>,
    pub servers: u64,
    pub checks: u64,
    /// The baseline first.
    pub policies: Vec<PolicyReport>,
}

/// One policy's part of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyReport {
    pub policy: Policy,
    /// Servers in DNS at each mark.
    pub in_dns: Vec<u32>,
    /// Servers whose membership differs from the baseline's at some mark
    /// (0 for the baseline), those in DNS at fewer marks, and at more.
    pub changed: u32,
    pub left: u32,
    pub joined: u32,
    /// The most changed servers, at most [`CHANGED_LISTED`].
    pub servers: Vec<ChangedServer>,
    pub zones: Vec<ZoneReport>,
}

/// A server whose membership under a policy differs from the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangedServer {
    pub ip: String,
    pub zones: Vec<String>,
    /// Marks at which it was in DNS under the baseline, and this policy.
    pub marks_in_baseline: u32,
    pub marks_in: u32,
    /// What its samples said ([`scoring::replay::SampleTally::why`]).
    pub why: String,
}

/// A zone under one policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneReport {
    pub zone: String,
    pub servers: u32,
    /// Servers of the zone in DNS, averaged over the marks.
    pub mean_in_dns: f64,
    pub left: u32,
    pub joined: u32,
}

impl PolicyReport {
    pub fn mean_in_dns(&self) -> f64 {
        if self.in_dns.is_empty() {
            return 0.0;
        }
        self.in_dns.iter().map(|&n| f64::from(n)).sum::<f64>() / self.in_dns.len() as f64
    }
}

#[derive(Default)]
struct ZoneSum {
    servers: u32,
    marks_in: Vec<u64>,
    left: Vec<u32>,
    joined: Vec<u32>,
}

/// Replays the request's window (checked by the caller) server by server.
pub async fn replay(store: &Store, req: &ReplayRequest) -> Result<Report, StoreError> {
    let marks = req.marks();
    let n = req.policies.len();
    let mut replayer = Replayer::new(req.policies.clone(), marks.clone());
    let servers = store.replay_servers(req.from, req.to).await?;
    let mut report = Report {
        from: req.from,
        to: req.to,
        warmup_h: req.warmup_h,
        every_s: req.every_s,
        marks: marks.clone(),
        servers: servers.len() as u64,
        checks: 0,
        policies: req
            .policies
            .iter()
            .map(|p| PolicyReport {
                policy: p.clone(),
                in_dns: vec![0; marks.len()],
                changed: 0,
                left: 0,
                joined: 0,
                servers: Vec::new(),
                zones: Vec::new(),
            })
            .collect(),
    };
    let mut zones: BTreeMap<String, ZoneSum> = BTreeMap::new();
    // The next server's samples are read while this one is scored.
    let mut reads = futures::stream::iter(servers.iter())
        .map(|s| async move {
            let checks = store.samples(s.server.id, None, req.from, req.to).await?;
            Ok::<_, StoreError>((s, checks))
        })
        .buffered(2);
    while let Some((s, checks)) = reads.try_next().await? {
        report.checks += checks.len() as u64;
        let out = replayer.server(
            ReplayedServer {
                netspeed: s.server.netspeed,
                deletion_on: s.server.deletion_on,
            },
            checks.iter().map(|c| Check {
                ts: c.ts,
                monitor_id: c.monitor_id,
                status: s.status(c.monitor_id),
                samples: &c.samples,
            }),
        );
        let marks_in: Vec<u32> = out
            .in_dns
            .iter()
            .map(|v| v.iter().filter(|b| **b).count() as u32)
            .collect();
        for (p, v) in out.in_dns.iter().enumerate() {
            for (count, inside) in report.policies[p].in_dns.iter_mut().zip(v) {
                *count += u32::from(*inside);
            }
        }
        for zone in &s.server.zones {
            let z = zones.entry(zone.clone()).or_insert_with(|| ZoneSum {
                marks_in: vec![0; n],
                left: vec![0; n],
                joined: vec![0; n],
                ..ZoneSum::default()
            });
            z.servers += 1;
            for p in 0..n {
                z.marks_in[p] += u64::from(marks_in[p]);
                z.left[p] += u32::from(marks_in[p] < marks_in[0]);
                z.joined[p] += u32::from(marks_in[p] > marks_in[0]);
            }
        }
        for p in 1..n {
            if out.in_dns[p] == out.in_dns[0] {
                continue;
            }
            let r = &mut report.policies[p];
            r.changed += 1;
            r.left += u32::from(marks_in[p] < marks_in[0]);
            r.joined += u32::from(marks_in[p] > marks_in[0]);
            r.servers.push(ChangedServer {
                ip: s.server.ip.to_string(),
                zones: s.server.zones.clone(),
                marks_in_baseline: marks_in[0],
                marks_in: marks_in[p],
                why: out.tally.why(),
            });
            // Keep the list bounded while it grows: the most changed.
            if r.servers.len() >= 2 * CHANGED_LISTED {
                most_changed(&mut r.servers);
            }
        }
    }
    let marks_n = marks.len().max(1) as f64;
    for (p, r) in report.policies.iter_mut().enumerate() {
        most_changed(&mut r.servers);
        r.zones = zones
            .iter()
            .map(|(zone, z)| ZoneReport {
                zone: zone.clone(),
                servers: z.servers,
                mean_in_dns: z.marks_in[p] as f64 / marks_n,
                left: z.left[p],
                joined: z.joined[p],
            })
            .collect();
    }
    Ok(report)
}

/// Sorts by how much membership changed (then address), keeps the first
/// [`CHANGED_LISTED`].
fn most_changed(v: &mut Vec<ChangedServer>) {
    v.sort_by(|a, b| {
        let d = |c: &ChangedServer| c.marks_in.abs_diff(c.marks_in_baseline);
        d(b).cmp(&d(a)).then_with(|| a.ip.cmp(&b.ip))
    });
    v.truncate(CHANGED_LISTED);
}

/// A `--from`/`--to` value: `YYYY-MM-DD` (00:00 UTC) or RFC 3339
/// (`2026-12-01T06:00:00Z`); unix seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    crate::admin::parse_date(s)
        .map_err(|_| format!("{s:?} is not a date (use YYYY-MM-DD or 2026-12-01T06:00:00Z)"))
}

/// Keeps a report for the admin page; its id.
pub async fn save(store: &Store, r: &Report, now: i64) -> Result<i64, StoreError> {
    let json =
        serde_json::to_string(r).map_err(|e| StoreError::Invalid(format!("policy report: {e}")))?;
    let names: Vec<&str> = r.policies.iter().map(|p| p.policy.name.as_str()).collect();
    store
        .save_policy_report(
            &store::PolicyReportRow {
                id: 0,
                created: now,
                from_ts: r.from,
                to_ts: r.to,
                policies: names.join(","),
            },
            &json,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(from: i64, to: i64) -> ReplayRequest {
        ReplayRequest {
            from,
            to,
            policies: vec![Policy::current()],
            warmup_h: 6,
            every_s: 3600,
        }
    }
    const NOW: i64 = 1_765_000_000;
    const DAY: i64 = 86_400;

    #[test]
    fn times_and_windows() {
        assert_eq!(parse_time("2026-12-01"), Ok(1_796_083_200));
        assert_eq!(
            parse_time("2026-12-01T06:00:00Z"),
            Ok(1_796_083_200 + 6 * 3600)
        );
        assert_eq!(
            parse_time("2026-12-01T07:00:00+01:00"),
            Ok(1_796_083_200 + 6 * 3600)
        );
        assert!(parse_time("yesterday").unwrap_err().contains("YYYY-MM-DD"));

        let ok = req(NOW - 2 * DAY, NOW);
        assert_eq!(ok.check(NOW, 15 * DAY), Ok(()));
        assert_eq!(ok.marks().len(), 2 * 24 - 6 + 1);
        assert_eq!(ok.marks()[0], NOW - 2 * DAY + 6 * 3600);
        let flag = |r: ReplayRequest| r.check(NOW, 15 * DAY).unwrap_err().flag;
        assert_eq!(flag(req(NOW, NOW)), "--from");
        assert_eq!(flag(req(NOW - 16 * DAY, NOW)), "--from");
        assert_eq!(flag(req(NOW - DAY, NOW + DAY)), "--to");
        assert_eq!(flag(req(NOW - 3600, NOW)), "--warmup");
        let mut twice = req(NOW - DAY, NOW);
        twice.policies.push(Policy::current());
        assert_eq!(flag(twice), "--policy");
        let err = req(NOW - 16 * DAY, NOW).check(NOW, 15 * DAY).unwrap_err();
        assert!(err.to_string().contains("kept 15 days"), "{err}");
    }
}
