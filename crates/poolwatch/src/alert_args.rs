//! `serve`'s flags for alerts to server accounts, e-mail and webhooks
//! (`[alerts]` in the file, but `public_url`).

#[derive(clap::Args, Debug, Clone)]
#[allow(dead_code)] // declares flags; settings::load reads them by id
#[command(next_help_heading = "Alerts")]
pub struct AlertArgs {
    /// Base URL of this service as the public reaches it; alerts link
    /// URL/scores/IP [default: http://LISTEN].
    #[arg(long, value_name = "URL", env = "POOLWATCH_PUBLIC_URL")]
    public_url: Option<String>,

    /// Send alert e-mail through this SMTP server. smtp://HOST[:PORT]:
    /// plain SMTP to a relay (port 25). smtp://USER:PASSWORD@HOST[:PORT]?tls=required:
    /// STARTTLS with a login (port 587). smtps://USER:PASSWORD@HOST[:PORT]:
    /// TLS from the start (port 465). Percent-encode '@' and ':' in the user
    /// and password; prefer the environment variable to keep the password
    /// out of `ps`. Without it alerts go to webhooks only.
    #[arg(
        long,
        id = "alerts.smtp_url",
        value_name = "URL",
        env = "POOLWATCH_SMTP_URL"
    )]
    smtp_url: Option<String>,

    /// Also trust this CA certificate (PEM) for the SMTP server's TLS
    /// certificate, e.g. a relay with a private CA. The system's roots are
    /// trusted either way.
    #[arg(
        long,
        id = "alerts.smtp_ca",
        value_name = "FILE",
        env = "POOLWATCH_SMTP_CA"
    )]
    smtp_ca: Option<String>,

    /// From address of alert e-mail, e.g. 'Pool <alerts@pool.example.org>'
    /// (needed with --smtp-url).
    #[arg(
        long,
        id = "alerts.from",
        value_name = "ADDRESS",
        env = "POOLWATCH_ALERT_FROM"
    )]
    alert_from: Option<String>,

    /// At most one alert per server this often; a failed delivery is tried
    /// again after it [default: 1h].
    #[arg(
        long,
        id = "alerts.interval",
        value_name = "DURATION",
        env = "POOLWATCH_ALERT_INTERVAL"
    )]
    alert_interval: Option<String>,

    /// How often servers are checked for alerts to send [default: 60s].
    #[arg(
        long,
        id = "alerts.check",
        value_name = "DURATION",
        env = "POOLWATCH_ALERT_CHECK"
    )]
    alert_check: Option<String>,

    /// First reminder this long after the down alert while the server
    /// stays below 10; later gaps double, up to 7 days [default: 24h].
    #[arg(
        long,
        id = "alerts.reminder",
        value_name = "DURATION",
        env = "POOLWATCH_ALERT_REMINDER"
    )]
    alert_reminder: Option<String>,

    /// Reminders per down episode, 0 for none [default: 5].
    #[arg(
        long,
        id = "alerts.max_reminders",
        value_name = "N",
        env = "POOLWATCH_ALERT_MAX_REMINDERS"
    )]
    alert_max_reminders: Option<String>,
}
