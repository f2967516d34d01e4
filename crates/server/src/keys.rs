//! Monitor keys and work tickets.
//!
//! A key is shown to the operator once and stored only as its SHA-256, so a
//! copy of the database cannot authenticate. A ticket is an HMAC over
//! (monitor, batch, server address): the service can check that a result
//! answers work it handed out without remembering anything per ticket.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

/// Every key starts with this, so a leaked one is easy to recognise (and to
/// grep for in places it should not be).
pub const KEY_PREFIX: &str = "pwk_";

/// A fresh random monitor key: `pwk_` and 32 random bytes in hex.
pub fn generate_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// What the store keeps of a key: its SHA-256 in lower-case hex.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A random secret for signing tickets.
pub fn generate_secret() -> Vec<u8> {
    let bytes: [u8; 32] = rand::random();
    bytes.to_vec()
}

/// Read a ticket secret from `path` (hex, or raw text of at least 16
/// bytes), or create the file with a new random secret (mode 0600) when it
/// does not exist. Returns the secret and whether it was created. Tickets
/// stay valid across restarts only if the secret does.
pub fn load_or_create_secret(path: &Path) -> Result<(Vec<u8>, bool), String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = text.trim();
            let secret = hex::decode(text).unwrap_or_else(|_| text.as_bytes().to_vec());
            if secret.len() < 16 {
                return Err(format!(
                    "{}: the ticket secret must be at least 16 bytes (32 random bytes in hex is best)",
                    path.display()
                ));
            }
            Ok((secret, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = generate_secret();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut file = opts
                .open(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            file.write_all(format!("{}\n", hex::encode(&secret)).as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok((secret, true))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Signs and checks tickets with one secret.
#[derive(Clone)]
pub struct TicketSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketSigner(..)")
    }
}

/// The short code's letters: none a person confuses with another when
/// reading or typing it (no 0/O, no 1/I).
pub const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Characters in a registration code: 5 bits each, 50 bits in all.
pub const CODE_LEN: usize = 10;

/// A code as typed (any case, dashes and spaces) in its stored form, or
/// `None` when it cannot be a code.
pub fn normalize_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
}

/// A code as people read it: `ABCDE-FGHJK`.
pub fn display_code(code: &str) -> String {
    match code.split_at_checked(CODE_LEN / 2) {
        Some((a, b)) => format!("{a}-{b}"),
        None => code.to_string(),
    }
}

impl TicketSigner {
    /// The registration code of an agent's registration `secret`: the
    /// same secret always gets the same code (so the agent's second
    /// family finds its registration), and without the service's secret
    /// nobody can tell one from the other.
    pub fn registration_code(&self, secret: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts any key length");
        // Not "id|batch|ip": no ticket message starts with a word.
        mac.update(format!("registration-code|{secret}").as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut bits = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        (0..CODE_LEN)
            .map(|_| {
                let c = CODE_ALPHABET[(bits >> 59) as usize] as char;
                bits <<= 5;
                c
            })
            .collect()
    }

    /// A signer over `secret` (any length; 32 random bytes is plenty).
    pub fn new(secret: &[u8]) -> Self {
        TicketSigner {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, monitor_id: i64, batch_id: &str, ip: IpAddr) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts any key length");
        // The address in canonical text form, so "2001:db8::1" and
        // "2001:0db8::1" sign alike; the separators cannot occur inside
        // the parts, so no two triples share a message.
        mac.update(format!("{monitor_id}|{batch_id}|{ip}").as_bytes());
        mac
    }

    /// The ticket for one server of one batch, hex.
    pub fn sign(&self, monitor_id: i64, batch_id: &str, ip: IpAddr) -> String {
        hex::encode(self.mac(monitor_id, batch_id, ip).finalize().into_bytes())
    }

    /// Whether `ticket` is the one [`sign`](Self::sign) made (constant time).
    pub fn verify(&self, monitor_id: i64, batch_id: &str, ip: IpAddr, ticket: &str) -> bool {
        match hex::decode(ticket) {
            Ok(raw) => self
                .mac(monitor_id, batch_id, ip)
                .verify_slice(&raw)
                .is_ok(),
            Err(_) => false,
        }
    }
}

/// Access tokens start with this (keys with [`KEY_PREFIX`]): the
/// extractor tells them apart by it.
pub const TOKEN_PREFIX: &str = "pwa_";

/// How long an access token is good for, in seconds: about an hour, as
/// the pool's agent tokens. The agent renews before.
pub const TOKEN_LIFETIME_S: i64 = 3600;

/// Signs and checks access tokens: `pwa_<monitor id>_<expiry>_<mac>`,
/// the mac a hex HMAC-SHA256 over (monitor id, expiry, the monitor's
/// current key hash) with a key derived from the ticket secret.
///
/// Stateless, so every `serve` instance sharing the ticket secret accepts
/// another's tokens; the key hash in the mac makes `rotate-key` void every
/// token made from the old key without storing anything. The hash is not
/// in the token itself, only mixed into its mac.
#[derive(Clone)]
pub struct AccessTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessTokens(..)")
    }
}

