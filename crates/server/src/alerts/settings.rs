//! Everything the alerter is told: plain settings, below the job.

use super::policy::AlertPolicy;
use super::send::{SmtpUrl, parse_from};
use std::time::Duration;

/// Everything the alerter is told.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    pub policy: AlertPolicy,
    /// How often the pass runs.
    pub check_every: Duration,
    /// Where to send e-mail; None: no e-mail (webhooks still go out).
    pub smtp: Option<SmtpUrl>,
    /// Extra trusted root certificates (PEM) for the SMTP relay.
    pub smtp_ca: Option<Vec<u8>>,
    /// The From of alert e-mail; required with `smtp`.
    pub from: Option<String>,
    /// The service's public base URL; messages link `{public_url}/scores/{ip}`.
    pub public_url: String,
    /// Per SMTP conversation and per webhook request.
    pub send_timeout: Duration,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            policy: AlertPolicy::default(),
            check_every: Duration::from_secs(60),
            smtp: None,
            smtp_ca: None,
            from: None,
            public_url: format!("http://{}", crate::http::DEFAULT_LISTEN),
            send_timeout: Duration::from_secs(10),
        }
    }
}

impl AlertConfig {
    /// Refuse settings that cannot work: the setting's key (as in
    /// `serve`'s TOML file) and one line naming the flag.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.smtp_ca.is_some() && self.smtp.is_none() {
            return Err(("alerts.smtp_ca", "--smtp-ca needs --smtp-url".into()));
        }
        if self.smtp.is_some() {
            match &self.from {
                None => {
                    return Err((
                        "alerts.smtp_url",
                        "--smtp-url needs --alert-from ADDRESS".into(),
                    ));
                }
                Some(f) => {
                    parse_from(f).map_err(|e| ("alerts.from", e))?;
                }
            }
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err((
                "public_url",
                format!(
                    "--public-url '{}' must start with http:// or https://",
                    self.public_url
                ),
            ));
        }
        let p = &self.policy;
        if p.min_interval_s < 1 {
            return Err((
                "alerts.interval",
                "--alert-interval and --alert-check must be at least 1s".into(),
            ));
        }
        if self.check_every.is_zero() {
            return Err((
                "alerts.check",
                "--alert-interval and --alert-check must be at least 1s".into(),
            ));
        }
        if p.first_reminder_s < 1 || p.max_reminders < 0 {
            return Err((
                "alerts.reminder",
                "--alert-reminder must be at least 1s".into(),
            ));
        }
        Ok(())
    }
}
