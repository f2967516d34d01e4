//! The scenario file: the synthetic pool and what happens to it. One typed
//! serde struct (`deny_unknown_fields`), then [`Scenario::validate`], whose
//! errors name the field (`event[2].servers.share`). The format is in the
//! module doc of [`crate::pool`].

use crate::rate_limit::RateLimit;
use serde::Deserialize;
use std::time::Duration;

/// A scenario as read from its file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in reports.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Drives every random number: the same seed gives the same report.
    #[serde(default)]
    pub seed: u64,
    /// The reported time, after the warm-up.
    pub duration: String,
    /// Simulated before the reported time (from a settled pool), so the
    /// selector and scores have moved on from the synthetic start.
    #[serde(default = "default_warmup")]
    pub warmup: String,
    /// `off` or the share of a zone's servers that may leave DNS in 24 h
    /// (`0.1`, `10%`), as `serve --zone-guard`.
    #[serde(default = "default_guard")]
    pub zone_guard: String,
    /// Built-in policies to run (`scoring::Policy::PRESETS`); empty with
    /// no policy given on the command line: every preset.
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub network: Network,
    #[serde(rename = "region")]
    pub regions: Vec<Region>,
    #[serde(default, rename = "event")]
    pub events: Vec<Event>,
}

fn default_warmup() -> String {
    "6h".into()
}

fn default_guard() -> String {
    "10%".into()
}

/// Paths between monitors and servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// Round trip between a monitor and a server of its own region.
    pub local_rtt_ms: f64,
    /// Round trip between regions.
    pub remote_rtt_ms: f64,
    /// Probability that any one query is lost, on every path.
    pub loss: f64,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            local_rtt_ms: 20.0,
            remote_rtt_ms: 150.0,
            loss: 0.001,
        }
    }
}

/// A region: a DNS zone of `servers` servers and the monitors placed in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub name: String,
    pub servers: usize,
    /// Names of the monitors located here (unique over the scenario).
    #[serde(default)]
    pub monitors: Vec<String>,
}

/// Servers of one region: from the `first`-th (0-based), `count` of them
/// or a `share` of the region.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSet {
    pub region: String,
    #[serde(default)]
    pub first: usize,
    pub count: Option<usize>,
    pub share: Option<f64>,
}

/// Something that happens to the pool from `start` to `end` (times after
/// the warm-up; no `end`: until the end of the run).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Event {
    /// One monitor's link to these servers fails: its queries go unanswered.
    BlindLink {
        monitor: String,
        servers: ServerSet,
        start: String,
        end: Option<String>,
    },
    /// A share of a region's servers (its first ones) cut off from every
    /// monitor outside the region.
    RegionCut {
        region: String,
        share: f64,
        start: String,
        end: Option<String>,
    },
    /// The servers stop answering anyone.
    Dead {
        servers: ServerSet,
        start: String,
        end: Option<String>,
    },
    /// The servers limit each client like ntpd's `discard` (per monitor
    /// address; `sim::rate_limit`).
    RateLimit {
        servers: ServerSet,
        #[serde(default)]
        limit: RateLimit,
        #[serde(default = "zero")]
        start: String,
        end: Option<String>,
    },
    /// Queries to these servers are lost with this probability (from one
    /// monitor, or from every monitor).
    Loss {
        servers: ServerSet,
        monitor: Option<String>,
        probability: f64,
        #[serde(default = "zero")]
        start: String,
        end: Option<String>,
    },
}

fn zero() -> String {
    "0s".into()
}

/// Why a scenario is not usable; names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct ScenarioError {
    pub field: String,
    pub why: String,
}

fn err<T>(field: impl Into<String>, why: impl Into<String>) -> Result<T, ScenarioError> {
    Err(ScenarioError {
        field: field.into(),
        why: why.into(),
    })
}

/// Most servers and monitors a scenario may have (memory: one pair per
/// server and monitor, per policy).
pub const MAX_SERVERS: usize = 100_000;
pub const MAX_MONITORS: usize = 250;
/// Longest reported time.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// A duration like `6h`, `1d 12h`, `90m` (humantime), whole seconds.
pub fn parse_duration(field: &str, s: &str) -> Result<i64, ScenarioError> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if d <= MAX_DURATION => Ok(d.as_secs() as i64),
        Ok(_) => err(field, "at most 366 days"),
        Err(e) => err(
            field,
            format!("'{s}' is not a duration like 6h, 90m or 1d 12h ({e})"),
        ),
    }
}

