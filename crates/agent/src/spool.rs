//! The spool: results the service could not take yet, one JSON batch per
//! line in `<state-dir>/spool.jsonl`, appended and fsynced before the agent
//! moves on, replayed oldest first. The service stores a replayed batch once.

use api::Submission;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// A batch waiting to be submitted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spooled {
    /// Unix seconds when it was spooled.
    pub spooled_at: i64,
    pub results: Submission,
}

/// Append-only file of batches; every change is fsynced.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    dir: PathBuf,
}

impl Spool {
    /// Open (creating the directory, mode 0700) the spool in `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(Spool {
            path: dir.join("spool.jsonl"),
            dir: dir.to_path_buf(),
        })
    }

    /// Add a batch at the end and make it durable.
    pub fn push(&self, item: &Spooled) -> std::io::Result<()> {
        let existed = self.path.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut line = serde_json::to_vec(item)?;
        line.push(b'\n');
        f.write_all(&line)?;
        f.sync_data()?;
        if !existed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Every batch, oldest first. A torn last line (crash mid-write) is skipped.
    pub fn load(&self) -> std::io::Result<Vec<Spooled>> {
        let f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut out = vec![];
        for line in BufReader::new(f).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(&line) {
                Ok(item) => out.push(item),
                Err(e) => tracing::warn!("skipping unreadable spool line: {e}"),
            }
        }
        Ok(out)
    }

    /// Number of batches waiting.
    pub fn depth(&self) -> usize {
        self.load().map(|v| v.len()).unwrap_or(0)
    }

    /// Replace the spool's content atomically (write, fsync, rename).
    pub fn rewrite(&self, items: &[Spooled]) -> std::io::Result<()> {
        if items.is_empty() {
            match std::fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            return sync_dir(&self.dir);
        }
        let tmp = self.path.with_extension("jsonl.tmp");
        {
            let mut f = File::create(&tmp)?;
            for item in items {
                let mut line = serde_json::to_vec(item)?;
                line.push(b'\n');
                f.write_all(&line)?;
            }
            f.sync_data()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::CheckResult;

    fn batch(id: &str) -> Spooled {
        Spooled {
            spooled_at: 1,
            results: Submission {
                batch_id: id.into(),
                results: vec![CheckResult {
                    ip: "127.0.0.1".parse().unwrap(),
                    ticket: "t".into(),
                    ts: 5,
                    offset: Some(0.001),
                    rtt: Some(0.01),
                    stratum: Some(2),
                    leap: Some(0),
                    refid: None,
                    error: None,
                    no_response: false,
                    samples: vec![],
                }],
            },
        }
    }

    #[test]
    fn push_load_rewrite_in_order() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path()).unwrap();
        assert_eq!(s.depth(), 0);
        for id in ["1", "2", "3"] {
            s.push(&batch(id)).unwrap();
        }
        let all = s.load().unwrap();
        assert_eq!(
            all.iter()
                .map(|b| b.results.batch_id.as_str())
                .collect::<Vec<_>>(),
            ["1", "2", "3"]
        );
        s.rewrite(&all[1..]).unwrap();
        assert_eq!(s.depth(), 2);
        assert_eq!(
            Spool::open(d.path()).unwrap().load().unwrap()[0]
                .results
                .batch_id,
            "2"
        );
        s.rewrite(&[]).unwrap();
        assert_eq!(s.depth(), 0);
    }

    #[test]
    fn torn_last_line_is_skipped() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path()).unwrap();
        s.push(&batch("1")).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(d.path().join("spool.jsonl"))
            .unwrap()
            .write_all(b"{\"spooled_at\":1,\"resu")
            .unwrap();
        assert_eq!(s.load().unwrap().len(), 1);
    }
}
