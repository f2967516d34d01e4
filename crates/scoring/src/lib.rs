//! Scoring for poolwatch, following the NTP Pool's current model: the step
//! one observation earns, the decaying per-monitor score, the "recent
//! median" aggregate over a server's monitors and the DNS inclusion rule.
//!
//! Everything here is a pure function over plain data. This crate must not
//! do I/O, read clocks (times come in as unix seconds) or depend on other
//! poolwatch crates, so every caller (server, simulator, tests) scores alike.

mod aggregate;
mod dns;
pub mod evidence;
pub mod ledger;
pub mod monitor_selection;
pub mod policy;
pub mod replay;
mod sample;
mod status;
mod step;
pub mod submission;
pub mod window;
pub mod zone_guard_rules;

pub use aggregate::{
    MonitorScore, WINDOW_TRUSTED_S, WINDOW_WIDEST_S, aggregate, should_log_aggregate,
};
pub use dns::in_dns;
pub use evidence::{Evidence, MonitorEvidence, PositionStats, RttSpread, Stats, Verdict};
pub use ledger::{Ledger, Recorded};
pub use monitor_selection::{
    Change, MonitorStats, Reason, SelectorConfig, SelectorMonitor, SelectorServer,
    needs_candidates, select, select_with,
};
pub use policy::{Combine, Policy, PolicyError};
pub use sample::{Sample, best_index};
pub use status::{GlobalStatus, MonitorStatus, ParseGlobalStatusError, ParseMonitorStatusError};
pub use step::{Observation, Step, StepTable, step, step_with, update};
pub use window::PairWindow;
pub use zone_guard_rules::{GuardDecision, GuardEvent, ZoneGuardConfig, ZoneServer, guard};

/// A server is published in DNS from this aggregate score up.
pub const IN_DNS_THRESHOLD: f64 = 10.0;

/// The highest score reachable: the fixed point of a steady +1 step.
pub const MAX_SCORE: f64 = 20.0;
