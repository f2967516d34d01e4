//! `poolwatch agent`: the monitor daemon a volunteer runs. Its settings are
//! `settings::agent::AgentSettings`, read by `settings::load`.

use crate::settings::agent::AgentSettings;
use crate::settings::{self, Loaded, LogFormat};
use crate::util::init_logging;
use agent::trace_runner::TracerouteMode;
use agent::{Agent, AgentConfig};
use anyhow::Result;
use clap::{ArgMatches, Command};
use ntp::TargetPolicy;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Run a poolwatch monitor.
///
/// The agent asks the central service (`--api`) for servers to check, checks
/// each as the pool does (several NTP queries a few seconds apart, best
/// sample), and submits the results. Before submitting it checks its own
/// clock against the service's reference servers and stops while they
/// disagree. Results the service cannot take are spooled in `--state-dir`
/// and replayed in order later; nothing is lost across restarts.
///
/// A new monitor starts with `poolwatch agent setup --api URL`, which
/// registers the host and saves its credentials (see `agent setup --help`).
///
/// Without `--key` or `--key-file` it reads the credentials `poolwatch
/// agent setup` stored in `--state-dir` and runs one loop per address
/// family in this one process (each its own monitor, spool in
/// `DIR/<name>/`, metrics labelled `family="4"` or `"6"`); a family
/// without a route only makes its own loop back off.
///
/// Every setting can also come from a `POOLWATCH_*` environment variable or
/// the `--config` TOML file (flags win, then the environment, then the
/// file; each flag shows its variable and key).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  poolwatch agent --state-dir /var/lib/poolwatch-agent --metrics-listen 127.0.0.1:9123\n      (both families, with the credentials `poolwatch agent setup` stored there)\n  poolwatch agent --api https://pool.example.org --key-file /etc/poolwatch/agent.key \\\n      --state-dir /var/lib/poolwatch-agent --metrics-listen 127.0.0.1:9123"
)]
#[allow(dead_code)] // declares flags; settings::load reads them by id
pub struct Args {
    /// Base URL of the central service.
    #[arg(long, env = "POOLWATCH_API", value_name = "URL")]
    api: Option<String>,
    /// The monitor's key, as printed by `poolwatch admin monitor add`
    /// [default: the credentials of `agent setup` in --state-dir].
    #[arg(long, env = "POOLWATCH_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Read the key from this file instead (safer than a flag).
    #[arg(long, env = "POOLWATCH_KEY_FILE", value_name = "FILE")]
    key_file: Option<String>,
    /// Where the spool (and `agent setup`'s credentials) live [default:
    /// $STATE_DIRECTORY, else ./poolwatch-agent-state].
    #[arg(long, env = "POOLWATCH_STATE_DIR", value_name = "DIR")]
    state_dir: Option<String>,
    /// Also check loopback, private and link-local addresses.
    #[arg(long, env = "POOLWATCH_ALLOW_PRIVATE", value_parser = clap::builder::FalseyValueParser::new())]
    allow_private: bool,
    /// Lab mode: only loopback and private addresses; every other is refused.
    #[arg(long, env = "POOLWATCH_LAB", value_parser = clap::builder::FalseyValueParser::new())]
    lab: bool,
    /// Send NTP queries to this port instead of 123 (labs, demos).
    #[arg(long, env = "POOLWATCH_NTP_PORT", value_name = "PORT")]
    ntp_port: Option<String>,
    /// Send NTP queries from this local address (the monitor's registered IP).
    #[arg(long, env = "POOLWATCH_SOURCE_ADDR", value_name = "IP")]
    source_addr: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "POOLWATCH_METRICS_LISTEN", value_name = "ADDR:PORT")]
    metrics_listen: Option<String>,
    /// Do not check IPv4 servers.
    #[arg(long, id = "ipv4", action = clap::ArgAction::SetFalse, env = "POOLWATCH_NO_IPV4",
          value_parser = clap::builder::FalseyValueParser::new())]
    no_ipv4: bool,
    /// Do not check IPv6 servers.
    #[arg(long, id = "ipv6", action = clap::ArgAction::SetFalse, env = "POOLWATCH_NO_IPV6",
          value_parser = clap::builder::FalseyValueParser::new())]
    no_ipv6: bool,
    /// Log format: text or json [default: text].
    #[arg(long, env = "POOLWATCH_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Check one batch, submit it and exit.
    #[arg(long)]
    pub once: bool,
    /// Servers checked at the same time, 1 to 100000 [default: 100].
    #[arg(long, env = "POOLWATCH_CONCURRENCY", value_name = "N")]
    concurrency: Option<String>,
    /// Batches checked at once, 1 to 64: the next batch starts while
    /// earlier ones finish (results are still submitted in order)
    /// [default: 4].
    #[arg(long, env = "POOLWATCH_PIPELINE", value_name = "N")]
    pipeline: Option<String>,
    /// Wait this long before re-checking the clock after it failed
    /// [default: 3m].
    #[arg(long, env = "POOLWATCH_CLOCK_RETRY", value_name = "DURATION")]
    clock_retry: Option<String>,
    /// Shortest wait when there is no work or the service fails [default: 3s].
    #[arg(long, env = "POOLWATCH_BACKOFF_MIN", value_name = "DURATION")]
    backoff_min: Option<String>,
    /// Longest wait when there is no work or the service fails [default: 2m].
    #[arg(long, env = "POOLWATCH_BACKOFF_MAX", value_name = "DURATION")]
    backoff_max: Option<String>,
    /// Traceroutes the service asks for after a server's state changed
    /// (UDP probes to port 123): `auto` runs mtr if installed, else
    /// traceroute; `off` answers such requests with an error [default: auto].
    #[arg(long, env = "POOLWATCH_TRACEROUTE", value_name = "TOOL")]
    traceroute: Option<String>,
    /// Read the monitor's config (samples, interval, timeout, batch size)
    /// again this often; changes apply from the next batch [default: 5m].
    #[arg(long, env = "POOLWATCH_CONFIG_REFRESH", value_name = "DURATION")]
    config_refresh: Option<String>,
    /// TOML file with any of the settings above.
    #[arg(long, env = "POOLWATCH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
}

