//! `admin vendor`: vendor zones (`debian.<zone>` with `0`–`3.debian.<zone>`),
//! each answering as the apex or a chosen pool zone does. The rules for a
//! name and a zone are `dns::check_vendor_name` and `dns::vendor_zone`.

use crate::serve_cmd::now;
use crate::util::usage;
use anyhow::{Result, anyhow};
use clap::Subcommand;
use server::admin::format_date;
use store::{Store, StoreError, VendorRow};

const VENDOR_EXAMPLES: &str = "\
A DNS server picks a change up at its next zone refresh: serve's own DNS
after --dns-refresh, `poolwatch dns` after its --refresh (30s by default).

Examples:
  poolwatch admin vendor add debian --note 'Debian, by ticket 42'
      # debian.<zone> and 0-3.debian.<zone> answer as <zone> and 0-3.<zone>
  poolwatch admin vendor add acme --zone de     # answers Germany's servers
  poolwatch admin vendor add acme --zone europe --replace
  poolwatch admin vendor list --format json
  poolwatch admin vendor remove acme";

#[derive(Subcommand, Debug)]
#[command(after_long_help = VENDOR_EXAMPLES)]
pub(super) enum VendorCommand {
    /// Add a vendor zone: NAME.<zone> and 0-3.NAME.<zone> answer as the
    /// apex (or --zone) and its 0-3 do, for the client's location.
    ///
    /// NAME is one lower-case DNS label that cannot clash with the zone's
    /// own names: not a number (0-3), not two letters (country codes, gb),
    /// not a continent or country, not starting with '_' (the debug names),
    /// not www (the pool's web site).
    #[command(after_long_help = VENDOR_EXAMPLES)]
    Add {
        /// The vendor's label, e.g. debian.
        name: String,
        /// The pool zone it answers from: @ (the apex), a continent
        /// (europe) or a country code (de).
        #[arg(long, value_name = "ZONE", default_value = "@")]
        zone: String,
        /// A note for operators (who asked for it, a ticket).
        #[arg(long, value_name = "TEXT", default_value = "")]
        note: String,
        /// Change the zone and note of an existing vendor instead of
        /// refusing it.
        #[arg(long)]
        replace: bool,
    },
    /// List the vendor zones.
    #[command(after_long_help = VENDOR_EXAMPLES)]
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Remove a vendor zone: its names answer NXDOMAIN after the next
    /// zone refresh.
    #[command(after_long_help = VENDOR_EXAMPLES)]
    Remove { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ListFormat {
    Table,
    Json,
}

/// The checks that need no store, made before it is opened: a refused
/// `add` stores nothing. Returns the zone as stored (`@`, `de`, `uk` for
/// `gb`).
pub(super) fn check_add(name: &str, zone: &str, note: &str) -> Result<String> {
    dns::check_vendor_name(name).map_err(usage)?;
    let zone = dns::vendor_zone(zone).map_err(|e| usage(format!("--zone: {e}")))?;
    if note.chars().count() > store::VENDOR_NOTE_MAX {
        return Err(usage(format!(
            "--note: at most {} characters",
            store::VENDOR_NOTE_MAX
        )));
    }
    Ok(zone)
}

fn print_table(vendors: &[VendorRow]) {
    println!("{:<24} {:<14} {:<10}  NOTE", "NAME", "ZONE", "ADDED");
    for v in vendors {
        println!(
            "{:<24} {:<14} {:<10}  {}",
            v.name,
            v.zone,
            format_date(v.created_on),
            v.note
        );
    }
}

pub(super) async fn vendor(store: &Store, c: VendorCommand) -> Result<()> {
    match c {
        VendorCommand::Add {
            name,
            zone,
            note,
            replace,
        } => {
            let zone = check_add(&name, &zone, &note)?;
            let v = store
                .add_vendor(&name, &zone, &note, replace, now())
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(m) => usage(format!("already exists: {m}")),
                    e => e.into(),
                })?;
            let answers = if v.zone == "@" { "the apex" } else { &v.zone };
            println!(
                "vendor {}: {0} and 0-3.{0} answer as {answers} (at the next zone refresh)",
                v.name
            );
        }
        VendorCommand::List { format } => {
            let vendors = store.vendors().await?;
            match format {
                ListFormat::Table => print_table(&vendors),
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&vendors)?),
            }
        }
        VendorCommand::Remove { name } => match store.remove_vendor(&name).await {
            Ok(()) => println!("vendor {name} removed (its names go at the next zone refresh)"),
            // Not a usage error: the command was right, the name is not there
            // (exit 1, as `rm` of a missing file).
            Err(StoreError::NotFound(_)) => {
                return Err(anyhow!(
                    "no vendor '{name}' (see `poolwatch admin vendor list`)"
                ));
            }
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}
