//! `poolwatch admin`: manage servers, monitors and zones in the store that
//! `serve` uses (same --data-dir / --database-url / --config).

use crate::serve_cmd::{StoreArgs, StoreSetup, now};
use crate::util::usage;
use anyhow::Result;
use clap::Subcommand;
use server::admin::{self, AddMonitor, AddServer, AdminError};
use std::process::ExitCode;
use store::{GlobalStatus, Store};

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
  poolwatch admin account add acme
  poolwatch admin account contact acme --email noc@acme.example --webhook https://hooks.acme.example/pool
  poolwatch admin account set acme --admin";

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
    /// Add accounts and set where their alerts go.
    #[command(subcommand)]
    Account(AccountCommand),
}

#[derive(Subcommand, Debug)]
enum AccountCommand {
    /// Add an account (nothing changes if it exists).
    Add { name: String },
    /// Set where alerts about the account's servers go. An omitted flag
    /// keeps its value; '' clears it.
    Contact {
        name: String,
        /// E-mail address for alerts (sent when serve has --smtp-url).
        #[arg(long, value_name = "ADDRESS")]
        email: Option<String>,
        /// URL that gets each alert as a JSON POST.
        #[arg(long, value_name = "URL")]
        webhook: Option<String>,
    },
    /// Show an account's contacts.
    Show { name: String },
    /// Make an account a pool admin (its members may use /manage/admin),
    /// disable it (its servers leave DNS, its API tokens stop working), or
    /// give it its own monitor limit.
    Set {
        name: String,
        #[arg(long, conflicts_with = "no_admin")]
        admin: bool,
        #[arg(long)]
        no_admin: bool,
        #[arg(long, conflicts_with = "enabled")]
        disabled: bool,
        #[arg(long)]
        enabled: bool,
        /// Monitors (`agent setup` registrations) the account may have,
        /// over serve's --max-monitors-per-account; `default` goes back to it.
        #[arg(long, value_name = "N|default", value_parser = parse_max_monitors)]
        max_monitors: Option<MaxMonitors>,
    },
}

/// An account's own monitor limit; `None`: serve's default.
#[derive(Debug, Clone, Copy)]
struct MaxMonitors(Option<u32>);

fn parse_max_monitors(s: &str) -> Result<MaxMonitors, String> {
    match s.trim() {
        "default" => Ok(MaxMonitors(None)),
        n => match n.parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(MaxMonitors(Some(n))),
            _ => Err(format!("'{s}' is not 1 to 10000 or 'default'")),
        },
    }
}

fn parse_status(s: &str) -> Result<GlobalStatus, String> {
    s.parse()
        .map_err(|e: store::ParseGlobalStatusError| e.to_string())
}

