//! Issue 7 end to end with the real binaries on loopback: five agents, a
//! simulated fleet in three `poolwatch sim` processes, `serve` with the
//! selector, the zone guard and alerts (to a local SMTP sink and webhook).
//!
//! 1. Everything healthy: every server in DNS; the selector promotes.
//! 2. One agent's link to four servers breaks (that sim group restarts
//!    dropping its packets): the aggregate keeps those servers in DNS, the
//!    selector demotes the blind monitor for them with its reason,
//!    traceroutes are requested and stored for the changed pairs, and no
//!    alert goes out.
//! 3. Two servers really fail for every agent (their sim stops): they leave
//!    DNS (more than the guard's allowance, but no monitor sees them good)
//!    and exactly one alert with evidence is sent for the one whose account
//!    has contacts, by email and by webhook.

mod common;
#[path = "../../server/tests/support/smtp_sink.rs"]
mod smtp_sink;

use common::Sim;
use common::e2e::{
    Proc, add_monitor_key, admin, agent_args, changes, demoted_while_in_dns, fleet, free_tcp_port,
    free_udp_port_on, get, in_dns, lab_serve_args, settled, standing, traceroutes_shown,
    wait_until,
};
use common::webhook::Webhook;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// The link from the first agent to these breaks in phase 2.
const BLIND: [&str; 4] = ["127.0.5.1", "127.0.5.2", "127.0.5.3", "127.0.5.4"];
const STABLE: [&str; 6] = [
    "127.0.5.5",
    "127.0.5.6",
    "127.0.5.7",
    "127.0.5.8",
    "127.0.5.9",
    "127.0.5.10",
];
/// These fail for everyone in phase 3; the first one's account has contacts.
const FAIL: [&str; 2] = ["127.0.5.21", "127.0.5.22"];

/// Each agent in its own /20 (the selector allows one active or testing
/// monitor per /20). With 3 active and 1 testing wanted per server, one of
/// the five is a candidate: whether the blind one is active or testing when
/// its link breaks, a healthy monitor can take its place.
const AGENTS: [(&str, &str); 5] = [
    ("blind", "127.0.16.1"),
    ("e1", "127.0.32.1"),
    ("e2", "127.0.48.1"),
    ("e3", "127.0.64.1"),
    ("e4", "127.0.80.1"),
];

fn all_servers() -> Vec<&'static str> {
    BLIND.iter().chain(&STABLE).chain(&FAIL).copied().collect()
}

/// The SMTP sink of the server tests, on a runtime of its own (this test
/// is blocking); the runtime must live as long as the sink is used.
fn smtp_sink() -> (tokio::runtime::Runtime, smtp_sink::SmtpSink) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sink = rt.block_on(smtp_sink::SmtpSink::start());
    (rt, sink)
}

/// The lab service of the broken-link tests plus the zone guard and alerts
/// to the local SMTP sink.
fn serve_args(dir: &Path, http: u16, ntp: u16, smtp_url: &str) -> Vec<String> {
    let reference: Vec<String> = STABLE[..3].iter().map(|ip| format!("{ip}:{ntp}")).collect();
    let mut a = lab_serve_args(&format!("127.0.0.1:{http}"), dir, &reference);
    for f in [
        "--batch-size",
        "50",
        "--zone-guard",
        "0.1",
        "--smtp-url",
        smtp_url,
        "--alert-from",
        "poolwatch@lab.test",
        "--alert-check",
        "2s",
        "--public-url",
        &format!("http://127.0.0.1:{http}"),
    ] {
        a.push(f.to_string());
    }
    a
}

