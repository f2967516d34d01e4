//! Issue 16 end to end: two `poolwatch serve` processes on one PostgreSQL
//! database, four real agents split between them, a simulated fleet.
//!
//! 1. Both instances answer and are ready; each background job that must
//!    run once (selector, housekeeping, alerts, zone counts, zone guard) is
//!    held by exactly one of them, and only the holder runs selector passes.
//! 2. A server really fails: exactly one alert goes out, though two
//!    instances could send it.
//! 3. The instance holding the jobs is killed (`kill -9`): the other takes
//!    every job over within 30 s. Its agents are restarted against the
//!    survivor with the same state: their spooled results, with tickets
//!    the dead instance signed, are accepted there.
//! 4. Every check each agent made is in the score log exactly once.
//! 5. SIGTERM on the survivor: /readyz turns 503 first, then it exits 0.

mod common;

use common::Sim;
use common::e2e::{
    Proc, agent_args, agent_tally, fleet, free_tcp_port, free_udp_port_on, get, in_dns, key_line,
    lab_serve_args, wait_until,
};
use common::pg::TestPg;
use common::webhook::Webhook;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const GOOD: [&str; 4] = ["127.0.9.1", "127.0.9.2", "127.0.9.3", "127.0.9.4"];
/// Fails for every agent in phase 2; its account has a webhook.
const FAIL: &str = "127.0.9.21";
/// Each in its own /20 (the selector allows one counted monitor per /20);
/// the first two report to instance A, the others to B.
const AGENTS: [(&str, &str); 4] = [
    ("a1", "127.0.16.1"),
    ("a2", "127.0.32.1"),
    ("b1", "127.0.48.1"),
    ("b2", "127.0.64.1"),
];
/// The jobs that must run on one instance at a time.
const SINGLE: [&str; 5] = [
    "selector",
    "housekeeping",
    "alerts",
    "zone_counts",
    "zone_guard",
];

fn all_servers() -> Vec<&'static str> {
    GOOD.iter().copied().chain([FAIL]).collect()
}

/// `poolwatch admin ARGS` on the test database.
fn admin(dir: &Path, url: &str, args: &[&str]) -> String {
    let out = Command::new(common::BIN)
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        common::stderr(&out)
    );
    common::stdout(&out)
}

struct Instance {
    name: &'static str,
    http: u16,
    proc: Proc,
}

fn start_instance(name: &'static str, dir: &Path, url: &str, ntp: u16) -> Instance {
    let http = free_tcp_port();
    let reference: Vec<String> = GOOD[..3].iter().map(|ip| format!("{ip}:{ntp}")).collect();
    // Each instance has a data directory of its own: nothing is shared
    // through files, only through the database.
    let data = dir.join(format!("serve-{name}"));
    let mut args = lab_serve_args(&format!("127.0.0.1:{http}"), &data, &reference);
    let public = format!("http://127.0.0.1:{http}");
    for f in [
        "--database-url",
        url,
        "--instance-name",
        name,
        "--alert-check",
        "2s",
        "--public-url",
        &public,
    ] {
        args.push(f.to_string());
    }
    let proc = Proc::spawn(&args);
    wait_until(
        &format!("instance {name} ready"),
        Duration::from_secs(60),
        || get(http, "/readyz").is_some_and(|(st, _)| st == 200),
    );
    Instance { name, http, proc }
}

/// The singleton jobs `port`'s instance holds, from its /metrics.
fn held(port: u16) -> Vec<String> {
    let Some((200, text)) = get(port, "/metrics") else {
        return Vec::new();
    };
    SINGLE
        .iter()
        .filter(|job| {
            let line = format!("poolwatch_job_lease_held{{job=\"{job}\"}} 1");
            text.lines().any(|l| l == line)
        })
        .map(|j| j.to_string())
        .collect()
}

