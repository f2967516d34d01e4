//! Delivery: e-mail over plain SMTP (lettre) and webhooks (JSON POST with
//! reqwest). Errors come back as one line that never holds the webhook URL
//! (it may carry a secret token).

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Where to hand e-mail to: `smtp://HOST[:PORT]` (port 25 by default).
/// Plain SMTP without TLS or authentication: a relay on the same host or
/// network, which then delivers the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "smtp://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "smtp://{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for SmtpUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = |why: &str| format!("--smtp-url '{s}': {why} (expected smtp://HOST[:PORT])");
        let Some(rest) = s.strip_prefix("smtp://") else {
            return Err(if s.starts_with("smtps://") {
                bad("TLS is not supported; use a local relay over plain smtp://")
            } else {
                bad("the scheme must be smtp")
            });
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('@') {
            return Err(bad("user names and passwords are not supported"));
        }
        if rest.contains(['/', '?', '#']) {
            return Err(bad("no path or query allowed"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            match after {
                "" => (h, None),
                p => (
                    h,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
                ),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => 25,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad("the port must be 1-65535"))?,
        };
        Ok(SmtpUrl {
            host: host.to_string(),
            port,
        })
    }
}

/// Sends alert e-mail through one SMTP server (a new connection per
/// message: alerts are rare).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// The sender address as written (`alerts@example.org` or
/// `Pool <alerts@example.org>`).
pub fn parse_from(from: &str) -> Result<Mailbox, String> {
    from.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("--alert-from '{from}' is not an e-mail address: {e}"))
}

impl Mailer {
    pub fn new(smtp: &SmtpUrl, from: &str, timeout: Duration) -> Result<Mailer, String> {
        let from = parse_from(from)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
            .port(smtp.port)
            .timeout(Some(timeout))
            .build();
        Ok(Mailer { transport, from })
    }

    /// Send one plain-text message.
    pub async fn send(&self, to: &str, subject: &str, text: &str) -> Result<(), String> {
        let to: Mailbox = to
            .trim()
            .parse()
            .map_err(|e| format!("bad recipient address: {e}"))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_string())
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| format!("smtp: {e}"))
    }
}

/// An HTTP client for webhooks: `timeout` for the whole request.
pub fn webhook_client(timeout: Duration) -> reqwest::Client {
    // https webhooks need a crypto provider; installing it twice is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("poolwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with a timeout and a user agent always builds")
}

/// POST `body` (JSON) to `url`; any 2xx is success.
pub async fn post_webhook(
    client: &reqwest::Client,
    url: &str,
    kind: &str,
    body: String,
) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("bad webhook URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("the webhook URL must be http or https".into());
    }
    let resp = client
        .post(parsed)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Poolwatch-Event", kind)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("webhook: {}", e.without_url()))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("webhook answered HTTP {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let ok = |s: &str, h: &str, p: u16| {
            assert_eq!(
                s.parse::<SmtpUrl>(),
                Ok(SmtpUrl {
                    host: h.into(),
                    port: p
                }),
                "{s}"
            )
        };
        ok("smtp://127.0.0.1:2525", "127.0.0.1", 2525);
        ok("smtp://mail.example.org", "mail.example.org", 25);
        ok("smtp://mail.example.org/", "mail.example.org", 25);
        ok("smtp://[::1]:26", "::1", 26);
        ok("smtp://[::1]", "::1", 25);
        for bad in [
            "mail.example.org",
            "smtps://mail.example.org",
            "smtp://",
            "smtp://u:p@host",
            "smtp://host:0",
            "smtp://host:99999",
            "smtp://host/x",
            "smtp://[::1",
        ] {
            assert!(bad.parse::<SmtpUrl>().is_err(), "{bad}");
        }
        assert_eq!(
            "smtp://[::1]:26".parse::<SmtpUrl>().unwrap().to_string(),
            "smtp://[::1]:26"
        );
    }

    #[test]
    fn from_addresses() {
        assert!(parse_from("alerts@example.org").is_ok());
        assert!(parse_from("Pool Alerts <alerts@example.org>").is_ok());
        assert!(parse_from("not an address").is_err());
    }
}
