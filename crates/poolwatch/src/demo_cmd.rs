//! `poolwatch demo`: the whole system on this machine — the central service
//! on SQLite in a fresh directory, a simulated fleet on loopback and monitor
//! agents, one of them with a broken link to a few servers.

use crate::settings::demo::DemoSettings;
use crate::util::usage;
use agent::{Agent, AgentConfig};
use anyhow::{Context, Result};
use ntp::TargetPolicy;
use server::admin::{AddMonitor, AddServer};
use sim::{Behaviour, Fleet, ServerSpec};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::{GlobalStatus, Store, WorkIntervals};
use tokio_util::sync::CancellationToken;

/// Run the whole pipeline on this machine: no root, no network.
///
/// Starts the central service on SQLite in a fresh directory, about twenty
/// simulated NTP servers on 127.0.1.x and ::1 (mostly good; some offset by
/// 50 ms, 200 ms and 5 s; a RATE and a DENY kiss-o'-death; a silent one; one
/// losing half its packets), and monitor agents in Zurich, Amsterdam and
/// Los Angeles. The Los Angeles monitor has a broken link to three good
/// servers: its packets to them are lost, as the seed's Los Angeles monitor
/// saw. Intervals are short, so scores separate within about a minute: good
/// servers climb toward 20, bad ones fall below 10, and the three servers
/// Los Angeles cannot reach stay in DNS because the other monitors see them.
#[derive(clap::Args, Debug)]
#[allow(dead_code)] // declares flags; settings::load reads them by id
pub struct Args {
    /// Stop after this long, e.g. 60 (seconds) or 5m [default: run until
    /// Ctrl-C].
    #[arg(long, env = "POOLWATCH_DEMO_DURATION", value_name = "DURATION")]
    duration: Option<String>,
    /// Address of the service's HTTP API and pages [default: 127.0.0.1:8080].
    #[arg(long, env = "POOLWATCH_DEMO_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Address of the demo's GeoDNS server for pool.example.org (UDP and
    /// TCP) [default: 127.0.0.1:15353].
    #[arg(long, env = "POOLWATCH_DEMO_DNS_LISTEN", value_name = "ADDR:PORT")]
    dns_listen: Option<String>,
    /// UDP port of the simulated NTP servers [default: 11123].
    #[arg(long, env = "POOLWATCH_DEMO_NTP_PORT", value_name = "PORT")]
    ntp_port: Option<String>,
    /// Where to keep the demo's database [default: a fresh directory under /tmp].
    #[arg(long, env = "POOLWATCH_DEMO_DATA_DIR", value_name = "DIR")]
    data_dir: Option<String>,
    /// Time between status lines, at least 1s [default: 5s].
    #[arg(long, env = "POOLWATCH_DEMO_STATUS_EVERY", value_name = "DURATION")]
    status_every: Option<String>,
    /// TOML file with any of the settings above.
    #[arg(long, env = "POOLWATCH_DEMO_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

/// A monitor of the demo: name, location, address it sends from, address
/// it is registered with. Each IPv4 monitor is in its own /20 (the
/// selector allows one active or testing monitor per /20); the IPv6 one
/// sends from ::1 like the IPv6 server, but is registered in another /48,
/// as the selector pauses a monitor in its server's /48.
const MONITORS: &[(&str, &str, &str, &str)] = &[
    ("zrh1", "Zurich, CH", "127.0.16.1", "127.0.16.1"),
    ("ams1", "Amsterdam, NL", "127.0.32.1", "127.0.32.1"),
    ("lax1", "Los Angeles, US", "127.0.48.1", "127.0.48.1"),
    ("zrh1-v6", "Zurich, CH (IPv6)", "::1", "fd00:16::1"),
];
const BROKEN_MONITOR: &str = "127.0.48.1";
const DEMO_ZONE: &str = "pool.example.org";
/// The demo's server operator: an account owning two of the simulated
/// servers (a good one and one 50 ms off), entered through a printed
/// invitation link (the demo sends no e-mail).
const OPERATOR_ACCOUNT: &str = "demo-operator";
const OPERATOR_EMAIL: &str = "you@demo.example";
const OPERATOR_SERVERS: [&str; 2] = ["127.0.1.1", "127.0.1.21"];

struct DemoServer {
    ip: &'static str,
    zone: &'static str,
    what: &'static str,
    behaviour: Behaviour,
}

fn fleet_plan() -> Vec<DemoServer> {
    let good = Behaviour::default;
    let with = |f: fn(&mut Behaviour)| {
        let mut b = Behaviour::default();
        f(&mut b);
        b
    };
    let mut v = vec![];
    for (i, zone) in [
        "de", "ch", "nl", "uk", "fr", "us", "us", "jp", "de", "se", "nl",
    ]
    .iter()
    .enumerate()
    {
        let ip: &'static str = Box::leak(format!("127.0.1.{}", i + 1).into_boxed_str());
        v.push(DemoServer {
            ip,
            zone,
            what: "good",
            behaviour: good(),
        });
    }
    v.push(DemoServer {
        ip: "127.0.1.21",
        zone: "de",
        what: "offset +50 ms",
        behaviour: with(|b| b.offset = 0.05),
    });
    v.push(DemoServer {
        ip: "127.0.1.22",
        zone: "fr",
        what: "offset +200 ms",
        behaviour: with(|b| b.offset = 0.2),
    });
    v.push(DemoServer {
        ip: "127.0.1.23",
        zone: "us",
        what: "offset +5 s",
        behaviour: with(|b| b.offset = 5.0),
    });
    v.push(DemoServer {
        ip: "127.0.1.24",
        zone: "nl",
        what: "kiss-o'-death RATE",
        behaviour: with(|b| b.kod = Some("RATE".into())),
    });
    v.push(DemoServer {
        ip: "127.0.1.25",
        zone: "de",
        what: "kiss-o'-death DENY",
        behaviour: with(|b| b.kod = Some("DENY".into())),
    });
    v.push(DemoServer {
        ip: "127.0.1.26",
        zone: "uk",
        what: "silent",
        behaviour: with(|b| b.silent = true),
    });
    v.push(DemoServer {
        ip: "127.0.1.27",
        zone: "ch",
        what: "loses half its packets",
        behaviour: with(|b| b.loss = 0.5),
    });
    v.push(DemoServer {
        ip: "127.0.1.28",
        zone: "se",
        what: "rate-limited like ntpd: only a check's first query answered",
        // ntpd's `discard average 3 minimum 2` scaled to the demo's pace
        // (a check every 3 s, queries 0.5 s apart): RATE for all but the
        // first query of each check.
        behaviour: Behaviour {
            rate_limit: Some(sim::RateLimit {
                average: 2.0,
                minimum: 1.0,
                burst: 1,
                kod: true,
            }),
            ..good()
        },
    });
    for ip in ["127.0.1.31", "127.0.1.32", "127.0.1.33"] {
        v.push(DemoServer {
            ip,
            zone: "us",
            what: "good; Los Angeles' link to it is broken",
            behaviour: with(|b| b.drop_from = vec![BROKEN_MONITOR.parse().expect("ip")]),
        });
    }
    v.push(DemoServer {
        ip: "::1",
        zone: "de",
        what: "good, IPv6",
        behaviour: good(),
    });
    v
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub async fn run(cmd: &clap::Command, m: &clap::ArgMatches) -> Result<ExitCode> {
    let args =
        crate::settings::load::<DemoSettings>(cmd, m, &crate::settings::process_env)?.settings;
    crate::util::init_logging_filter("warn");
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("poolwatch-demo-{}", now())));
    std::fs::create_dir_all(&dir)
        .map_err(|e| usage(format!("cannot create {}: {e}", dir.display())))?;
    let store = Store::open(None, &dir)
        .await
        .context("opening the demo database")?;
    store.seed_zones(&server::admin::zone_seeds()).await?;

