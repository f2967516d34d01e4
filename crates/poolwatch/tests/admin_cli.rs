//! `poolwatch admin`, run as the real binary against a temporary
//! --data-dir (SQLite): keys that authenticate, GeoIP zones for IPv4 and
//! IPv6, and refusals that exit 2 and change nothing.

use std::path::Path;
use std::process::{Command, Output};
use store::Store;

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_poolwatch"))
        .arg("admin")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("POOLWATCH_DATABASE_URL")
        .env_remove("POOLWATCH_CONFIG")
        .env_remove("POOLWATCH_GEOIP")
        .output()
        .expect("run poolwatch")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Exit status 2 and the one-line error on stderr.
fn refused(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    err
}

const MMDB: &str = geo::fixtures::COUNTRY_MMDB;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn monitor_add_prints_a_key_that_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "monitor",
            "add",
            "defra1",
            "--ip",
            "192.0.2.10",
            "--location",
            "Frankfurt, DE",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let key = stdout.trim();
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout is the key alone: {stdout}"
    );
    assert!(key.starts_with("pwk_") && key.len() > 40, "{key}");
    assert!(stderr.contains("cannot be shown again"), "{stderr}");

    let m = rt().block_on(async {
        let store = Store::open(None, dir.path()).await.unwrap();
        let m = store
            .monitor_by_key_hash(&server::keys::hash_key(key))
            .await
            .unwrap();
        store.close().await;
        m
    });
    let m = m.expect("the printed key finds the monitor");
    assert_eq!(m.name, "defra1");
    assert_eq!(m.location, "Frankfurt, DE");
    assert_eq!(m.status.as_str(), "active");
    assert_ne!(m.key_hash, key);

    let list = ok(dir.path(), &["monitor", "list"]);
    assert!(list.contains("defra1") && list.contains("active"), "{list}");
    assert!(!list.contains(key), "the key is never shown again");
    ok(
        dir.path(),
        &["monitor", "set", "defra1", "--status", "paused"],
    );
    assert!(ok(dir.path(), &["monitor", "list"]).contains("paused"));

    // A second monitor of the same name, bad names, statuses and addresses.
    refused(
        dir.path(),
        &["monitor", "add", "defra1", "--ip", "192.0.2.11"],
    );
    refused(
        dir.path(),
        &["monitor", "add", "de_fra", "--ip", "192.0.2.11"],
    );
    refused(
        dir.path(),
        &["monitor", "add", "ok-name", "--ip", "not-an-ip"],
    );
    refused(
        dir.path(),
        &[
            "monitor",
            "add",
            "ok-name",
            "--ip",
            "192.0.2.11",
            "--status",
            "bogus",
        ],
    );
    refused(
        dir.path(),
        &["monitor", "set", "nosuch", "--status", "active"],
    );
    let list = ok(dir.path(), &["monitor", "list"]);
    assert_eq!(list.lines().count(), 2, "header and defra1 only: {list}");

    // A new key for a leaked one: printed once, the old one stops working.
    let new_key = ok(dir.path(), &["monitor", "rotate-key", "defra1"])
        .trim()
        .to_string();
    assert!(new_key.starts_with("pwk_") && new_key != key, "{new_key}");
    let (old, new) = rt().block_on(async {
        let store = Store::open(None, dir.path()).await.unwrap();
        let mut found = Vec::new();
        for k in [key, new_key.as_str()] {
            let hash = server::keys::hash_key(k);
            found.push(store.monitor_by_key_hash(&hash).await.unwrap());
        }
        let found = (found.remove(0), found.remove(0));
        store.close().await;
        found
    });
    assert!(old.is_none(), "the old key no longer finds the monitor");
    assert_eq!(new.expect("the new key finds it").name, "defra1");
    let err = refused(dir.path(), &["monitor", "rotate-key", "nosuch"]);
    assert!(err.contains("no monitor named 'nosuch'"), "{err}");
}

