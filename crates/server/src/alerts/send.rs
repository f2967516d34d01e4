//! Delivery: e-mail over SMTP (lettre: plain to a local relay, or STARTTLS
//! or implicit TLS with a login) and webhooks (JSON POST with reqwest).
//! Errors come back as one line that never holds the webhook URL (it may
//! carry a secret token) or the SMTP password.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (`smtp://`): a relay on this host or network.
    None,
    /// STARTTLS, required (`smtp://…?tls=required`, port 587 by default).
    StartTls,
    /// TLS from the first byte (`smtps://`, port 465 by default).
    Implicit,
}

/// Where to hand e-mail to, from `--smtp-url`:
/// `smtp://HOST[:PORT]` (plain, port 25),
/// `smtp://[USER:PASSWORD@]HOST[:PORT]?tls=required` (STARTTLS, 587) or
/// `smtps://[USER:PASSWORD@]HOST[:PORT]` (TLS, 465). A login needs TLS.
/// User and password are percent-encoded in the URL (`@` as `%40`).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// User and password, if the relay wants a login.
    pub login: Option<(String, String)>,
}

/// Never shows the password.
impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.tls {
            SmtpTls::Implicit => "smtps",
            _ => "smtp",
        };
        write!(f, "{scheme}://")?;
        if let Some((user, _)) = &self.login {
            write!(f, "{user}:***@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if self.tls == SmtpTls::StartTls {
            write!(f, "?tls=required")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({self})")
    }
}

fn decode(part: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "the user or password is not UTF-8 once decoded".to_string())
}

impl FromStr for SmtpUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let shown = match s.rsplit_once('@') {
            // Keep the password out of error messages.
            Some((_, host)) => format!("…@{host}"),
            None => s.to_string(),
        };
        let bad = |why: &str| {
            format!(
                "--smtp-url '{shown}': {why} (expected smtp://HOST[:PORT], \
                 smtp://USER:PASSWORD@HOST[:PORT]?tls=required or \
                 smtps://USER:PASSWORD@HOST[:PORT])"
            )
        };
        let url = reqwest::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
        let mut tls = match url.scheme() {
            "smtp" => SmtpTls::None,
            "smtps" => SmtpTls::Implicit,
            _ => return Err(bad("the scheme must be smtp or smtps")),
        };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref(), tls) {
                ("tls", "required", SmtpTls::None) => tls = SmtpTls::StartTls,
                ("tls", "required", _) => {}
                _ => {
                    return Err(bad(&format!(
                        "unknown option '{k}={v}' (only tls=required)"
                    )));
                }
            }
        }
        if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
            return Err(bad("no path allowed"));
        }
        // IPv6 literals come back in brackets.
        let host = url
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match url.port() {
            Some(0) => return Err(bad("the port must be 1-65535")),
            Some(p) => p,
            None => match tls {
                SmtpTls::None => 25,
                SmtpTls::StartTls => 587,
                SmtpTls::Implicit => 465,
            },
        };
        let login = match (url.username(), url.password()) {
            ("", None) => None,
            (_, None) | ("", Some(_)) => return Err(bad("give both a user and a password")),
            (u, Some(p)) => Some((
                decode(u).map_err(|e| bad(&e))?,
                decode(p).map_err(|e| bad(&e))?,
            )),
        };
        if login.is_some() && tls == SmtpTls::None {
            return Err(bad(
                "a password is never sent unencrypted: use smtps:// or add ?tls=required",
            ));
        }
        Ok(SmtpUrl {
            host,
            port,
            tls,
            login,
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
    /// `ca_pem`: extra trusted roots (PEM) for a relay whose certificate
    /// the system does not know (`--smtp-ca`); the system's roots are
    /// trusted either way.
    pub fn new(
        smtp: &SmtpUrl,
        ca_pem: Option<&[u8]>,
        from: &str,
        timeout: Duration,
    ) -> Result<Mailer, String> {
        let from = parse_from(from)?;
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
            .port(smtp.port)
            .timeout(Some(timeout));
        if smtp.tls != SmtpTls::None {
            let mut params = TlsParameters::builder(smtp.host.clone());
            if let Some(pem) = ca_pem {
                let cert = Certificate::from_pem(pem)
                    .map_err(|e| format!("--smtp-ca: not a PEM certificate: {e}"))?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| format!("--smtp-url: cannot set up TLS: {e}"))?;
            b = b.tls(match smtp.tls {
                SmtpTls::Implicit => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        } else if ca_pem.is_some() {
            return Err("--smtp-ca needs a TLS --smtp-url (smtps:// or ?tls=required)".into());
        }
        if let Some((user, password)) = &smtp.login {
            b = b.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Mailer {
            transport: b.build(),
            from,
        })
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
        let ok = |s: &str, host: &str, port: u16, tls: SmtpTls, login: Option<(&str, &str)>| {
            assert_eq!(
                s.parse::<SmtpUrl>(),
                Ok(SmtpUrl {
                    host: host.into(),
                    port,
                    tls,
                    login: login.map(|(u, p)| (u.into(), p.into())),
                }),
                "{s}"
            )
        };
        use SmtpTls::*;
        ok(
            "smtp://127.0.0.1:2525",
            "127.0.0.1",
            2525,
            None,
            Option::None,
        );
        ok(
            "smtp://mail.example.org",
            "mail.example.org",
            25,
            None,
            Option::None,
        );
        ok(
            "smtp://mail.example.org/",
            "mail.example.org",
            25,
            None,
            Option::None,
        );
        ok("smtp://[::1]:26", "::1", 26, None, Option::None);
        ok("smtp://[::1]", "::1", 25, None, Option::None);
        ok(
            "smtp://relay.example.org?tls=required",
            "relay.example.org",
            587,
            StartTls,
            Option::None,
        );
        ok(
            "smtps://alerts%40pool.example.org:p%3Ass@mail.example.org",
            "mail.example.org",
            465,
            Implicit,
            Some(("alerts@pool.example.org", "p:ss")),
        );
        ok(
            "smtp://u:p@127.0.0.1:2587?tls=required",
            "127.0.0.1",
            2587,
            StartTls,
            Some(("u", "p")),
        );
        for bad in [
            "mail.example.org",
            "http://mail.example.org",
            "smtp://",
            "smtp://u:p@host",
            "smtps://u@host",
            "smtp://host:0",
            "smtp://host:99999",
            "smtp://host/x",
            "smtp://host?tls=maybe",
            "smtp://[::1",
        ] {
            assert!(bad.parse::<SmtpUrl>().is_err(), "{bad}");
        }
        // An unencoded '@' in the password: still nothing of it shown.
        let err = "smtp://u:se@cret@host:0".parse::<SmtpUrl>().unwrap_err();
        assert!(!err.contains("cret"), "{err}");
        let err = "smtp://u:secret@host".parse::<SmtpUrl>().unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert!(err.contains("never sent unencrypted"), "{err}");
        let shown = "smtps://u:secret@[::1]:4650".parse::<SmtpUrl>().unwrap();
        assert_eq!(shown.to_string(), "smtps://u:***@[::1]:4650");
        assert!(!format!("{shown:?}").contains("secret"));
        assert_eq!(
            "smtp://h?tls=required"
                .parse::<SmtpUrl>()
                .unwrap()
                .to_string(),
            "smtp://h:587?tls=required"
        );
    }

    #[test]
    fn from_addresses() {
        assert!(parse_from("alerts@example.org").is_ok());
        assert!(parse_from("Pool Alerts <alerts@example.org>").is_ok());
        assert!(parse_from("not an address").is_err());
    }
}
