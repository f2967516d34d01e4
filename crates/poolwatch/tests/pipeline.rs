//! The whole pipeline with the real binaries on loopback: `poolwatch sim`,
//! `poolwatch serve`, `poolwatch admin` and three `poolwatch agent`s, with
//! short intervals. Everything is asserted through the public API only.

mod common;

use common::Sim;
use common::e2e::{
    Proc, add_monitor_key, admin, agent_args, agent_tally, busy_serve_args, free_tcp_port,
    free_udp_port_on, get, wait_until,
};
use std::path::Path;
use std::time::Duration;

const GOOD: &str = "127.0.3.1";
const DENY: &str = "127.0.3.4";
const SILENT: &str = "127.0.3.5";
/// Good, but the third agent's packets to it are lost.
const BROKEN: &str = "127.0.3.6";
const SERVERS: [&str; 6] = ["127.0.3.1", "127.0.3.2", "127.0.3.3", DENY, SILENT, BROKEN];
const AGENTS: [(&str, &str); 3] = [
    ("zrh", "127.0.4.1"),
    ("ams", "127.0.4.2"),
    ("lax", "127.0.4.3"),
];

/// Servers are due every 2 s whatever the selector made of the pair (it
/// starts them testing); see `busy_serve_args`.
fn serve_args(dir: &Path, http: u16, ntp: u16) -> Vec<String> {
    let reference: Vec<String> = SERVERS[..3]
        .iter()
        .map(|ip| format!("{ip}:{ntp}"))
        .collect();
    busy_serve_args(&format!("127.0.0.1:{http}"), dir, &reference)
}

fn score(port: u16, ip: &str) -> f64 {
    let (st, body) = get(port, &format!("/api/v1/servers/{ip}")).expect("GET server");
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["score"]
        .as_f64()
        .or_else(|| v["server"]["score"].as_f64())
        .unwrap_or_else(|| panic!("no score in {v}"))
}

fn csv(port: u16, ip: &str, monitor: &str) -> Vec<Vec<String>> {
    let (st, body) = get(
        port,
        &format!("/scores/{ip}/log?limit=10000&monitor={monitor}"),
    )
    .expect("GET log");
    assert_eq!(st, 200, "{body}");
    let mut lines = body.lines();
    assert_eq!(
        lines.next(),
        Some("ts_epoch,ts,offset,step,score,monitor_id,monitor_name,rtt,leap,error")
    );
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn pipeline_scores_fairly_survives_an_outage_and_loses_nothing() {
    let ntp = free_udp_port_on(&SERVERS);
    let http = free_tcp_port();
    let fleet = format!(
        "[[server]]\naddr = \"127.0.3.1:{ntp}\"\n[[server]]\naddr = \"127.0.3.2:{ntp}\"\n[[server]]\naddr = \"127.0.3.3:{ntp}\"\n\
         [[server]]\naddr = \"{DENY}:{ntp}\"\nbehaviour = {{ kod = \"DENY\" }}\n\
         [[server]]\naddr = \"{SILENT}:{ntp}\"\nbehaviour = \"silent\"\n\
         [[server]]\naddr = \"{BROKEN}:{ntp}\"\nbehaviour = {{ drop_from = [\"127.0.4.3\"] }}\n"
    );
    let _sim = Sim::start(&fleet);
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    for ip in SERVERS {
        admin(
            dir,
            &["server", "add", ip, "--zone", "de", "--allow-private"],
        );
    }
    let keys: Vec<String> = AGENTS
        .iter()
        .map(|(name, ip)| add_monitor_key(dir, name, ip))
        .collect();
    let mut serve = Proc::spawn(&serve_args(dir, http, ntp));
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });

    let metrics_ports: Vec<u16> = AGENTS.iter().map(|_| free_tcp_port()).collect();
    let mut agents: Vec<Proc> = AGENTS
        .iter()
        .zip(&keys)
        .zip(&metrics_ports)
        .map(|(((name, ip), key), mport)| {
            let api = format!("http://127.0.0.1:{http}");
            let mut args = agent_args(dir, &api, ntp, name, ip, key);
            args.extend(["--metrics-listen".into(), format!("127.0.0.1:{mport}")]);
            Proc::spawn(&args)
        })
        .collect();

    // A good server climbs into DNS range; so does the one whose link to one
    // monitor is broken, because the other two see it well.
    wait_until(
        "a good server's score ≥ 10",
        Duration::from_secs(150),
        || score(http, GOOD) >= 10.0,
    );
    wait_until(
        "the half-blind server's score ≥ 10",
        Duration::from_secs(60),
        || score(http, BROKEN) >= 10.0,
    );
    let lax_rows = csv(http, BROKEN, "lax");
    assert!(
        !lax_rows.is_empty() && lax_rows.iter().all(|r| r[9] == "i/o timeout"),
        "lax sees timeouts: {lax_rows:?}"
    );
    assert!(csv(http, BROKEN, "zrh").iter().all(|r| r[9].is_empty()));
    assert!(score(http, DENY) < 0.0 && score(http, SILENT) < 0.0);

    // The pool's CSV: error codes, and aggregate rows with an empty name.
    let deny = csv(http, DENY, "*");
    assert!(deny.iter().any(|r| r[9] == "DENY"), "{deny:?}");
    assert!(
        deny.iter().any(|r| r[5] == "0" && r[6].is_empty()),
        "aggregate rows: {deny:?}"
    );
    assert!(csv(http, SILENT, "*").iter().any(|r| r[9] == "i/o timeout"));

    // The agents' metrics.
    let (st, m) = get(metrics_ports[0], "/metrics").expect("agent metrics");
    assert_eq!(st, 200);
    for name in [
        "poolwatch_agent_checks_total",
        "poolwatch_agent_ntp_queries_total",
        "poolwatch_agent_clock_ok 1",
        "poolwatch_agent_api_requests_total",
        "poolwatch_agent_last_submit_timestamp_seconds",
    ] {
        assert!(m.contains(name), "agent metrics lack {name}: {m}");
    }

    // serve runs its housekeeping (a pass at start).
    let (st, m) = get(http, "/metrics").expect("serve metrics");
    assert_eq!(st, 200);
    assert!(
        m.contains("poolwatch_housekeeping_passes_total "),
        "serve metrics lack housekeeping: {m}"
    );

    // Each agent reported its clock check; the monitors page shows it.
    let (st, page) = get(http, "/monitors").expect("monitors page");
    assert_eq!(st, 200);
    assert_eq!(
        page.matches("class=\"clock-ok\"").count(),
        AGENTS.len(),
        "{page}"
    );

    // Stop the service for ~10 s; the agents spool, then replay.
    serve.signal("TERM");
    assert_eq!(
        serve.wait(Duration::from_secs(20)),
        Some(0),
        "serve exit: {}",
        serve.log()
    );
    std::thread::sleep(Duration::from_secs(10));
    let _serve2 = Proc::spawn(&serve_args(dir, http, ntp));
    wait_until(
        "the service to answer again",
        Duration::from_secs(30),
        || get(http, "/api/v1/zones").is_some(),
    );
    std::thread::sleep(Duration::from_secs(6));

    // SIGTERM every agent: exit 0 promptly, and every check it made is in
    // the log exactly once.
    let mut spooled_any = 0;
    let mut logs = String::new();
    for (agent, (name, _)) in agents.iter_mut().zip(AGENTS) {
        agent.signal("TERM");
        assert_eq!(
            agent.wait(Duration::from_secs(10)),
            Some(0),
            "{name} exit: {}",
            agent.log()
        );
        let (checks, accepted, spooled, dropped) = agent_tally(&agent.log());
        logs.push_str(&agent.log());
        spooled_any += spooled;
        assert_eq!(dropped, 0, "{name} dropped results: {}", agent.log());
        assert_eq!(accepted, checks, "{name}: every check accepted once");
        let rows: usize = SERVERS.iter().map(|ip| csv(http, ip, name).len()).sum();
        assert_eq!(rows as u64, checks, "{name}: log rows vs checks made");
    }
    assert!(
        spooled_any > 0,
        "the outage should have made some agent spool: {logs}"
    );
    every_sample_stored(dir, http);
}

