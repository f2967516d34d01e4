//! The agent's credentials in its state directory: `credentials.json`,
//! written once by `agent setup` (mode 0600, directory 0700) and read by
//! `agent --state-dir DIR` when no `--key` is given. One file holds every
//! identity of the host: one monitor per address family, each its own
//! monitor row and key.
//!
//! Keys are secrets: a directory or file that others can read or write is
//! refused with the reason and the `chmod` that fixes it, never used.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file's name inside the state directory.
pub const FILE: &str = "credentials.json";

/// What `agent setup` collected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The service the keys belong to (the `--api` of setup).
    pub api: String,
    /// One per address family the service saw the host register from.
    pub identities: Vec<Identity>,
}

/// One monitor: the address family it checks and its key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// 4 or 6.
    pub family: u8,
    /// The monitor's name (its row in the service).
    pub name: String,
    pub key: String,
}

/// Never prints the key.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("family", &self.family)
            .field("name", &self.name)
            .field("key", &"<hidden>")
            .finish()
    }
}

/// Why the credentials cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is readable or writable by others (mode {mode:o}): it holds monitor keys; run chmod {want:o} {path}"
    )]
    LoosePermissions { path: PathBuf, mode: u32, want: u32 },
    #[error("{path}: not credentials written by `poolwatch agent setup`: {why}")]
    Invalid { path: PathBuf, why: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CredentialsError + '_ {
    move |source| CredentialsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses `path` when group or others may use it beyond `allowed`.
fn check_mode(path: &Path, want: u32) -> Result<(), CredentialsError> {
    let mode = std::fs::metadata(path)
        .map_err(io(path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(CredentialsError::LoosePermissions {
            path: path.to_path_buf(),
            mode,
            want,
        });
    }
    Ok(())
}

/// The credentials in `dir`, `None` when there are none (setup not run);
/// an error when the directory or file is open to others, or unreadable.
pub fn load(dir: &Path) -> Result<Option<Credentials>, CredentialsError> {
    let path = dir.join(FILE);
    if !path.exists() {
        return Ok(None);
    }
    check_mode(dir, 0o700)?;
    check_mode(&path, 0o600)?;
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let c: Credentials = serde_json::from_str(&text).map_err(|e| CredentialsError::Invalid {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let families_ok = c.identities.iter().all(|i| i.family == 4 || i.family == 6);
    let unique = c.identities.len() <= 2
        && !(c.identities.len() == 2 && c.identities[0].family == c.identities[1].family);
    if c.identities.is_empty() || !families_ok || !unique {
        return Err(CredentialsError::Invalid {
            path,
            why: "expected one identity per address family (4, 6)".into(),
        });
    }
    Ok(Some(c))
}

/// Writes `c` into `dir` (created 0700 if missing) as a 0600 file,
/// through a temporary file and a rename, so a crash never leaves half a
/// file.
pub fn save(dir: &Path, c: &Credentials) -> Result<(), CredentialsError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let text = serde_json::to_string_pretty(c).map_err(|e| CredentialsError::Invalid {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(text.as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        Credentials {
            api: "https://pool.example.org".into(),
            identities: vec![
                Identity {
                    family: 4,
                    name: "zrh1".into(),
                    key: "pwk_4".into(),
                },
                Identity {
                    family: 6,
                    name: "zrh1-v6".into(),
                    key: "pwk_6".into(),
                },
            ],
        }
    }

    #[test]
    fn saved_private_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("state");
        assert!(load(&dir).unwrap().is_none(), "no setup yet");
        save(&dir, &sample()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(FILE)), 0o600);
        assert_eq!(load(&dir).unwrap(), Some(sample()));
        assert!(
            !format!("{:?}", sample()).contains("pwk_"),
            "keys never printed"
        );
    }

    #[test]
    fn loose_permissions_are_refused_with_the_fix() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("state");
        save(&dir, &sample()).unwrap();
        let file = dir.join(FILE);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&dir).unwrap_err().to_string();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = load(&dir).unwrap_err().to_string();
        assert!(e.contains("mode 755") && e.contains("chmod 700"), "{e}");
    }

    #[test]
    fn wrong_contents_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        for text in [
            "not json",
            r#"{"api":"x","identities":[]}"#,
            r#"{"api":"x","identities":[{"family":5,"name":"a","key":"k"}]}"#,
            r#"{"api":"x","identities":[{"family":4,"name":"a","key":"k"},{"family":4,"name":"b","key":"k"}]}"#,
        ] {
            let path = dir.join(FILE);
            let _ = std::fs::remove_file(&path);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let e = load(dir).unwrap_err();
            assert!(matches!(e, CredentialsError::Invalid { .. }), "{text}: {e}");
        }
    }
}
