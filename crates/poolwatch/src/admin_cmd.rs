//! `poolwatch admin`: manage servers, monitors and zones.

use anyhow::Result;
use std::process::ExitCode;

/// Manage servers, monitors and zones.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub async fn run(_args: Args) -> Result<ExitCode> {
    anyhow::bail!("not built yet")
}