/// A token's readable part; its mac is checked by [`AccessTokens::verify`]
/// once the monitor's row (and key hash) is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    pub monitor_id: i64,
    pub expires: i64,
}

impl AccessTokens {
    /// Tokens under a key derived from `ticket_secret`, so a token's mac
    /// never equals a ticket's.
    pub fn new(ticket_secret: &[u8]) -> Self {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(ticket_secret).expect("HMAC accepts any key length");
        mac.update(b"poolwatch access tokens v1");
        AccessTokens {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, c: TokenClaims, key_hash: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("{}|{}|{key_hash}", c.monitor_id, c.expires).as_bytes());
        mac
    }

    /// A token for the monitor whose key hashes to `key_hash`, good until
    /// `expires` (unix seconds).
    pub fn sign(&self, monitor_id: i64, expires: i64, key_hash: &str) -> String {
        let c = TokenClaims {
            monitor_id,
            expires,
        };
        let mac = hex::encode(self.mac(c, key_hash).finalize().into_bytes());
        format!("{TOKEN_PREFIX}{monitor_id}_{expires}_{mac}")
    }

    /// The monitor id and expiry `token` claims, if it is shaped like a
    /// token (nothing is trusted until [`verify`](Self::verify)).
    pub fn claims(token: &str) -> Option<TokenClaims> {
        let rest = token.strip_prefix(TOKEN_PREFIX)?;
        let mut parts = rest.split('_');
        let (id, exp, mac) = (parts.next()?, parts.next()?, parts.next()?);
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
        if parts.next().is_some() || !digits(id) || !digits(exp) || mac.len() != 64 {
            return None;
        }
        Some(TokenClaims {
            monitor_id: id.parse().ok()?,
            expires: exp.parse().ok()?,
        })
    }