    // The simulated fleet.
    let plan = fleet_plan();
    let specs = plan
        .iter()
        .map(|s| ServerSpec {
            name: Some(s.what.to_string()),
            addr: SocketAddr::new(s.ip.parse().expect("ip"), args.ntp_port),
            behaviour: s.behaviour.clone(),
        })
        .collect();
    let fleet = Fleet {
        seed: Some(1),
        servers: specs,
    }
    .spawn()
    .await
    .map_err(|e| {
        usage(format!(
            "cannot start the simulated servers: {e} (is port {} taken? try --ntp-port)",
            args.ntp_port
        ))
    })?;

    // The central service, with short intervals so a minute shows something.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            usage(format!(
                "cannot listen on {}: {e} (try --listen 127.0.0.1:0)",
                args.listen
            ))
        })?;
    let api_addr = listener.local_addr()?;
    let cfg = server::ServerConfig {
        listen: api_addr,
        samples: 3,
        sample_interval_ms: 500,
        timeout_ms: 800,
        batch_size: 50,
        intervals: WorkIntervals {
            active_s: 3,
            testing_s: 3,
            candidate_s: 6,
        },
        // Lab-sized selector: 2 active and 1 testing of the 3 IPv4
        // monitors, promoted after a few checks, a pass every 5 s.
        selector: Some(server::selector_job::SelectorSettings {
            config: scoring::SelectorConfig {
                target_active: 2,
                base_testing: 1,
                min_count_testing: 3,
                min_count_active: 6,
                ..scoring::SelectorConfig::default()
            },
            interval: Duration::from_secs(5),
            ..server::selector_job::SelectorSettings::default()
        }),
        reference_servers: (1..=3)
            .map(|i| format!("127.0.1.{i}:{}", args.ntp_port))
            .collect(),
        ..Default::default()
    };
    let t = now();
    for s in &plan {
        server::admin::add_server(
            &store,
            None,
            AddServer {
                ip: s.ip.parse()?,
                zone: Some(s.zone.into()),
                netspeed: 10_000,
                account: OPERATOR_SERVERS
                    .contains(&s.ip)
                    .then(|| OPERATOR_ACCOUNT.to_string()),
                allow_private: true,
            },
            t,
        )
        .await?;
    }
    let mut keys = vec![];
    for (name, location, _, ip) in MONITORS {
        let (_, key) = server::admin::add_monitor(
            &store,
            AddMonitor {
                name: name.to_string(),
                ip: ip.parse()?,
                location: location.to_string(),
                account: None,
                status: GlobalStatus::Active,
            },
            t,
        )
        .await?;
        keys.push(key);
    }
    let stop = CancellationToken::new();
    // GeoDNS for the pool zone, fed from the same store. MaxMind's test
    // database (in the source tree) lets ECS queries show the country logic.
    let zone = server::DnsZoneConfig {
        origin: DEMO_ZONE.into(),
        ns: vec![],
        ipv6_everywhere: false,
        token_hash: None,
    };
    let dns_listener = dns::DnsListener::bind(args.dns_listen).await.map_err(|e| {
        usage(format!(
            "cannot listen for DNS on {}: {e} (try --dns-listen 127.0.0.1:0)",
            args.dns_listen
        ))
    })?;
    let dns_addr = dns_listener.local_addr()?;
    let geoip = geo::GeoIp::open(std::path::Path::new(geo::fixtures::COUNTRY_MMDB)).ok();
    let dns: server::ExtraJob = Box::new(move |st: &server::AppState| {
        server::DnsJob {
            store: st.store().clone(),
            zone,
            geoip,
            rrl: dns::RrlConfig::default(),
            refresh: Duration::from_secs(5),
            count_interval: server::dns_counts::DEFAULT_INTERVAL,
            clock: st.clock().clone(),
        }
        .job(dns_listener)
    });
    let operator_link = operator_link(&cfg, &store).await?;
    let server_stop = stop.clone();
    let server_task = tokio::spawn(server::serve_split_with(
        listener,
        None,
        cfg,
        store.clone(),
        vec![dns],
        async move { server_stop.cancelled().await },
    ));

    // The agents.
    let agents_stop = CancellationToken::new();
    let mut agent_tasks = vec![];
    for ((name, _, ip, _), key) in MONITORS.iter().zip(keys) {
        let cfg = AgentConfig {
            api: format!("http://{api_addr}"),
            key,
            state_dir: dir.join(format!("agent-{name}")),
            policy: TargetPolicy::Lab,
            ntp_port: args.ntp_port,
            source: Some(ip.parse::<IpAddr>()?),
            ipv4: true,
            ipv6: true,
            once: false,
            concurrency: 50,
            pipeline: 2,
            clock_retry: Duration::from_secs(10),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(2),
            config_refresh: agent::CONFIG_REFRESH,
            family: None,
        };
        let agent = Agent::new(cfg, agents_stop.clone())?;
        agent_tasks.push(tokio::spawn(agent.run()));
    }

    print_intro(api_addr, dns_addr, &plan, &dir, &operator_link);
    let started = Instant::now();
    let started_at = SystemTime::now();
    let deadline = args.duration.map(|d| started + d.0);
    let mut tick = tokio::time::interval(args.status_every.0);
    tick.tick().await;
    let signal = crate::util::shutdown_signal();
    tokio::pin!(signal);
    loop {
        let until_deadline = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = &mut signal => { println!("\nCtrl-C: stopping…"); break }
            _ = tokio::time::sleep(until_deadline.unwrap_or(Duration::MAX)), if until_deadline.is_some() => break,
            _ = tick.tick() => status_line(&store, &plan, started).await,
        }
    }

    agents_stop.cancel();
    for t in agent_tasks {
        if let Ok(Err(e)) = t.await {
            eprintln!("an agent stopped with an error: {e}");
        }
    }
    stop.cancel();
    let _ = server_task.await;
    fleet.shutdown().await;
    final_table(&store, &plan).await;
    println!(
        "\nThe demo's database is kept in {} (poolwatch serve --data-dir {} serves it again).",
        dir.display(),
        dir.display()
    );
    print_replay_hint(&dir, started_at, SystemTime::now());
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Item 6 of issue 15: every sample was kept, so the demo's own history
/// answers "is every sample too aggressive?" (see the rate-limited server).
fn print_replay_hint(dir: &std::path::Path, from: SystemTime, to: SystemTime) {
    let t = |x: SystemTime| humantime::format_rfc3339_seconds(x).to_string();
    println!(
        "\nEvery sample was kept. Would the pool drop the rate-limited server (127.0.1.28) if\n\
         every sample of a check had to be answered? Replay this demo under both policies:\n  \
         poolwatch policy replay --data-dir {} --from {} --to {} \\\n      \
         --every 1m --warmup 0 --policy current --policy all-must-answer",
        dir.display(),
        t(from),
        t(to + Duration::from_secs(60)),
    );
}

