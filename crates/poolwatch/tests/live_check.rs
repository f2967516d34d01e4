//! A live check end to end with the real binaries on loopback: `poolwatch
//! sim`, `poolwatch serve` and two `poolwatch agent --lab`. A check made in
//! the service's store is handed out with both agents' next work calls,
//! each checks the address itself (the service sends no packet) and its
//! answer is stored. A public address is refused by the lab agents' target
//! policy, and they say so instead of checking it.

mod common;

use common::Sim;
use common::e2e::{
    Proc, add_monitor_key, agent_args, busy_serve_args, free_tcp_port, free_udp_port_on, get,
    wait_until,
};
use std::time::Duration;
use store::{LiveCheckRow, Store};

const SERVER: &str = "127.0.5.1";
const AGENTS: [(&str, &str); 2] = [("zrh", "127.0.4.1"), ("ams", "127.0.4.2")];

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn two_lab_agents_answer_a_live_check() {
    let ntp = free_udp_port_on(&[SERVER]);
    let http = free_tcp_port();
    let _sim = Sim::start(&format!(
        "[[server]]\naddr = \"{SERVER}:{ntp}\"\nbehaviour = {{ offset = 0.25, stratum = 3 }}\n"
    ));
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let keys: Vec<String> = AGENTS
        .iter()
        .map(|(name, ip)| add_monitor_key(dir, name, ip))
        .collect();
    let _serve = Proc::spawn(&busy_serve_args(&format!("127.0.0.1:{http}"), dir, &[]));
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });
    let api = format!("http://127.0.0.1:{http}");
    let agents: Vec<Proc> = AGENTS
        .iter()
        .zip(&keys)
        .map(|((name, ip), key)| Proc::spawn(&agent_args(dir, &api, ntp, name, ip, key)))
        .collect();

    // The service's own database, beside it (SQLite allows both).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::open(None, dir)).unwrap();
    // Monitors are asked only once they have called (seen recently).
    wait_until("both agents to call", Duration::from_secs(60), || {
        rt.block_on(store.list_monitors())
            .unwrap()
            .iter()
            .all(|m| m.last_seen.is_some())
    });
    let acct = rt.block_on(store.ensure_account("op")).unwrap();
    let make = |ip: &str| {
        let c = rt
            .block_on(store.create_live_check(acct, ip.parse().unwrap(), now()))
            .unwrap();
        assert_eq!(c.monitors.len(), 2, "{c:?}");
        c
    };
    let lab = make(SERVER);
    let public = make("8.8.8.8");
    let answered = |c: &LiveCheckRow| -> LiveCheckRow {
        let mut row = None;
        wait_until("both agents to answer", Duration::from_secs(60), || {
            let r = rt.block_on(store.live_check(c.id)).unwrap().unwrap();
            let done = r.monitors.iter().all(|m| m.answer.is_some());
            row = Some(r);
            done
        });
        row.unwrap()
    };

    let row = answered(&lab);
    let names: Vec<&str> = row
        .monitors
        .iter()
        .map(|m| m.monitor_name.as_str())
        .collect();
    assert_eq!(names, ["zrh", "ams"]);
    for m in &row.monitors {
        let a = m.answer.as_ref().unwrap();
        assert_eq!((a.stratum, a.error.as_deref()), (Some(3), None), "{m:?}");
        let off = a.offset.expect("an offset");
        assert!((off - 0.25).abs() < 0.05, "{m:?}");
        assert!(m.handed_out.is_some_and(|h| h <= a.ts + 1), "{m:?}");
    }
    assert!(row.usable() && row.finished(now()));

    // Lab agents never send to a public address: they answer why not.
    let row = answered(&public);
    for m in &row.monitors {
        let a = m.answer.as_ref().unwrap();
        assert_eq!(a.stratum, None, "{m:?}");
        let e = a.error.as_deref().unwrap_or("");
        assert!(e.starts_with("not checked: "), "{m:?}");
    }
    assert!(!row.usable());
    for a in &agents {
        assert!(
            a.log()
                .contains(&format!("live check {} of {SERVER}: stratum 3", lab.id)),
            "{}",
            a.log()
        );
    }
    rt.block_on(store.close());
}
