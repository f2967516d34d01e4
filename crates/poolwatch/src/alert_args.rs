//! `serve`'s flags for alerts to server accounts (e-mail and webhooks).

use crate::util::{parse_duration, usage};
use anyhow::Result;
use server::alerts::{AlertConfig, AlertPolicy, SmtpUrl};
use server::file_config::FileAlerts;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
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
    #[arg(long, value_name = "URL", env = "POOLWATCH_SMTP_URL")]
    smtp_url: Option<String>,

    /// Also trust this CA certificate (PEM) for the SMTP server's TLS
    /// certificate, e.g. a relay with a private CA. The system's roots are
    /// trusted either way.
    #[arg(long, value_name = "FILE", env = "POOLWATCH_SMTP_CA")]
    smtp_ca: Option<std::path::PathBuf>,

    /// From address of alert e-mail, e.g. 'Pool <alerts@pool.example.org>'
    /// (needed with --smtp-url).
    #[arg(long, value_name = "ADDRESS", env = "POOLWATCH_ALERT_FROM")]
    alert_from: Option<String>,

    /// At most one alert per server this often; a failed delivery is tried
    /// again after it [default: 1h].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_ALERT_INTERVAL", value_parser = parse_duration)]
    alert_interval: Option<Duration>,

    /// How often servers are checked for alerts to send [default: 60s].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_ALERT_CHECK", value_parser = parse_duration)]
    alert_check: Option<Duration>,

    /// First reminder this long after the down alert while the server
    /// stays below 10; later gaps double, up to 7 days [default: 24h].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_ALERT_REMINDER", value_parser = parse_duration)]
    alert_reminder: Option<Duration>,

    /// Reminders per down episode, 0 for none [default: 5].
    #[arg(long, value_name = "N", env = "POOLWATCH_ALERT_MAX_REMINDERS")]
    alert_max_reminders: Option<u32>,
}

fn file_duration(text: Option<&str>, key: &str) -> Result<Option<Duration>> {
    text.map(|t| parse_duration(t).map_err(|e| usage(format!("config alerts.{key}: {e}"))))
        .transpose()
}

impl AlertArgs {
    /// Flags, then the file's `public_url` and `[alerts]`, then defaults.
    pub fn config(
        &self,
        file_public_url: Option<&str>,
        file: &FileAlerts,
        listen: SocketAddr,
    ) -> Result<AlertConfig> {
        let d = AlertConfig::default();
        let dp = AlertPolicy::default();
        let smtp = match self.smtp_url.as_deref().or(file.smtp_url.as_deref()) {
            Some(u) if !u.trim().is_empty() => Some(u.parse::<SmtpUrl>().map_err(usage)?),
            _ => None,
        };
        let smtp_ca =
            match self.smtp_ca.as_ref().or(file.smtp_ca.as_ref()) {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    usage(format!("--smtp-ca {}: cannot read: {e}", path.display()))
                })?),
                None => None,
            };
        let secs = |d: Duration| d.as_secs() as i64;
        let interval = match self.alert_interval {
            Some(d) => Some(d),
            None => file_duration(file.interval.as_deref(), "interval")?,
        };
        let check = match self.alert_check {
            Some(d) => Some(d),
            None => file_duration(file.check.as_deref(), "check")?,
        };
        let reminder = match self.alert_reminder {
            Some(d) => Some(d),
            None => file_duration(file.reminder.as_deref(), "reminder")?,
        };
        let cfg = AlertConfig {
            policy: AlertPolicy {
                min_interval_s: interval.map(secs).unwrap_or(dp.min_interval_s),
                first_reminder_s: reminder.map(secs).unwrap_or(dp.first_reminder_s),
                max_reminders: self
                    .alert_max_reminders
                    .or(file.max_reminders)
                    .map(i64::from)
                    .unwrap_or(dp.max_reminders),
                ..dp
            },
            check_every: check.unwrap_or(d.check_every),
            smtp,
            smtp_ca,
            from: self
                .alert_from
                .clone()
                .or_else(|| file.from.clone())
                .filter(|f| !f.trim().is_empty()),
            public_url: self
                .public_url
                .clone()
                .or_else(|| file_public_url.map(str::to_string))
                .unwrap_or_else(|| format!("http://{listen}"))
                .trim_end_matches('/')
                .to_string(),
            ..d
        };
        cfg.check().map_err(usage)?;
        if self.public_url.is_none() && file_public_url.is_none() && listen.ip().is_unspecified() {
            tracing::warn!(
                public_url = %cfg.public_url,
                "alerts link a server's page under --public-url; set it to the address people use"
            );
        }
        Ok(cfg)
    }
}
