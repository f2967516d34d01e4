//! `poolwatch sim`: run a fleet of simulated NTP servers until Ctrl-C.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run simulated NTP servers described by a TOML fleet file.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Fleet description (TOML).
    #[arg(long, value_name = "FILE.toml")]
    pub fleet: PathBuf,
}

pub async fn run(_args: Args) -> Result<ExitCode> {
    anyhow::bail!("not built yet")
}
