//! `poolwatch check`: check servers once, the way a monitor does, and print
//! what each answered.

use crate::settings::HumanDuration;
use crate::util::usage;
use anyhow::Result;
use clap::ValueEnum;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use ntp::{CheckConfig, CheckResult, Sample, TargetPolicy};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Check NTP servers as a pool monitor does: `--samples` queries
/// `--interval` apart, each waiting `--timeout`; the best sample is reported
/// (an answer without error beats an error, an answer beats silence, then the
/// lowest round trip). Errors use the pool's codes: a Kiss-o'-Death code
/// (RATE, DENY, RSTR…), `i/o timeout`, `connection refused`,
/// `network unreachable`, `host unreachable` or `bad reply: <why>`.
///
/// Exit status: 0 when every server was checked (even if some failed),
/// 2 for usage errors (bad host, unreadable file, refused address).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  poolwatch check time.example.org\n  poolwatch check --lab 127.0.0.1:11123 '[::1]:11123' --format json\n  poolwatch check --file servers.txt --samples 1 --concurrency 500 --format csv"
)]
pub struct Args {
    /// Servers to check: IP, IP:PORT, [IPv6]:PORT or a host name.
    #[arg(value_name = "HOST[:PORT]")]
    pub hosts: Vec<String>,
    /// Read more servers from this file, one per line ('#' starts a comment).
    #[arg(long, value_name = "LIST")]
    pub file: Option<PathBuf>,
    /// Queries per server.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub samples: u32,
    /// Time between queries to the same server (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = HumanDuration::parse)]
    pub interval: Duration,
    /// How long to wait for each reply.
    #[arg(long, default_value = "3s", value_parser = HumanDuration::parse)]
    pub timeout: Duration,
    /// Servers checked at the same time.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,
    /// Port for servers given without one.
    #[arg(long, default_value_t = 123)]
    pub port: u16,
    /// Also allow loopback, private and link-local addresses.
    #[arg(long, conflicts_with = "lab")]
    pub allow_private: bool,
    /// Lab mode: only loopback and private addresses, every other refused.
    #[arg(long)]
    pub lab: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| usage(format!("cannot resolve {host}: {e}")))?;
    addrs
        .next()
        .ok_or_else(|| usage(format!("{host} has no addresses")))
}

/// Gather targets from arguments and `--file`, resolve them and apply the
/// address policy, all before the first packet is sent.
async fn targets(args: &Args, policy: TargetPolicy) -> Result<Vec<(String, SocketAddr)>> {
    let mut raw = args.hosts.clone();
    if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
        raw.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    if raw.is_empty() {
        return Err(usage("no servers given (pass HOST[:PORT]… or --file LIST)"));
    }
    let mut out = Vec::with_capacity(raw.len());
    for s in raw {
        let (host, port) = ntp::parse_host_port(&s, args.port).map_err(usage)?;
        let addr = resolve(&host, port).await?;
        policy.check(addr.ip()).map_err(|e| usage(e.to_string()))?;
        out.push((s, addr));
    }
    Ok(out)
}

fn sample_json(s: &Sample) -> serde_json::Value {
    json!({
        "ts": s.ts,
        "offset": s.offset,
        "rtt": s.rtt,
        "stratum": s.stratum,
        "leap": s.leap,
        "refid": s.refid,
        "error": s.error.as_ref().map(|e| e.to_string()),
        "no_response": s.no_response,
        "packet": s.packet,
    })
}

/// One JSON object for a server: the best sample's fields, then every sample.
pub fn result_json(r: &CheckResult) -> serde_json::Value {
    let mut v = r
        .best_sample()
        .map(sample_json)
        .unwrap_or_else(|| json!({}));
    let obj = v.as_object_mut().expect("object");
    obj.remove("packet");
    obj.remove("ts");
    obj.insert("server".into(), json!(r.server));
    obj.insert("addr".into(), json!(r.addr.to_string()));
    obj.insert(
        "samples".into(),
        r.samples.iter().map(sample_json).collect(),
    );
    v
}

fn fmt_ms(v: Option<f64>, signed: bool) -> String {
    match v {
        Some(x) if signed => format!("{:+.3}", x * 1000.0),
        Some(x) => format!("{:.3}", x * 1000.0),
        None => "-".into(),
    }
}

struct Output {
    format: Format,
    csv: Option<csv::Writer<std::io::Stdout>>,
}

impl Output {
    fn new(format: Format) -> Result<Output> {
        let mut out = Output { format, csv: None };
        match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(std::io::stdout());
                w.write_record([
                    "server", "addr", "offset", "rtt", "stratum", "leap", "refid", "error",
                    "samples",
                ])?;
                out.csv = Some(w);
            }
            Format::Table => println!(
                "{:<28} {:>12} {:>9} {:>3} {:>4} {:<16} ERROR",
                "SERVER", "OFFSET(ms)", "RTT(ms)", "ST", "LEAP", "REFID"
            ),
            Format::Json => {}
        }
        Ok(out)
    }

    fn write(&mut self, r: &CheckResult) -> Result<()> {
        let best = r.best_sample();
        let field = |f: fn(&Sample) -> Option<String>| best.and_then(f).unwrap_or_default();
        match self.format {
            Format::Json => {
                let mut stdout = std::io::stdout().lock();
                serde_json::to_writer(&mut stdout, &result_json(r))?;
                stdout.write_all(b"\n")?;
            }
            Format::Csv => {
                let w = self.csv.as_mut().expect("csv writer");
                w.write_record([
                    r.server.clone(),
                    r.addr.to_string(),
                    field(|s| s.offset.map(|v| format!("{v:.9}"))),
                    field(|s| s.rtt.map(|v| format!("{v:.9}"))),
                    field(|s| s.stratum.map(|v| v.to_string())),
                    field(|s| s.leap.map(|v| v.to_string())),
                    field(|s| s.refid.clone()),
                    field(|s| s.error.as_ref().map(|e| e.to_string())),
                    r.samples.len().to_string(),
                ])?;
                w.flush()?;
            }
            Format::Table => println!(
                "{:<28} {:>12} {:>9} {:>3} {:>4} {:<16} {}",
                r.server,
                fmt_ms(best.and_then(|s| s.offset), true),
                fmt_ms(best.and_then(|s| s.rtt), false),
                field(|s| s.stratum.map(|v| v.to_string())),
                field(|s| s.leap.map(|v| v.to_string())),
                field(|s| s.refid.clone()),
                field(|s| s.error.as_ref().map(|e| e.to_string())),
            ),
        }
        Ok(())
    }
}

pub async fn run(args: Args) -> Result<ExitCode> {
    let policy = if args.lab {
        TargetPolicy::Lab
    } else if args.allow_private {
        TargetPolicy::AllowPrivate
    } else {
        TargetPolicy::Public
    };
    let cfg = CheckConfig {
        samples: args.samples,
        sample_interval: args.interval,
        timeout: args.timeout,
        source: None,
    };
    let targets = targets(&args, policy).await?;
    let bar = if targets.len() > 5 && std::io::stderr().is_terminal() {
        let b = ProgressBar::new(targets.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} checked, {per_sec}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut out = Output::new(args.format)?;
    let mut results = futures::stream::iter(targets)
        .map(|(name, addr)| async move { ntp::check(name, addr, &cfg).await })
        .buffer_unordered(args.concurrency as usize);
    while let Some(r) = results.next().await {
        bar.suspend(|| out.write(&r))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}
