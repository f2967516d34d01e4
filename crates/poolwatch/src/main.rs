//! `poolwatch`: flags and wiring only. Every subcommand builds a config and
//! calls a library crate.

mod admin_cmd;
mod agent_cmd;
mod agent_setup_cmd;
mod alert_args;
mod check_cmd;
mod data_lock;
mod demo_cmd;
mod dns_cmd;
mod http_args;
mod manage_args;
mod policy_cmd;
mod policy_simulate_cmd;
mod rrl_args;
mod selector_args;
mod serve_cmd;
mod settings;
mod sim_cmd;
mod util;

use clap::{CommandFactory, FromArgMatches, Subcommand};
use std::process::ExitCode;

/// Monitoring, scoring and GeoDNS for a pool of public NTP servers.
#[derive(clap::Parser)]
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
    /// What-if scoring: replay stored samples or simulate a pool under other policies.
    Policy(policy_cmd::Args),
    /// Answer DNS for the pool zone from a central service's zone data (scale-out).
    Dns(dns_cmd::Args),
}

fn main() -> ExitCode {
    // Each setting's help also shows its TOML key; the settings are read
    // from the matches (with each value's source), not from `Cli`.
    let cmd = settings::with_config_keys(Cli::command());
    let matches = cmd.clone().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let (name, sub) = matches.subcommand().expect("a subcommand is required");
    let sub_cmd = cmd.find_subcommand(name).expect("parsed subcommand exists");
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
            Command::Demo(_) => demo_cmd::run(sub_cmd, sub).await,
            Command::Check(a) => check_cmd::run(a).await,
            Command::Sim(a) => sim_cmd::run(a).await,
            Command::Serve(_) => serve_cmd::run(sub_cmd, sub).await,
            Command::Admin(a) => admin_cmd::run(a, sub_cmd, sub).await,
            Command::Agent(a) => agent_cmd::run(a, sub_cmd, sub).await,
            Command::Policy(a) => policy_cmd::run(a, sub_cmd, sub).await,
            Command::Dns(a) => dns_cmd::run(a, sub_cmd, sub).await,
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
