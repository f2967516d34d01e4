//! A PostgreSQL database of its own for a test that runs the real binaries
//! (made and dropped through `psql`), on the server of
//! `POOLWATCH_TEST_PG_URL`.

use std::process::Command;

pub const PG_ENV: &str = "POOLWATCH_TEST_PG_URL";

pub struct TestPg {
    /// The test database's URL, for `--database-url`.
    pub url: String,
    admin: String,
    name: String,
}

impl TestPg {
    /// A new empty database; `None` (said on stderr) without
    /// `POOLWATCH_TEST_PG_URL`, which CI must set.
    pub fn create() -> Option<TestPg> {
        let admin = match std::env::var(PG_ENV) {
            Ok(u) if !u.is_empty() => u,
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{PG_ENV} must be set under CI: PostgreSQL tests may not be skipped"
                );
                eprintln!("skipped: {PG_ENV} is not set");
                return None;
            }
        };
        let name = format!(
            "pw_e2e_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 1_000_000_000
        );
        psql(&admin, &format!("CREATE DATABASE {name}"));
        // postgres://user:pass@host:port/DB?query → the same with `name`.
        let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
        let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
        let url = if query.is_empty() {
            format!("{server}/{name}")
        } else {
            format!("{server}/{name}?{query}")
        };
        Some(TestPg { url, admin, name })
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.admin, "-qc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-qc", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
