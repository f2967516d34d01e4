//! `poolwatch agent setup` with the real binaries on loopback: `serve
//! --allow-private` on a dual-stack listener (`[::]`), `agent setup --api
//! http://localhost:PORT` registering over 127.0.0.1 and ::1, acceptance
//! through the manage API (an account's token), credentials.json (0600)
//! with both identities, the monitors pending until `admin monitor
//! approve`, then `agent --state-dir` running both from it. And the
//! refusals: credentials already there (without
//! --force), a service that refuses private sources.

mod common;

use common::e2e::{Proc, Setup, free_tcp_port, get, request, wait_until};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;
use store::{GlobalStatus, Store};

const TOKEN: &str = "pwt_agent_setup_test";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A service on `[::]:PORT` (both families on loopback), its data dir,
/// and an account "vol" with an API token.
fn service(extra: &[&str]) -> (Proc, tempfile::TempDir, u16) {
    let http = free_tcp_port();
    let data = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = ["serve", "--listen", &format!("[::]:{http}"), "--data-dir"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(data.path().display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    let serve = Proc::spawn(&args);
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::open(None, data.path())).unwrap();
    let acct = rt.block_on(store.ensure_account("vol")).unwrap();
    rt.block_on(store.create_token(
        acct,
        "test",
        &server::keys::hash_key(TOKEN),
        None,
        "admin:test",
        now(),
    ))
    .unwrap();
    rt.block_on(store.close());
    (serve, data, http)
}

fn monitor_status(dir: &std::path::Path, name: &str) -> GlobalStatus {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::open(None, dir)).unwrap();
    let m = rt.block_on(store.monitor_by_name(name)).unwrap().unwrap();
    rt.block_on(store.close());
    m.status
}

