//! The policy lab's pool simulation (`poolwatch policy simulate`): the
//! service's scoring, selector and zone guard run on a virtual clock over
//! a synthetic pool, under each scoring policy, to ask "what if" before a
//! change reaches production. Pure: no sockets, no wall clock; the same
//! scenario and seed give the same report.
//!
//! What runs is the service's own code: a `scoring::Ledger` per policy
//! (`Policy::observe`, `step`, `update`, `aggregate`), `scoring::select_with`
//! with `SelectorConfig::default()` and `scoring::guard`, scheduled as
//! `serve` schedules them (checks at the work intervals, a selector pass
//! every 10 minutes, a guard pass every minute; [`engine`]). Samples are
//! generated per check ([`checks`]); rate-limited servers use
//! [`crate::rate_limit::Limiter`], one per server, per monitor address.
//!
//! # Scenario file (TOML)
//!
//! ```toml
//! name = "los-angeles-blind-link"
//! description = "..."          # optional
//! seed = 1                     # random numbers; same seed, same report
//! duration = "3d"              # reported time (humantime: 6h, 1d 12h)
//! warmup = "6h"                # simulated first, not reported (default 6h)
//! zone_guard = "10%"           # or "off" or 0.25 (default 10%)
//! policies = ["current", "all-must-answer"]   # Policy::PRESETS (default: all)
//!
//! [network]                    # optional
//! local_rtt_ms = 20            # monitor and server in the same region
//! remote_rtt_ms = 150          # between regions
//! loss = 0.001                 # per query, every path
//!
//! [[region]]                   # a DNS zone and the monitors placed in it
//! name = "oceania"
//! servers = 40
//! monitors = ["sydney"]
//!
//! [[event]]                    # times after the warm-up; no end: to the end
//! kind = "blind-link"          # one monitor's queries to these go unanswered
//! monitor = "los-angeles"
//! servers = { region = "oceania", first = 0, count = 10 }   # or share = 0.25
//! start = "12h"
//! end = "20h"
//! ```
//!
//! Event kinds: `blind-link` (monitor, servers), `region-cut` (region,
//! share: its first servers cut off from every monitor outside it),
//! `dead` (servers), `rate-limit` (servers, `limit = { average = 8,
//! minimum = 2, burst = 1, kod = true }`, ntpd's `discard average 3
//! minimum 2`), `loss` (servers, probability, optional monitor).
//!
//! The pool starts settled: per server the 7 nearest monitors active and
//! the next 5 testing, every score 20 with a day of clean checks behind it.

pub mod checks;
pub mod engine;
pub mod report;
pub mod scenario;
pub mod world;

pub use report::{DeadServer, Format, PolicyReport, Report};
pub use scenario::{Scenario, ScenarioError};
pub use world::World;

use scoring::Policy;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `policies` over the scenario's pool, up to `threads` at once (each
/// policy is its own run), and reports them in the order given.
pub fn simulate(
    scenario: &Scenario,
    policies: &[Policy],
    threads: usize,
) -> Result<Report, ScenarioError> {
    let world = World::new(scenario)?;
    let results: Vec<Mutex<Option<PolicyReport>>> =
        policies.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, policies.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = policies.get(i) else { break };
                    let r = engine::run(&world, p);
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    Ok(Report {
        scenario: world.name.clone(),
        seed: world.seed,
        servers: world.servers.len(),
        monitors: world.monitors.len(),
        minutes: ((world.end - world.report_from) / 60) as u64,
        zone_guard: scenario.zone_guard.clone(),
        policies: results
            .into_iter()
            .filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect(),
    })
}