#[test]
fn a_broken_link_is_not_an_outage_and_a_real_outage_alerts_once() {
    let ntp = free_udp_port_on(&all_servers());
    let http = free_tcp_port();
    let (_smtp_rt, smtp) = smtp_sink();
    let hook = Webhook::start();
    let _stable = Sim::start(&fleet(&STABLE, ntp, ""));
    let mut blind_sim = Some(Sim::start(&fleet(&BLIND, ntp, "")));
    let mut fail_sim = Some(Sim::start(&fleet(&FAIL, ntp, "")));

    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    admin(dir, &["account", "add", "ops"]);
    admin(
        dir,
        &[
            "account",
            "contact",
            "ops",
            "--email",
            "ops@lab.test",
            "--webhook",
            &format!("http://127.0.0.1:{}/hook", hook.port),
        ],
    );
    for ip in all_servers() {
        let mut args = vec!["server", "add", ip, "--zone", "de", "--allow-private"];
        if ip == FAIL[0] {
            args.extend(["--account", "ops"]);
        }
        admin(dir, &args);
    }
    let keys: Vec<String> = AGENTS
        .iter()
        .map(|(name, ip)| add_monitor_key(dir, name, ip))
        .collect();
    let serve = Proc::spawn(&serve_args(dir, http, ntp, &smtp.url()));
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });
    let api = format!("http://127.0.0.1:{http}");
    let spawn = |i: usize| {
        let (name, ip) = AGENTS[i];
        Proc::spawn(&agent_args(dir, &api, ntp, name, ip, &keys[i]))
    };
    // The blind-to-be agent starts first and the others only once it has
    // results for the four servers: the selector then never takes it for
    // the monitor without data that the testing target leaves out.
    let mut agents = vec![spawn(0)];
    wait_until("the first agent's results", Duration::from_secs(60), || {
        BLIND.iter().all(|ip| standing(http, ip, "blind").1 > 0.0)
    });
    agents.extend((1..AGENTS.len()).map(spawn));
    let logs = |agents: &[Proc]| {
        let mut s = format!("serve:\n{}\n", serve.log());
        for (a, (name, _)) in agents.iter().zip(AGENTS) {
            s.push_str(&format!("{name}:\n{}\n", a.log()));
        }
        s
    };

    // 1. Healthy: every server in DNS, three active monitors each, and the
    //    blind-to-be monitor sees the four servers well.
    wait_until("every server in DNS", Duration::from_secs(180), || {
        all_servers().iter().all(|ip| in_dns(http, ip))
    });
    // Whether its pairs count (active) or are on trial (testing) depends on
    // timing and RTT (priorities tie on loopback); the one candidate slot
    // usually went to a monitor that had no data yet at the second pass.
    let counted = settled(http, &BLIND, "blind", 3);
    assert!(
        !counted.is_empty(),
        "the first monitor is active or testing somewhere: {:?}",
        BLIND.map(|ip| changes(http, ip))
    );
    assert!(smtp.mails().is_empty() && hook.bodies().is_empty());

    // 2. Its link to them breaks: that group restarts dropping its packets.
    drop(blind_sim.take());
    let _blind_sim = Sim::start(&fleet(
        &BLIND,
        ntp,
        &format!("behaviour = {{ drop_from = [\"{}\"] }}\n", AGENTS[0].1),
    ));
    demoted_while_in_dns(http, &BLIND, &counted, "blind", || logs(&agents));
    // Traceroutes: from the blind monitor and from one that sees the
    // server well, for each changed pair.
    let others: Vec<&str> = AGENTS[1..].iter().map(|(n, _)| *n).collect();
    traceroutes_shown(http, &BLIND, "blind", &others);
    assert!(
        smtp.mails().is_empty() && hook.bodies().is_empty(),
        "no alert for a broken link: {:?} {:?}",
        smtp.mails(),
        hook.bodies()
    );

    // 3. A real outage of two servers: everyone sees it.
    drop(fail_sim.take());
    wait_until(
        "the failed servers to leave DNS",
        Duration::from_secs(120),
        || FAIL.iter().all(|ip| !in_dns(http, ip)),
    );
    wait_until("the alert", Duration::from_secs(60), || {
        !smtp.mails().is_empty() && !hook.bodies().is_empty()
    });
    // Passes keep running; nothing more may go out.
    std::thread::sleep(Duration::from_secs(8));
    let mails = smtp.mails();
    let hooks = hook.bodies();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let mail = mails[0].text();
    assert!(mail.contains(FAIL[0]), "{mail}");
    assert!(
        mail.contains(&format!("http://127.0.0.1:{http}/scores/{}", FAIL[0])),
        "{mail}"
    );
    for (name, _) in &AGENTS[1..] {
        assert!(mail.contains(name), "evidence from {name}: {mail}");
    }
    let hook_body: Value = serde_json::from_str(&hooks[0]).unwrap();
    assert_eq!(hook_body["kind"], "down", "{hook_body}");
    assert_eq!(hook_body["server"]["ip"], FAIL[0], "{hook_body}");
    let monitors = hook_body["monitors"].as_array().unwrap();
    assert!(monitors.len() >= 4, "{hook_body}");
    // The alert goes out as soon as the median of the active monitors
    // falls below 10: by then at least two of the three active ones have
    // seen the failure (others may still show their last good check,
    // which is evidence too).
    let failing_active = monitors
        .iter()
        .filter(|m| m["status"] == "active")
        .filter(|m| m["error"].as_str().is_some_and(|e| !e.is_empty()))
        .count();
    assert!(failing_active >= 2, "{hook_body}");
    let failing: Vec<&str> = monitors
        .iter()
        .filter_map(|m| m["error"].as_str().filter(|e| !e.is_empty()))
        .collect();
    for e in &failing {
        assert!(mail.contains(e), "the mail names {e}: {mail}");
    }
    // The broken-link servers are still in DNS.
    for ip in BLIND {
        assert!(in_dns(http, ip), "{ip}");
    }

    for a in agents.iter_mut() {
        a.signal("TERM");
    }
    for (a, (name, _)) in agents.iter_mut().zip(AGENTS) {
        assert_eq!(
            a.wait(Duration::from_secs(15)),
            Some(0),
            "{name}: {}",
            a.log()
        );
    }
}
