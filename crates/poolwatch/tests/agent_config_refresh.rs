//! `admin monitor set NAME --samples 2` reaches a running agent at its
//! next config refresh (`--config-refresh`), with the real binaries: the
//! agent logs what changed and checks with the new values from then on.

mod common;

use common::Sim;
use common::e2e::{
    Proc, add_monitor_key, admin, agent_args, busy_serve_args, free_tcp_port, free_udp_port_on,
    get, wait_until,
};
use std::time::Duration;

const SERVER: &str = "127.0.7.1";

fn metric(port: u16, name: &str) -> f64 {
    get(port, "/metrics")
        .map(|(_, t)| t)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn agent_takes_up_new_settings_at_its_refresh() {
    let ntp = free_udp_port_on(&[SERVER]);
    let http = free_tcp_port();
    let _sim = Sim::start(&format!("[[server]]\naddr = \"{SERVER}:{ntp}\"\n"));
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    admin(
        dir,
        &["server", "add", SERVER, "--zone", "de", "--allow-private"],
    );
    let key = add_monitor_key(dir, "tuned", "127.0.8.1");
    // serve checks with 3 samples.
    let _serve = Proc::spawn(&busy_serve_args(&format!("127.0.0.1:{http}"), dir, &[]));
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });
    let mport = free_tcp_port();
    let api = format!("http://127.0.0.1:{http}");
    let mut args = agent_args(dir, &api, ntp, "tuned", "127.0.8.1", &key);
    args.extend(
        [
            "--config-refresh",
            "1s",
            "--pipeline",
            "1",
            "--metrics-listen",
            &format!("127.0.0.1:{mport}"),
        ]
        .map(String::from),
    );
    let agent = Proc::spawn(&args);
    wait_until("a first check", Duration::from_secs(30), || {
        metric(mport, "poolwatch_agent_checks_total") >= 1.0
    });
    assert!(agent.log().contains("3 samples"), "{}", agent.log());

    admin(dir, &["monitor", "set", "tuned", "--samples", "2"]);
    wait_until(
        "the agent to log the change",
        Duration::from_secs(30),
        || agent.log().contains("config changed: samples 3 → 2"),
    );
    // From the batch after the change on, 2 queries per check (the one in
    // flight at the change may still send 3).
    let (q0, c0) = (
        metric(mport, "poolwatch_agent_ntp_queries_total"),
        metric(mport, "poolwatch_agent_checks_total"),
    );
    wait_until("two more checks", Duration::from_secs(30), || {
        metric(mport, "poolwatch_agent_checks_total") >= c0 + 3.0
    });
    let (q1, c1) = (
        metric(mport, "poolwatch_agent_ntp_queries_total"),
        metric(mport, "poolwatch_agent_checks_total"),
    );
    let per_check = (q1 - q0) / (c1 - c0);
    assert!(
        per_check <= 2.0 + 1.0 / (c1 - c0),
        "{per_check} queries per check"
    );
}
