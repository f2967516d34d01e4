//! Traceroutes the central service asks for when this monitor's view of a
//! server changed: UDP probes to port 123 (the path NTP packets take), run
//! by shelling out to `mtr --json` or `traceroute -U`, behind the
//! [`Traceroute`] trait. The parsers are pure functions.
//!
//! A target the agent's [`TargetPolicy`] refuses is never traced.

use api::TracerouteSubmission;
use futures::future::BoxFuture;
use ntp::TargetPolicy;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How long one traceroute may take before it is abandoned (and its
/// process killed).
pub const TRACE_TIMEOUT: Duration = Duration::from_secs(60);
/// Traceroutes run at the same time.
pub const TRACE_CONCURRENCY: usize = 2;
/// The message when a traceroute is asked for and no tool is installed.
pub const NO_TOOL: &str = "traceroute requested but neither mtr nor traceroute is installed; \
     install mtr-tiny or traceroute";

/// One hop, as sent to the service. For mtr, which reports statistics
/// only, `rtt_ms` holds the best and worst, or the average of a single reply.
pub use api::Hop;

/// A traceroute tool.
pub trait Traceroute: Send + Sync {
    /// `mtr`, `traceroute`, … (sent to the service as `tool`).
    fn name(&self) -> &'static str;
    /// Trace the path to `target` (UDP to port 123), from `source` if given
    /// (only passed when it is of the target's family).
    fn trace(
        &self,
        target: IpAddr,
        source: Option<IpAddr>,
    ) -> BoxFuture<'_, Result<Vec<Hop>, String>>;
}

/// `mtr --json -n -u -P 123 -c 2 [-a SRC] IP`.
#[derive(Debug, Clone)]
pub struct Mtr {
    pub program: PathBuf,
}

/// `traceroute -n -U -p 123 -q 2 -w 2 [-s SRC] IP`.
#[derive(Debug, Clone)]
pub struct TracerouteCmd {
    pub program: PathBuf,
}

impl Mtr {
    pub fn args(target: IpAddr, source: Option<IpAddr>) -> Vec<String> {
        let mut a: Vec<String> = ["--json", "-n", "-u", "-P", "123", "-c", "2"]
            .map(String::from)
            .to_vec();
        if let Some(s) = source {
            a.extend(["-a".into(), s.to_string()]);
        }
        a.push(target.to_string());
        a
    }
}

impl TracerouteCmd {
    pub fn args(target: IpAddr, source: Option<IpAddr>) -> Vec<String> {
        let mut a: Vec<String> = ["-n", "-U", "-p", "123", "-q", "2", "-w", "2"]
            .map(String::from)
            .to_vec();
        if let Some(s) = source {
            a.extend(["-s".into(), s.to_string()]);
        }
        a.push(target.to_string());
        a
    }
}

impl Traceroute for Mtr {
    fn name(&self) -> &'static str {
        "mtr"
    }
    fn trace(
        &self,
        target: IpAddr,
        source: Option<IpAddr>,
    ) -> BoxFuture<'_, Result<Vec<Hop>, String>> {
        Box::pin(run_and_parse(
            "mtr",
            &self.program,
            Mtr::args(target, source),
            parse_mtr_json,
        ))
    }
}

impl Traceroute for TracerouteCmd {
    fn name(&self) -> &'static str {
        "traceroute"
    }
    fn trace(
        &self,
        target: IpAddr,
        source: Option<IpAddr>,
    ) -> BoxFuture<'_, Result<Vec<Hop>, String>> {
        Box::pin(run_and_parse(
            "traceroute",
            &self.program,
            TracerouteCmd::args(target, source),
            parse_traceroute,
        ))
    }
}

/// Runs `program` and parses what it printed; a trace without hops is an
/// error naming the tool (with the first line it wrote to stderr).
async fn run_and_parse(
    tool: &str,
    program: &Path,
    args: Vec<String>,
    parse: fn(&str) -> Result<Vec<Hop>, String>,
) -> Result<Vec<Hop>, String> {
    let out = run(program, &args).await?;
    let hops = parse(&out.stdout)?;
    if hops.is_empty() {
        return Err(with_stderr(
            &format!("{tool} reported no hops"),
            &out.stderr,
        ));
    }
    Ok(hops)
}

