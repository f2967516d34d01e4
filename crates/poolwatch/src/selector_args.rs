//! `serve`'s flags for the monitor selector (`[selector]` in the file).

#[derive(clap::Args, Debug, Clone)]
#[allow(dead_code)] // declares flags; settings::load reads them by id
#[command(next_help_heading = "Monitor selector")]
pub struct SelectorArgs {
    /// Do not run the selector: every pair keeps its status (new monitors
    /// and servers stay candidates; scores then come from candidates).
    #[arg(
        long,
        id = "selector.enabled",
        action = clap::ArgAction::SetFalse,
        env = "POOLWATCH_NO_SELECTOR",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    no_selector: bool,

    /// Time between selector passes over every server [default: 10m].
    #[arg(
        long,
        id = "selector.interval",
        value_name = "DURATION",
        env = "POOLWATCH_SELECTOR_INTERVAL"
    )]
    selector_interval: Option<String>,

    /// Active monitors wanted per server [default: 7].
    #[arg(
        long,
        id = "selector.active",
        value_name = "N",
        env = "POOLWATCH_SELECTOR_ACTIVE"
    )]
    selector_active: Option<String>,

    /// Testing monitors wanted per server (more while active is short)
    /// [default: 5].
    #[arg(
        long,
        id = "selector.testing",
        value_name = "N",
        env = "POOLWATCH_SELECTOR_TESTING"
    )]
    selector_testing: Option<String>,

    /// Results in the last 24 h a candidate needs to become testing
    /// [default: 9].
    #[arg(
        long,
        id = "selector.min_testing",
        value_name = "N",
        env = "POOLWATCH_SELECTOR_MIN_TESTING"
    )]
    selector_min_testing: Option<String>,

    /// Results in the last 24 h a testing monitor needs to become active
    /// [default: 32].
    #[arg(
        long,
        id = "selector.min_active",
        value_name = "N",
        env = "POOLWATCH_SELECTOR_MIN_ACTIVE"
    )]
    selector_min_active: Option<String>,

    /// Most servers whose candidate monitors one pass reads [default:
    /// 8000]. Bounds a pass on a large pool (each server's candidates cost
    /// a read per monitor); more servers than this converge over several
    /// passes. Pools under 500 servers never reach the default.
    #[arg(
        long,
        id = "selector.candidate_budget",
        value_name = "N",
        env = "POOLWATCH_SELECTOR_CANDIDATE_BUDGET"
    )]
    selector_candidate_budget: Option<String>,
}
