//! One `poolwatch agent --state-dir DIR` process for both address
//! families, with the real binaries on loopback: `serve`, simulated
//! servers on 127.0.x and ::1, and two monitors (IPv4 and IPv6) whose keys
//! are in DIR/credentials.json as `agent setup` writes it. Both families'
//! results reach the CSV log, each from its own monitor; the metrics
//! endpoint labels the series `family="4"` and `family="6"`; and when the
//! IPv6 servers go away and then the IPv6 monitor is revoked, the IPv4
//! loop keeps submitting in the same process.

mod common;

use agent::credentials::{self, Credentials, Identity};
use common::Sim;
use common::e2e::{
    Proc, add_monitor_key, admin, busy_serve_args, free_tcp_port, free_udp_port_on, get, wait_until,
};
use std::time::Duration;

const V4: [&str; 2] = ["127.0.5.1", "127.0.5.2"];
const V6: &str = "::1";
const MON4: (&str, &str) = ("dual", "127.0.6.1");
/// Not ::1's /48, so the selector keeps the pair.
const MON6: (&str, &str) = ("dual-v6", "2001:db8:6::1");

/// CSV rows of `ip` by `monitor` (`*` for all) as (monitor name, error).
fn rows(http: u16, ip: &str, monitor: &str) -> Vec<(String, String)> {
    let (st, body) = get(
        http,
        &format!("/scores/{ip}/log?limit=10000&monitor={monitor}"),
    )
    .expect("GET log");
    assert_eq!(st, 200, "{body}");
    body.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[6].to_string(), f[9].to_string())
        })
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

fn metrics(port: u16) -> String {
    get(port, "/metrics").map(|(_, t)| t).unwrap_or_default()
}

#[test]
fn one_agent_checks_both_families_and_survives_losing_one() {
    let mut ips: Vec<&str> = V4.to_vec();
    ips.push(V6);
    let ntp = free_udp_port_on(&ips);
    let http = free_tcp_port();
    let sim4 = Sim::start(&format!(
        "[[server]]\naddr = \"{}:{ntp}\"\n[[server]]\naddr = \"{}:{ntp}\"\n",
        V4[0], V4[1]
    ));
    let sim6 = Sim::start(&format!("[[server]]\naddr = \"[{V6}]:{ntp}\"\n"));
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    for ip in ips.iter() {
        admin(
            dir,
            &["server", "add", ip, "--zone", "de", "--allow-private"],
        );
    }
    let key4 = add_monitor_key(dir, MON4.0, MON4.1);
    let key6 = add_monitor_key(dir, MON6.0, MON6.1);
    let state = dir.join("agent-state");
    credentials::save(
        &state,
        &Credentials {
            api: format!("http://127.0.0.1:{http}"),
            identities: vec![
                Identity {
                    family: 4,
                    name: MON4.0.into(),
                    key: key4,
                },
                Identity {
                    family: 6,
                    name: MON6.0.into(),
                    key: key6,
                },
            ],
        },
    )
    .unwrap();
    let _serve = Proc::spawn(&busy_serve_args(&format!("127.0.0.1:{http}"), dir, &[]));
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });
    let mport = free_tcp_port();
    let args: Vec<String> = [
        "agent",
        "--state-dir",
        &state.display().to_string(),
        "--lab",
        "--ntp-port",
        &ntp.to_string(),
        // Only the IPv4 identity sends from it.
        "--source-addr",
        MON4.1,
        "--backoff-min",
        "200ms",
        "--backoff-max",
        "1s",
        "--metrics-listen",
        &format!("127.0.0.1:{mport}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut agent = Proc::spawn(&args);

    // Both families' results, each from its own monitor and only there.
    wait_until(
        "IPv4 and IPv6 results in the CSV",
        Duration::from_secs(60),
        || !rows(http, V4[0], MON4.0).is_empty() && !rows(http, V6, MON6.0).is_empty(),
    );
    assert!(
        rows(http, V6, "*")
            .iter()
            .all(|(m, e)| m == MON6.0 && e.is_empty())
    );
    assert!(
        rows(http, V4[0], "*")
            .iter()
            .all(|(m, e)| m == MON4.0 && e.is_empty())
    );
    // Each spools in its own directory.
    assert!(state.join(MON4.0).is_dir() && state.join(MON6.0).is_dir());
    // One endpoint, both families labelled.
    wait_until(
        "both families in the metrics",
        Duration::from_secs(30),
        || {
            let m = metrics(mport);
            m.lines().any(|l| {
                l.starts_with("poolwatch_agent_checks_total") && l.contains("family=\"4\"")
            }) && m.lines().any(|l| {
                l.starts_with("poolwatch_agent_checks_total") && l.contains("family=\"6\"")
            })
        },
    );
    let m = metrics(mport);
    assert!(
        m.lines()
            .filter(|l| l.starts_with("poolwatch_agent_api_requests_total"))
            .all(|l| l.contains("family=\"4\"") || l.contains("family=\"6\"")),
        "{m}"
    );
    assert!(m.contains("kind=\"token\""), "tokens, not the key: {m}");

    // The IPv6 servers go away: the IPv6 loop sees errors, IPv4 goes on.
    drop(sim6);
    wait_until("IPv6 failures in the CSV", Duration::from_secs(60), || {
        rows(http, V6, MON6.0).iter().any(|(_, e)| !e.is_empty())
    });
    let before = rows(http, V4[1], MON4.0).len();
    wait_until(
        "IPv4 results while IPv6 fails",
        Duration::from_secs(60),
        || rows(http, V4[1], MON4.0).len() > before + 2,
    );

    // The IPv6 monitor is revoked: its loop is refused (401) and backs
    // off; the process and the IPv4 loop keep going.
    admin(dir, &["monitor", "revoke", MON6.0]);
    wait_until("the IPv6 loop refused", Duration::from_secs(60), || {
        agent.log().contains("401")
    });
    let before = rows(http, V4[1], MON4.0).len();
    wait_until(
        "IPv4 results after the revocation",
        Duration::from_secs(60),
        || rows(http, V4[1], MON4.0).len() > before + 2,
    );
    assert!(agent.running(), "{}", agent.log());
    drop(sim4);
}

#[test]
fn without_key_or_credentials_it_says_run_setup() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("empty");
    let o = common::poolwatch(&["agent", "--state-dir", state.to_str().unwrap(), "--lab"]);
    common::assert_usage_error(&o, &["agent setup"]);
    // Credentials open to others: refused with the chmod that fixes it.
    credentials::save(
        &state,
        &Credentials {
            api: "http://127.0.0.1:9".into(),
            identities: vec![Identity {
                family: 4,
                name: "x".into(),
                key: "pwk_x".into(),
            }],
        },
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    let file = state.join(credentials::FILE);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = common::poolwatch(&["agent", "--state-dir", state.to_str().unwrap(), "--lab"]);
    common::assert_usage_error(&o, &["chmod 600"]);
}
