//! A local SMTP sink for tests: a tokio TCP listener on 127.0.0.1:0 that
//! speaks just enough SMTP (220, EHLO/HELO → 250, MAIL/RCPT → 250,
//! DATA → 354 … "." → 250, RSET/NOOP → 250, QUIT → 221) and keeps every
//! message it receives. With TLS ([`SinkTls`]) it offers STARTTLS or speaks
//! TLS from the start, with the test certificate in `../fixtures/smtp-tls/`
//! (for `localhost` and 127.0.0.1, signed by `ca.pem`), and takes
//! `AUTH PLAIN` (any user and password, recorded) once encrypted.
//!
//! Self-contained (tokio and tokio-rustls), so any test crate can include it:
//!
//! ```ignore
//! #[path = "../../server/tests/support/smtp_sink.rs"]
//! mod smtp_sink;
//! let sink = smtp_sink::SmtpSink::start().await;
//! // serve … --smtp-url {sink.url()} …
//! let mails = sink.wait_for(1, Duration::from_secs(10)).await;
//! assert!(mails[0].text().contains("192.0.2.1"));
//! ```

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// The CA that signed the sink's certificate, for `--smtp-ca`.
pub const CA_PEM: &[u8] = include_bytes!("../fixtures/smtp-tls/ca.pem");
const CERT_PEM: &[u8] = include_bytes!("../fixtures/smtp-tls/cert.pem");
const KEY_PEM: &[u8] = include_bytes!("../fixtures/smtp-tls/key.pem");

/// How the sink protects its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    /// Plain SMTP.
    Off,
    /// Plain until the client says STARTTLS (which the sink offers).
    StartTls,
    /// TLS from the first byte (smtps).
    Implicit,
}

fn acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(CERT_PEM)
        .collect::<Result<_, _>>()
        .expect("test certificate");
    let key = PrivateKeyDer::from_pem_slice(KEY_PEM).expect("test key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("test certificate and key");
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The MAIL FROM address (without `<>`).
    pub from: String,
    /// The RCPT TO addresses.
    pub to: Vec<String>,
    /// The DATA as received (CRLF line ends, dots unstuffed).
    pub data: String,
    /// Whether the message came over TLS.
    pub tls: bool,
    /// The user and password of `AUTH PLAIN`, if the client logged in.
    pub login: Option<(String, String)>,
}

impl Mail {
    /// The value of the first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = found.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                found = Some(v.trim().to_string());
            }
        }
        found
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The body decoded from its Content-Transfer-Encoding (7bit, 8bit,
    /// quoted-printable or base64), with LF line ends.
    pub fn text(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
        let enc = self
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = match enc.as_str() {
            "quoted-printable" => decode_qp(body),
            "base64" => decode_base64(body),
            _ => body.as_bytes().to_vec(),
        };
        String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
    }
}

