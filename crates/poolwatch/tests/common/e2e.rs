//! Running the real binaries side by side: child processes with their
//! logs collected, a plain HTTP client, the admin CLI and polling.

use super::BIN;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP port free on every one of `ips` (a sim fleet binds them all).
pub fn free_udp_port_on(ips: &[&str]) -> u16 {
    loop {
        let p = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if ips
            .iter()
            .all(|ip| std::net::UdpSocket::bind((*ip, p)).is_ok())
        {
            return p;
        }
    }
}

/// (checks, accepted, spooled, dropped) from an agent's last line, "agent
/// stopped: N checks made, M results accepted by the service, S spooled, D
/// dropped".
pub fn agent_tally(log: &str) -> (u64, u64, u64, u64) {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("agent stopped:"))
        .unwrap_or_else(|| panic!("no summary in {log}"));
    let nums: Vec<u64> = line
        .split("agent stopped:")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(4)
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2], nums[3])
}

/// A plain HTTP/1.1 GET; returns (status, body).
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    request(port, "GET", path, &[], "")
}

/// A plain HTTP/1.1 request with `headers` and `body`; (status, body).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    write!(s, "{head}\r\n{body}").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut b: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = b.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        b = &rest[n + 2..];
    }
    out
}

/// A child process whose stderr is collected; killed on drop.
pub struct Proc {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Proc {
    pub fn spawn(args: &[String]) -> Proc {
        Proc::spawn_cmd(Command::new(BIN).args(args))
    }

    /// `poolwatch ARGS…` inside the network namespace `ns` (`ip netns exec`
    /// execs it, so the pid is poolwatch's own).
    pub fn spawn_in_netns(ns: &str, args: &[String]) -> Proc {
        Proc::spawn_cmd(
            Command::new("ip")
                .args(["netns", "exec", ns, BIN])
                .args(args),
        )
    }

    /// Any command that ends up exec'ing poolwatch (a wrapper such as
    /// `unshare`), so the pid is poolwatch's own.
    pub fn spawn_cmd(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn poolwatch");
        let err = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Proc { child, log }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Wait for exit (at most `limit`); returns the exit code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(200)); // let the log thread drain
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `poolwatch admin monitor add NAME --ip IP --location NAME`; the key it
/// prints.
pub fn add_monitor_key(dir: &Path, name: &str, ip: &str) -> String {
    key_line(&admin(
        dir,
        &["monitor", "add", name, "--ip", ip, "--location", name],
    ))
}

/// The key `admin monitor add` printed.
pub fn key_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("pwk_"))
        .expect("key line")
        .trim()
        .to_string()
}

pub fn admin(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Lifts every server of the SQLite store in `dir` to score 20, as if
/// scored: in DNS without monitors (tests about DNS, not about scoring).
pub fn lift_scores(dir: &Path) {
    use store::testing::StoreTesting as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = store::Store::open(None, dir).await.unwrap();
            for s in store.list_servers().await.unwrap() {
                store.set_server_score(s.id, 20.0).await.unwrap();
            }
            store.close().await;
        });
}

pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

// ---- the service's public API, as the end-to-end tests read it

/// A sim fleet file: one server per address, all with `behaviour`.
pub fn fleet(ips: &[&str], port: u16, behaviour: &str) -> String {
    ips.iter()
        .map(|ip| format!("[[server]]\naddr = \"{ip}:{port}\"\n{behaviour}"))
        .collect()
}

