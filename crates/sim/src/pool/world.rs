//! The synthetic pool a scenario describes, laid out once and shared by
//! every policy's run: servers and monitors with addresses and regions,
//! and each server's events as time-bounded effects.

use super::scenario::{Event, Scenario, ScenarioError, parse_duration, parse_share};
use crate::rate_limit::RateLimit;
use scoring::ZoneGuardConfig;
use std::net::{IpAddr, Ipv4Addr};

/// The virtual clock starts at this UTC midnight (2023-11-14); a run never
/// reads the wall clock.
pub const T0: i64 = 1_699_920_000;

#[derive(Debug, Clone)]
pub struct SimServer {
    pub region: usize,
    pub ip: IpAddr,
}

#[derive(Debug, Clone)]
pub struct SimMonitor {
    pub name: String,
    pub region: usize,
    pub ip: IpAddr,
}

/// What an event does to one server while it lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    /// Answers nobody.
    Dead,
    /// Queries from this monitor go unanswered (a blind link).
    Silent { monitor: usize },
    /// Queries from monitors outside this region go unanswered.
    CutOutside { region: usize },
    /// Queries (from one monitor, or all) are lost with probability `p`.
    Loss { monitor: Option<usize>, p: f64 },
    /// Limits each client (monitor address).
    RateLimit(RateLimit),
}

/// An effect from `start` (inclusive) to `end` (exclusive), unix seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed {
    pub start: i64,
    pub end: i64,
    pub effect: Effect,
}

impl Timed {
    pub fn at(&self, t: f64) -> bool {
        self.start as f64 <= t && t < self.end as f64
    }
}

/// The pool of a scenario, ready to run.
#[derive(Debug, Clone)]
pub struct World {
    pub name: String,
    pub seed: u64,
    /// The warm-up starts at [`T0`]; reported from `report_from` to `end`.
    pub report_from: i64,
    pub end: i64,
    pub zones: Vec<String>,
    pub servers: Vec<SimServer>,
    /// Server indices per zone.
    pub zone_servers: Vec<Vec<usize>>,
    pub monitors: Vec<SimMonitor>,
    /// Seconds.
    pub local_rtt: f64,
    pub remote_rtt: f64,
    pub loss: f64,
    pub guard: ZoneGuardConfig,
    /// Per server, the effects of the events on it.
    pub effects: Vec<Vec<Timed>>,
}

impl World {
    /// Lays out a validated scenario.
    pub fn new(s: &Scenario) -> Result<World, ScenarioError> {
        s.validate()?;
        let report_from = T0 + parse_duration("warmup", &s.warmup)?;
        let run_end = report_from + parse_duration("duration", &s.duration)?;
        let guard = match parse_share("zone_guard", &s.zone_guard)? {
            None => ZoneGuardConfig::Off,
            Some(share) => ZoneGuardConfig::MaxShare(share),
        };
        let mut servers = Vec::new();
        let mut zone_servers = Vec::new();
        let mut monitors = Vec::new();
        let mut first = Vec::new();
        for (r, region) in s.regions.iter().enumerate() {
            first.push(servers.len());
            let ids: Vec<usize> = (servers.len()..servers.len() + region.servers).collect();
            for i in &ids {
                // 100.0.0.0 and up, far from the monitors' 10/8: the
                // selector's same-/24 rule never applies.
                let ip = Ipv4Addr::from(0x6400_0000u32 + *i as u32);
                servers.push(SimServer {
                    region: r,
                    ip: IpAddr::V4(ip),
                });
            }
            zone_servers.push(ids);
            for name in &region.monitors {
                // One /16 per monitor: the selector's /20 diversity rule
                // never binds either.
                let m = monitors.len() as u8;
                monitors.push(SimMonitor {
                    name: name.clone(),
                    region: r,
                    ip: IpAddr::V4(Ipv4Addr::new(10, m, 0, 1)),
                });
            }
        }
        let region_of = |name: &str| s.regions.iter().position(|r| r.name == name);
        let monitor_of = |name: &str| monitors.iter().position(|m| m.name == name);
        let mut effects = vec![Vec::new(); servers.len()];
        for (i, e) in s.events.iter().enumerate() {
            let f = format!("event[{i}]");
            let (set, start, end_s, effect) = match e {
                Event::BlindLink {
                    monitor,
                    servers,
                    start,
                    end,
                } => (
                    Some(servers),
                    start,
                    end,
                    Effect::Silent {
                        monitor: monitor_of(monitor).unwrap_or_default(),
                    },
                ),
                Event::RegionCut {
                    region,
                    share,
                    start,
                    end,
                } => {
                    let r = region_of(region).unwrap_or_default();
                    let n = (share * s.regions[r].servers as f64).round() as usize;
                    let t = timed(&f, start, end, report_from, run_end)?;
                    for srv in &zone_servers[r][..n] {
                        effects[*srv].push(Timed {
                            effect: Effect::CutOutside { region: r },
                            ..t
                        });
                    }
                    continue;
                }
                Event::Dead {
                    servers,
                    start,
                    end,
                } => (Some(servers), start, end, Effect::Dead),
                Event::RateLimit {
                    servers,
                    limit,
                    start,
                    end,
                } => (Some(servers), start, end, Effect::RateLimit(*limit)),
                Event::Loss {
                    servers,
                    monitor,
                    probability,
                    start,
                    end,
                } => (
                    Some(servers),
                    start,
                    end,
                    Effect::Loss {
                        monitor: monitor.as_deref().and_then(monitor_of),
                        p: *probability,
                    },
                ),
            };
            let t = timed(&f, start, end_s, report_from, run_end)?;
            if let Some(set) = set {
                let (a, b) = s.resolve(&format!("{f}.servers"), set)?;
                let base = first[region_of(&set.region).unwrap_or_default()];
                for e in &mut effects[base + a..base + b] {
                    e.push(Timed { effect, ..t });
                }
            }
        }
        Ok(World {
            name: s.name.clone(),
            seed: s.seed,
            report_from,
            end: run_end,
            zones: s.regions.iter().map(|r| r.name.clone()).collect(),
            servers,
            zone_servers,
            monitors,
            local_rtt: s.network.local_rtt_ms / 1e3,
            remote_rtt: s.network.remote_rtt_ms / 1e3,
            loss: s.network.loss,
            guard,
            effects,
        })
    }

    /// When server `s` died, if it is dead at `t`.
    pub fn dead_since(&self, s: usize, t: i64) -> Option<i64> {
        self.effects[s]
            .iter()
            .find(|e| e.effect == Effect::Dead && e.at(t as f64))
            .map(|e| e.start)
    }

    /// Whether server `s` has a dead event starting within the report.
    pub fn dies(&self, s: usize) -> bool {
        self.effects[s].iter().any(|e| e.effect == Effect::Dead)
    }
}

/// An event's times on the virtual clock: after the warm-up, `end` capped
/// at the end of the run (the effect is filled in by the caller).
fn timed(
    f: &str,
    start: &str,
    end: &Option<String>,
    from: i64,
    run_end: i64,
) -> Result<Timed, ScenarioError> {
    let s = from + parse_duration(&format!("{f}.start"), start)?;
    let e = match end {
        Some(e) => (from + parse_duration(&format!("{f}.end"), e)?).min(run_end),
        None => run_end,
    };
    Ok(Timed {
        start: s,
        end: e,
        effect: Effect::Dead,
    })
}