struct Output {
    stdout: String,
    stderr: String,
}

fn with_stderr(what: &str, stderr: &str) -> String {
    let first = stderr.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        Some(l) => format!("{what}: {l}"),
        None => what.to_string(),
    }
}

/// Run a tool; a non-zero exit is an error with its first stderr line.
async fn run(program: &Path, args: &[String]) -> Result<Output, String> {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.display().to_string());
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    let o = Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if !out.status.success() {
        return Err(with_stderr(
            &format!("{name} failed ({})", out.status),
            &o.stderr,
        ));
    }
    Ok(o)
}

fn num(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parse `mtr --json` (its `report.hubs`). mtr reports per-hop statistics,
/// not single probes: one answered probe gives `[Avg]`, two `[Best, Wrst]`,
/// more `[Best, Avg, Wrst]`. Host `???` is a hop without an answer.
pub fn parse_mtr_json(text: &str) -> Result<Vec<Hop>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("unreadable mtr output: {e}"))?;
    let hubs = v
        .pointer("/report/hubs")
        .and_then(|h| h.as_array())
        .ok_or("unreadable mtr output: no report.hubs")?;
    let mut hops = Vec::with_capacity(hubs.len());
    for h in hubs {
        let ttl = h
            .get("count")
            .and_then(num)
            .filter(|c| (1.0..=255.0).contains(c))
            .ok_or("unreadable mtr output: hub without a count")? as i64;
        let host = h.get("host").and_then(|x| x.as_str()).unwrap_or("???");
        let ip: Option<IpAddr> = host.parse().ok();
        let sent = h.get("Snt").and_then(num).unwrap_or(0.0).max(0.0) as u32;
        let loss = h
            .get("Loss%")
            .and_then(num)
            .unwrap_or(100.0)
            .clamp(0.0, 100.0);
        let received = if ip.is_none() {
            0
        } else {
            (f64::from(sent) * (1.0 - loss / 100.0)).round() as u32
        };
        let stat = |k: &str| {
            h.get(k)
                .and_then(num)
                .filter(|x| x.is_finite() && *x >= 0.0)
        };
        let rtt_ms: Vec<f64> = match received {
            0 => vec![],
            1 => stat("Avg").into_iter().collect(),
            2 => [stat("Best"), stat("Wrst")].into_iter().flatten().collect(),
            _ => [stat("Best"), stat("Avg"), stat("Wrst")]
                .into_iter()
                .flatten()
                .collect(),
        };
        hops.push(Hop {
            ttl,
            ip,
            rtt_ms,
            sent,
        });
    }
    Ok(hops)
}

/// Parse `traceroute -n` text: after the `traceroute to …` header, one line
/// per TTL: `TTL` then, per probe, an address (when it differs from the
/// previous probe's), `RTT ms` and optional `!H`-style notes, or `*` for a
/// probe without an answer. The hop's address is the first one answering.
pub fn parse_traceroute(text: &str) -> Result<Vec<Hop>, String> {
    let mut hops = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("traceroute to") {
            continue;
        }
        let mut tokens = line.split_whitespace().peekable();
        let Some(ttl) = tokens.next().and_then(|t| t.parse::<u8>().ok()) else {
            // Warnings and the like ("traceroute: …").
            continue;
        };
        let mut hop = Hop {
            ttl: i64::from(ttl),
            ip: None,
            rtt_ms: Vec::new(),
            sent: 0,
        };
        while let Some(tok) = tokens.next() {
            if tok == "*" {
                hop.sent += 1;
            } else if tok == "ms" || tok.starts_with('!') {
                // unit, or an ICMP note (!H, !N, !X, !<n>) on the last probe
            } else if let Ok(ip) = tok.parse::<IpAddr>() {
                hop.ip.get_or_insert(ip);
            } else if let Ok(v) = tok.parse::<f64>()
                && tokens.peek() == Some(&"ms")
                && v.is_finite()
                && v >= 0.0
            {
                hop.rtt_ms.push(v);
                hop.sent += 1;
            }
        }
        hops.push(hop);
    }
    Ok(hops)
}

/// Which tool to use (`--traceroute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TracerouteMode {
    /// mtr if installed, else traceroute.
    #[default]
    Auto,
    Mtr,
    Traceroute,
    /// Never trace (requests are answered with an error saying so).
    Off,
}