pub fn json(port: u16, path: &str) -> Value {
    let (st, body) = get(port, path).unwrap_or_else(|| panic!("GET {path}"));
    assert_eq!(st, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

pub fn server(port: u16, ip: &str) -> Value {
    json(port, &format!("/api/v1/servers/{ip}"))
}

pub fn in_dns(port: u16, ip: &str) -> bool {
    let v = server(port, ip);
    v["in_dns"]
        .as_bool()
        .or_else(|| v["server"]["in_dns"].as_bool())
        .unwrap_or_else(|| panic!("no in_dns in {v}"))
}

pub fn score(port: u16, ip: &str) -> f64 {
    let v = server(port, ip);
    v["score"]
        .as_f64()
        .or_else(|| v["server"]["score"].as_f64())
        .unwrap_or_else(|| panic!("no score in {v}"))
}

/// (status, score) of monitor `name` for the server.
pub fn standing(port: u16, ip: &str, name: &str) -> (String, f64) {
    let v = json(port, &format!("/api/v1/servers/{ip}/monitors?limit=500"));
    let m = v["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {v}"))
        .clone();
    (
        m["status"].as_str().unwrap().to_string(),
        m["score"].as_f64().unwrap(),
    )
}

pub fn changes(port: u16, ip: &str) -> Vec<Value> {
    json(port, &format!("/api/v1/servers/{ip}/monitors?limit=500"))["changes"]
        .as_array()
        .unwrap()
        .clone()
}

// ---- the broken-link scenario shared by many_monitors.rs and netns_link.rs

/// Waits until each server has `active` active monitors and `monitor`
/// scores it ≥ 10; returns the servers for which `monitor` then counts or
/// is on trial (not a candidate).
pub fn settled<'a>(http: u16, servers: &[&'a str], monitor: &str, active: usize) -> Vec<&'a str> {
    wait_until(
        &format!("{active} active monitors per server, {monitor} healthy"),
        Duration::from_secs(120),
        || {
            servers.iter().all(|ip| {
                let v = json(http, &format!("/api/v1/servers/{ip}/monitors"));
                let n = v["monitors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|m| m["status"] == "active")
                    .count();
                n == active && standing(http, ip, monitor).1 >= 10.0
            })
        },
    );
    servers
        .iter()
        .copied()
        .filter(|ip| standing(http, ip, monitor).0 != "candidate")
        .collect()
}

/// The selector's "demoted: unhealthy" change of `monitor` for the server.
pub fn demotion(http: u16, ip: &str, monitor: &str) -> Option<Value> {
    changes(http, ip).into_iter().find(|c| {
        c["monitor"] == monitor
            && c["reason"]
                .as_str()
                .unwrap_or("")
                .starts_with("demoted: unhealthy")
    })
}

