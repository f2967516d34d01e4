//! `poolwatch agent`: the monitor daemon a volunteer runs.

use crate::util::{init_logging, parse_duration, usage};
use agent::file_config::AgentFile;
use agent::trace_runner::TracerouteMode;
use agent::{Agent, AgentConfig};
use anyhow::Result;
use ntp::TargetPolicy;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
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
/// Every flag can also come from a `POOLWATCH_*` environment variable or the
/// `--config` TOML file (flags win, then the environment, then the file).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  poolwatch agent --api https://pool.example.org --key-file /etc/poolwatch/agent.key \\\n      --state-dir /var/lib/poolwatch-agent --metrics-listen 127.0.0.1:9123"
)]
pub struct Args {
    /// Base URL of the central service.
    #[arg(long, env = "POOLWATCH_API", value_name = "URL")]
    pub api: Option<String>,
    /// The monitor's key, as printed by `poolwatch admin monitor add`.
    #[arg(
        long,
        env = "POOLWATCH_KEY",
        hide_env_values = true,
        conflicts_with = "key_file"
    )]
    pub key: Option<String>,
    /// Read the key from this file instead (safer than a flag).
    #[arg(long, env = "POOLWATCH_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Where the spool lives [default: $STATE_DIRECTORY, else ./poolwatch-agent-state].
    #[arg(long, env = "POOLWATCH_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Also check loopback, private and link-local addresses.
    #[arg(long, env = "POOLWATCH_ALLOW_PRIVATE")]
    pub allow_private: bool,
    /// Lab mode: only loopback and private addresses; every other is refused.
    #[arg(long, env = "POOLWATCH_LAB")]
    pub lab: bool,
    /// Send NTP queries to this port instead of 123 (labs, demos).
    #[arg(long, env = "POOLWATCH_NTP_PORT", value_name = "PORT")]
    pub ntp_port: Option<u16>,
    /// Send NTP queries from this local address (the monitor's registered IP).
    #[arg(long, env = "POOLWATCH_SOURCE_ADDR", value_name = "IP")]
    pub source_addr: Option<IpAddr>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "POOLWATCH_METRICS_LISTEN", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
    /// Do not check IPv4 servers.
    #[arg(long, env = "POOLWATCH_NO_IPV4")]
    pub no_ipv4: bool,
    /// Do not check IPv6 servers.
    #[arg(long, env = "POOLWATCH_NO_IPV6")]
    pub no_ipv6: bool,
    /// Log format.
    #[arg(long, env = "POOLWATCH_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// Check one batch, submit it and exit.
    #[arg(long)]
    pub once: bool,
    /// Servers checked at the same time [default: 100].
    #[arg(long, env = "POOLWATCH_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: Option<u32>,
    /// Batches checked at once: the next batch starts while earlier ones
    /// finish (results are still submitted in order).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub pipeline: u16,
    /// Wait this long before re-checking the clock after it failed.
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    pub clock_retry: Duration,
    /// Shortest and longest wait when there is no work or the service fails.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub backoff_min: Duration,
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub backoff_max: Duration,
    /// Traceroutes the service asks for after a server's state changed
    /// (UDP probes to port 123): `auto` runs mtr if installed, else
    /// traceroute; `off` answers such requests with an error [default: auto].
    #[arg(long, env = "POOLWATCH_TRACEROUTE", value_name = "TOOL",
          value_parser = ["auto", "mtr", "traceroute", "off"])]
    pub traceroute: Option<String>,
    /// TOML file with any of the settings above.
    #[arg(long, env = "POOLWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn build(a: Args) -> Result<(AgentConfig, Option<SocketAddr>, bool, TracerouteMode)> {
    let f = match &a.config {
        Some(p) => AgentFile::load(p).map_err(usage)?,
        None => AgentFile::default(),
    };
    let api = a.api.or(f.api).ok_or_else(|| usage("no --api URL given"))?;
    if !(api.starts_with("http://") || api.starts_with("https://")) {
        return Err(usage(format!(
            "--api must be an http:// or https:// URL, not {api:?}"
        )));
    }
    let key = match (a.key.or(f.key), a.key_file.or(f.key_file)) {
        (Some(k), _) => k,
        (None, Some(p)) => std::fs::read_to_string(&p)
            .map_err(|e| usage(format!("cannot read key file {}: {e}", p.display())))?
            .trim()
            .to_string(),
        (None, None) => return Err(usage("no monitor key: pass --key or --key-file")),
    };
    if key.is_empty() {
        return Err(usage("the monitor key is empty"));
    }
    let lab = a.lab || f.lab.unwrap_or(false);
    let allow_private = a.allow_private || f.allow_private.unwrap_or(false);
    let policy = match (lab, allow_private) {
        (true, _) => TargetPolicy::Lab,
        (false, true) => TargetPolicy::AllowPrivate,
        _ => TargetPolicy::Public,
    };
    let source = match (a.source_addr, f.source_addr) {
        (Some(ip), _) => Some(ip),
        (None, Some(s)) => Some(
            s.parse()
                .map_err(|_| usage(format!("source_addr {s:?} is not an IP address")))?,
        ),
        _ => None,
    };
    let metrics = match (a.metrics_listen, f.metrics_listen) {
        (Some(m), _) => Some(m),
        (None, Some(s)) => Some(
            s.parse()
                .map_err(|_| usage(format!("metrics_listen {s:?} is not ADDR:PORT")))?,
        ),
        _ => None,
    };
    let state_dir = a
        .state_dir
        .or(f.state_dir)
        .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("poolwatch-agent-state"));
    // The flag is checked by clap; the file's value must be judged alike
    // (a typo there used to fall back to text silently).
    if let Some(fmt) = f.log_format.as_deref()
        && !matches!(fmt, "text" | "json")
    {
        return Err(usage(format!(
            "config log_format: '{fmt}' is not text or json"
        )));
    }
    let json = a.log_format.or(f.log_format).is_some_and(|f| f == "json");
    let traceroute: TracerouteMode = match a.traceroute.or(f.traceroute) {
        Some(t) => t.parse().map_err(usage)?,
        None => TracerouteMode::Auto,
    };
    let cfg = AgentConfig {
        api,
        key,
        state_dir,
        policy,
        ntp_port: a.ntp_port.or(f.ntp_port).unwrap_or(123),
        source,
        ipv4: !a.no_ipv4 && f.ipv4.unwrap_or(true),
        ipv6: !a.no_ipv6 && f.ipv6.unwrap_or(true),
        once: a.once,
        concurrency: a
            .concurrency
            .map(|c| c as usize)
            .or(f.concurrency)
            .unwrap_or(100),
        pipeline: a.pipeline as usize,
        clock_retry: a.clock_retry,
        backoff_min: a.backoff_min,
        backoff_max: a.backoff_max.max(a.backoff_min),
    };
    Ok((cfg, metrics, json, traceroute))
}

pub async fn run(args: Args) -> Result<ExitCode> {
    let (cfg, metrics, json, traceroute) = build(args)?;
    init_logging(json);
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
    tracing::info!(
        "agent starting: service {}, state in {}",
        cfg.api,
        cfg.state_dir.display()
    );
    Agent::new(cfg, shutdown.clone())?
        .with_traceroute(traceroute)
        .run()
        .await?;
    shutdown.cancel();
    Ok(ExitCode::SUCCESS)
}
