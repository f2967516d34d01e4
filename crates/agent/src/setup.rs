//! `agent setup`'s HTTP side: register with the service once over each
//! address family (so it sees the host's IPv4 and IPv6 source addresses),
//! then poll until a volunteer accepted the registration and collect the
//! monitors' keys, once.
//!
//! The registration secret is the agent's proof that it is the one that
//! registered: it goes only into the two request bodies, never into a log
//! line or an error message.

use crate::body;
/// The answers' types, for the command that prints them.
pub use api::{MonitorCredential, RegistrationState};
use api::{
    REGISTER_PATH, REGISTER_STATUS_PATH, Registered, Registration, RegistrationPoll,
    RegistrationStatus,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Largest answer read (a code and a URL, or two keys).
const ANSWER_MAX: usize = 16 * 1024;

/// A registration secret: 256 random bits, hex.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn random() -> Secret {
        let bytes: [u8; 32] = rand::random();
        Secret(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Never prints the secret.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// Why a request failed: what the service said (its `detail`), or why it
/// could not be asked. Never holds the secret.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Unreachable(String),
    #[error("the service refused ({status}): {detail}")]
    Refused { status: u16, detail: String },
    #[error("the service's answer is not understood: {0}")]
    Garbled(String),
}

/// The address family a request must travel over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn number(self) -> u8 {
        match self {
            Family::V4 => 4,
            Family::V6 => 6,
        }
    }

    fn matches(self, ip: IpAddr) -> bool {
        ip.is_ipv4() == (self == Family::V4)
    }

    fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// The service's host and port from `base` (`http(s)://host[:port]/…`).
fn host_port(base: &str) -> Result<(String, u16), SetupError> {
    let url = reqwest::Url::parse(base)
        .map_err(|e| SetupError::Unreachable(format!("--api {base}: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| SetupError::Unreachable(format!("--api {base}: no host")))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| SetupError::Unreachable(format!("--api {base}: no port")))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// The service's addresses of `family`. `localhost` names are loopback
/// in both families (RFC 6761 §6.3), whatever the hosts file lists.
pub async fn resolve(base: &str, family: Family) -> Result<Vec<SocketAddr>, SetupError> {
    let (host, port) = host_port(base)?;
    let all: Vec<SocketAddr> = if host == "localhost" || host.ends_with(".localhost") {
        vec![
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        ]
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, port)]
    } else {
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| SetupError::Unreachable(format!("cannot resolve {host}: {e}")))?
            .collect()
    };
    Ok(all.into_iter().filter(|a| family.matches(a.ip())).collect())
}

/// A client whose connections to the service go over `family` only: to
/// `addrs` (that family's addresses of the host), from that family's
/// unspecified address.
fn client(base: &str, family: Family, addrs: &[SocketAddr]) -> Result<reqwest::Client, SetupError> {
    let (host, _) = host_port(base)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("poolwatch-agent/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .local_address(family.unspecified())
        .resolve_to_addrs(&host, addrs)
        .build()
        .map_err(|e| SetupError::Unreachable(crate::api_client::without_url(&e)))
}

/// POSTs `body` as JSON to `base` + `path` and reads a `T`; a non-2xx
/// answer is `Refused` with the service's `detail`.
async fn post<B: serde::Serialize, T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: &B,
) -> Result<T, SetupError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let r = http
        .post(&url)
        .json(body)
        .send()
        .await
        .map_err(|e| SetupError::Unreachable(crate::api_client::without_url(&e)))?;
    let status = r.status();
    let (bytes, over) = body::read_capped(r, ANSWER_MAX)
        .await
        .map_err(|e| SetupError::Unreachable(crate::api_client::without_url(&e)))?;
    if over {
        return Err(SetupError::Garbled(format!(
            "over {ANSWER_MAX} bytes (status {status})"
        )));
    }
    if !status.is_success() {
        let detail = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        return Err(SetupError::Refused {
            status: status.as_u16(),
            detail,
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| SetupError::Garbled(e.to_string()))
}

/// What the agent tells the service about itself.
#[derive(Debug, Clone)]
pub struct About {
    pub hostname: String,
    pub name_hint: String,
}

/// Registers over `family`. `Ok(None)`: the service has no address of
/// that family (nothing to do); `Err`: it has, but the request failed
/// (no route, refused).
pub async fn register(
    base: &str,
    family: Family,
    secret: &Secret,
    about: &About,
) -> Result<Option<Registered>, SetupError> {
    let addrs = resolve(base, family).await?;
    if addrs.is_empty() {
        return Ok(None);
    }
    let http = client(base, family, &addrs)?;
    let body = Registration {
        secret: secret.0.clone(),
        hostname: about.hostname.clone(),
        client_version: concat!("poolwatch-agent/", env!("CARGO_PKG_VERSION")).to_string(),
        name_hint: about.name_hint.clone(),
    };
    post(&http, base, REGISTER_PATH, &body).await.map(Some)
}

/// One status poll, over whichever family works.
pub async fn poll(base: &str, secret: &Secret) -> Result<RegistrationStatus, SetupError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .user_agent(concat!("poolwatch-agent/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| SetupError::Unreachable(crate::api_client::without_url(&e)))?;
    let body = RegistrationPoll {
        secret: secret.0.clone(),
    };
    post(&http, base, REGISTER_STATUS_PATH, &body).await
}

/// This host's name, for the volunteer's page ("" when unknown).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().chars().take(253).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_hex_and_hidden() {
        let (a, b) = (Secret::random(), Secret::random());
        assert_eq!(a.0.len(), 64);
        assert!(a.0.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.0, b.0);
        assert!(!format!("{a:?}").contains(&a.0));
    }

    #[tokio::test]
    async fn localhost_is_loopback_in_both_families() {
        let v4 = resolve("http://localhost:8080", Family::V4).await.unwrap();
        let v6 = resolve("http://localhost:8080/x", Family::V6)
            .await
            .unwrap();
        assert_eq!(v4, ["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(v6, ["[::1]:8080".parse().unwrap()]);
        assert!(
            resolve("http://[::1]:1", Family::V4)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            resolve("https://192.0.2.1", Family::V4).await.unwrap(),
            ["192.0.2.1:443".parse().unwrap()]
        );
        assert!(resolve("not a url", Family::V4).await.is_err());
    }
}