/// Waits (at most 150 s) until `monitor` is demoted for every server of
/// `counted`, asserting on every poll that all of `servers` stay in DNS;
/// then that none has `monitor` active and each still scores ≥ 10.
pub fn demoted_while_in_dns(
    http: u16,
    servers: &[&str],
    counted: &[&str],
    monitor: &str,
    logs: impl Fn() -> String,
) {
    let start = Instant::now();
    while !counted
        .iter()
        .all(|ip| demotion(http, ip, monitor).is_some())
    {
        assert!(
            start.elapsed() < Duration::from_secs(150),
            "{monitor} was not demoted: {:?}\n{}",
            servers
                .iter()
                .map(|ip| changes(http, ip))
                .collect::<Vec<_>>(),
            logs()
        );
        for ip in servers {
            assert!(
                in_dns(http, ip),
                "{ip} left DNS over one monitor's broken link (score {})",
                score(http, ip)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for ip in counted {
        let d = demotion(http, ip, monitor).unwrap();
        assert_ne!(d["from"], "candidate", "{d}");
    }
    for ip in servers {
        // The others still see it well, so it stays in DNS; the blind
        // monitor no longer counts for it.
        assert!(score(http, ip) >= 10.0, "{ip}");
        assert_ne!(standing(http, ip, monitor).0, "active", "{ip}");
    }
}

/// Waits until the page of each server shows a traceroute from `monitor`
/// and from one of `others`.
pub fn traceroutes_shown(http: u16, servers: &[&str], monitor: &str, others: &[&str]) {
    wait_until(
        "traceroutes for the changed pairs",
        Duration::from_secs(90),
        || {
            servers.iter().all(|ip| {
                let (_, page) = get(http, &format!("/scores/{ip}")).unwrap();
                let section = page.split("Traceroutes").nth(1).unwrap_or("").to_string();
                section.contains(monitor) && others.iter().any(|n| section.contains(n))
            })
        },
    );
}

/// `poolwatch agent` in lab mode against `api`, sending from `src`, with
/// short back-offs; state under `dir/agent-NAME`.
pub fn agent_args(
    dir: &Path,
    api: &str,
    ntp: u16,
    name: &str,
    src: &str,
    key: &str,
) -> Vec<String> {
    [
        "agent",
        "--api",
        api,
        "--key",
        key,
        "--state-dir",
        &dir.join(format!("agent-{name}")).display().to_string(),
        "--lab",
        "--ntp-port",
        &ntp.to_string(),
        "--source-addr",
        src,
        "--backoff-min",
        "200ms",
        "--backoff-max",
        "1s",
        "--clock-retry",
        "2s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `poolwatch serve` on `listen` with every server due every 2 s and checks
/// of about 2 s (3 samples 1 s apart), so an agent is nearly always in the
/// middle of a batch: stopping the service, or filling its disk, then
/// makes it spool. Checks against `reference` servers.
pub fn busy_serve_args(listen: &str, dir: &Path, reference: &[String]) -> Vec<String> {
    serve_args_with(
        &[
            "--interval-active",
            "2s",
            "--interval-testing",
            "2s",
            "--interval-candidate",
            "2s",
            "--samples",
            "3",
            "--sample-interval",
            "1s",
            "--timeout",
            "500ms",
            "--batch-size",
            "50",
            "--rate-limit",
            "0",
        ],
        listen,
        dir,
        reference,
    )
}

/// `poolwatch serve` on `listen` with the lab-sized intervals and selector
/// of the broken-link tests (3 active and 1 testing monitor per server,
/// promoted after 3 and 6 results, a pass every 2 s), checking against
/// `reference` servers.
pub fn lab_serve_args(listen: &str, dir: &Path, reference: &[String]) -> Vec<String> {
    serve_args_with(
        &[
            "--interval-active",
            "2s",
            "--interval-testing",
            "2s",
            "--interval-candidate",
            "3s",
            "--samples",
            "2",
            "--sample-interval",
            "500ms",
            "--timeout",
            "500ms",
            "--rate-limit",
            "0",
            "--selector-interval",
            "2s",
            "--selector-active",
            "3",
            "--selector-testing",
            "1",
            "--selector-min-testing",
            "3",
            "--selector-min-active",
            "6",
        ],
        listen,
        dir,
        reference,
    )
}

/// `poolwatch serve --listen LISTEN FLAGS… --data-dir DIR` and a
/// `--reference-server` for each of `reference`.
pub fn serve_args_with(
    flags: &[&str],
    listen: &str,
    dir: &Path,
    reference: &[String],
) -> Vec<String> {
    let mut a: Vec<String> = vec!["serve".into(), "--listen".into(), listen.into()];
    a.extend(flags.iter().map(|f| f.to_string()));
    a.push("--data-dir".into());
    a.push(dir.display().to_string());
    for r in reference {
        a.push("--reference-server".into());
        a.push(r.clone());
    }
    a
}

/// `agent setup` with its stdout and stderr collected; killed on drop.
pub struct Setup {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Setup {
    pub fn start(args: &[&str]) -> Setup {
        let mut child = Command::new(BIN)
            .args(["agent", "setup"])
            .args(args)
            .env_remove("POOLWATCH_STATE_DIR")
            .env_remove("STATE_DIRECTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn poolwatch");
        let out = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = sink.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Setup { child, out }
    }

    pub fn out(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit code, waiting at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let mut code = None;
        wait_until("agent setup to exit", limit, || {
            code = self
                .child
                .try_wait()
                .unwrap()
                .map(|s| s.code().unwrap_or(-1));
            code.is_some()
        });
        std::thread::sleep(Duration::from_millis(200)); // let the readers drain
        code
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One lab agent per (name, source address) of `agents`, with its key
/// from `keys`, against the service on 127.0.0.1:`http`.
pub fn start_agents(
    dir: &Path,
    http: u16,
    ntp: u16,
    agents: &[(&str, &str)],
    keys: &[String],
) -> Vec<Proc> {
    let api = format!("http://127.0.0.1:{http}");
    agents
        .iter()
        .zip(keys)
        .map(|((name, ip), key)| Proc::spawn(&agent_args(dir, &api, ntp, name, ip, key)))
        .collect()
}

/// The logs of the service and of each named agent, for a failure message.
pub fn lab_logs(serve: &Proc, agents: &[Proc], names: &[(&str, &str)]) -> String {
    let mut s = format!("serve:\n{}\n", serve.log());
    for (a, (name, _)) in agents.iter().zip(names) {
        s.push_str(&format!("{name}:\n{}\n", a.log()));
    }
    s
}

/// What the samples say on `ip`'s public page: the verdict (`None` when the
/// page has none) and the number of checks it is drawn from.
pub fn page_verdict(http: u16, ip: &str) -> (Option<String>, u64) {
    let (st, body) = get(http, &format!("/scores/{ip}")).unwrap();
    assert_eq!(st, 200, "{body}");
    let verdict = body
        .split("data-verdict=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(str::to_string);
    let checks = body
        .split(" checks in the last ")
        .next()
        .and_then(|s| s.rsplit(['>', ' ', '\n']).next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (verdict, checks)
}

/// Stops the agents, then the service (SIGTERM, as an operator would), and
/// replays the store in `dir` from `started` to a minute from now under
/// current and all-must-answer (the rate-limiting labs' last step).
pub fn stop_then_replay(
    serve: &mut Proc,
    agents: &mut [Proc],
    dir: &Path,
    started: std::time::SystemTime,
) -> Value {
    for a in agents.iter_mut() {
        a.signal("TERM");
        a.wait(Duration::from_secs(20));
    }
    serve.signal("TERM");
    serve.wait(Duration::from_secs(20));
    policy_replay(
        dir,
        started,
        std::time::SystemTime::now() + Duration::from_secs(60),
        &["current", "all-must-answer"],
    )
}

/// `poolwatch policy replay` of the store in `dir` from `from` to `to`
/// under `policies`, membership every minute from the start; the JSON
/// report.
pub fn policy_replay(
    dir: &Path,
    from: std::time::SystemTime,
    to: std::time::SystemTime,
    policies: &[&str],
) -> Value {
    let secs = |t: std::time::SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    let mut cmd = Command::new(BIN);
    cmd.args(["policy", "--data-dir"]).arg(dir).args([
        "replay",
        "--from",
        &secs(from),
        "--to",
        &secs(to),
        "--every",
        "1m",
        "--warmup",
        "0",
        "--format",
        "json",
    ]);
    for p in policies {
        cmd.args(["--policy", p]);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "policy replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("policy replay: {e}: {text}"))
}

/// `r` replayed current then all-must-answer: `limited` is in DNS at some
/// mark under the first and at none under the second, for a reason naming
/// RATE, and `others` are alike under both. (At some mark, not the last:
/// an agent stopped mid-check submits what it has, and a rate-limiter
/// refuses a query so soon after the previous check.)
pub fn assert_replay_split(r: &Value, limited: &str, others: &[&str]) {
    let policies = r["policies"].as_array().unwrap();
    let name = |p: &Value| p["policy"]["name"].as_str().unwrap().to_string();
    assert_eq!(
        policies.iter().map(name).collect::<Vec<_>>(),
        ["current", "all-must-answer"],
        "{r:#}"
    );
    let most = |p: &Value| {
        p["in_dns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .max()
            .unwrap_or(0)
    };
    let n = others.len() as u64 + 1;
    assert_eq!(most(&policies[0]), n, "{r:#}");
    assert_eq!(most(&policies[1]), n - 1, "{r:#}");
    let changed: Vec<&Value> = policies[1]["servers"].as_array().unwrap().iter().collect();
    let l = changed
        .iter()
        .find(|s| s["ip"] == limited)
        .unwrap_or_else(|| panic!("{limited} not among the changed servers: {r:#}"));
    assert!(l["marks_in_baseline"].as_u64() >= Some(1), "{r:#}");
    assert_eq!(l["marks_in"].as_u64(), Some(0), "{r:#}");
    assert!(
        l["why"].as_str().unwrap().contains("RATE"),
        "the reason names the samples: {r:#}"
    );
    for ip in others {
        assert!(
            changed.iter().all(|s| s["ip"] != *ip),
            "{ip} is the same under both: {r:#}"
        );
    }
}
