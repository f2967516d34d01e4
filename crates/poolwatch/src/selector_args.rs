//! `serve`'s flags for the monitor selector.

use crate::util::{parse_duration, usage};
use anyhow::Result;
use scoring::SelectorConfig;
use server::selector::SelectorSettings;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Monitor selector")]
pub struct SelectorArgs {
    /// Do not run the selector: every pair keeps its status (new monitors
    /// and servers stay candidates; scores then come from candidates).
    #[arg(long, env = "POOLWATCH_NO_SELECTOR")]
    no_selector: bool,

    /// Time between selector passes over every server [default: 10m].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_SELECTOR_INTERVAL", value_parser = parse_duration)]
    selector_interval: Option<Duration>,

    /// Active monitors wanted per server [default: 7].
    #[arg(long, value_name = "N", env = "POOLWATCH_SELECTOR_ACTIVE")]
    selector_active: Option<usize>,

    /// Testing monitors wanted per server (more while active is short)
    /// [default: 5].
    #[arg(long, value_name = "N", env = "POOLWATCH_SELECTOR_TESTING")]
    selector_testing: Option<usize>,

    /// Results in the last 24 h a candidate needs to become testing
    /// [default: 9].
    #[arg(long, value_name = "N", env = "POOLWATCH_SELECTOR_MIN_TESTING")]
    selector_min_testing: Option<u32>,

    /// Results in the last 24 h a testing monitor needs to become active
    /// [default: 32].
    #[arg(long, value_name = "N", env = "POOLWATCH_SELECTOR_MIN_ACTIVE")]
    selector_min_active: Option<u32>,

    /// Most servers whose candidate monitors one pass reads [default:
    /// 8000]. Bounds a pass on a large pool (each server's candidates cost
    /// a read per monitor); more servers than this converge over several
    /// passes. Pools under 500 servers never reach the default.
    #[arg(long, value_name = "N", env = "POOLWATCH_SELECTOR_CANDIDATE_BUDGET")]
    selector_candidate_budget: Option<usize>,
}

impl SelectorArgs {
    /// The settings, or `None` with `--no-selector`.
    pub fn settings(&self) -> Result<Option<SelectorSettings>> {
        if self.no_selector {
            return Ok(None);
        }
        let d = SelectorSettings::default();
        let interval = self.selector_interval.unwrap_or(d.interval);
        if interval < Duration::from_secs(1) {
            return Err(usage("--selector-interval must be at least 1s"));
        }
        let config = SelectorConfig {
            target_active: self.selector_active.unwrap_or(d.config.target_active),
            base_testing: self.selector_testing.unwrap_or(d.config.base_testing),
            min_count_testing: self
                .selector_min_testing
                .unwrap_or(d.config.min_count_testing),
            min_count_active: self
                .selector_min_active
                .unwrap_or(d.config.min_count_active),
            ..d.config
        };
        if config.target_active == 0 {
            return Err(usage("--selector-active must be at least 1"));
        }
        let candidate_budget = self.selector_candidate_budget.unwrap_or(d.candidate_budget);
        if candidate_budget == 0 {
            return Err(usage(
                "--selector-candidate-budget must be at least 1 (no new monitor could ever start testing)",
            ));
        }
        Ok(Some(SelectorSettings {
            config,
            interval,
            candidate_budget,
        }))
    }
}
