//! Chaos, end to end with the real binaries on loopback: `poolwatch serve`
//! on SQLite whose data directory is a small tmpfs in a private mount
//! namespace, three `poolwatch agent --lab` against a `poolwatch sim`
//! fleet. During ingestion the filesystem is filled to the last byte, held
//! full, then the filler is deleted. The service must answer throughout
//! (reads 200, monitor writes 503, never 500), keep its PID, and recover by
//! itself; the agents spool meanwhile; afterwards every check each agent
//! made is in the score log exactly once.
//!
//! Needs root (for `unshare -m` and `mount -t tmpfs`), as CI has; anywhere
//! else it is skipped with the reason printed.

mod common;

use common::e2e::{
    Proc, add_monitor_key, admin, agent_args, agent_tally, busy_serve_args, free_tcp_port,
    free_udp_port_on, get, wait_until,
};
use common::{BIN, Sim};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SERVERS: [&str; 6] = [
    "127.0.6.1",
    "127.0.6.2",
    "127.0.6.3",
    "127.0.6.4",
    "127.0.6.5",
    "127.0.6.6",
];
const AGENTS: [(&str, &str); 3] = [
    ("fra", "127.0.7.1"),
    ("sin", "127.0.7.2"),
    ("gru", "127.0.7.3"),
];
/// The tmpfs: far more than the database needs before it is filled.
const TMPFS_SIZE: &str = "16m";
/// How long the disk stays full after the first 503.
const HELD_FULL: Duration = Duration::from_secs(6);

/// Why a private tmpfs cannot be mounted here, if it cannot.
fn cannot_mount_tmpfs(scratch: &Path) -> Option<String> {
    let out = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs -o size=1m tmpfs \"$1\"",
            "sh",
        ])
        .arg(scratch)
        .output();
    match out {
        Err(e) => Some(format!("cannot run unshare: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "unshare -m + mount -t tmpfs failed (needs root): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// `poolwatch serve` with its data directory `data` a fresh tmpfs (in a
/// mount namespace of its own) seeded with the files of `seed`.
fn spawn_serve(seed: &Path, data: &Path, http: u16, ntp: u16) -> Proc {
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-m",
        "sh",
        "-c",
        &format!(
            "mount -t tmpfs -o size={TMPFS_SIZE} tmpfs \"$1\" && cp -a \"$2\"/. \"$1\"/ && shift 2 && exec \"$@\""
        ),
        "sh",
    ])
    .arg(data)
    .arg(seed)
    .arg(BIN);
    let reference: Vec<String> = SERVERS[..3]
        .iter()
        .map(|ip| format!("{ip}:{ntp}"))
        .collect();
    cmd.args(busy_serve_args(
        &format!("127.0.0.1:{http}"),
        data,
        &reference,
    ));
    Proc::spawn_cmd(&mut cmd)
}

/// A gauge's value from an agent's /metrics.
fn gauge(port: u16, name: &str) -> Option<f64> {
    let (st, text) = get(port, "/metrics")?;
    if st != 200 {
        return None;
    }
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Writes zeros to `path` until the filesystem refuses (ENOSPC).
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("create the filler");
    let chunk = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
                break;
            }
        }
    }
    n
}

/// Log rows of monitor `name` over every server (CSV, as operators read it).
fn log_rows(http: u16, name: &str) -> usize {
    SERVERS
        .iter()
        .map(|ip| {
            let (st, body) = get(
                http,
                &format!("/scores/{ip}/log?limit=10000&monitor={name}"),
            )
            .expect("GET log");
            assert_eq!(st, 200, "{body}");
            body.lines().skip(1).count()
        })
        .sum()
}

/// Every read answers (200) and the process is still the same one.
fn still_serving(serve: &mut Proc, http: u16, pid: u32) {
    assert!(serve.running(), "serve exited: {}", serve.log());
    assert_eq!(serve.pid(), pid);
    let r = get(http, "/api/v1/zones");
    assert!(
        matches!(r, Some((200, _))),
        "serve stopped answering reads: {r:?}\n{}",
        serve.log()
    );
}

