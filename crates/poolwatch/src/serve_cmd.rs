//! `poolwatch serve`: the central service.

use anyhow::Result;
use std::process::ExitCode;

/// Run the central service.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub async fn run(_args: Args) -> Result<ExitCode> {
    anyhow::bail!("not built yet")
}
