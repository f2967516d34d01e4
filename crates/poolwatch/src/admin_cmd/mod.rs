//! `poolwatch admin`: manage servers, monitors and zones in the store that
//! `serve` uses (same --data-dir / --database-url / --config).
//!
//! This file holds the command line and the checks made before the store
//! is opened; one file per subcommand group: `monitors`, `servers`,
//! `accounts`, `zones`, `vendors`, `backup`, `export` (with
//! `export_formats`).

mod accounts;
mod backup;
mod export;
mod export_formats;
mod monitors;
mod servers;
mod vendors;
mod zones;

use crate::serve_cmd::{StoreArgs, StoreSetup};
use crate::util::usage;
use accounts::{AccountCommand, account};
use anyhow::Result;
use clap::Subcommand;
use export::ExportArgs;
use monitors::{MonitorCommand, monitor, monitor_settings};
use server::admin::{self, AdminError};
use servers::{ServerCommand, server_cmd};
use std::process::ExitCode;
use vendors::{VendorCommand, vendor};
use zones::{ZoneCommand, zones};

/// Manage servers, monitors and zones.
///
/// Works on the same store as `poolwatch serve`: give it the same
/// --data-dir, --database-url or --config (or POOLWATCH_* variables). A
/// refused command (bad address, unknown zone, bad date) changes nothing
/// and exits with status 2.
#[derive(clap::Args, Debug)]
#[command(after_long_help = ADMIN_EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,

    #[command(subcommand)]
    command: AdminCommand,
}

const ADMIN_EXAMPLES: &str = "\
Examples:
  poolwatch admin monitor add defra1 --ip 192.0.2.10 --location 'Frankfurt, DE'
  poolwatch admin monitor approve zrh1      # a volunteer's, after agent setup
  poolwatch admin server add 81.2.69.142 --geoip GeoLite2-Country.mmdb
  poolwatch admin server add 2001:db8::123 --zone de --netspeed 100000
  poolwatch admin server remove 81.2.69.142 --on 2030-01-31
  poolwatch admin zone list
  poolwatch admin vendor add debian         # debian.<zone>, 0-3.debian.<zone>
  poolwatch admin account add acme
  poolwatch admin account contact acme --email noc@acme.example --webhook https://hooks.acme.example/pool
  poolwatch admin account set acme --admin
  poolwatch admin backup /var/backups/poolwatch-$(date +%F).db   # SQLite, while serve runs
  poolwatch admin export --from 2026-11-01 --to 2026-11-30 --format parquet --out /srv/archive";

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Add, list, approve, pause, set up and revoke monitors.
    #[command(subcommand)]
    Monitor(MonitorCommand),
    /// Add, list, show, change and remove servers.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Show the zones and their server counts.
    #[command(subcommand)]
    Zone(ZoneCommand),
    /// Add, list and remove vendor zones (debian.<zone>, 0-3.debian.<zone>).
    #[command(subcommand)]
    Vendor(VendorCommand),
    /// Add accounts and set where their alerts go.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Copy the SQLite store to FILE while `serve` keeps running.
    ///
    /// The copy is one moment's consistent state (SQLite's VACUUM INTO),
    /// written as FILE.partial, checked (PRAGMA quick_check) and only then
    /// renamed to FILE; an existing FILE is never overwritten. Restore by
    /// stopping serve and putting the copy in place of DATA_DIR/poolwatch.db
    /// (and removing its -wal and -shm files). Keep DATA_DIR/ticket-secret
    /// too. PostgreSQL stores are backed up with pg_dump instead (see
    /// docs/deploying.md).
    Backup {
        /// Where to write the copy (a new file).
        #[arg(value_name = "FILE")]
        out: std::path::PathBuf,
    },
    // Its help is ExportArgs' doc comment.
    Export(ExportArgs),
}

/// Admin errors: the operator's mistakes exit 2, store failures 1.
fn admin_err(e: AdminError) -> anyhow::Error {
    match e {
        AdminError::Usage(m) => usage(m),
        AdminError::Store(e) => anyhow::Error::new(e),
    }
}

fn ip_arg(s: &str) -> Result<std::net::IpAddr> {
    admin::parse_ip(s).map_err(admin_err)
}

fn ago(ts: Option<i64>, now: i64) -> String {
    match ts {
        None => "never".into(),
        Some(t) => {
            let d = (now - t).max(0);
            if d < 120 {
                format!("{d}s ago")
            } else if d < 7200 {
                format!("{}m ago", d / 60)
            } else if d < 2 * 86_400 {
                format!("{}h ago", d / 3600)
            } else {
                format!("{}d ago", d / 86_400)
            }
        }
    }
}

pub async fn run(args: Args, cmd: &clap::Command, m: &clap::ArgMatches) -> Result<ExitCode> {
    // `serve`'s settings: the same store, the same file and variables.
    let (_, setup) = StoreSetup::load(cmd, m)?;
    // Input that needs no store is checked before opening it.
    match &args.command {
        AdminCommand::Monitor(MonitorCommand::Add { name, ip, .. }) => {
            admin::check_monitor_name(name).map_err(admin_err)?;
            ip_arg(ip)?;
        }
        AdminCommand::Monitor(MonitorCommand::Set {
            samples,
            sample_interval,
            timeout,
            batch_size,
            ..
        }) => monitor_settings(*samples, *sample_interval, *timeout, *batch_size)
            .check()
            .map_err(|(field, why)| usage(format!("--{}: {why}", field.replace('_', "-"))))
            .map(drop)?,
        AdminCommand::Account(AccountCommand::Contact { email, webhook, .. }) => {
            admin::check_contact(email.as_deref(), webhook.as_deref()).map_err(admin_err)?;
        }
        AdminCommand::Server(
            ServerCommand::Add { ip, .. }
            | ServerCommand::Show { ip }
            | ServerCommand::Remove { ip, .. }
            | ServerCommand::Set { ip, .. },
        ) => {
            ip_arg(ip)?;
        }
        AdminCommand::Vendor(VendorCommand::Add {
            name, zone, note, ..
        }) => {
            vendors::check_add(name, zone, note)?;
        }
        AdminCommand::Backup { out } => backup::check(out, setup.database_url.as_deref())?,
        AdminCommand::Export(a) => {
            a.check()?;
            // Reads only: a wrong --data-dir must not make an empty store.
            let db = setup.data_dir.join("poolwatch.db");
            if setup.database_url.is_none() && !db.exists() {
                return Err(usage(format!(
                    "--data-dir: no database at {}",
                    db.display()
                )));
            }
        }
        _ => {}
    }
    let store = setup.open_store().await?;
    let result = match args.command {
        AdminCommand::Monitor(c) => monitor(&store, c).await,
        AdminCommand::Server(c) => server_cmd(&store, setup.geoip.as_ref(), c).await,
        AdminCommand::Zone(ZoneCommand::List { all }) => zones(&store, all).await,
        AdminCommand::Vendor(c) => vendor(&store, c).await,
        AdminCommand::Account(c) => account(&store, c).await,
        AdminCommand::Backup { out } => backup::backup(&store, &out).await,
        AdminCommand::Export(a) => match a.check() {
            Ok(plan) => export::export(&store, plan).await,
            Err(e) => Err(e),
        },
    };
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}