#[derive(Subcommand, Debug)]
enum MonitorCommand {
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
fn monitor_settings(
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
fn parse_ms(s: &str) -> Result<u64, String> {
    crate::settings::HumanDuration::parse(s)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Subcommand, Debug)]
enum ServerCommand {
    /// Add a server; its zones come from GeoIP (--geoip) or --zone.
    Add {
        ip: String,
        /// Country code (de, uk, us…) when GeoIP does not know the address
        /// or is wrong.
        #[arg(long, value_name = "CC")]
        zone: Option<String>,
        /// Connection speed in kbit/s; the DNS weight. 0 = monitor only.
        #[arg(long, value_name = "KBIT", default_value_t = 10_000)]
        netspeed: i64,
        /// Account the server belongs to (created if new).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// Accept loopback, private and documentation addresses (labs).
        #[arg(long)]
        allow_private: bool,
    },
    /// List every server with its score and DNS status.
    List,
    /// Show one server and its monitors.
    Show { ip: String },
    /// Schedule a server's deletion (it leaves DNS 14 days before).
    Remove {
        ip: String,
        /// Deletion date, YYYY-MM-DD [default: 3 days from today].
        #[arg(long, value_name = "DATE", conflicts_with = "cancel")]
        on: Option<String>,
        /// Cancel a scheduled deletion instead.
        #[arg(long)]
        cancel: bool,
    },
    /// Change a server's netspeed.
    Set {
        ip: String,
        /// Connection speed in kbit/s; 0 = monitor only.
        #[arg(long, value_name = "KBIT")]
        netspeed: i64,
    },
}

#[derive(Subcommand, Debug)]
enum ZoneCommand {
    /// Active (in DNS) and registered servers per zone.
    List {
        /// Also zones without any server.
        #[arg(long)]
        all: bool,
    },
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
        _ => {}
    }
    let store = setup.open_store().await?;
    let result = match args.command {
        AdminCommand::Monitor(c) => monitor(&store, c).await,
        AdminCommand::Server(c) => server_cmd(&store, setup.geoip.as_ref(), c).await,
        AdminCommand::Zone(ZoneCommand::List { all }) => zones(&store, all).await,
        AdminCommand::Account(c) => account(&store, c).await,
    };
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn monitor(store: &Store, c: MonitorCommand) -> Result<()> {
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

async fn server_cmd(store: &Store, geoip: Option<&geo::GeoIp>, c: ServerCommand) -> Result<()> {
    let now = now();
    match c {
        ServerCommand::Add {
            ip,
            zone,
            netspeed,
            account,
            allow_private,
        } => {
            let ip = ip_arg(&ip)?;
            let s = admin::add_server(
                store,
                geoip,
                AddServer {
                    ip,
                    zone,
                    netspeed,
                    account,
                    allow_private,
                },
                now,
            )
            .await
            .map_err(admin_err)?;
            println!(
                "server {} added (id {}, zones {}, netspeed {} kbit)",
                s.ip,
                s.id,
                s.zones.join(" "),
                s.netspeed
            );
        }
        ServerCommand::List => {
            let servers = store.list_servers().await?;
            println!(
                "{:<39} {:>6} {:<6} {:>10} {:<10} ZONES",
                "IP", "SCORE", "IN DNS", "KBIT", "DELETION"
            );
            for s in servers {
                let in_dns = scoring::in_dns(s.score, s.netspeed, s.deletion_on, now);
                println!(
                    "{:<39} {:>6.1} {:<6} {:>10} {:<10} {}",
                    s.ip,
                    s.score,
                    if in_dns { "yes" } else { "no" },
                    s.netspeed,
                    s.deletion_on.map(admin::format_date).unwrap_or_default(),
                    s.zones.join(" ")
                );
            }
        }
        ServerCommand::Show { ip } => {
            let ip = ip_arg(&ip)?;
            let s = store
                .server_by_ip(ip)
                .await?
                .ok_or_else(|| usage(format!("server {ip} is not registered")))?;
            let in_dns = scoring::in_dns(s.score, s.netspeed, s.deletion_on, now);
            println!("server    {} (id {}, IPv{})", s.ip, s.id, s.ip_version);
            println!("score     {:.1} ({})", s.score, ago(s.score_ts, now));
            println!("in DNS    {}", if in_dns { "yes" } else { "no" });
            println!("netspeed  {} kbit", s.netspeed);
            println!("zones     {}", s.zones.join(" "));
            if let Some(d) = s.deletion_on {
                println!("deletion  {}", admin::format_date(d));
            }
            let monitors = store.server_monitors(s.id).await?;
            if !monitors.is_empty() {
                println!();
                println!(
                    "{:<20} {:<10} {:>6} {:>9} LAST",
                    "MONITOR", "STATUS", "SCORE", "RTT ms"
                );
                for m in monitors {
                    println!(
                        "{:<20} {:<10} {:>6.1} {:>9} {}",
                        m.name,
                        m.status.as_str(),
                        m.score,
                        m.rtt
                            .map(|r| format!("{:.1}", r * 1000.0))
                            .unwrap_or_default(),
                        ago(m.score_ts, now)
                    );
                }
            }
        }
        ServerCommand::Remove { ip, on, cancel } => {
            let ip = ip_arg(&ip)?;
            let today = admin::today(now);
            let when = match (cancel, on) {
                (true, _) => None,
                (false, Some(d)) => {
                    let t = admin::parse_date(&d).map_err(admin_err)?;
                    if t < today {
                        return Err(usage(format!("{d} is in the past")));
                    }
                    Some(t)
                }
                (false, None) => Some(today + 3 * 86_400),
            };
            store
                .set_deletion(ip, when)
                .await
                .map_err(|e| admin_err(e.into()))?;
            match when {
                Some(t) => println!(
                    "server {ip} will be deleted on {}; it leaves DNS 14 days before that",
                    admin::format_date(t)
                ),
                None => println!("deletion of server {ip} cancelled"),
            }
        }
        ServerCommand::Set { ip, netspeed } => {
            let ip = ip_arg(&ip)?;
            if !(0..=100_000_000).contains(&netspeed) {
                return Err(usage(format!(
                    "netspeed {netspeed} kbit is out of range (0 to 100000000; 0 = monitor only)"
                )));
            }
            store
                .set_netspeed(ip, netspeed)
                .await
                .map_err(|e| admin_err(e.into()))?;
            println!("server {ip} netspeed is now {netspeed} kbit");
        }
    }
    Ok(())
}

fn print_account(a: &store::AccountRow) {
    println!("account {}", a.name);
    println!("  email    {}", a.email.as_deref().unwrap_or("-"));
    println!("  webhook  {}", a.webhook.as_deref().unwrap_or("-"));
}

async fn account(store: &Store, c: AccountCommand) -> Result<()> {
    match c {
        AccountCommand::Add { name } => {
            if name.trim().is_empty() {
                return Err(usage("the account name must not be empty"));
            }
            store.ensure_account(name.trim()).await?;
            println!("account {}", name.trim());
        }
        AccountCommand::Contact {
            name,
            email,
            webhook,
        } => {
            if email.is_none() && webhook.is_none() {
                return Err(usage("give --email and/or --webhook ('' clears one)"));
            }
            let a = admin::set_account_contact(store, &name, email.as_deref(), webhook.as_deref())
                .await
                .map_err(admin_err)?;
            print_account(&a);
        }
        AccountCommand::Set {
            name,
            admin: on,
            no_admin,
            disabled,
            enabled,
            max_monitors,
        } => {
            let flag = |yes: bool, no: bool| (yes || no).then_some(yes);
            if let Some(MaxMonitors(max)) = max_monitors {
                store
                    .set_account_max_monitors(&name, max)
                    .await
                    .map_err(|e| admin_err(e.into()))?;
                let shown = max.map_or("serve's default".to_string(), |n| n.to_string());
                println!("account {name}: at most {shown} monitors");
                if !(on || no_admin || disabled || enabled) {
                    return Ok(());
                }
            }
            let a = admin::set_account_flags(
                store,
                &name,
                flag(on, no_admin),
                flag(disabled, enabled),
                now(),
            )
            .await
            .map_err(admin_err)?;
            println!("account {}", a.name);
            println!("  admin     {}", a.is_admin);
            println!("  disabled  {}", a.disabled);
        }
        AccountCommand::Show { name } => match store.account_by_name(&name).await? {
            Some(a) => print_account(&a),
            None => return Err(usage(format!("no account '{name}'"))),
        },
    }
    Ok(())
}

async fn zones(store: &Store, all: bool) -> Result<()> {
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