impl FromStr for TracerouteMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(TracerouteMode::Auto),
            "mtr" => Ok(TracerouteMode::Mtr),
            "traceroute" => Ok(TracerouteMode::Traceroute),
            "off" => Ok(TracerouteMode::Off),
            other => Err(format!(
                "traceroute mode {other:?}: expected auto, mtr, traceroute or off"
            )),
        }
    }
}

/// The tools the agent traces with, tried in order until one works (mtr
/// needs raw sockets, which a hardened service unit does not grant; then
/// traceroute's unprivileged UDP probes still work), or why it cannot.
#[derive(Clone)]
pub enum Tracer {
    Tools(Vec<Arc<dyn Traceroute>>),
    /// No usable tool: the message to log (once) and send back.
    Unavailable(String),
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tracer::Tools(t) => write!(f, "Tracer::Tools({})", names(t)),
            Tracer::Unavailable(why) => write!(f, "Tracer::Unavailable({why:?})"),
        }
    }
}

/// `mtr+traceroute`.
pub fn names(tools: &[Arc<dyn Traceroute>]) -> String {
    tools.iter().map(|t| t.name()).collect::<Vec<_>>().join("+")
}

/// `name` in `$PATH`, then in the sbin directories (traceroute lives in
/// /usr/sbin, which a service user's PATH may lack).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Pick the tools for `mode`: `auto` is mtr then traceroute (whichever
/// are installed).
pub fn detect(mode: TracerouteMode) -> Tracer {
    let mtr =
        || find_program("mtr").map(|program| Arc::new(Mtr { program }) as Arc<dyn Traceroute>);
    let tr = || {
        find_program("traceroute")
            .map(|program| Arc::new(TracerouteCmd { program }) as Arc<dyn Traceroute>)
    };
    let (tools, missing): (Vec<_>, &str) = match mode {
        TracerouteMode::Auto => (mtr().into_iter().chain(tr()).collect(), NO_TOOL),
        TracerouteMode::Mtr => (
            mtr().into_iter().collect(),
            "traceroute requested but mtr is not installed (--traceroute mtr); install mtr-tiny",
        ),
        TracerouteMode::Traceroute => (
            tr().into_iter().collect(),
            "traceroute requested but traceroute is not installed (--traceroute traceroute); \
             install traceroute",
        ),
        TracerouteMode::Off => (
            vec![],
            "traceroutes are turned off on this monitor (--traceroute off)",
        ),
    };
    if tools.is_empty() {
        Tracer::Unavailable(missing.into())
    } else {
        Tracer::Tools(tools)
    }
}

/// How one request went (the metric's `result` label).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Hops to send back.
    Ok(TracerouteSubmission),
    /// An error to send back (no tool, the tool failed, timed out).
    Error(TracerouteSubmission),
    /// The policy refuses the address (or it is unreadable): nothing is
    /// sent, not a packet and not a report.
    Refused(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok(_) => "ok",
            Outcome::Error(_) => "error",
            Outcome::Refused(_) => "refused",
        }
    }
}

