//! `poolwatch agent setup`: a volunteer's monitor joins the pool. The HTTP
//! side is `agent::setup`; this prints what the volunteer must do and
//! saves the credentials (`agent::credentials`).

use crate::util::usage;
use agent::credentials::{self, Credentials, Identity};
use agent::setup::{self, About, Family, MonitorCredential, RegistrationState, Secret, SetupError};
use anyhow::{Result, anyhow};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How often the agent asks whether the registration was accepted.
const POLL_EVERY: Duration = Duration::from_secs(3);

/// Join the pool: register this host (IPv4 and IPv6), wait until you
/// accept it on the site, save its credentials.
///
/// 1. Registers with the service (`--api`) once over IPv4 and once over
///    IPv6, so the service sees this host's address in each family (a
///    family the host or the service lacks is skipped, with a note).
/// 2. Prints a link and a short code. Open the link in a browser, signed
///    in to your account on the pool's site (or type the code on its
///    "accept a monitor" page), check the addresses shown, and accept the
///    monitor with a name and a location. The IPv4 monitor gets the name,
///    the IPv6 one NAME-v6.
/// 3. Meanwhile this command waits (asking every few seconds); once you
///    accepted, it saves the monitors' keys in DIR/credentials.json (mode
///    0600, the directory 0700) and exits 0.
/// 4. The pool's admins approve new monitors; until then they get no work.
///    Then run `poolwatch agent --state-dir DIR` (e.g. as the systemd
///    unit): it reads the credentials, no --key needed.
///
/// The registration expires after an hour (run setup again). The keys are
/// shown nowhere and can be collected only once.
#[derive(clap::Args, Debug)]
#[command(
    verbatim_doc_comment,
    after_help = "Example:\n  poolwatch agent setup --api https://pool.example.org --state-dir /var/lib/poolwatch-agent --name zrh1\n  poolwatch agent --state-dir /var/lib/poolwatch-agent"
)]
pub struct SetupArgs {
    /// Base URL of the central service.
    #[arg(long, env = "POOLWATCH_API", value_name = "URL")]
    api: String,
    /// Where to save the credentials [default: $STATE_DIRECTORY, else
    /// ./poolwatch-agent-state]: the same directory the agent runs with.
    #[arg(long, env = "POOLWATCH_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The name to suggest on the acceptance page (you can change it there).
    #[arg(long, value_name = "HINT")]
    name: Option<String>,
    /// Replace credentials already in the state directory (their monitors
    /// stay in the pool until an admin deletes them).
    #[arg(long)]
    force: bool,
}

pub async fn run(a: SetupArgs) -> Result<ExitCode> {
    let dir = a
        .state_dir
        .clone()
        .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("poolwatch-agent-state"));
    let file = dir.join(credentials::FILE);
    if file.exists() && !a.force {
        return Err(usage(format!(
            "{} exists: this host is set up already (run `poolwatch agent --state-dir {}`), \
             or pass --force to replace it",
            file.display(),
            dir.display()
        )));
    }
    let base = a.api.trim_end_matches('/').to_string();
    let secret = Secret::random();
    let about = About {
        hostname: setup::hostname(),
        name_hint: a.name.as_deref().unwrap_or_default().trim().to_string(),
    };
    println!("Registering this host with {base} …");
    let mut answer = None;
    let mut failures = Vec::new();
    for family in [Family::V4, Family::V6] {
        let n = family.number();
        match setup::register(&base, family, &secret, &about).await {
            Ok(Some(r)) => {
                println!("  IPv{n}: registered");
                answer.get_or_insert(r);
            }
            Ok(None) => println!("  IPv{n}: skipped, the service has no IPv{n} address"),
            Err(e) => {
                println!("  IPv{n}: skipped: {e}");
                failures.push(format!("IPv{n}: {e}"));
            }
        }
    }
    let Some(reg) = answer else {
        return Err(anyhow!(
            "could not register over either address family ({})",
            failures.join("; ")
        ));
    };
    println!();
    println!("Open this link in a browser, signed in to your account, and accept the monitor:");
    println!();
    println!("    {}", reg.url);
    println!();
    println!(
        "or enter the code {} on the site's \"accept a monitor\" page.",
        reg.code
    );
    println!(
        "It expires in {} minutes. Waiting for the acceptance (Ctrl-C to stop) …",
        reg.expires_in / 60
    );
    let outcome = tokio::select! {
        r = wait(&base, &secret) => r?,
        _ = crate::util::shutdown_signal() => {
            eprintln!("stopped; the registration expires by itself. Run setup again to start over.");
            return Ok(ExitCode::from(130));
        }
    };
    match outcome {
        Done::Accepted(creds) => {
            let identities: Vec<Identity> = creds
                .into_iter()
                .map(|c| Identity {
                    family: c.family,
                    name: c.name,
                    key: c.key,
                })
                .collect();
            let names: Vec<String> = identities
                .iter()
                .map(|i| format!("{} (IPv{})", i.name, i.family))
                .collect();
            credentials::save(
                &dir,
                &Credentials {
                    api: base,
                    identities,
                },
            )?;
            println!("Accepted: {}.", names.join(", "));
            println!("Credentials saved in {}.", file.display());
            println!(
                "The monitor is waiting for approval by the pool's admins; then run \
                 poolwatch agent --state-dir {}",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Done::Expired => {
            eprintln!(
                "The registration expired before it was accepted: run `poolwatch agent setup` again."
            );
            Ok(ExitCode::from(1))
        }
        Done::Delivered => Err(anyhow!(
            "the credentials of this registration were collected already, but not by this \
             command: run `poolwatch agent setup` again, and ask the pool's admins to delete \
             the monitors it made"
        )),
    }
}

enum Done {
    Accepted(Vec<MonitorCredential>),
    Expired,
    Delivered,
}

/// Polls until the registration is decided. A service that is down or
/// busy for a while is asked again; one that refuses is not.
async fn wait(base: &str, secret: &Secret) -> Result<Done> {
    let mut told = false;
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        match setup::poll(base, secret).await {
            Ok(s) => match s.state {
                RegistrationState::Waiting => {}
                RegistrationState::Accepted => return Ok(Done::Accepted(s.credentials)),
                RegistrationState::Expired => return Ok(Done::Expired),
                RegistrationState::Delivered => return Ok(Done::Delivered),
            },
            Err(SetupError::Refused { status, detail })
                if status != 429 && !(500..600).contains(&status) =>
            {
                return Err(anyhow!(
                    "the service refused the status poll ({status}): {detail}"
                ));
            }
            Err(e) => {
                if !told {
                    eprintln!("cannot ask the service now ({e}); trying again");
                    told = true;
                }
            }
        }
    }
}