/// `off` (`None`) or a share in [0, 1]: `0.1`, `10%`.
pub fn parse_share(field: &str, s: &str) -> Result<Option<f64>, ScenarioError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1.0).contains(&(v / scale)) => Ok(Some(v / scale)),
        _ => err(
            field,
            format!("'{s}': give off or a share from 0 to 1 (0.1 or 10%)"),
        ),
    }
}

fn probability(field: &str, p: f64) -> Result<(), ScenarioError> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        err(field, "a probability from 0 to 1")
    }
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl Scenario {
    /// Reads and checks a scenario file's text.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError {
            field: "scenario".into(),
            why: e.to_string().trim_end().to_string(),
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Checks every field; the error names it.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if !name_ok(&self.name) {
            return err("name", "1 to 40 letters, digits, '-', '_' or '.'");
        }
        let d = parse_duration("duration", &self.duration)?;
        if d < 3600 {
            return err("duration", "at least 1h");
        }
        parse_duration("warmup", &self.warmup)?;
        parse_share("zone_guard", &self.zone_guard)?;
        for (i, p) in self.policies.iter().enumerate() {
            if scoring::Policy::preset(p).is_none() {
                let names: Vec<&str> = scoring::Policy::PRESETS.iter().map(|p| p.0).collect();
                return err(
                    format!("policies[{i}]"),
                    format!(
                        "'{p}' is not a built-in policy ({}); give files with --policy",
                        names.join(", ")
                    ),
                );
            }
        }
        let n = &self.network;
        for (f, v) in [
            ("network.local_rtt_ms", n.local_rtt_ms),
            ("network.remote_rtt_ms", n.remote_rtt_ms),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 2000.0) {
                return err(f, "milliseconds, more than 0 and at most 2000");
            }
        }
        probability("network.loss", n.loss)?;
        if self.regions.is_empty() {
            return err("region", "at least one [[region]]");
        }
        let mut monitors = std::collections::BTreeSet::new();
        let mut servers = 0usize;
        for (i, r) in self.regions.iter().enumerate() {
            if !name_ok(&r.name) {
                return err(
                    format!("region[{i}].name"),
                    "1 to 40 letters, digits, '-', '_' or '.'",
                );
            }
            if self.regions[..i].iter().any(|o| o.name == r.name) {
                return err(format!("region[{i}].name"), format!("'{}' twice", r.name));
            }
            servers += r.servers;
            for (j, m) in r.monitors.iter().enumerate() {
                let f = format!("region[{i}].monitors[{j}]");
                if !name_ok(m) {
                    return err(f, "1 to 40 letters, digits, '-', '_' or '.'");
                }
                if !monitors.insert(m.as_str()) {
                    return err(f, format!("monitor '{m}' twice"));
                }
            }
        }
        if servers == 0 || servers > MAX_SERVERS {
            return err("region", format!("1 to {MAX_SERVERS} servers in all"));
        }
        if monitors.is_empty() || monitors.len() > MAX_MONITORS {
            return err("region", format!("1 to {MAX_MONITORS} monitors in all"));
        }
        for (i, e) in self.events.iter().enumerate() {
            self.check_event(&format!("event[{i}]"), e, d, &monitors)?;
        }
        Ok(())
    }

    fn region(&self, field: &str, name: &str) -> Result<&Region, ScenarioError> {
        match self.regions.iter().find(|r| r.name == name) {
            Some(r) => Ok(r),
            None => err(field, format!("no region '{name}'")),
        }
    }

    /// The indices within its region of a set's servers.
    pub fn resolve(&self, field: &str, set: &ServerSet) -> Result<(usize, usize), ScenarioError> {
        let r = self.region(&format!("{field}.region"), &set.region)?;
        let n = match (set.count, set.share) {
            (Some(c), None) => c,
            (None, Some(s)) => {
                probability(&format!("{field}.share"), s)?;
                (s * r.servers as f64).round() as usize
            }
            _ => return err(field, "give exactly one of count or share"),
        };
        if n == 0 {
            return err(field, "selects no server");
        }
        if set.first + n > r.servers {
            return err(
                field,
                format!(
                    "servers {}..{} of '{}', which has {}",
                    set.first,
                    set.first + n,
                    r.name,
                    r.servers
                ),
            );
        }
        Ok((set.first, set.first + n))
    }

    fn check_event(
        &self,
        f: &str,
        e: &Event,
        duration: i64,
        monitors: &std::collections::BTreeSet<&str>,
    ) -> Result<(), ScenarioError> {
        let monitor = |m: &str| {
            if monitors.contains(m) {
                Ok(())
            } else {
                err(format!("{f}.monitor"), format!("no monitor '{m}'"))
            }
        };
        let (start, end) = match e {
            Event::BlindLink {
                monitor: m,
                servers,
                start,
                end,
            } => {
                monitor(m)?;
                self.resolve(&format!("{f}.servers"), servers)?;
                (start, end)
            }
            Event::RegionCut {
                region,
                share,
                start,
                end,
            } => {
                self.region(&format!("{f}.region"), region)?;
                probability(&format!("{f}.share"), *share)?;
                (start, end)
            }
            Event::Dead {
                servers,
                start,
                end,
            } => {
                self.resolve(&format!("{f}.servers"), servers)?;
                (start, end)
            }
            Event::RateLimit {
                servers,
                limit,
                start,
                end,
            } => {
                self.resolve(&format!("{f}.servers"), servers)?;
                limit.validate().map_err(|why| ScenarioError {
                    field: format!("{f}.limit"),
                    why,
                })?;
                (start, end)
            }
            Event::Loss {
                servers,
                monitor: m,
                probability: p,
                start,
                end,
            } => {
                self.resolve(&format!("{f}.servers"), servers)?;
                if let Some(m) = m {
                    monitor(m)?;
                }
                probability(&format!("{f}.probability"), *p)?;
                (start, end)
            }
        };
        let s = parse_duration(&format!("{f}.start"), start)?;
        if s >= duration {
            return err(format!("{f}.start"), "after the end of the run");
        }
        if let Some(end) = end {
            let e = parse_duration(&format!("{f}.end"), end)?;
            if e <= s {
                return err(format!("{f}.end"), "not after start");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
name = "t"
duration = "1d"
[[region]]
name = "europe"
servers = 10
monitors = ["a", "b"]
[[event]]
kind = "dead"
servers = { region = "europe", count = 1 }
start = "1h"
"#;

    fn field_of(text: &str) -> String {
        Scenario::parse(text).unwrap_err().field
    }

    #[test]
    fn a_good_scenario_parses() {
        let s = Scenario::parse(OK).unwrap();
        assert_eq!(s.regions[0].servers, 10);
        assert_eq!(s.warmup, "6h");
        assert!(matches!(s.events[0], Event::Dead { .. }));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (OK.replace("name = \"t\"", "name = \"a b\""), "name"),
            (OK.replace("\"1d\"", "\"soon\""), "duration"),
            (OK.replace("\"1d\"", "\"10m\""), "duration"),
            (OK.replace("count = 1", "count = 11"), "event[0].servers"),
            (
                OK.replace("count = 1", "count = 1, share = 0.5"),
                "event[0].servers",
            ),
            (
                OK.replace("region = \"europe\", count", "region = \"asia\", count"),
                "event[0].servers.region",
            ),
            (
                OK.replace("start = \"1h\"", "start = \"2d\""),
                "event[0].start",
            ),
            (
                OK.replace("start = \"1h\"", "start = \"1h\"\nend = \"1h\""),
                "event[0].end",
            ),
            (
                OK.replace("[\"a\", \"b\"]", "[\"a\", \"a\"]"),
                "region[0].monitors[1]",
            ),
            (format!("zone_guard = \"150%\"\n{OK}"), "zone_guard"),
            (
                OK.replace("duration", "policies = [\"best\"]\nduration"),
                "policies[0]",
            ),
            (
                OK.replace("servers = 10", "servers = 10\nspeed = 1"),
                "scenario",
            ),
            (
                OK.replace("kind = \"dead\"", "kind = \"loss\"\nprobability = 2.0"),
                "event[0].probability",
            ),
            (
                OK.replace(
                    "kind = \"dead\"",
                    "kind = \"rate-limit\"\nlimit = { average = 0 }",
                ),
                "event[0].limit",
            ),
            (
                OK.replace("kind = \"dead\"", "kind = \"dead\"\nmonitor = \"a\""),
                "scenario",
            ),
        ];
        for (text, field) in cases {
            assert_eq!(field_of(&text), field, "{text}");
        }
        // The parser's message names the unknown key.
        let e = Scenario::parse(&OK.replace("servers = 10", "servers = 10\nspeed = 1"));
        assert!(e.unwrap_err().why.contains("speed"));
    }

    #[test]
    fn shares_and_durations() {
        assert_eq!(parse_share("g", "off").unwrap(), None);
        assert_eq!(parse_share("g", "10%").unwrap(), Some(0.1));
        assert_eq!(parse_share("g", "0.25").unwrap(), Some(0.25));
        assert!(parse_share("g", "1.5").is_err());
        assert_eq!(parse_duration("d", "1d 12h").unwrap(), 129_600);
        assert_eq!(parse_duration("d", "400d").unwrap_err().field, "d");
    }
}