/// Run one requested traceroute: the policy first, then the tool within
/// `timeout`. `now` gives the report's time (unix seconds).
pub async fn trace_one(
    tracer: &Tracer,
    policy: TargetPolicy,
    source: Option<IpAddr>,
    ip: &str,
    timeout: Duration,
    now: impl Fn() -> i64,
) -> Outcome {
    let target: IpAddr = match ip.parse() {
        Ok(ip) => ip,
        Err(_) => return Outcome::Refused(format!("unreadable traceroute target {ip:?}")),
    };
    if let Err(e) = policy.check(target) {
        return Outcome::Refused(format!("no traceroute: {e}"));
    }
    let report = |tool: &str, hops: Vec<Hop>, error: Option<String>| TracerouteSubmission {
        ip: target,
        ts: now(),
        tool: tool.to_string(),
        hops,
        error: error.map(|e| e.chars().take(250).collect()),
    };
    let tools = match tracer {
        Tracer::Unavailable(why) => {
            return Outcome::Error(report("none", vec![], Some(why.clone())));
        }
        Tracer::Tools(t) => t,
    };
    // The source address only when it is of the target's family.
    let source = source.filter(|s| s.is_ipv4() == target.is_ipv4());
    let deadline = tokio::time::Instant::now() + timeout;
    let mut errors = Vec::new();
    let mut tried = Vec::new();
    for tool in tools {
        tried.push(tool.name());
        match tokio::time::timeout_at(deadline, tool.trace(target, source)).await {
            Ok(Ok(mut hops)) => {
                hops.truncate(64);
                return Outcome::Ok(report(tool.name(), hops, None));
            }
            Ok(Err(e)) => errors.push(e),
            Err(_) => {
                errors.push(format!(
                    "{} did not finish within {} s",
                    tool.name(),
                    timeout.as_secs()
                ));
                break;
            }
        }
    }
    Outcome::Error(report(&tried.join("+"), vec![], Some(errors.join("; "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mtr --json -n -u -P 123 -c 2 -a 127.0.0.1 127.0.0.1` (mtr 0.95).
    const MTR_V4: &str = include_str!("../testdata/mtr_v4.json");
    /// `mtr --json -n -u -P 123 -c 2 ::1` (mtr 0.95).
    const MTR_V6: &str = include_str!("../testdata/mtr_v6.json");
    /// `mtr … -a 10.99.99.99 127.0.0.1`: a source address not on this host.
    const MTR_BAD_SOURCE: &str = include_str!("../testdata/mtr_bad_source.json");
    /// `traceroute -n -U -p 123 -q 2 -w 2 -s 127.0.0.1 127.0.0.1` (2.1.2).
    const TR_V4: &str = include_str!("../testdata/traceroute_v4.txt");
    /// `traceroute -n -U -p 123 -q 2 -w 2 ::1` (2.1.2).
    const TR_V6: &str = include_str!("../testdata/traceroute_v6.txt");

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn parses_captured_mtr() {
        let h = parse_mtr_json(MTR_V4).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].ttl, h[0].ip, h[0].sent), (1, ip("127.0.0.1"), 2));
        assert_eq!(h[0].rtt_ms.len(), 2);
        assert!(h[0].rtt_ms[0] <= h[0].rtt_ms[1]);
        let h = parse_mtr_json(MTR_V6).unwrap();
        assert_eq!((h[0].ttl, h[0].ip), (1, ip("::1")));
        assert_eq!(h[0].rtt_ms, vec![0.086, 0.091]);
        assert!(parse_mtr_json(MTR_BAD_SOURCE).unwrap().is_empty());
        assert!(parse_mtr_json("mtr: unable to get raw sockets").is_err());
    }

    #[test]
    fn parses_mtr_lost_hops_and_string_counts() {
        // The shape of the hubs above, with hops that did not answer and
        // an older mtr's string counts.
        let text = r#"{"report":{"mtr":{"dst":"192.0.2.1"},"hubs":[
            {"count":"1","host":"10.0.0.1","Loss%":0.0,"Snt":2,"Last":0.4,"Avg":0.35,"Best":0.3,"Wrst":0.4,"StDev":0.05},
            {"count":2,"host":"???","Loss%":100.0,"Snt":2,"Last":0.0,"Avg":0.0,"Best":0.0,"Wrst":0.0,"StDev":0.0},
            {"count":3,"host":"192.0.2.1","Loss%":50.0,"Snt":2,"Last":12.5,"Avg":12.5,"Best":12.5,"Wrst":12.5,"StDev":0.0}]}}"#;
        let h = parse_mtr_json(text).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].rtt_ms, vec![0.3, 0.4]);
        assert_eq!(
            (h[1].ttl, h[1].ip, h[1].rtt_ms.len(), h[1].sent),
            (2, None, 0, 2)
        );
        assert_eq!(h[2].rtt_ms, vec![12.5]);
    }

    #[test]
    fn parses_captured_traceroute() {
        let h = parse_traceroute(TR_V4).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].ttl, h[0].ip, h[0].sent), (1, ip("127.0.0.1"), 2));
        assert_eq!(h[0].rtt_ms, vec![0.184, 0.145]);
        let h = parse_traceroute(TR_V6).unwrap();
        assert_eq!((h[0].ttl, h[0].ip), (1, ip("::1")));
        assert_eq!(h[0].rtt_ms, vec![0.030, 0.002]);
    }

    #[test]
    fn parses_traceroute_stars_notes_and_two_responders() {
        let text = "traceroute to 192.0.2.1 (192.0.2.1), 30 hops max, 60 byte packets\n \
             1  10.0.0.1  0.311 ms  0.402 ms\n \
             2  * *\n \
             3  198.51.100.9  5.100 ms * \n \
             4  203.0.113.1  7.000 ms 203.0.113.2  7.500 ms\n \
             5  192.0.2.1  12.500 ms !X  13.000 ms !X\n";
        let h = parse_traceroute(text).unwrap();
        assert_eq!(h.len(), 5);
        assert_eq!(h[0].rtt_ms, vec![0.311, 0.402]);
        assert_eq!((h[1].ip, h[1].rtt_ms.len(), h[1].sent), (None, 0, 2));
        assert_eq!(
            (h[2].ip, h[2].rtt_ms.clone(), h[2].sent),
            (ip("198.51.100.9"), vec![5.1], 2)
        );
        assert_eq!((h[3].ip, h[3].rtt_ms.len()), (ip("203.0.113.1"), 2));
        assert_eq!(
            (h[4].ip, h[4].rtt_ms.clone()),
            (ip("192.0.2.1"), vec![12.5, 13.0])
        );
    }

    #[test]
    fn command_lines() {
        let t: IpAddr = "192.0.2.1".parse().unwrap();
        let s: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            Mtr::args(t, Some(s)).join(" "),
            "--json -n -u -P 123 -c 2 -a 198.51.100.7 192.0.2.1"
        );
        assert_eq!(
            TracerouteCmd::args(t, None).join(" "),
            "-n -U -p 123 -q 2 -w 2 192.0.2.1"
        );
        assert_eq!(
            TracerouteCmd::args(t, Some(s)).join(" "),
            "-n -U -p 123 -q 2 -w 2 -s 198.51.100.7 192.0.2.1"
        );
        assert_eq!("AUTO".parse(), Ok(TracerouteMode::Auto));
        assert_eq!("off".parse(), Ok(TracerouteMode::Off));
        assert!("ping".parse::<TracerouteMode>().is_err());
    }

    /// Records what it was asked; answers with fixed hops or hangs.
    struct Fake {
        hang: bool,
        asked: std::sync::Mutex<Vec<(IpAddr, Option<IpAddr>)>>,
    }

    impl Traceroute for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn trace(
            &self,
            target: IpAddr,
            source: Option<IpAddr>,
        ) -> BoxFuture<'_, Result<Vec<Hop>, String>> {
            self.asked.lock().unwrap().push((target, source));
            let hang = self.hang;
            Box::pin(async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                Ok(vec![Hop {
                    ttl: 1,
                    ip: Some(target),
                    rtt_ms: vec![0.1],
                    sent: 2,
                }])
            })
        }
    }

    /// Fails like mtr without raw sockets.
    struct Broken;

    impl Traceroute for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn trace(&self, _: IpAddr, _: Option<IpAddr>) -> BoxFuture<'_, Result<Vec<Hop>, String>> {
            Box::pin(async {
                Err("mtr failed (exit status: 1): Failure to open IPv4 sockets".into())
            })
        }
    }

    #[tokio::test]
    async fn falls_back_to_the_next_tool() {
        let fake = Arc::new(Fake {
            hang: false,
            asked: Default::default(),
        });
        let short = Duration::from_secs(5);
        let both = Tracer::Tools(vec![Arc::new(Broken), fake.clone()]);
        let o = trace_one(&both, TargetPolicy::Lab, None, "127.0.0.1", short, || 5).await;
        let Outcome::Ok(r) = o else { panic!("{o:?}") };
        assert_eq!(r.tool, "fake");
        let alone = Tracer::Tools(vec![Arc::new(Broken)]);
        let o = trace_one(&alone, TargetPolicy::Lab, None, "127.0.0.1", short, || 5).await;
        let Outcome::Error(r) = o else {
            panic!("{o:?}")
        };
        assert_eq!(r.tool, "broken");
        assert!(r.error.unwrap().contains("Failure to open"));
    }

    #[tokio::test]
    async fn policy_tool_and_timeout() {
        let fake = Arc::new(Fake {
            hang: false,
            asked: Default::default(),
        });
        let tracer = Tracer::Tools(vec![fake.clone()]);
        let src: IpAddr = "127.0.0.2".parse().unwrap();
        let short = Duration::from_millis(200);
        // Refused addresses are never traced.
        let o = trace_one(
            &tracer,
            TargetPolicy::Lab,
            Some(src),
            "192.0.2.1",
            short,
            || 5,
        )
        .await;
        assert_eq!(o.label(), "refused");
        let o = trace_one(
            &tracer,
            TargetPolicy::Public,
            None,
            "127.0.0.1",
            short,
            || 5,
        )
        .await;
        assert_eq!(o.label(), "refused");
        let o = trace_one(&tracer, TargetPolicy::Lab, None, "nonsense", short, || 5).await;
        assert_eq!(o.label(), "refused");
        // IPv6 forms embedding a loopback, private or link-local IPv4 (the
        // tracer is a fake: nothing is sent even were the rule lost).
        for ip in ["2002:7f00:1::1", "2002:a00:1::1", "2002:a9fe:a9fe::1"] {
            let o = trace_one(&tracer, TargetPolicy::Public, None, ip, short, || 5).await;
            assert_eq!(o.label(), "refused", "{ip}");
        }
        assert!(fake.asked.lock().unwrap().is_empty());
        // Allowed: traced, the source passed only for the same family.
        let o = trace_one(
            &tracer,
            TargetPolicy::Lab,
            Some(src),
            "127.0.0.1",
            short,
            || 5,
        )
        .await;
        let Outcome::Ok(r) = o else { panic!("{o:?}") };
        assert_eq!((r.tool.as_str(), r.ts, r.hops.len()), ("fake", 5, 1));
        trace_one(&tracer, TargetPolicy::Lab, Some(src), "::1", short, || 5).await;
        assert_eq!(
            *fake.asked.lock().unwrap(),
            vec![
                ("127.0.0.1".parse().unwrap(), Some(src)),
                ("::1".parse().unwrap(), None)
            ]
        );
        // No tool: an error report saying so.
        let none = Tracer::Unavailable(NO_TOOL.into());
        let o = trace_one(&none, TargetPolicy::Lab, None, "127.0.0.1", short, || 5).await;
        let Outcome::Error(r) = o else {
            panic!("{o:?}")
        };
        assert_eq!(r.tool, "none");
        assert!(r.error.unwrap().contains("install mtr-tiny or traceroute"));
        // A tool that hangs is abandoned.
        let hung = Tracer::Tools(vec![Arc::new(Fake {
            hang: true,
            asked: Default::default(),
        })]);
        let o = trace_one(&hung, TargetPolicy::Lab, None, "127.0.0.1", short, || 5).await;
        let Outcome::Error(r) = o else {
            panic!("{o:?}")
        };
        assert!(r.error.unwrap().contains("did not finish"));
    }

    /// The real tools against 127.0.0.1 (never anything else). Skipped with
    /// a reason when neither is installed, except under CI=true.
    #[tokio::test]
    async fn real_tools_trace_loopback() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        let mut ran = 0;
        for mode in [TracerouteMode::Mtr, TracerouteMode::Traceroute] {
            let tracer = detect(mode);
            if let Tracer::Unavailable(why) = &tracer {
                eprintln!("{mode:?}: {why}");
                continue;
            }
            let o = trace_one(
                &tracer,
                TargetPolicy::Lab,
                None,
                "127.0.0.1",
                TRACE_TIMEOUT,
                || 1,
            )
            .await;
            let Outcome::Ok(r) = o else {
                panic!("{mode:?}: {o:?}")
            };
            let last = r.hops.last().expect("a hop");
            assert_eq!(last.ip, ip("127.0.0.1"), "{mode:?}: {r:?}");
            assert!(!last.rtt_ms.is_empty(), "{mode:?}: {r:?}");
            ran += 1;
        }
        if ran == 0 {
            assert!(
                !ci,
                "CI=true: install mtr-tiny or traceroute (scripts/test does)"
            );
            eprintln!("skipped: neither mtr nor traceroute is installed");
        } else {
            assert!(matches!(detect(TracerouteMode::Auto), Tracer::Tools(_)));
        }
    }
}
