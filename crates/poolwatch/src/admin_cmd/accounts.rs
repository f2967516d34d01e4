//! `admin account`: accounts, their alert contacts, admin and disabled flags
//! and monitor limit.

use super::admin_err;
use crate::serve_cmd::now;
use crate::util::usage;
use anyhow::Result;
use clap::Subcommand;
use server::admin;
use store::Store;

#[derive(Subcommand, Debug)]
pub(super) enum AccountCommand {
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
pub(super) struct MaxMonitors(Option<u32>);

pub(super) fn parse_max_monitors(s: &str) -> Result<MaxMonitors, String> {
    match s.trim() {
        "default" => Ok(MaxMonitors(None)),
        n => match n.parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(MaxMonitors(Some(n))),
            _ => Err(format!("'{s}' is not 1 to 10000 or 'default'")),
        },
    }
}

pub(super) fn print_account(a: &store::AccountRow) {
    println!("account {}", a.name);
    println!("  email    {}", a.email.as_deref().unwrap_or("-"));
    println!("  webhook  {}", a.webhook.as_deref().unwrap_or("-"));
}

pub(super) async fn account(store: &Store, c: AccountCommand) -> Result<()> {
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
