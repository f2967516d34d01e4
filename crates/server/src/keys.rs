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

impl TicketSigner {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
