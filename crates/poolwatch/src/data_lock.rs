//! The lock that keeps SQLite `serve` to one process per data directory
//! (issue 16): an exclusive advisory lock (flock) on DATA_DIR/serve.lock,
//! held until the process ends — the kernel drops it with the process, so
//! a crash leaves no stale lock. The file names its holder (pid, host,
//! instance, start), so the refused second `serve` can say who runs.
//! `admin` commands take no lock: they are short writes SQLite serialises.

use anyhow::{Result, bail};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "serve.lock";

/// Held while alive.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Take the data directory's lock (creating the directory and file) and
    /// write who holds it; an error naming the holder if another process
    /// has it.
    pub fn take(data_dir: &Path, instance: &str) -> Result<DataDirLock> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", data_dir.display()))?;
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "a process that has not written its name yet"
                } else {
                    holder
                };
                bail!(
                    "another poolwatch serve already runs on the data directory {} ({holder}); \
                     SQLite takes one serve process: stop that one first, or use another \
                     --data-dir (several serve need PostgreSQL, --database-url)",
                    data_dir.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                bail!("cannot lock {}: {e}", path.display())
            }
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let info = format!(
            "pid {} on host {host}, instance {instance}, since {started}\n",
            std::process::id()
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(info.as_bytes()))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_first_and_free_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::take(dir.path(), "web-1").unwrap();
        let e = DataDirLock::take(dir.path(), "web-2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("another poolwatch serve already runs"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(e.contains("instance web-1"), "{e}");
        drop(first);
        let again = DataDirLock::take(dir.path(), "web-2").unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(
            text.contains("instance web-2") && !text.contains("web-1"),
            "{text}"
        );
        drop(again);
    }
}
