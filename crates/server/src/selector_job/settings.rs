//! How and how often the selector runs: plain settings, below the job
//! (the service's config holds them without importing the job).

use scoring::SelectorConfig;
use std::time::Duration;

/// Most servers whose candidates one pass reads, by default. Reading a
/// server's candidates costs about as many pair reads as there are
/// monitors, so this bounds a pass (6.6–9.9 s at 50,000 servers × 300
/// monitors on SQLite, BENCHMARKS.md). A pool that needs more (a fresh start, a change of targets)
/// converges over more passes instead of in longer ones; pools of up to a
/// chunk of servers never reach it.
pub const CANDIDATE_BUDGET: usize = 8_000;

/// How and how often the selector runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectorSettings {
    pub config: SelectorConfig,
    /// Time between passes.
    pub interval: Duration,
    /// Most servers whose candidates a pass reads ([`CANDIDATE_BUDGET`]).
    pub candidate_budget: usize,
}

impl Default for SelectorSettings {
    /// The pool's targets; a pass every 10 minutes.
    fn default() -> Self {
        SelectorSettings {
            config: SelectorConfig::default(),
            interval: Duration::from_secs(600),
            candidate_budget: CANDIDATE_BUDGET,
        }
    }
}
