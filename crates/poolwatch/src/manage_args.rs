//! `serve`'s flags for operators' accounts and servers (`[manage]` in the
//! file).

#[derive(clap::Args, Debug, Clone)]
#[allow(dead_code)] // declares flags; settings::load reads them by id
#[command(next_help_heading = "Operators (/manage)")]
pub struct ManageArgs {
    /// Whether an unknown address that signs in gets an account of its
    /// own: open or closed (only members and invited addresses) [default:
    /// open]. Sign-in links go out through --smtp-url; without it sign-in
    /// is off.
    #[arg(
        long,
        id = "manage.signup",
        value_name = "open|closed",
        env = "POOLWATCH_SIGNUP"
    )]
    signup: Option<String>,

    /// A session unused this long ends [default: 2h].
    #[arg(
        long,
        id = "manage.session_idle",
        value_name = "DURATION",
        env = "POOLWATCH_SESSION_IDLE"
    )]
    session_idle: Option<String>,

    /// A session ends this long after sign-in, used or not [default: 7d].
    #[arg(
        long,
        id = "manage.session_max_age",
        value_name = "DURATION",
        env = "POOLWATCH_SESSION_MAX_AGE"
    )]
    session_max_age: Option<String>,

    /// Servers one account may have [default: 20].
    #[arg(
        long,
        id = "manage.max_servers_per_account",
        value_name = "N",
        env = "POOLWATCH_MAX_SERVERS_PER_ACCOUNT"
    )]
    max_servers_per_account: Option<String>,

    /// Unverified servers an account may have before it must verify one
    /// [default: 2].
    #[arg(
        long,
        id = "manage.max_unverified",
        value_name = "N",
        env = "POOLWATCH_MAX_UNVERIFIED"
    )]
    max_unverified: Option<String>,

    /// Monitors one account may have: each `agent setup` accepted for it
    /// is one, with its IPv4 and IPv6 rows; an account's own limit
    /// (accounts.max_monitors) overrides it [default: 3].
    #[arg(
        long,
        id = "manage.max_monitors_per_account",
        value_name = "N",
        env = "POOLWATCH_MAX_MONITORS_PER_ACCOUNT"
    )]
    max_monitors_per_account: Option<String>,

    /// Let operators add loopback, private and documentation addresses,
    /// and monitors register from them (labs and the demo only).
    #[arg(
        long,
        id = "manage.allow_private",
        env = "POOLWATCH_ALLOW_PRIVATE",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    allow_private: bool,
}
