//! What the manage side is told: plain settings, below its handlers.

use std::time::Duration;

/// Whether an unknown address that signs in gets a new account: the
/// store's policy, which it applies when a link is used.
pub use store::SignupPolicy as Signup;

/// Limits and lifetimes of accounts, sessions and operator-added servers.
#[derive(Debug, Clone, PartialEq)]
pub struct ManageSettings {
    pub signup: Signup,
    /// A sign-in link works this long, once.
    pub signin_link_ttl: Duration,
    /// An invitation link works this long, once.
    pub invite_ttl: Duration,
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub session_absolute: Duration,
    /// Servers one account may have.
    pub max_servers_per_account: u32,
    /// Unverified servers an account may have before it must verify.
    pub max_unverified: u32,
    /// Accept loopback, private and documentation addresses (labs, demo):
    /// for servers operators add and for monitors that register.
    pub allow_private: bool,
    /// Monitors (agents, each with its IPv4 and IPv6 rows) one account may
    /// have, unless the account has its own limit (`accounts.max_monitors`).
    pub max_monitors_per_account: u32,
}

impl Default for ManageSettings {
    fn default() -> Self {
        ManageSettings {
            signup: Signup::Open,
            signin_link_ttl: Duration::from_secs(15 * 60),
            invite_ttl: Duration::from_secs(7 * 86_400),
            session_idle: Duration::from_secs(2 * 3600),
            session_absolute: Duration::from_secs(7 * 86_400),
            max_servers_per_account: 20,
            max_unverified: 2,
            allow_private: false,
            max_monitors_per_account: 3,
        }
    }
}
