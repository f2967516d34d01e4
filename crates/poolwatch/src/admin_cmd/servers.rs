//! `admin server`: add, list, show, change and remove servers.

use super::{admin_err, ago, ip_arg};
use crate::serve_cmd::now;
use crate::util::usage;
use anyhow::Result;
use clap::Subcommand;
use server::admin::{self, AddServer};
use store::Store;

#[derive(Subcommand, Debug)]
pub(super) enum ServerCommand {
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

pub(super) async fn server_cmd(
    store: &Store,
    geoip: Option<&geo::GeoIp>,
    c: ServerCommand,
) -> Result<()> {
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
