//! `serve`'s flags for the monitor selector.

use crate::util::{parse_duration, usage};
use anyhow::Result;
use scoring::SelectorConfig;
use server::file_config::FileSelector;
use server::selector_job::SelectorSettings;
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
    /// Flags, then the file's `[selector]`, then defaults; `None` with
    /// `--no-selector` or `enabled = false`.
    pub fn settings(&self, file: &FileSelector) -> Result<Option<SelectorSettings>> {
        if self.no_selector || file.enabled == Some(false) {
            return Ok(None);
        }
        let d = SelectorSettings::default();
        let file_interval = file
            .interval
            .as_deref()
            .map(|t| parse_duration(t).map_err(|e| usage(format!("config selector.interval: {e}"))))
            .transpose()?;
        let interval = self
            .selector_interval
            .or(file_interval)
            .unwrap_or(d.interval);
        if interval < Duration::from_secs(1) {
            return Err(usage("--selector-interval must be at least 1s"));
        }
        let config = SelectorConfig {
            target_active: self
                .selector_active
                .or(file.active)
                .unwrap_or(d.config.target_active),
            base_testing: self
                .selector_testing
                .or(file.testing)
                .unwrap_or(d.config.base_testing),
            min_count_testing: self
                .selector_min_testing
                .or(file.min_testing)
                .unwrap_or(d.config.min_count_testing),
            min_count_active: self
                .selector_min_active
                .or(file.min_active)
                .unwrap_or(d.config.min_count_active),
            ..d.config
        };
        if config.target_active == 0 {
            return Err(usage("--selector-active must be at least 1"));
        }
        let candidate_budget = self
            .selector_candidate_budget
            .or(file.candidate_budget)
            .unwrap_or(d.candidate_budget);
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        s: SelectorArgs,
    }

    fn settings(args: &[&str], file: &str) -> Result<Option<SelectorSettings>> {
        let cli = Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))?;
        let file = server::file_config::FileConfig::parse(file)?;
        cli.s.settings(&file.selector)
    }

    #[test]
    fn flags_over_file_over_defaults() {
        let d = SelectorSettings::default();
        assert_eq!(settings(&[], "").unwrap(), Some(d.clone()));
        let file =
            "[selector]\nactive = 3\ntesting = 1\ninterval = \"30s\"\ncandidate_budget = 50\n";
        let s = settings(&[], file).unwrap().unwrap();
        assert_eq!((s.config.target_active, s.config.base_testing), (3, 1));
        assert_eq!(s.interval, Duration::from_secs(30));
        assert_eq!(s.candidate_budget, 50);
        assert_eq!(s.config.min_count_active, d.config.min_count_active);
        let s = settings(
            &["--selector-active", "4", "--selector-interval", "1m"],
            file,
        )
        .unwrap()
        .unwrap();
        assert_eq!((s.config.target_active, s.config.base_testing), (4, 1));
        assert_eq!(s.interval, Duration::from_secs(60));
        assert_eq!(settings(&["--no-selector"], file).unwrap(), None);
        assert_eq!(
            settings(&[], "[selector]\nenabled = false\n").unwrap(),
            None
        );
    }

    #[test]
    fn refuses_settings_that_cannot_work() {
        for (args, file, want) in [
            (vec!["--selector-active", "0"], "", "--selector-active"),
            (vec![], "[selector]\nactive = 0\n", "--selector-active"),
            (
                vec!["--selector-candidate-budget", "0"],
                "",
                "candidate-budget",
            ),
            (
                vec![],
                "[selector]\ninterval = \"soon\"\n",
                "selector.interval",
            ),
            (vec!["--selector-interval", "500ms"], "", "at least 1s"),
        ] {
            let e = settings(&args, file).unwrap_err().to_string();
            assert!(e.contains(want), "{args:?} {file:?}: {e}");
        }
        assert!(
            settings(&[], "[selector]\nactiv = 3\n").is_err(),
            "typos are refused"
        );
    }
}
