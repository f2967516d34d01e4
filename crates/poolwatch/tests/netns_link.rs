//! The broken link of `many_monitors.rs` as a real network fault: one agent
//! runs in its own network namespace, joined to the host by a veth pair;
//! its route to four servers is replaced by an `unreachable` route while
//! the four other agents (on the host) still reach them. The aggregate
//! keeps those servers in DNS, the selector demotes the cut-off monitor for
//! them, and traceroutes are requested and stored for the changed pairs.
//!
//! Needs root and `ip netns`; without them the test says why and passes.
//! Addresses: 10.231.64.0/24 on the veth link, servers on 10.231.128.x
//! (host side); both exist only inside this machine.

mod common;

use common::Sim;
use common::e2e::{
    Proc, add_monitor_key, admin, agent_args, demoted_while_in_dns, fleet, get, in_dns,
    lab_serve_args, settled, standing, traceroutes_shown, wait_until,
};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

const HOST: &str = "10.231.64.1";
const INSIDE: &str = "10.231.64.2";
const CUT: [&str; 4] = [
    "10.231.128.11",
    "10.231.128.12",
    "10.231.128.13",
    "10.231.128.14",
];
const STABLE: [&str; 3] = ["10.231.128.15", "10.231.128.16", "10.231.128.17"];
/// On the host, each in its own /20 (the selector's network rule).
const HOST_AGENTS: [(&str, &str); 4] = [
    ("e1", "127.0.32.1"),
    ("e2", "127.0.48.1"),
    ("e3", "127.0.64.1"),
    ("e4", "127.0.80.1"),
];

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespace and the veth pair; removed on drop.
struct Netns {
    name: String,
    host_if: String,
}

impl Netns {
    fn create() -> Result<Netns, String> {
        let id = std::process::id() % 100_000;
        let ns = Netns {
            name: format!("pwlink{id}"),
            host_if: format!("pwh{id}"),
        };
        let inside_if = format!("pwa{id}");
        ip(&["netns", "add", &ns.name])?;
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &inside_if,
        ])?;
        ip(&["link", "set", &inside_if, "netns", &ns.name])?;
        ip(&["addr", "add", &format!("{HOST}/24"), "dev", &ns.host_if])?;
        for s in CUT.iter().chain(&STABLE) {
            ip(&["addr", "add", &format!("{s}/32"), "dev", &ns.host_if])?;
        }
        ip(&["link", "set", &ns.host_if, "up"])?;
        ns.exec(&["addr", "add", &format!("{INSIDE}/24"), "dev", &inside_if])?;
        ns.exec(&["link", "set", &inside_if, "up"])?;
        ns.exec(&["link", "set", "lo", "up"])?;
        ns.exec(&["route", "add", "10.231.128.0/24", "via", HOST])?;
        Ok(ns)
    }

    fn exec(&self, args: &[&str]) -> Result<(), String> {
        let mut a = vec!["netns", "exec", &self.name, "ip"];
        a.extend_from_slice(args);
        ip(&a)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
        let _ = ip(&["link", "del", &self.host_if]);
    }
}

/// Forwards 127.0.0.1:port to `to`, so the shared helpers (which read the
/// service on 127.0.0.1) reach a service listening on the veth address.
fn forward(to: String) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().map_while(Result::ok) {
            let Ok(up) = TcpStream::connect(&to) else {
                continue;
            };
            let (mut c_r, mut up_w) = (c.try_clone().unwrap(), up.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_r, &mut up_w);
                let _ = up_w.shutdown(std::net::Shutdown::Write);
            });
            let (mut up_r, mut c_w) = (up, c);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut up_r, &mut c_w);
                let _ = c_w.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn a_real_link_fault_between_namespaces_is_not_an_outage() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    let ns = match Netns::create() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("skipped: this machine does not allow network namespaces: {e}");
            return;
        }
    };
    let ntp = loop {
        let p = UdpSocket::bind((HOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if CUT
            .iter()
            .chain(&STABLE)
            .all(|ip| UdpSocket::bind((*ip, p)).is_ok())
        {
            break p;
        }
    };
    let _stable = Sim::start(&fleet(&STABLE, ntp, ""));
    let _cut = Sim::start(&fleet(&CUT, ntp, ""));
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    for s in CUT.iter().chain(&STABLE) {
        admin(
            dir,
            &["server", "add", s, "--zone", "de", "--allow-private"],
        );
    }
    let mut agents = vec![("inside", INSIDE)];
    agents.extend(HOST_AGENTS);
    let keys: Vec<String> = agents
        .iter()
        .map(|(name, src)| add_monitor_key(dir, name, src))
        .collect();
    let api_port = {
        // A free port on the host's veth address.
        let l = TcpListener::bind((HOST, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let api = format!("http://{HOST}:{api_port}");
    let reference: Vec<String> = STABLE.iter().map(|s| format!("{s}:{ntp}")).collect();
    let serve_args = lab_serve_args(&format!("{HOST}:{api_port}"), dir, &reference);
    let serve = Proc::spawn(&serve_args);
    let http = forward(format!("{HOST}:{api_port}"));
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });
    let spawn = |i: usize| {
        let (name, src) = agents[i];
        let args = agent_args(dir, &api, ntp, name, src, &keys[i]);
        if name == "inside" {
            Proc::spawn_in_netns(&ns.name, &args)
        } else {
            Proc::spawn(&args)
        }
    };
    // The namespaced agent starts first and the others once it has results
    // (see many_monitors.rs: it is then never the monitor left out).
    let mut procs = vec![spawn(0)];
    wait_until(
        "the namespaced agent's results",
        Duration::from_secs(60),
        || CUT.iter().all(|ip| standing(http, ip, "inside").1 > 0.0),
    );
    procs.extend((1..agents.len()).map(spawn));
    let logs = || {
        let mut s = format!("serve:\n{}\n", serve.log());
        for (p, (name, _)) in procs.iter().zip(&agents) {
            s.push_str(&format!("{name}:\n{}\n", p.log()));
        }
        s
    };

    // Healthy first: everything in DNS, three active monitors per server,
    // the namespaced agent sees the four servers well.
    wait_until("every server in DNS", Duration::from_secs(180), || {
        CUT.iter().chain(&STABLE).all(|ip| in_dns(http, ip))
    });
    let counted = settled(http, &CUT, "inside", 3);
    assert!(!counted.is_empty(), "{}", logs());

    // The fault: inside the namespace the four servers become unreachable.
    for s in CUT {
        ns.exec(&["route", "add", "unreachable", &format!("{s}/32")])
            .unwrap();
    }
    demoted_while_in_dns(http, &CUT, &counted, "inside", logs);
    for ip in CUT {
        let rows = get(http, &format!("/scores/{ip}/log?monitor=inside&limit=5"))
            .unwrap()
            .1;
        assert!(
            rows.contains("unreachable"),
            "the fault shows in the log as an error: {rows}"
        );
    }
    let others: Vec<&str> = HOST_AGENTS.iter().map(|(n, _)| *n).collect();
    traceroutes_shown(http, &counted, "inside", &others);
}