#[test]
fn server_add_finds_zones_for_ipv4_and_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ok(d, &["server", "add", "81.2.69.142", "--geoip", MMDB]);
    assert!(out.contains("uk"), "{out}");
    ok(
        d,
        &[
            "server",
            "add",
            "2a02:d180::1",
            "--geoip",
            MMDB,
            "--netspeed",
            "50000",
        ],
    );
    // --zone overrides, and needs no GeoIP.
    ok(
        d,
        &[
            "server",
            "add",
            "216.160.83.56",
            "--zone",
            "GB",
            "--account",
            "ops",
        ],
    );

    let servers = rt().block_on(async {
        let store = Store::open(None, d).await.unwrap();
        let s = store.list_servers().await.unwrap();
        store.close().await;
        s
    });
    let zones = |ip: &str| {
        let mut z = servers
            .iter()
            .find(|s| s.ip.to_string() == ip)
            .unwrap()
            .zones
            .clone();
        z.sort();
        z
    };
    assert_eq!(zones("81.2.69.142"), ["@", "europe", "uk"]);
    assert_eq!(zones("2a02:d180::1"), ["@", "de", "europe"]);
    assert_eq!(zones("216.160.83.56"), ["@", "europe", "uk"]);
    let six = servers.iter().find(|s| s.ip_version == 6).unwrap();
    assert_eq!(six.netspeed, 50_000);

    let list = ok(d, &["server", "list"]);
    assert!(
        list.contains("81.2.69.142") && list.contains("2a02:d180::1"),
        "{list}"
    );
    let show = ok(d, &["server", "show", "2a02:d180::1"]);
    assert!(show.contains("de") && show.contains("50000"), "{show}");

    let zl = ok(d, &["zone", "list"]);
    let line = |name: &str| {
        zl.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(str::to_string)
    };
    let uk = line("uk").expect("uk listed");
    assert_eq!(
        uk.split_whitespace().nth(3),
        Some("2"),
        "two IPv4 servers registered: {uk}"
    );
    assert!(line("de").is_some());
    assert!(line("fr").is_none(), "empty zones are hidden: {zl}");
    assert!(
        ok(d, &["zone", "list", "--all"])
            .lines()
            .any(|l| l.starts_with("fr "))
    );

    ok(d, &["server", "set", "81.2.69.142", "--netspeed", "0"]);
    let out = ok(
        d,
        &["server", "remove", "81.2.69.142", "--on", "2099-01-31"],
    );
    assert!(out.contains("2099-01-31"), "{out}");
    assert!(ok(d, &["server", "show", "81.2.69.142"]).contains("2099-01-31"));
    ok(d, &["server", "remove", "81.2.69.142", "--cancel"]);
    assert!(!ok(d, &["server", "show", "81.2.69.142"]).contains("2099-01-31"));
}

#[test]
fn unknown_country_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // In the database, but with a continent and no country.
    let err = refused(d, &["server", "add", "2a02:d500::1", "--geoip", MMDB]);
    assert_eq!(
        err,
        "poolwatch: cannot determine the country of 2a02:d500::1; pass --zone CC\n"
    );
    // No GeoIP database at all.
    let err = refused(d, &["server", "add", "89.160.20.112"]);
    assert_eq!(
        err,
        "poolwatch: cannot determine the country of 89.160.20.112; pass --zone CC\n"
    );
    // With --zone it goes in.
    ok(
        d,
        &[
            "server",
            "add",
            "2a02:d500::1",
            "--geoip",
            MMDB,
            "--zone",
            "nl",
        ],
    );
    let show = ok(d, &["server", "show", "2a02:d500::1"]);
    assert!(show.contains("nl"), "{show}");
}