/// Every check's samples are in the store beside its log row (issue 15),
/// spooled ones too: 3 per check (`--samples 3`) from a good server, the
/// one DENY after which an agent stops, and the half-blind server's
/// timeouts at lax.
fn every_sample_stored(dir: &Path, http: u16) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = store::Store::open(None, dir).await.expect("open the store");
        for ip in [GOOD, DENY, BROKEN] {
            let id = store
                .server_by_ip(ip.parse().unwrap())
                .await
                .unwrap()
                .unwrap()
                .id;
            let checks = store.samples(id, None, 0, i64::MAX).await.unwrap();
            let rows: usize = AGENTS.iter().map(|(n, _)| csv(http, ip, n).len()).sum();
            assert_eq!(checks.len(), rows, "{ip}: one stored check per log row");
            for c in &checks {
                let s = &c.samples;
                let pos: Vec<u8> = s.iter().map(|x| x.position).collect();
                assert_eq!(pos, (0..s.len() as u8).collect::<Vec<_>>(), "{ip}: {c:?}");
                match ip {
                    DENY => {
                        assert_eq!(s.len(), 1, "{c:?}");
                        assert!(s[0].answered && s[0].error.as_deref() == Some("DENY"));
                    }
                    GOOD => {
                        assert!(s.iter().all(|x| x.answered && x.error.is_none()));
                        assert!(s.iter().all(|x| x.rtt_us.is_some() && x.stratum.is_some()));
                        // Sent a second apart (--sample-interval 1s).
                        assert!(s.windows(2).all(|w| w[1].send_ms >= w[0].send_ms + 900));
                    }
                    _ => {}
                }
                assert!(!s.is_empty() && s.len() <= 3, "{ip}: {c:?}");
            }
            // All 3 samples, but for a check an agent's SIGTERM cut short
            // (at most one per agent: it starts no further sample).
            let full = checks.iter().filter(|c| c.samples.len() == 3).count();
            if ip != DENY {
                assert!(full + AGENTS.len() >= checks.len(), "{ip}: {checks:?}");
            }
            if ip == BROKEN {
                assert!(checks.iter().any(|c| {
                    c.samples
                        .iter()
                        .all(|x| !x.answered && x.error.as_deref() == Some("i/o timeout"))
                }));
            }
        }
        store.close().await;
    });
}
