//! `poolwatch dns`: stand-alone GeoDNS fed from a central service.

use anyhow::Result;
use std::process::ExitCode;

/// Answer DNS for the pool zone.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub async fn run(_args: Args) -> Result<ExitCode> {
    anyhow::bail!("not built yet")
}