#[test]
fn bad_input_exits_2_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["server", "add", "81.2.69.142", "--geoip", MMDB]);
    let before = ok(d, &["server", "show", "81.2.69.142"]);
    for args in [
        &["server", "add", "999.1.1.1", "--zone", "de"][..],
        &["server", "add", "81.2.69.143", "--zone", "zz"],
        &["server", "add", "81.2.69.143", "--zone", "europe"],
        &["server", "add", "10.0.0.1", "--zone", "de"],
        &[
            "server",
            "add",
            "81.2.69.143",
            "--zone",
            "de",
            "--netspeed=-5",
        ],
        &["server", "add", "81.2.69.142", "--zone", "de"],
        &["server", "remove", "81.2.69.142", "--on", "2024-13-01"],
        &["server", "remove", "81.2.69.142", "--on", "31.01.2099"],
        &["server", "remove", "81.2.69.142", "--on", "2001-01-01"],
        &["server", "remove", "192.0.2.77"],
        &["server", "set", "81.2.69.142", "--netspeed=-1"],
        &["server", "set", "192.0.2.77", "--netspeed", "100"],
        &["server", "show", "192.0.2.77"],
        &["server", "show", "bogus"],
        &[
            "server",
            "add",
            "81.2.69.143",
            "--geoip",
            "/nonexistent.mmdb",
        ],
    ] {
        let err = refused(d, args);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
    }
    refused(d, &["server", "frobnicate"]);
    assert_eq!(ok(d, &["server", "show", "81.2.69.142"]), before);
    let list = ok(d, &["server", "list"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    // A lab address goes in only when asked for.
    ok(
        d,
        &[
            "server",
            "add",
            "10.0.0.1",
            "--zone",
            "de",
            "--allow-private",
        ],
    );
}

#[test]
fn account_set_admin_and_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["account", "add", "acme"]);
    let out = ok(d, &["account", "set", "acme", "--admin", "--disabled"]);
    assert!(
        out.contains("admin     true") && out.contains("disabled  true"),
        "{out}"
    );
    let out = ok(d, &["account", "set", "acme", "--enabled"]);
    assert!(
        out.contains("admin     true") && out.contains("disabled  false"),
        "{out}"
    );
    for args in [
        &["account", "set", "acme"][..],
        &["account", "set", "nobody", "--admin"],
        &["account", "set", "acme", "--admin", "--no-admin"],
        &["account", "set", "acme", "--disabled", "--enabled"],
    ] {
        refused(d, args);
    }
    let out = ok(d, &["account", "set", "acme", "--no-admin"]);
    assert!(out.contains("admin     false"), "{out}");
    // Each change is in the account's audit log, by the command line.
    rt().block_on(async {
        let store = Store::open(None, d).await.unwrap();
        let id = store.account_by_name("acme").await.unwrap().unwrap().id;
        let log: Vec<_> = store
            .audit_log(id, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.actor))
            .collect();
        let want = [
            "account.unadmin",
            "account.enable",
            "account.disable",
            "account.admin",
        ];
        assert_eq!(log.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(), want);
        assert!(log.iter().all(|l| l.1 == "admin:cli"));
    });
}

#[test]
fn help_explains_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_poolwatch"))
        .args(["admin", "server", "add", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for word in [
        "--zone",
        "--netspeed",
        "--account",
        "--geoip",
        "--data-dir",
        "--database-url",
    ] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_poolwatch"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for word in [
        "--listen",
        "--interval-active",
        "--reference-server",
        "--ticket-secret-file",
        "--trusted-proxy",
        "--config",
        "POOLWATCH_DATABASE_URL",
        "--zone-guard",
        "POOLWATCH_ZONE_GUARD",
    ] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
}