fn decode_qp(s: &str) -> Vec<u8> {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let Some(v) = val(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The running sink; dropped with the test's runtime.
#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    notify: Arc<Notify>,
}

impl SmtpSink {
    /// Accepts every message.
    pub async fn start() -> SmtpSink {
        Self::start_with(false, SinkTls::Off).await
    }

    /// Refuses every message (554 after DATA): a failing relay.
    pub async fn start_refusing() -> SmtpSink {
        Self::start_with(true, SinkTls::Off).await
    }

    /// Accepts every message, over STARTTLS or TLS from the start.
    pub async fn start_tls(tls: SinkTls) -> SmtpSink {
        Self::start_with(false, tls).await
    }

    async fn start_with(refuse: bool, tls: SinkTls) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().expect("sink address");
        let sink = SmtpSink {
            addr,
            mails: Arc::default(),
            notify: Arc::new(Notify::new()),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.serve(conn, refuse, tls).await;
                });
            }
        });
        sink
    }

    /// `smtp://127.0.0.1:PORT`, for `--smtp-url` (plain sinks).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every message so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// The messages once there are at least `n` (panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            let m = self.mails();
            if m.len() >= n {
                return m;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("SMTP sink: wanted {n} messages, got {}", self.mails().len());
            }
        }
    }

    async fn serve(
        &self,
        conn: tokio::net::TcpStream,
        refuse: bool,
        tls: SinkTls,
    ) -> std::io::Result<()> {
        match tls {
            SinkTls::Off => {
                self.session(conn, refuse, false, false, true).await?;
            }
            SinkTls::Implicit => {
                let conn = acceptor().accept(conn).await?;
                self.session(conn, refuse, true, false, true).await?;
            }
            SinkTls::StartTls => {
                if let Some(conn) = self.session(conn, refuse, false, true, true).await? {
                    let conn = acceptor().accept(conn).await?;
                    // The client greets again (EHLO); no new 220.
                    self.session(conn, refuse, true, false, false).await?;
                }
            }
        }
        Ok(())
    }

    /// One SMTP conversation; returns the connection when the client asked
    /// for STARTTLS (and was told to go ahead).
    async fn session<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: S,
        refuse: bool,
        tls: bool,
        offer_starttls: bool,
        greet: bool,
    ) -> std::io::Result<Option<S>> {
        let (r, mut w) = tokio::io::split(conn);
        let mut r = BufReader::new(r);
        if greet {
            w.write_all(b"220 sink.test ESMTP poolwatch test sink\r\n")
                .await?;
        }
        let mut from = String::new();
        let mut to = Vec::new();
        let mut login = None;
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Ok(None);
            }
            let cmd = line.trim_end().to_string();
            let upper = cmd.to_ascii_uppercase();
            let ehlo;
            let reply: &[u8] = if upper.starts_with("EHLO") {
                ehlo = format!(
                    "250-sink.test\r\n250-8BITMIME\r\n{}{}250 SIZE 10485760\r\n",
                    if offer_starttls {
                        "250-STARTTLS\r\n"
                    } else {
                        ""
                    },
                    if tls { "250-AUTH PLAIN\r\n" } else { "" },
                );
                ehlo.as_bytes()
            } else if upper.starts_with("HELO") {
                b"250 sink.test\r\n"
            } else if upper == "STARTTLS" && offer_starttls {
                w.write_all(b"220 go ahead\r\n").await?;
                w.flush().await?;
                // The client sends nothing more until the handshake.
                return Ok(Some(r.into_inner().unsplit(w)));
            } else if upper.starts_with("AUTH PLAIN ") && tls {
                // base64("\0user\0password")
                let raw = decode_base64(&cmd["AUTH PLAIN ".len()..]);
                let parts: Vec<String> = raw
                    .split(|&b| b == 0)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
                if parts.len() == 3 {
                    login = Some((parts[1].clone(), parts[2].clone()));
                    b"235 2.7.0 authenticated\r\n"
                } else {
                    b"501 5.5.2 bad AUTH PLAIN\r\n"
                }
            } else if upper.starts_with("MAIL FROM:") {
                from = address(&cmd["MAIL FROM:".len()..]);
                to.clear();
                b"250 OK\r\n"
            } else if upper.starts_with("RCPT TO:") {
                to.push(address(&cmd["RCPT TO:".len()..]));
                b"250 OK\r\n"
            } else if upper == "DATA" {
                w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await? == 0 {
                        return Ok(None);
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let l = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(l);
                }
                if refuse {
                    b"554 5.7.1 refused by the test sink\r\n"
                } else {
                    self.mails.lock().unwrap().push(Mail {
                        from: from.clone(),
                        to: to.clone(),
                        data,
                        tls,
                        login: login.clone(),
                    });
                    self.notify.notify_waiters();
                    b"250 OK queued\r\n"
                }
            } else if upper == "QUIT" {
                w.write_all(b"221 bye\r\n").await?;
                w.flush().await?;
                return Ok(None);
            } else if upper == "RSET" || upper == "NOOP" {
                b"250 OK\r\n"
            } else {
                b"502 not implemented\r\n"
            };
            w.write_all(reply).await?;
            w.flush().await?;
        }
    }
}

/// `<a@b> BODY=8BITMIME` → `a@b`.
fn address(s: &str) -> String {
    let s = s.trim();
    let s = s.split_whitespace().next().unwrap_or("");
    s.trim_start_matches('<').trim_end_matches('>').to_string()
}
