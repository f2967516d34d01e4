//! `poolwatch policy simulate SCENARIO.toml`: the pool simulation of
//! `sim::pool` under the chosen policies; this file only reads the
//! arguments and files and prints the report.

use crate::util::usage;
use anyhow::{Context, Result};
use scoring::Policy;
use server::policy_replay::load;
use sim::pool::{Format, Scenario, simulate};
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Runs the service's own scoring, selector and zone guard on a virtual clock
(days in seconds) over a synthetic pool, once per policy, and reports per
policy: healthy servers that left DNS (how often, server-minutes, longest),
dead servers' time to leave DNS (minutes; checks per active monitor),
zone-guard holds and selector changes. Same scenario and seed, same report.

Scenario file:
  name = \"los-angeles-blind-link\"
  seed = 1                      # random numbers
  duration = \"2d\"               # reported time (6h, 1d 12h, ...)
  warmup = \"6h\"                 # simulated first, not reported
  zone_guard = \"10%\"            # or off, as serve --zone-guard
  policies = [\"current\", \"all-must-answer\"]   # presets; default all
  [network]                     # optional
  local_rtt_ms = 20             # remote_rtt_ms = 150, loss = 0.001
  [[region]]                    # a zone and the monitors placed in it
  name = \"oceania\"
  servers = 30
  monitors = [\"sydney\"]
  [[event]]                     # times after the warm-up; no end: to the end
  kind = \"blind-link\"           # monitor's queries to these go unanswered
  monitor = \"los-angeles\"
  servers = { region = \"oceania\", first = 0, count = 10 }  # or share = 0.5
  start = \"12h\"
  end = \"20h\"
Event kinds: blind-link (monitor, servers), region-cut (region, share: its
first servers cut off from every monitor outside it), dead (servers),
rate-limit (servers, limit = { average = 8, minimum = 2, burst = 1,
kod = true }: ntpd's discard average 3 minimum 2), loss (servers,
probability, optional monitor).

Policies (--policy, as policy replay takes them): a preset - current (best
of 4, what the service scores), first-1, first-2, first-3 (best of the
first N), first-answer, all-must-answer - or a policy file (TOML: name,
samples, combine = best-of | first-answer | all-must-answer, timeout,
in_dns_threshold, [steps] rows; see poolwatch policy replay --help).

Examples:
  poolwatch policy simulate examples/scenarios/los-angeles-blind-link.toml
  poolwatch policy simulate examples/scenarios/region-cut-30pct.toml --zone-guard off
  poolwatch policy simulate examples/scenarios/rate-limiter.toml \\
      --policy current --policy strict.toml --format csv --output lab.csv";

/// Simulate the pool under scoring policies: a scenario of servers,
/// monitors and events (blind links, regional cuts, dead and
/// rate-limiting servers, loss) on a virtual clock.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The scenario (TOML); see examples/scenarios/.
    #[arg(value_name = "SCENARIO.toml")]
    pub scenario: PathBuf,
    /// A preset's name (current, first-1, first-2, first-3, first-answer,
    /// all-must-answer) or a policy file, as `policy replay` takes them;
    /// repeat for more. Without it: the scenario's `policies`, or every
    /// preset.
    #[arg(long = "policy", value_name = "NAME|FILE")]
    pub policies: Vec<String>,
    /// Overrides the scenario's zone_guard: off, or a share (0.1, 10%).
    #[arg(long, value_name = "off|SHARE")]
    pub zone_guard: Option<String>,
    /// Overrides the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// table, json or csv.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
    pub format: String,
    /// Write the report here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Policies simulated at once (each is one thread); default: the
    /// machine's cores.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,
}

/// The policies to run, in order: `--policy`, else the scenario's, else
/// every preset; a name only once.
fn policies(args: &Args, scenario: &Scenario) -> Result<Vec<Policy>> {
    let specs: Vec<String> = if !args.policies.is_empty() {
        args.policies.clone()
    } else if !scenario.policies.is_empty() {
        scenario.policies.clone()
    } else {
        Policy::PRESETS.iter().map(|p| p.0.to_string()).collect()
    };
    let out = specs
        .iter()
        .map(|s| load::policy(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    for (i, p) in out.iter().enumerate() {
        if out[..i].iter().any(|o| o.name == p.name) {
            return Err(usage(format!("--policy: '{}' given twice", p.name)));
        }
    }
    Ok(out)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let shown = args.scenario.display();
    let text = std::fs::read_to_string(&args.scenario)
        .map_err(|e| usage(format!("scenario {shown}: cannot read: {e}")))?;
    let mut scenario =
        Scenario::parse(&text).map_err(|e| usage(format!("scenario {shown}: {e}")))?;
    if let Some(g) = &args.zone_guard {
        scenario.zone_guard = g.clone();
    }
    if let Some(s) = args.seed {
        scenario.seed = s;
    }
    // The overrides are judged by the scenario's own rules; name the flags.
    scenario.validate().map_err(|e| {
        let flag = match e.field.as_str() {
            "zone_guard" => "--zone-guard".to_string(),
            f => format!("scenario {shown}: {f}"),
        };
        usage(format!("{flag}: {}", e.why))
    })?;
    let policies = policies(&args, &scenario)?;
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let report = simulate(&scenario, &policies, threads)
        .map_err(|e| usage(format!("scenario {shown}: {e}")))?;
    let format = match args.format.as_str() {
        "json" => Format::Json,
        "csv" => Format::Csv,
        _ => Format::Table,
    };
    let text = report.render(format);
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
