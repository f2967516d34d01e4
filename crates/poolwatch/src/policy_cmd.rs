//! `poolwatch policy`: what-if scoring (issue 15). `replay` rescoring the
//! stored samples under other policies; the work is in
//! `server::policy_replay`, this file only reads the flags. `simulate`
//! (a synthetic pool on a virtual clock) is `policy_simulate_cmd`.

use crate::serve_cmd::{StoreArgs, StoreSetup, now};
use crate::settings::HumanDuration;
use crate::util::usage;
use anyhow::{Context, Result};
use clap::Subcommand;
use server::policy_replay::{self, ReplayRequest, load, render};
use std::path::PathBuf;
use std::process::ExitCode;

/// What-if scoring: score the pool under other policies.
///
/// `replay` works on the same store as `poolwatch serve`: give it the same
/// --data-dir, --database-url or --config (or POOLWATCH_* variables);
/// `simulate` needs no store. Bad flags or policy files exit with status 2.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,

    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Replay stored samples under other scoring policies.
    Replay(ReplayArgs),
    /// Simulate a synthetic pool under scoring policies on a virtual clock.
    Simulate(crate::policy_simulate_cmd::Args),
}

/// The presets come from `scoring::Policy::PRESETS`, so help and code agree.
fn replay_help() -> String {
    format!("{REPLAY_HELP_TOP}{}\n{REPLAY_HELP}", load::presets_help())
}

const REPLAY_HELP_TOP: &str = "\
Policies: a preset's name or a TOML file; the first is the baseline the
others are compared with (`current` is added first unless one is named so).
";

const REPLAY_HELP: &str = "\
Policy file (every field optional but name):
  name = \"strict\"               # letters, digits, - _ . (at most 40)
  samples = 4                   # the first N samples of each check, 1..=16
  combine = \"all-must-answer\"   # best-of | first-answer | all-must-answer
  timeout = 3.0                 # seconds; a slower reply counts as none
  in_dns_threshold = 10.0
  [steps]                       # rows of the step table to replace
  rate = { step = -1.0 }        # also no_response, deny, unsynchronised, error,
                                # offset_over_3s, high_stratum, offset_over_750ms

Each monitor's score, each server's aggregate and its DNS membership are
recomputed with the service's scoring code from fresh scores at --from;
membership is counted every --every (1h) after --warmup. History is replayed with
today's monitor statuses. Samples are kept --sample-retention (15 days).

Examples:
  poolwatch policy replay --from 2026-11-25 --to 2026-12-02 --policy all-must-answer
  poolwatch policy replay --from 2026-11-25 --to 2026-12-02 \\
      --policy current --policy first-1 --policy all-must-answer --format csv --output replay.csv
  poolwatch policy replay --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z \\
      --policy strict.toml --save          # then /manage/admin/policy-reports";

#[derive(clap::Args, Debug)]
#[command(after_help = replay_help())]
struct ReplayArgs {
    /// Start of the window: YYYY-MM-DD (00:00 UTC) or RFC 3339.
    #[arg(long, value_name = "DATE")]
    from: String,
    /// End of the window (exclusive), as --from.
    #[arg(long, value_name = "DATE")]
    to: String,
    /// A preset's name or a policy file; repeat for several.
    #[arg(long, value_name = "NAME|FILE", required = true)]
    policy: Vec<String>,
    /// table, csv or json.
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    format: String,
    /// Write the report here instead of to stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Hours scored from --from but not reported, so scores have settled.
    #[arg(long, value_name = "HOURS", default_value_t = policy_replay::DEFAULT_WARMUP_H)]
    warmup: u32,
    /// How often membership is counted (a mark), from the end of the
    /// warm-up: 1h by default; down to 1m for a short lab window.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = HumanDuration::parse)]
    every: std::time::Duration,
    /// Also keep the report in the store for the admin page.
    #[arg(long)]
    save: bool,
}

pub async fn run(args: Args, cmd: &clap::Command, m: &clap::ArgMatches) -> Result<ExitCode> {
    let a = match args.command {
        PolicyCommand::Replay(a) => a,
        // No store: a scenario file in, a report out.
        PolicyCommand::Simulate(a) => return crate::policy_simulate_cmd::run(a),
    };
    let (loaded, setup) = StoreSetup::load(cmd, m)?;
    let format: render::Format = a
        .format
        .parse()
        .map_err(|e| usage(format!("--format {e}")))?;
    let from = policy_replay::parse_time(&a.from).map_err(|e| usage(format!("--from {e}")))?;
    let to = policy_replay::parse_time(&a.to).map_err(|e| usage(format!("--to {e}")))?;
    let req = ReplayRequest {
        from,
        to,
        policies: load::policies(&a.policy).map_err(usage)?,
        warmup_h: a.warmup,
        every_s: a.every.as_secs() as i64,
    };
    let retention = loaded.settings.sample_retention.0.as_secs() as i64;
    req.check(now(), retention)
        .map_err(|e| usage(e.to_string()))?;

    let store = setup.open_store().await?;
    let result = async {
        let report = policy_replay::replay(&store, &req).await?;
        let text = render::render(&report, format);
        match &a.output {
            Some(p) => {
                std::fs::write(p, &text).with_context(|| format!("cannot write {}", p.display()))?
            }
            None => print!("{text}"),
        }
        if a.save {
            let id = policy_replay::save(&store, &report, now()).await?;
            eprintln!("saved as report {id}: /manage/admin/policy-reports/{id}");
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}