#[derive(clap::Subcommand, Debug)]
pub enum AgentCommand {
    // Its help is `SetupArgs`' doc.
    Setup(crate::agent_setup_cmd::SetupArgs),
}

/// The agents' configurations from the settings: one for `--key`, or
/// one per identity of `agent setup`'s credentials in the state directory.
fn build(
    l: &Loaded<AgentSettings>,
    once: bool,
    env: settings::Env,
) -> Result<(Vec<AgentConfig>, Option<SocketAddr>, TracerouteMode)> {
    let s = &l.settings;
    let policy = match (s.lab, s.allow_private) {
        (true, _) => TargetPolicy::Lab,
        (false, true) => TargetPolicy::AllowPrivate,
        _ => TargetPolicy::Public,
    };
    let state_dir = s
        .state_dir
        .clone()
        .or_else(|| env("STATE_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("poolwatch-agent-state"));
    let base = AgentConfig {
        api: s.api.clone().unwrap_or_default(),
        key: String::new(),
        state_dir: state_dir.clone(),
        policy,
        ntp_port: s.ntp_port,
        source: s.source_addr,
        ipv4: s.ipv4,
        ipv6: s.ipv6,
        once,
        concurrency: s.concurrency as usize,
        pipeline: s.pipeline as usize,
        clock_retry: s.clock_retry.0,
        backoff_min: s.backoff_min.0,
        backoff_max: s.backoff_max.0.max(s.backoff_min.0),
        config_refresh: s.config_refresh.0,
        family: None,
    };
    let key = match (&s.key, &s.key_file) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(p)) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| l.refuse("key_file", format!("cannot read {}: {e}", p.display())))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let cfgs = match key {
        Some(k) if k.is_empty() => return Err(l.refuse("key_file", "the monitor key is empty")),
        Some(key) => vec![AgentConfig { key, ..base }],
        None => identities(l, base, &state_dir)?,
    };
    Ok((cfgs, s.metrics_listen, s.traceroute.into()))
}

