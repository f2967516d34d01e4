//! `admin zone`: the zones and their server counts.

use crate::serve_cmd::now;
use anyhow::Result;
use clap::Subcommand;
use store::Store;

#[derive(Subcommand, Debug)]
pub(super) enum ZoneCommand {
    /// Active (in DNS) and registered servers per zone.
    List {
        /// Also zones without any server.
        #[arg(long)]
        all: bool,
    },
}

pub(super) async fn zones(store: &Store, all: bool) -> Result<()> {
    let zones = store.zone_list(now()).await?;
    println!(
        "{:<14} {:<14} {:>9} {:>9} {:>9} {:>9}  NAME",
        "ZONE", "PARENT", "V4 ACT", "V4 REG", "V6 ACT", "V6 REG"
    );
    for z in zones {
        if !all && z.v4_registered == 0 && z.v6_registered == 0 {
            continue;
        }
        println!(
            "{:<14} {:<14} {:>9} {:>9} {:>9} {:>9}  {}",
            z.name,
            z.parent.unwrap_or_default(),
            z.v4_active,
            z.v4_registered,
            z.v6_active,
            z.v6_registered,
            z.description
        );
    }
    Ok(())
}
