//! `poolwatch sim`: run a fleet of simulated NTP servers until Ctrl-C.

use crate::util::usage;
use anyhow::{Context, Result};
use sim::{Fleet, RunningFleet};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Fleet file:
  seed = 42                                  # optional: reproducible loss
  [[server]]
  addr = \"127.0.0.1:11123\"                   # port 0 = any free port
  behaviour = \"good\"                         # or silent, malformed, wrong-origin,
                                             #    other-address, rate-limited
  [[server]]
  addr = \"[::1]:11123\"
  behaviour = { offset = 0.25, loss = 0.5, delay_ms = 100 }
  [generate]                                 # many servers at once
  count = 10000
  base = \"127.1.0.1\"
  port = 11123
Behaviour fields (combinable): offset, drift_ppm, stratum, leap, refid, kod,
silent, loss, drop_first, drop_from, path_loss = { \"127.0.4.3\" = 0.5 },
delay_ms, malformed, wrong_origin,
reply_from, rate_limit = { average = 8, minimum = 2, burst = 1, kod = true }
(like ntpd's `discard average 3 minimum 2` + `restrict ... kod limited`: a
check of 4 queries 2 s apart gets only its first answered).
See examples/fleet.toml.

Examples:
  poolwatch sim --fleet examples/fleet.toml
  poolwatch sim --fleet big.toml --write-list servers.txt &
  poolwatch check --lab --file servers.txt --samples 1";

/// Above this many servers, print a summary instead of one line each.
const LIST_LIMIT: usize = 50;

/// Run simulated NTP servers described by a TOML fleet file, on loopback or
/// private addresses, until Ctrl-C or SIGTERM. Prints each server's bound
/// address and behaviour (a summary for big fleets), then a line starting
/// with `ready`.
///
/// Fleet file: `[[server]]` tables with `addr = "127.0.0.1:11123"` (port 0
/// picks a free one) and `behaviour = "good"` or a table such as
/// `{ offset = 0.25, loss = 0.5, delay_ms = 100 }`; `[generate]` makes many
/// servers at once. See examples/fleet.toml for every behaviour.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Fleet description (TOML).
    #[arg(long, value_name = "FILE.toml")]
    pub fleet: PathBuf,
    /// Also write the bound addresses, one per line, to this file (input
    /// for `poolwatch check --file`).
    #[arg(long, value_name = "LIST")]
    pub write_list: Option<PathBuf>,
}

pub async fn run(args: Args) -> Result<ExitCode> {
    let path = args.fleet.display();
    let fleet = Fleet::load(&args.fleet).map_err(|e| usage(format!("fleet file {path}: {e}")))?;
    let running = fleet.spawn().await?;
    if let Some(list) = &args.write_list {
        let text: String = running.addrs().iter().map(|a| format!("{a}\n")).collect();
        std::fs::write(list, text).with_context(|| format!("cannot write {}", list.display()))?;
    }
    // Signals first, so that a SIGTERM right after "ready" is handled.
    let stop = stop_signal()?;
    print_fleet(&running);
    println!(
        "ready: {} simulated NTP servers (Ctrl-C or SIGTERM to stop)",
        running.servers().len()
    );
    stop.await;
    let t = running.totals();
    eprintln!(
        "poolwatch sim: stopping; {} requests received, {} answered",
        t.received, t.answered
    );
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn print_fleet(running: &RunningFleet) {
    let servers = running.servers();
    if servers.len() <= LIST_LIMIT {
        for s in servers {
            let label = s
                .name
                .as_ref()
                .map(|n| format!("{n}: "))
                .unwrap_or_default();
            println!("{:<28} {label}{}", s.addr.to_string(), s.behaviour);
        }
        return;
    }
    let mut by_behaviour: BTreeMap<String, usize> = BTreeMap::new();
    for s in servers {
        *by_behaviour.entry(s.behaviour.to_string()).or_default() += 1;
    }
    println!(
        "{} servers from {} to {}",
        servers.len(),
        servers[0].addr,
        servers[servers.len() - 1].addr
    );
    for (behaviour, n) in by_behaviour {
        println!("{n:>8} {behaviour}");
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