/// One agent per identity in `dir`'s credentials: each checks only its
/// family's servers, from `--source-addr` when that is of its family, and
/// spools in `dir/<name>/`.
fn identities(
    l: &Loaded<AgentSettings>,
    base: AgentConfig,
    dir: &std::path::Path,
) -> Result<Vec<AgentConfig>> {
    let creds = agent::credentials::load(dir)
        .map_err(|e| l.refuse("state_dir", e))?
        .ok_or_else(|| {
            l.refuse(
                "key",
                format!(
                    "no monitor key and no credentials in {}: run `poolwatch agent setup` first \
                     (or pass --key or --key-file)",
                    dir.display()
                ),
            )
        })?;
    let api = if base.api.is_empty() {
        creds.api.clone()
    } else {
        base.api.clone()
    };
    settings::dns::http_url("api", &api).map_err(|e| l.refuse("api", e.msg))?;
    let mut out = Vec::new();
    for id in creds.identities {
        // The name becomes a directory: nothing that could leave `dir`.
        if id.name.is_empty()
            || !id
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(l.refuse(
                "state_dir",
                format!("credentials name a monitor {:?}, not a plain name", id.name),
            ));
        }
        let v4 = id.family == 4;
        let (ipv4, ipv6) = (v4 && base.ipv4, !v4 && base.ipv6);
        if !ipv4 && !ipv6 {
            tracing::info!(
                "monitor {} (IPv{}) not run: its family is turned off",
                id.name,
                id.family
            );
            continue;
        }
        out.push(AgentConfig {
            api: api.clone(),
            key: id.key,
            state_dir: dir.join(&id.name),
            source: base.source.filter(|ip| ip.is_ipv4() == v4),
            ipv4,
            ipv6,
            family: Some(if v4 { "4" } else { "6" }),
            ..base.clone()
        });
    }
    if out.is_empty() {
        return Err(l.refuse("ipv4", "both address families are turned off"));
    }
    Ok(out)
}

pub async fn run(args: Args, cmd: &Command, m: &ArgMatches) -> Result<ExitCode> {
    if let Some(AgentCommand::Setup(s)) = args.command {
        return crate::agent_setup_cmd::run(s).await;
    }
    let loaded = settings::load::<AgentSettings>(cmd, m, &settings::process_env)?;
    init_logging(loaded.settings.log_format == LogFormat::Json);
    let (cfgs, metrics, traceroute) = build(&loaded, args.once, &settings::process_env)?;
    let shutdown = CancellationToken::new();
    if let Some(addr) = metrics {
        crate::util::serve_metrics(addr, shutdown.clone()).await?;
        tracing::info!("metrics at http://{addr}/metrics");
    }
    let signals = shutdown.clone();
    tokio::spawn(async move {
        crate::util::shutdown_signal().await;
        tracing::info!("signal received: finishing the batch in flight");
        signals.cancel();
    });
    // Every agent is built first: a state directory that cannot be used
    // stops the process before any loop starts.
    let mut agents = Vec::new();
    for cfg in cfgs {
        tracing::info!(
            "agent starting: service {}, state in {}{}",
            cfg.api,
            cfg.state_dir.display(),
            cfg.family
                .map(|f| format!(", IPv{f} only"))
                .unwrap_or_default()
        );
        agents.push((
            cfg.family,
            Agent::new(cfg, shutdown.clone())?.with_traceroute(traceroute),
        ));
    }
    // One task per family: one loop's errors are its own back-off, and
    // it stopping leaves the other running.
    let mut tasks = tokio::task::JoinSet::new();
    for (family, a) in agents {
        tasks.spawn(async move { (family, a.run().await) });
    }
    let mut failed = None;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((_, Ok(_))) => {}
            Ok((family, Err(e))) => {
                let e = match family {
                    Some(f) => anyhow::anyhow!("IPv{f} agent: {e}"),
                    None => e.into(),
                };
                tracing::error!("{e:#}");
                failed = Some(e);
            }
            Err(e) => failed = Some(anyhow::anyhow!("agent task failed: {e}")),
        }
    }
    shutdown.cancel();
    match failed {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}