#[test]
fn setup_registers_both_families_and_saves_credentials_once_accepted() {
    let (_serve, data, http) = service(&["--allow-private"]);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("agent");
    let api = format!("http://localhost:{http}");
    let dir_arg = state_dir.display().to_string();
    let mut setup = Setup::start(&["--api", &api, "--state-dir", &dir_arg, "--name", "lab1"]);
    let mut code = String::new();
    wait_until(
        "agent setup to print the code",
        Duration::from_secs(30),
        || {
            let out = setup.out();
            if let Some(at) = out.find("accept?code=") {
                code = out[at + 12..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string();
            }
            !code.is_empty()
        },
    );
    let out = setup.out();
    assert!(out.contains("IPv4: registered"), "{out}");
    assert!(out.contains("IPv6: registered"), "{out}");
    // Without --public-url the link names the listen address.
    assert!(
        out.contains(&format!("/manage/monitors/accept?code={code}\n")),
        "{out}"
    );
    assert!(out.contains("It expires in 60 minutes"), "{out}");
    assert!(out.contains(&format!("enter the code {code}")), "{out}");

    // The volunteer accepts it for the account (here with its API token).
    let auth = format!("Bearer {TOKEN}");
    let body = json!({"code": code, "name": "lab1", "location": "Loopback"}).to_string();
    let (st, text) = request(
        http,
        "POST",
        "/api/v1/manage/monitors/accept",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(st, 201, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let got: Vec<(&str, &str, &str)> = v["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["ip"].as_str().unwrap(),
                m["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("lab1", "127.0.0.1", "pending"),
            ("lab1-v6", "::1", "pending")
        ]
    );

    assert_eq!(
        setup.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        setup.out()
    );
    let out = setup.out();
    assert!(
        out.contains("Accepted: lab1 (IPv4), lab1-v6 (IPv6)"),
        "{out}"
    );
    assert!(
        out.contains("waiting for approval by the pool's admins"),
        "{out}"
    );
    assert!(
        out.contains(&format!("poolwatch agent --state-dir {dir_arg}")),
        "{out}"
    );

    let file = state_dir.join("credentials.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let creds = agent::credentials::load(&state_dir).unwrap().unwrap();
    assert_eq!(creds.api, api);
    let ids: Vec<(u8, &str)> = creds
        .identities
        .iter()
        .map(|i| (i.family, i.name.as_str()))
        .collect();
    assert_eq!(ids, [(4, "lab1"), (6, "lab1-v6")]);
    // The keys are in the file only, never in what setup printed.
    for i in &creds.identities {
        assert!(i.key.starts_with("pwk_"));
        assert!(!out.contains(&i.key), "{out}");
    }

    // Pending: the key is known, but gets no work until approved.
    let config = |key: &str| {
        request(
            http,
            "GET",
            "/api/v1/monitor/config",
            &[("Authorization", &format!("Bearer {key}"))],
            "",
        )
        .unwrap()
    };
    let (st, text) = config(&creds.identities[0].key);
    assert_eq!(st, 403, "{text}");
    assert!(
        text.contains("awaiting approval by the pool's admins"),
        "{text}"
    );
    assert_eq!(
        monitor_status(data.path(), "lab1-v6"),
        GlobalStatus::Pending
    );
    let approved = common::e2e::admin(data.path(), &["monitor", "approve", "lab1"]);
    assert!(approved.contains("lab1, lab1-v6"), "{approved}");
    for i in &creds.identities {
        let (st, text) = config(&i.key);
        assert_eq!(st, 200, "{}: {text}", i.name);
    }
    assert_eq!(
        monitor_status(data.path(), "lab1-v6"),
        GlobalStatus::Testing
    );
    // The agent runs from what setup saved (no --api, no --key): both
    // monitors call with its User-Agent.
    let agent = Proc::spawn(&[
        "agent".to_string(),
        "--state-dir".to_string(),
        dir_arg.clone(),
        "--lab".to_string(),
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::open(None, data.path())).unwrap();
    wait_until("both identities to call", Duration::from_secs(60), || {
        ["lab1", "lab1-v6"].iter().all(|n| {
            let m = rt.block_on(store.monitor_by_name(n)).unwrap().unwrap();
            m.client_version
                .is_some_and(|v| v.starts_with("poolwatch-agent/"))
        })
    });
    rt.block_on(store.close());
    drop(agent);

    // Set up already: refused without --force, the file unchanged.
    let before = std::fs::read(&file).unwrap();
    let mut again = Setup::start(&["--api", &api, "--state-dir", &dir_arg]);
    assert_eq!(
        again.wait(Duration::from_secs(30)),
        Some(2),
        "{}",
        again.out()
    );
    assert!(again.out().contains("--force"), "{}", again.out());
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn a_service_without_allow_private_refuses_loopback_registrations() {
    let (_serve, _data, http) = service(&[]);
    let state = tempfile::tempdir().unwrap();
    let dir_arg = state.path().join("agent").display().to_string();
    let api = format!("http://localhost:{http}");
    let mut setup = Setup::start(&["--api", &api, "--state-dir", &dir_arg]);
    assert_eq!(
        setup.wait(Duration::from_secs(30)),
        Some(1),
        "{}",
        setup.out()
    );
    let out = setup.out();
    assert!(
        out.contains("could not register over either address family"),
        "{out}"
    );
    assert!(out.contains("not a public address"), "{out}");
    assert!(!state.path().join("agent").join("credentials.json").exists());
}

#[test]
fn a_family_the_service_lacks_is_skipped_and_ctrl_c_stops_the_wait() {
    let (_serve, data, http) = service(&["--allow-private"]);
    let state = tempfile::tempdir().unwrap();
    let dir_arg = state.path().join("agent").display().to_string();
    // An IPv4 literal: the service has no IPv6 address here.
    let api = format!("http://127.0.0.1:{http}");
    let mut setup = Setup::start(&["--api", &api, "--state-dir", &dir_arg]);
    wait_until("agent setup to wait", Duration::from_secs(30), || {
        setup.out().contains("Waiting for the acceptance")
    });
    let out = setup.out();
    assert!(out.contains("IPv4: registered"), "{out}");
    assert!(
        out.contains("IPv6: skipped, the service has no IPv6 address"),
        "{out}"
    );
    let kill = Command::new("kill")
        .args(["-s", "INT", &setup.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(
        setup.wait(Duration::from_secs(30)),
        Some(130),
        "{}",
        setup.out()
    );
    assert!(
        setup.out().contains("the registration expires by itself"),
        "{}",
        setup.out()
    );
    assert!(!state.path().join("agent").join("credentials.json").exists());
    // Registered from IPv4 only: the service saw no IPv6 address.
    let at = out.find("accept?code=").unwrap() + 12;
    let code = out[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .replace('-', "");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::open(None, data.path())).unwrap();
    let r = rt
        .block_on(store.registration_by_code(&server::keys::hash_key(&code)))
        .unwrap()
        .expect("the registration");
    assert_eq!(
        (r.ipv4.as_deref(), r.ipv6.as_deref()),
        (Some("127.0.0.1"), None)
    );
    rt.block_on(store.close());
}