/// `poolwatch_selector_passes_total` of `port`'s instance (0 before its
/// first pass).
fn selector_passes(port: u16) -> f64 {
    let (st, text) = get(port, "/metrics").expect("metrics");
    assert_eq!(st, 200);
    text.lines()
        .find_map(|l| l.strip_prefix("poolwatch_selector_passes_total "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Log rows of monitor `name` for every server, through `port`'s pool CSV.
fn log_rows(port: u16, name: &str) -> u64 {
    all_servers()
        .iter()
        .map(|ip| {
            let (st, body) = get(
                port,
                &format!("/scores/{ip}/log?limit=10000&monitor={name}"),
            )
            .expect("GET log");
            assert_eq!(st, 200, "{body}");
            body.lines().skip(1).count() as u64
        })
        .sum()
}

#[test]
fn two_instances_share_one_database_and_jobs_survive_a_kill() {
    let Some(pg) = TestPg::create() else {
        return;
    };
    let ntp = free_udp_port_on(&all_servers());
    let hook = Webhook::start();
    let _good = Sim::start(&fleet(&GOOD, ntp, ""));
    let mut fail_sim = Some(Sim::start(&fleet(&[FAIL], ntp, "")));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let url = pg.url.as_str();

    admin(dir, url, &["account", "add", "ops"]);
    let hook_url = format!("http://127.0.0.1:{}/hook", hook.port);
    admin(
        dir,
        url,
        &["account", "contact", "ops", "--webhook", &hook_url],
    );
    for ip in all_servers() {
        let mut args = vec!["server", "add", ip, "--zone", "de", "--allow-private"];
        if ip == FAIL {
            args.extend(["--account", "ops"]);
        }
        admin(dir, url, &args);
    }
    let keys: Vec<String> = AGENTS
        .iter()
        .map(|(name, ip)| {
            key_line(&admin(
                dir,
                url,
                &["monitor", "add", name, "--ip", ip, "--location", name],
            ))
        })
        .collect();

    // 1. Two instances, the jobs on one.
    let a = start_instance("a", dir, url, ntp);
    let b = start_instance("b", dir, url, ntp);
    let mut instances = [a, b];
    wait_until(
        "every single-instance job held",
        Duration::from_secs(30),
        || {
            let (ha, hb) = (held(instances[0].http), held(instances[1].http));
            SINGLE
                .iter()
                .all(|j| ha.contains(&j.to_string()) ^ hb.contains(&j.to_string()))
        },
    );
    let spawn_agent = |i: usize, http: u16| {
        let (name, ip) = AGENTS[i];
        let api = format!("http://127.0.0.1:{http}");
        Proc::spawn(&agent_args(dir, &api, ntp, name, ip, &keys[i]))
    };
    let mut agents: Vec<Proc> = (0..AGENTS.len())
        .map(|i| spawn_agent(i, instances[i / 2].http))
        .collect();
    let logs = |instances: &[Instance], agents: &[Proc]| {
        let mut s = String::new();
        for i in instances {
            s.push_str(&format!("serve {}:\n{}\n", i.name, i.proc.log()));
        }
        for (a, (name, _)) in agents.iter().zip(AGENTS) {
            s.push_str(&format!("{name}:\n{}\n", a.log()));
        }
        s
    };
    wait_until("every server in DNS", Duration::from_secs(180), || {
        all_servers().iter().all(|ip| in_dns(instances[1].http, ip))
    });

    // Only the selector's holder runs passes (every 2 s here).
    let selector_holder = |instances: &[Instance]| {
        instances
            .iter()
            .position(|i| held(i.http).iter().any(|j| j == "selector"))
            .expect("a selector holder")
    };
    let h = selector_holder(&instances);
    let before = [
        selector_passes(instances[0].http),
        selector_passes(instances[1].http),
    ];
    std::thread::sleep(Duration::from_secs(10));
    let after = [
        selector_passes(instances[0].http),
        selector_passes(instances[1].http),
    ];
    assert_eq!(selector_holder(&instances), h, "no takeover while both run");
    assert_eq!(
        after[1 - h],
        before[1 - h],
        "the other instance ran no selector pass"
    );
    let passes = after[h] - before[h];
    assert!(
        (2.0..=7.0).contains(&passes),
        "about one pass per 2 s interval in 10 s (a loaded machine may stretch a pass), not {passes}"
    );

    // 2. A real outage: one alert, from whichever instance holds alerts.
    drop(fail_sim.take());
    wait_until(
        "the failed server leaves DNS",
        Duration::from_secs(120),
        || !in_dns(instances[0].http, FAIL),
    );
    wait_until("the alert", Duration::from_secs(60), || {
        !hook.bodies().is_empty()
    });
    std::thread::sleep(Duration::from_secs(8));
    let hooks = hook.bodies();
    assert_eq!(hooks.len(), 1, "exactly one alert: {hooks:?}");
    assert!(hooks[0].contains(FAIL), "{}", hooks[0]);

    // 3. kill -9 the holder of the jobs: the other takes them all over.
    let dead = selector_holder(&instances);
    let alive = 1 - dead;
    instances[dead].proc.signal("KILL");
    let killed = Instant::now();
    wait_until(
        "the killed instance to be gone",
        Duration::from_secs(5),
        || !instances[dead].proc.running(),
    );
    wait_until(
        "the survivor holds every job",
        Duration::from_secs(30),
        || held(instances[alive].http).len() == SINGLE.len(),
    );
    eprintln!(
        "takeover after kill -9: {:.1} s",
        killed.elapsed().as_secs_f64()
    );
    // The dead instance's agents move to the survivor with their state:
    // what they spooled while it was gone is submitted there.
    let mut tallies = vec![(0u64, 0u64, 0u64, 0u64); AGENTS.len()];
    for i in (0..AGENTS.len()).filter(|i| i / 2 == dead) {
        agents[i].signal("TERM");
        assert_eq!(
            agents[i].wait(Duration::from_secs(15)),
            Some(0),
            "{}",
            agents[i].log()
        );
        tallies[i] = agent_tally(&agents[i].log());
        agents[i] = spawn_agent(i, instances[alive].http);
    }
    let passes_then = selector_passes(instances[alive].http);
    std::thread::sleep(Duration::from_secs(12));
    assert!(
        selector_passes(instances[alive].http) > passes_then,
        "the survivor runs the selector: {}",
        logs(&instances, &agents)
    );

    // 4. Every check in the log exactly once.
    for (i, agent) in agents.iter_mut().enumerate() {
        let name = AGENTS[i].0;
        agent.signal("TERM");
        assert_eq!(
            agent.wait(Duration::from_secs(15)),
            Some(0),
            "{name}: {}",
            agent.log()
        );
        let (checks, accepted, _spooled, dropped) = agent_tally(&agent.log());
        let (c0, a0, _, d0) = tallies[i];
        assert_eq!(dropped + d0, 0, "{name} dropped results");
        assert_eq!(accepted + a0, checks + c0, "{name}: every check accepted");
        assert_eq!(
            log_rows(instances[alive].http, name),
            checks + c0,
            "{name}: log rows vs checks made\n{}",
            logs(&instances, &agents)
        );
    }

    // 5. SIGTERM drains: not ready first, then exit 0.
    let survivor = &mut instances[alive];
    survivor.proc.signal("TERM");
    let mut saw_unready = false;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        match get(survivor.http, "/readyz") {
            Some((503, _)) => {
                saw_unready = true;
                break;
            }
            Some(_) => std::thread::sleep(Duration::from_millis(20)),
            None => break,
        }
    }
    assert!(saw_unready, "/readyz said 503 while draining");
    assert_eq!(
        survivor.proc.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        survivor.proc.log()
    );
}