/// `serve` with SMTP settings that cannot work: exit 2 with one line that
/// names the flag and never shows the password; nothing is started.
/// Runs `serve` (SQLite in `dir`, port 0) with `args`, which it must refuse
/// before listening: its exit status and stderr. Fails if it keeps running.
fn serve_refused(dir: &std::path::Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_poolwatch"))
        .arg("serve")
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("POOLWATCH_DATABASE_URL")
        .env_remove("POOLWATCH_CONFIG")
        .env_remove("POOLWATCH_SMTP_URL")
        .env_remove("POOLWATCH_LOG_RETENTION")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve {args:?} kept running");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

#[test]
fn serve_refuses_bad_dns_rate_limiting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[dns_rrl]\nipv4_prefix = 40\n").unwrap();
    let config = config.to_str().unwrap();
    for (args, want) in [
        (
            vec!["--dns-rrl-ipv6-prefix", "129"],
            "--dns-rrl-ipv6-prefix",
        ),
        (vec!["--dns-rrl-size", "1"], "size (--dns-rrl-size) 1"),
        (
            vec!["--config", config],
            "ipv4_prefix (--dns-rrl-ipv4-prefix) 40",
        ),
    ] {
        let (status, err) = serve_refused(dir.path(), &args);
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn serve_refuses_bad_log_retention() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "log_retention = \"soon\"\n").unwrap();
    let config = config.to_str().unwrap();
    for (args, want) in [
        (vec!["--log-retention", "1d"], "too short: at least 2d"),
        (
            vec!["--log-retention", "90"],
            "forever or a duration such as 90d",
        ),
        (vec!["--config", config], "config log_retention: 'soon'"),
    ] {
        let (status, err) = serve_refused(dir.path(), &args);
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn serve_refuses_bad_smtp_settings() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("missing-ca.pem");
    let ca = ca.to_str().unwrap();
    for (args, want) in [
        (
            vec!["--smtp-url", "smtp://alerts:hunter2@127.0.0.1:2525"],
            "never sent unencrypted",
        ),
        (
            vec![
                "--smtp-url",
                "smtps://alerts:hunter2@127.0.0.1:4650",
                "--smtp-ca",
                ca,
            ],
            "--smtp-ca",
        ),
        (
            vec!["--smtp-url", "smtp://127.0.0.1?tls=maybe"],
            "tls=required",
        ),
    ] {
        let mut all = vec!["--alert-from", "alerts@pool.test"];
        all.extend_from_slice(&args);
        let (status, err) = serve_refused(dir.path(), &all);
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("hunter2"), "{args:?}: {err}");
    }
}

#[test]
fn monitor_approve_takes_pending_monitors_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = refused(d, &["monitor", "approve", "nope"]);
    assert!(err.contains("not found"), "{err}");
    ok(
        d,
        &[
            "monitor",
            "add",
            "new1",
            "--ip",
            "192.0.2.11",
            "--status",
            "pending",
        ],
    );
    ok(d, &["monitor", "add", "old1", "--ip", "192.0.2.12"]);
    let out = ok(d, &["monitor", "approve", "new1"]);
    assert_eq!(out.trim(), "approved: new1 (now testing)");
    for name in ["new1", "old1"] {
        let err = refused(d, &["monitor", "approve", name]);
        assert!(err.contains("not pending"), "{err}");
    }
    let store = rt().block_on(Store::open(None, d)).unwrap();
    let m = rt()
        .block_on(store.monitor_by_name("new1"))
        .unwrap()
        .unwrap();
    assert_eq!(m.status, store::GlobalStatus::Testing);
    let m = rt()
        .block_on(store.monitor_by_name("old1"))
        .unwrap()
        .unwrap();
    assert_eq!(m.status, store::GlobalStatus::Active);
    let help = ok(d, &["monitor", "approve", "--help"]);
    assert!(
        help.contains("approving either name approves both"),
        "{help}"
    );
}

#[test]
fn account_monitor_limit_is_set_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["account", "add", "vol"]);
    let out = ok(d, &["account", "set", "vol", "--max-monitors", "5"]);
    assert!(out.contains("at most 5 monitors"), "{out}");
    for bad in ["0", "x", "10001"] {
        let err = refused(d, &["account", "set", "vol", "--max-monitors", bad]);
        assert!(err.contains("--max-monitors"), "{err}");
    }
    let err = refused(d, &["account", "set", "nobody", "--max-monitors", "2"]);
    assert!(err.contains("not found"), "{err}");
    let out = ok(d, &["account", "set", "vol", "--max-monitors", "default"]);
    assert!(out.contains("serve's default"), "{out}");
}