#[test]
fn disk_full_during_ingestion_then_freed() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("probe");
    std::fs::create_dir(&scratch).unwrap();
    if let Some(why) = cannot_mount_tmpfs(&scratch) {
        eprintln!("skipped: {why}");
        return;
    }

    let ntp = free_udp_port_on(&SERVERS);
    let http = free_tcp_port();
    let fleet: String = SERVERS
        .iter()
        .map(|ip| format!("[[server]]\naddr = \"{ip}:{ntp}\"\n"))
        .collect();
    let _sim = Sim::start(&fleet);
    let seed = tmp.path().join("seed");
    for ip in SERVERS {
        admin(
            &seed,
            &["server", "add", ip, "--zone", "de", "--allow-private"],
        );
    }
    let keys: Vec<String> = AGENTS
        .iter()
        .map(|(name, ip)| add_monitor_key(&seed, name, ip))
        .collect();
    let data: PathBuf = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut serve = spawn_serve(&seed, &data, http, ntp);
    let pid = serve.pid();
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });
    // serve's data directory as this process sees it: through serve's root,
    // which lies in serve's mount namespace.
    let inside = PathBuf::from(format!("/proc/{pid}/root")).join(data.strip_prefix("/").unwrap());
    assert!(inside.join("poolwatch.db").exists(), "{}", serve.log());

    let mports: Vec<u16> = AGENTS.iter().map(|_| free_tcp_port()).collect();
    let mut agents: Vec<Proc> = AGENTS
        .iter()
        .zip(&keys)
        .zip(&mports)
        .map(|(((name, ip), key), mport)| {
            let api = format!("http://127.0.0.1:{http}");
            let mut args = agent_args(tmp.path(), &api, ntp, name, ip, key);
            args.extend(["--metrics-listen".into(), format!("127.0.0.1:{mport}")]);
            Proc::spawn(&args)
        })
        .collect();
    let submitted = "poolwatch_agent_last_submit_timestamp_seconds";
    wait_until(
        "every agent to have a batch accepted",
        Duration::from_secs(30),
        || mports.iter().all(|p| gauge(*p, submitted).is_some()),
    );

    // The filesystem fills up during ingestion.
    let filler = inside.join("filler");
    let filled = fill(&filler);
    let full_at = Instant::now();
    eprintln!("filled the tmpfs with {filled} bytes");
    let unavailable = "database temporarily unavailable";
    while !serve.log().contains(unavailable) {
        assert!(
            full_at.elapsed() < Duration::from_secs(30),
            "no 503 after the disk filled: {}",
            serve.log()
        );
        still_serving(&mut serve, http, pid);
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("first 503 after {:?}", full_at.elapsed());
    // Held full a while, and until some agent has spooled a batch.
    let first_503 = Instant::now();
    let spooling = || {
        mports
            .iter()
            .any(|p| gauge(*p, "poolwatch_agent_spool_depth").is_some_and(|d| d > 0.0))
    };
    while first_503.elapsed() < HELD_FULL || !spooling() {
        assert!(
            first_503.elapsed() < Duration::from_secs(30),
            "no agent spooled while the disk was full"
        );
        still_serving(&mut serve, http, pid);
        std::thread::sleep(Duration::from_millis(300));
    }

    // Space comes back; nobody restarts anything.
    std::fs::remove_file(&filler).unwrap();
    let freed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let freed = Instant::now();
    wait_until(
        "every agent's spool replayed and a new batch accepted",
        Duration::from_secs(40),
        || {
            still_serving(&mut serve, http, pid);
            mports.iter().all(|p| {
                gauge(*p, "poolwatch_agent_spool_depth") == Some(0.0)
                    && gauge(*p, submitted).is_some_and(|t| t > freed_at)
            })
        },
    );
    eprintln!("recovered {:?} after space came back", freed.elapsed());

    let mut spooled_any = 0;
    for (agent, (name, _)) in agents.iter_mut().zip(AGENTS) {
        agent.signal("TERM");
        assert_eq!(
            agent.wait(Duration::from_secs(15)),
            Some(0),
            "{name} exit: {}",
            agent.log()
        );
        let (checks, accepted, spooled, dropped) = agent_tally(&agent.log());
        spooled_any += spooled;
        assert_eq!(dropped, 0, "{name} dropped results: {}", agent.log());
        assert_eq!(accepted, checks, "{name}: every check accepted once");
        assert_eq!(
            log_rows(http, name) as u64,
            checks,
            "{name}: log rows vs checks made"
        );
    }
    assert!(spooled_any > 0, "the agents should have spooled");

    still_serving(&mut serve, http, pid);
    let log = serve.log();
    for bad in ["transaction depth", "internal error"] {
        assert!(!log.contains(bad), "serve logged {bad:?}: {log}");
    }
    serve.signal("TERM");
    assert_eq!(
        serve.wait(Duration::from_secs(20)),
        Some(0),
        "{}",
        serve.log()
    );
}