    /// Whether `token` was signed by [`sign`](Self::sign) for this
    /// monitor's current `key_hash` (constant time); expiry is the
    /// caller's to judge from the claims.
    pub fn verify(&self, token: &str, key_hash: &str) -> bool {
        let Some(c) = Self::claims(token) else {
            return false;
        };
        let Some(mac) = token.rsplit('_').next().and_then(|m| hex::decode(m).ok()) else {
            return false;
        };
        self.mac(c, key_hash).verify_slice(&mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_codes() {
        let t = TicketSigner::new(b"0123456789abcdef");
        let a = t.registration_code(&"a".repeat(64));
        assert_eq!(a, t.registration_code(&"a".repeat(64)));
        assert_ne!(a, t.registration_code(&"b".repeat(64)));
        assert_ne!(
            a,
            TicketSigner::new(b"another secret!!").registration_code(&"a".repeat(64))
        );
        assert_eq!(a.len(), CODE_LEN);
        assert!(a.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{a}");
        let shown = display_code(&a);
        assert_eq!(shown.len(), CODE_LEN + 1);
        assert_eq!(
            normalize_code(&shown.to_lowercase()).as_deref(),
            Some(a.as_str())
        );
        assert_eq!(
            normalize_code(" ABCDE FGHJK ").as_deref(),
            Some("ABCDEFGHJK")
        );
        for bad in ["", "ABCDE", "ABCDE-FGHJ0", "ABCDE-FGHJKL", "ÄBCDE-FGHJK"] {
            assert_eq!(normalize_code(bad), None, "{bad}");
        }
        // 32 letters, none confusable.
        let set: std::collections::BTreeSet<u8> = CODE_ALPHABET.iter().copied().collect();
        assert_eq!(set.len(), 32);
        assert!(!b"01IO".iter().any(|b| set.contains(b)));
    }

    #[test]
    fn keys_are_random_and_hash_stably() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_eq!(hash_key(&a).len(), 64);
        assert!(!hash_key(&a).contains(&a[KEY_PREFIX.len()..]));
        // sha256("abc")
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secret_file_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/ticket-secret");
        let (a, created) = load_or_create_secret(&path).unwrap();
        assert!(created);
        assert_eq!(a.len(), 32);
        let (b, created) = load_or_create_secret(&path).unwrap();
        assert!(!created);
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "short").unwrap();
        assert!(load_or_create_secret(&path).is_err());
    }

    #[test]
    fn tickets_bind_monitor_batch_and_ip() {
        let s = TicketSigner::new(b"secret");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = s.sign(7, "00000000000000000042", ip);
        assert!(s.verify(7, "00000000000000000042", ip, &t));
        assert!(!s.verify(8, "00000000000000000042", ip, &t));
        assert!(!s.verify(7, "00000000000000000043", ip, &t));
        assert!(!s.verify(7, "00000000000000000042", "192.0.2.2".parse().unwrap(), &t));
        assert!(!s.verify(7, "00000000000000000042", ip, "zz"));
        assert!(!s.verify(7, "00000000000000000042", ip, ""));
        let other = TicketSigner::new(b"other");
        assert!(!other.verify(7, "00000000000000000042", ip, &t));
        // Canonical address form.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:0db8:0::0001".parse().unwrap();
        assert_eq!(s.sign(1, "1", v6a), s.sign(1, "1", v6b));
    }

    #[test]
    fn access_tokens_bind_monitor_expiry_and_key() {
        let t = AccessTokens::new(b"ticket secret");
        let tok = t.sign(7, 1_700_003_600, "hash-a");
        assert!(tok.starts_with(TOKEN_PREFIX) && tok.len() < 256, "{tok}");
        assert_eq!(
            AccessTokens::claims(&tok),
            Some(TokenClaims {
                monitor_id: 7,
                expires: 1_700_003_600
            })
        );
        assert!(t.verify(&tok, "hash-a"));
        // A rotated key (another hash), another secret, an altered claim.
        assert!(!t.verify(&tok, "hash-b"));
        assert!(!AccessTokens::new(b"other secret").verify(&tok, "hash-a"));
        let mac = tok.rsplit('_').next().unwrap();
        for forged in [
            format!("pwa_8_1700003600_{mac}"),
            format!("pwa_7_1800003600_{mac}"),
            format!("pwa_7_1700003600_{}", "0".repeat(64)),
            "pwa_7_1700003600".to_string(),
            "pwa_x_1_2".to_string(),
            format!("{tok}_1"),
        ] {
            assert!(!t.verify(&forged, "hash-a"), "{forged}");
        }
        // Not a ticket under the same secret either.
        let ticket =
            TicketSigner::new(b"ticket secret").sign(7, "1700003600", "192.0.2.1".parse().unwrap());
        assert_ne!(mac, ticket);
    }
}
