//! `poolwatch`: flags and wiring only. Every subcommand builds a config and
//! calls a library crate.

mod admin_cmd;
mod agent_cmd;
mod alert_args;
mod check_cmd;
mod demo_cmd;
mod dns_cmd;
mod http_args;
mod rrl_args;
mod selector_args;
mod serve_cmd;
mod sim_cmd;
mod util;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Monitoring, scoring and GeoDNS for a pool of public NTP servers.
#[derive(Parser)]
#[command(name = "poolwatch", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole system on this machine: service, simulated servers, agents.
    Demo(demo_cmd::Args),
    /// Check NTP servers once and print what each one answered.
    Check(check_cmd::Args),
    /// Run simulated NTP servers on loopback (labs, demos and tests).
    Sim(sim_cmd::Args),
    /// Run the central service: monitor API, scorer, data API and metrics.
    Serve(Box<serve_cmd::Args>),
    /// Manage servers, monitors and zones in the store.
    Admin(admin_cmd::Args),
    /// Run a monitor: check the servers the central service assigns and report.
    Agent(agent_cmd::Args),
    /// Answer DNS for the pool zone from a central service's zone data (scale-out).
    Dns(dns_cmd::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("poolwatch: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Demo(a) => demo_cmd::run(a).await,
            Command::Check(a) => check_cmd::run(a).await,
            Command::Sim(a) => sim_cmd::run(a).await,
            Command::Serve(a) => serve_cmd::run(*a).await,
            Command::Admin(a) => admin_cmd::run(a).await,
            Command::Agent(a) => agent_cmd::run(a).await,
            Command::Dns(a) => dns_cmd::run(a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = util::exit_code(&e);
            eprintln!("poolwatch: {e:#}");
            ExitCode::from(code)
        }
    }
}
