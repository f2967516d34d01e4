//! `admin monitor`: add, list, approve, pause, set up and revoke monitors.

use super::{admin_err, ago, ip_arg};
use crate::serve_cmd::now;
use crate::util::usage;
use anyhow::Result;
use clap::Subcommand;
use server::admin::{self, AddMonitor};
use store::{GlobalStatus, Store};

pub(super) fn parse_status(s: &str) -> Result<GlobalStatus, String> {
    s.parse()
        .map_err(|e: store::ParseGlobalStatusError| e.to_string())
}

#[derive(Subcommand, Debug)]
pub(super) enum MonitorCommand {
    /// Add a monitor and print its key (shown only this once).
    Add {
        /// Name: letters, digits and '-' (used in ?monitor=NAME and metrics).
        name: String,
        /// The address the monitor's checks come from.
        #[arg(long, value_name = "IP")]
        ip: String,
        /// Where it is, for people ("Frankfurt, DE").
        #[arg(long, value_name = "TEXT", default_value = "")]
        location: String,
        /// Account the monitor belongs to (created if new).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// pending, testing, active, paused or deleted. Only testing and
        /// active monitors get work.
        #[arg(long, value_name = "STATUS", default_value = "active", value_parser = parse_status)]
        status: GlobalStatus,
    },
    /// List every monitor.
    List,
    /// Give a monitor a new key (printed only this once); its old key
    /// stops working at once. For a key that leaked or was lost.
    RotateKey { name: String },
    /// Approve a pending monitor: pending → testing (the selector promotes
    /// it to active). A monitor from `agent setup` has a row per address
    /// family (NAME and NAME-v6): approving either name approves both.
    Approve { name: String },
    /// Change a monitor's status (e.g. pause it) and its own check
    /// settings (over serve's; the agent takes them up at its next config
    /// refresh, within 5 minutes). Out of range → exit 2, nothing stored.
    #[command(arg_required_else_help = true)]
    Set {
        name: String,
        /// pending, testing, active, paused or deleted.
        #[arg(long, value_name = "STATUS", value_parser = parse_status)]
        status: Option<GlobalStatus>,
        /// Queries per check, 1 to 16.
        #[arg(long, value_name = "N")]
        samples: Option<u32>,
        /// Pause between a check's queries, at most 1m (e.g. 2s).
        #[arg(long, value_name = "DURATION", value_parser = parse_ms)]
        sample_interval: Option<u64>,
        /// Wait for each answer, more than 0 and at most 1m (e.g. 3s).
        #[arg(long, value_name = "DURATION", value_parser = parse_ms)]
        timeout: Option<u64>,
        /// Servers per batch, 1 to 1000.
        #[arg(long, value_name = "N")]
        batch_size: Option<u32>,
        /// Drop the monitor's own check settings first (serve's apply).
        #[arg(long)]
        clear: bool,
    },
    /// Revoke a monitor (status deleted): its key and access tokens are
    /// refused (401) from its next call.
    Revoke { name: String },
}

/// `monitor set`'s check settings from its flags.
pub(super) fn monitor_settings(
    samples: Option<u32>,
    sample_interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    batch_size: Option<u32>,
) -> admin::MonitorSettings {
    admin::MonitorSettings {
        samples,
        sample_interval_ms,
        timeout_ms,
        batch_size,
    }
}

/// A duration flag in milliseconds.
pub(super) fn parse_ms(s: &str) -> Result<u64, String> {
    crate::settings::HumanDuration::parse(s)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(super) async fn monitor(store: &Store, c: MonitorCommand) -> Result<()> {
    let now = now();
    match c {
        MonitorCommand::Add {
            name,
            ip,
            location,
            account,
            status,
        } => {
            let ip = ip_arg(&ip)?;
            let (m, key) = admin::add_monitor(
                store,
                AddMonitor {
                    name,
                    ip,
                    location,
                    account,
                    status,
                },
                now,
            )
            .await
            .map_err(admin_err)?;
            eprintln!(
                "monitor {} added (id {}, status {}). Its key follows; it is shown only \
                 now and cannot be shown again (the store keeps only its hash):",
                m.name, m.id, m.status
            );
            println!("{key}");
            eprintln!("run the agent with: poolwatch agent --api URL --key KEY");
        }
        MonitorCommand::List => {
            let ms = store.list_monitors().await?;
            println!(
                "{:>4}  {:<20} {:<8} {:<39} {:<11} {:<24} CLIENT",
                "ID", "NAME", "STATUS", "IP", "LAST SEEN", "LOCATION"
            );
            for m in ms {
                println!(
                    "{:>4}  {:<20} {:<8} {:<39} {:<11} {:<24} {}",
                    m.id,
                    m.name,
                    m.status.as_str(),
                    m.ip,
                    ago(m.last_seen, now),
                    m.location,
                    m.client_version.unwrap_or_default()
                );
            }
        }
        MonitorCommand::RotateKey { name } => {
            let (m, key) = admin::rotate_monitor_key(store, &name)
                .await
                .map_err(admin_err)?;
            eprintln!(
                "monitor {} (id {}) has a new key; the old one no longer works. The key \
                 follows; it is shown only now (the store keeps only its hash):",
                m.name, m.id
            );
            println!("{key}");
            eprintln!("give it to the agent (--key-file) and restart it");
        }
        MonitorCommand::Approve { name } => {
            let names = store
                .approve_monitor(&name, "admin:cli", now)
                .await
                .map_err(|e| admin_err(e.into()))?;
            println!("approved: {} (now testing)", names.join(", "));
        }
        MonitorCommand::Set {
            name,
            status,
            samples,
            sample_interval,
            timeout,
            batch_size,
            clear,
        } => {
            // Every value was judged before the store was opened.
            let set = monitor_settings(samples, sample_interval, timeout, batch_size);
            if status.is_none() && set.is_empty() && !clear {
                return Err(usage("give --status, a setting (--samples, …) or --clear"));
            }
            if !set.is_empty() || clear {
                let config =
                    admin::set_monitor_settings(store, &name, set, clear, "admin:cli", now)
                        .await
                        .map_err(admin_err)?;
                println!(
                    "monitor {name} settings: {}",
                    config.as_deref().unwrap_or("serve's defaults")
                );
            }
            if let Some(status) = status {
                store
                    .set_monitor_status(&name, status)
                    .await
                    .map_err(|e| admin_err(e.into()))?;
                println!("monitor {name} is now {status}");
            }
        }
        MonitorCommand::Revoke { name } => {
            store
                .set_monitor_status(&name, GlobalStatus::Deleted)
                .await
                .map_err(|e| admin_err(e.into()))?;
            println!(
                "monitor {name} is revoked: its key and tokens are refused from its next call"
            );
        }
    }
    Ok(())
}