/// The demo operator's way in: an invitation into its account, as its
/// owner, printed instead of mailed (valid for the invitation's 7 days).
async fn operator_link(cfg: &server::ServerConfig, store: &Store) -> Result<String> {
    let account = store
        .account_by_name(OPERATOR_ACCOUNT)
        .await?
        .context("the demo operator's account")?;
    let st = server::AppState::new(cfg.clone(), store.clone());
    server::manage::auth::issue_invite_link(
        &st,
        account.id,
        OPERATOR_EMAIL,
        store::Role::Owner,
        None,
        "system",
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot make the demo operator's link: {e}"))
}

fn print_intro(
    api: SocketAddr,
    dns: SocketAddr,
    plan: &[DemoServer],
    dir: &std::path::Path,
    operator_link: &str,
) {
    println!(
        "poolwatch demo — central service, {} simulated NTP servers, {} monitor agents",
        plan.len(),
        MONITORS.len()
    );
    println!("data directory: {}\n", dir.display());
    println!("Simulated servers:");
    for s in plan {
        println!("  {:<12} {:<3} {}", s.ip, s.zone, s.what);
    }
    println!("\nMonitors:");
    for (name, loc, ip, _) in MONITORS {
        let note = if *ip == BROKEN_MONITOR {
            "  (its packets to 127.0.1.31–33 are lost)"
        } else {
            ""
        };
        println!("  {name:<8} {loc:<20} sends from {ip}{note}");
    }
    println!("\nLook at (pages first, then the data behind them):");
    println!("  the pool at a glance   http://{api}/");
    println!("  a server's page        http://{api}/scores/127.0.1.31  (chart, monitors, errors)");
    println!("  the monitors           http://{api}/monitors");
    println!(
        "  manage as an operator  {operator_link}\n                         (you are {OPERATOR_EMAIL}, owner of {OPERATOR_ACCOUNT}: {} and {}; the demo sends no e-mail, so this link is printed)",
        OPERATOR_SERVERS[0], OPERATOR_SERVERS[1]
    );
    println!("  servers and scores     http://{api}/api/v1/servers");
    println!("  a server's CSV log     http://{api}/scores/127.0.1.31/log?limit=40&monitor=*");
    println!("  the DENY server's log  http://{api}/scores/127.0.1.25/log?limit=20&monitor=*");
    println!("  JSON history           http://{api}/scores/127.0.1.1/json?monitor=*&limit=50");
    println!(
        "  which monitors count  http://{api}/api/v1/servers/127.0.1.31/monitors  (Los Angeles is not active there)"
    );
    println!("  zones                  http://{api}/api/v1/zones");
    println!("  metrics                http://{api}/metrics");
    let (h, p) = (dns.ip(), dns.port());
    println!("  DNS (servers with score ≥ 10; refreshed every 5 s):");
    println!("      dig @{h} -p {p} {DEMO_ZONE} A");
    println!("      dig @{h} -p {p} 2.{DEMO_ZONE} AAAA");
    println!(
        "      dig @{h} -p {p} {DEMO_ZONE} A +subnet=81.2.69.142/32     # a client in the UK gets the UK server"
    );
    println!("      dig @{h} -p {p} _country.{DEMO_ZONE} TXT +subnet=81.2.69.142/32");
    println!(
        "      dig @{h} -p {p} _status.{DEMO_ZONE} TXT     # serial, servers per family, age, instance"
    );
    println!("\nScores start at 0; in DNS means score ≥ 10. Ctrl-C stops.\n");
}

async fn status_line(store: &Store, plan: &[DemoServer], started: Instant) {
    let Ok(servers) = store.list_servers().await else {
        return;
    };
    let t = now();
    let in_dns = servers
        .iter()
        .filter(|s| scoring::in_dns(s.score, s.netspeed, s.deletion_on, t))
        .count();
    let avg = |what: &dyn Fn(&str) -> bool| {
        let v: Vec<f64> = servers
            .iter()
            .filter(|s| {
                plan.iter()
                    .any(|p| p.ip.parse::<IpAddr>().ok() == Some(s.ip) && what(p.what))
            })
            .map(|s| s.score)
            .collect();
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let good = avg(&|w| w.starts_with("good"));
    let bad = avg(&|w| !w.starts_with("good") && w != "offset +50 ms");
    let rows = store.counts().await.map(|c| c.2).unwrap_or(0);
    println!(
        "[{:>4}s] in DNS {:>2}/{}   good servers avg {:>5.1}   bad servers avg {:>6.1}   log rows {}",
        started.elapsed().as_secs(),
        in_dns,
        servers.len(),
        good,
        bad,
        rows
    );
}

async fn final_table(store: &Store, plan: &[DemoServer]) {
    let Ok(servers) = store.list_servers().await else {
        return;
    };
    let t = now();
    println!(
        "\n{:<12} {:>7}  {:<6}  behaviour",
        "server", "score", "in DNS"
    );
    for p in plan {
        if let Some(s) = servers
            .iter()
            .find(|s| p.ip.parse::<IpAddr>().ok() == Some(s.ip))
        {
            let dns = if scoring::in_dns(s.score, s.netspeed, s.deletion_on, t) {
                "yes"
            } else {
                "no"
            };
            println!("{:<12} {:>7.2}  {:<6}  {}", p.ip, s.score, dns, p.what);
        }
    }
}
