//! One policy's run over a [`World`] on the virtual clock, second by
//! second: the checks due (the service's work intervals), then every
//! [`SELECTOR_S`] a selector pass over every server (`scoring::select_with`)
//! and every [`GUARD_S`] a zone-guard pass (`scoring::guard`) that settles
//! DNS membership, as `serve` schedules its jobs. Each check's samples come
//! from [`super::checks`]; what they score is the policy's business.

use super::checks::{self, Path};
use super::report::{DeadServer, PolicyReport};
use super::world::{T0, World};
use crate::rate_limit::Limiter;
use scoring::{
    GlobalStatus, Ledger, MonitorStatus, PairWindow, Policy, Sample, SelectorConfig,
    SelectorMonitor, SelectorServer, ZoneServer, guard, needs_candidates, select_with,
};

/// The service's work intervals per per-server status (`store::WorkIntervals`
/// default): how often a monitor checks a server it is active, testing or
/// candidate for. Paused pairs are not checked.
pub const ACTIVE_S: i64 = 9 * 60;
pub const TESTING_S: i64 = 45 * 60;
pub const CANDIDATE_S: i64 = 2 * 3600;
/// A selector pass every 10 minutes (`SelectorSettings` default).
pub const SELECTOR_S: i64 = 600;
/// A server's candidates are read at least every this many passes
/// (`selector_job::CANDIDATE_ROTATION`).
pub const CANDIDATE_ROTATION: usize = 12;
/// A zone-guard pass every minute (`zone_guard_job::GUARD_INTERVAL`).
pub const GUARD_S: i64 = 60;
/// The guard's window and "seen good" age (`store::guard`).
pub const GUARD_WINDOW_S: i64 = 24 * 3600;
pub const SEEN_GOOD_WITHIN_S: i64 = 3600;
/// Seconds on the timing wheel; longer than the longest work interval, so
/// an entry is always taken in the lap it was put in.
const WHEEL: i64 = 8192;

fn interval(status: MonitorStatus) -> Option<i64> {
    match status {
        MonitorStatus::Active => Some(ACTIVE_S),
        MonitorStatus::Testing => Some(TESTING_S),
        MonitorStatus::Candidate => Some(CANDIDATE_S),
        MonitorStatus::Paused => None,
    }
}

/// One (server, monitor) pair beside its score (in the [`Ledger`]): its
/// status and 24 h window, as `server_scores` holds them, and when it is
/// next due.
#[derive(Debug, Clone)]
struct Pair {
    status: MonitorStatus,
    window: PairWindow,
    last: i64,
    due: i64,
}

/// Clean checks behind every pair at the start: enough for a score of 19
/// (20 × (1 − 0.95⁶⁰)) even at the candidates' 2-hour interval.
const SETTLED_CHECKS: i64 = 60;

/// A dead server being watched until it leaves DNS.
#[derive(Debug, Clone)]
struct DeadWatch {
    since: i64,
    /// Checks by its active monitors since it died, and how many they were.
    checks: u32,
    monitors: u32,
    left: Option<i64>,
}

#[derive(Debug, Clone)]
struct Srv {
    score: f64,
    /// The time of a check whose aggregate is not in `score` yet.
    dirty: Option<i64>,
    in_dns: bool,
    held: bool,
    in_since: Option<i64>,
    left_at: Option<i64>,
    limiter: Option<Limiter>,
    /// Minutes out of DNS while healthy, in a row.
    out_streak: u64,
    ever_left: bool,
    dead: Vec<DeadWatch>,
}

/// A small mixer (SplitMix64's finaliser) for per-check seeds.
pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Run<'a> {
    w: &'a World,
    policy: &'a Policy,
    ledger: Ledger,
    cfg: SelectorConfig,
    m: usize,
    pairs: Vec<Pair>,
    /// Base round trip per pair, seconds.
    rtt: Vec<f64>,
    srv: Vec<Srv>,
    wheel: Vec<Vec<u32>>,
    samples: Vec<Sample>,
    mons: Vec<SelectorMonitor>,
    rep: PolicyReport,
}

/// Runs `policy` over `w` and reports what happened after the warm-up.
pub fn run(w: &World, policy: &Policy) -> PolicyReport {
    let mut r = Run::new(w, policy);
    let mut t = T0;
    while t < w.end {
        r.checks_at(t);
        if (t - T0) % SELECTOR_S == 0 {
            r.selector(t);
        }
        if (t - T0) % GUARD_S == 0 {
            r.guard(t);
        }
        t += 1;
    }
    r.finish()
}

impl<'a> Run<'a> {
    /// A settled pool at [`T0`]: per server the nearest monitors active
    /// and the next ones testing (the selector's targets), every pair with
    /// [`SETTLED_CHECKS`] clean checks (at least a day) at its interval
    /// behind it, scored by the ledger and in its window, and its next
    /// check at a random point of its interval.
    fn new(w: &'a World, policy: &'a Policy) -> Run<'a> {
        let cfg = SelectorConfig::default();
        let mut ledger = Ledger::new(policy.clone());
        let m = w.monitors.len();
        let mut pairs = Vec::with_capacity(w.servers.len() * m);
        let mut rtt = Vec::with_capacity(w.servers.len() * m);
        let mut wheel = vec![Vec::new(); WHEEL as usize];
        for (s, server) in w.servers.iter().enumerate() {
            let base = |i: usize| {
                let h = mix(w.seed ^ mix((s * m + i) as u64 + 1));
                let spread = 0.8 + 0.4 * (h >> 11) as f64 / (1u64 << 53) as f64;
                let local = w.monitors[i].region == server.region;
                (if local { w.local_rtt } else { w.remote_rtt }) * spread
            };
            let mut order: Vec<usize> = (0..m).collect();
            order.sort_by(|&a, &b| base(a).total_cmp(&base(b)));
            let mut status = vec![MonitorStatus::Candidate; m];
            for (k, &i) in order.iter().enumerate() {
                if k < cfg.target_active {
                    status[i] = MonitorStatus::Active;
                } else if k < cfg.target_active + cfg.base_testing {
                    status[i] = MonitorStatus::Testing;
                }
            }
            for (i, &st) in status.iter().enumerate() {
                let p = s * m + i;
                let r = base(i);
                let iv = interval(st).unwrap_or(CANDIDATE_S);
                let due = T0 + (mix(w.seed ^ (p as u64) << 20) % iv as u64) as i64;
                let last = due - iv;
                let clean = [Sample {
                    answered: true,
                    rtt_us: Some((r * 1e6) as u32),
                    offset: Some(0.0),
                    stratum: Some(2),
                    leap: Some(0),
                    ..Sample::default()
                }];
                let mut window = PairWindow::default();
                let n = SETTLED_CHECKS.max(86_400 / iv);
                for k in (0..n).rev() {
                    let ts = last - k * iv;
                    if let Some(c) = ledger.record_check(s, i as i64, st, ts, &clean) {
                        window.add(ts, c.step, c.rtt.map(|x| x * 1e3));
                    }
                }
                wheel[due.rem_euclid(WHEEL) as usize].push(p as u32);
                pairs.push(Pair {
                    status: st,
                    window,
                    last,
                    due,
                });
                rtt.push(r);
            }
        }
        let srv = w
            .servers
            .iter()
            .map(|_| Srv {
                score: scoring::MAX_SCORE,
                dirty: None,
                in_dns: true,
                held: false,
                // In the pool long before the run.
                in_since: Some(T0 - 30 * 86_400),
                left_at: None,
                limiter: None,
                out_streak: 0,
                ever_left: false,
                dead: Vec::new(),
            })
            .collect();
        let rep = PolicyReport {
            policy: policy.name.clone(),
            dead_servers: (0..w.servers.len()).filter(|&s| w.dies(s)).count(),
            in_dns_min: w.servers.len(),
            ..PolicyReport::default()
        };
        Run {
            w,
            policy,
            ledger,
            cfg,
            m,
            pairs,
            rtt,
            srv,
            wheel,
            samples: Vec::with_capacity(4),
            mons: Vec::with_capacity(m),
            rep,
        }
    }

    /// The watch of server `s`'s death at `since`, started on first sight
    /// with the number of monitors active for it then.
    fn watch(&mut self, s: usize, since: i64) -> &mut DeadWatch {
        let pairs = &self.pairs[s * self.m..(s + 1) * self.m];
        let v = &mut self.srv[s];
        if v.dead.last().is_none_or(|d| d.since != since) {
            let monitors = pairs
                .iter()
                .filter(|p| p.status == MonitorStatus::Active)
                .count() as u32;
            v.dead.push(DeadWatch {
                since,
                checks: 0,
                monitors,
                left: None,
            });
        }
        v.dead.last_mut().expect("just pushed")
    }

    fn reporting(&self, t: i64) -> bool {
        t >= self.w.report_from
    }

    fn checks_at(&mut self, t: i64) {
        let b = t.rem_euclid(WHEEL) as usize;
        let due = std::mem::take(&mut self.wheel[b]);
        for &p in &due {
            let p = p as usize;
            if self.pairs[p].due == t {
                self.check(p, t);
            }
        }
        let mut due = due;
        due.clear();
        // Checks reschedule into other slots (intervals < WHEEL), so this
        // one is still empty: give it its buffer back.
        self.wheel[b] = due;
    }

    fn schedule(&mut self, p: usize, t: i64) {
        let pair = &mut self.pairs[p];
        let Some(iv) = interval(pair.status) else {
            pair.due = i64::MAX;
            return;
        };
        let due = (pair.last + iv).max(t + 1);
        if due != pair.due {
            pair.due = due;
            self.wheel[due.rem_euclid(WHEEL) as usize].push(p as u32);
        }
    }

    fn check(&mut self, p: usize, t: i64) {
        let (s, mon) = (p / self.m, p % self.m);
        let w = self.w;
        checks::generate(
            &Path {
                seed: w.seed,
                pair: p as u64,
                monitor: mon,
                monitor_region: w.monitors[mon].region,
                monitor_ip: w.monitors[mon].ip,
                rtt: self.rtt[p],
                loss: w.loss,
                effects: &w.effects[s],
            },
            &mut self.srv[s].limiter,
            t,
            &mut self.samples,
        );
        let pair = &mut self.pairs[p];
        if let Some(c) = self
            .ledger
            .record_check(s, mon as i64, pair.status, t, &self.samples)
        {
            let rtt = c.rtt.filter(|r| r.is_finite());
            pair.window.add(t, c.step, rtt.map(|r| r * 1e3));
        }
        pair.last = t;
        if self.reporting(t) {
            self.rep.checks += 1;
        }
        if self.pairs[p].status == MonitorStatus::Active
            && let Some(since) = w.dead_since(s, t)
        {
            let d = self.watch(s, since);
            if d.left.is_none() {
                d.checks += 1;
            }
        }
        self.srv[s].dirty = Some(t);
        self.schedule(p, t);
    }

    /// The server's score after its latest result, as the service stores
    /// it for each touched server of a submission
    /// (`scoring::submission::decide`): the aggregate over every monitor's
    /// latest score at that time, kept until the next result (membership
    /// reads this, not a fresh aggregate). Computed when read — by the
    /// guard, or before the selector changes a status — from the ledger as
    /// the latest result left it: the same value, once per server and
    /// minute instead of once per check.
    fn aggregate(&mut self, s: usize) {
        if let Some(t) = self.srv[s].dirty.take()
            && let Some(a) = self.ledger.score(s, t)
        {
            self.srv[s].score = a;
        }
    }

    /// A selector pass: every server's monitors through `select_with`,
    /// the changes applied and their checks rescheduled. As the service's
    /// pass reads them, a server's candidates are in only when
    /// `needs_candidates` says so or it is the server's turn in the
    /// rotation (every [`CANDIDATE_ROTATION`] passes).
    fn selector(&mut self, t: i64) {
        let slot = ((t - T0) / SELECTOR_S) as usize % CANDIDATE_ROTATION;
        for s in 0..self.w.servers.len() {
            let pairs = &self.pairs[s * self.m..(s + 1) * self.m];
            let counted = pairs
                .iter()
                .filter(|p| p.status != MonitorStatus::Candidate)
                .map(|p| (p.status, p.window.stats(t)));
            let candidates = s % CANDIDATE_ROTATION == slot || needs_candidates(&self.cfg, counted);
            self.mons.clear();
            for i in 0..self.m {
                let p = &self.pairs[s * self.m + i];
                if p.status == MonitorStatus::Candidate && !candidates {
                    continue;
                }
                self.mons.push(SelectorMonitor {
                    monitor_id: i as i64,
                    // One account per monitor: the per-account limits
                    // never bind in a synthetic pool.
                    account_id: Some(i as i64 + 1),
                    ip: self.w.monitors[i].ip,
                    global_status: GlobalStatus::Active,
                    status: p.status,
                    stats: p.window.stats(t),
                });
            }
            let server = SelectorServer {
                ip: self.w.servers[s].ip,
                account_id: None,
            };
            let changes = select_with(&self.cfg, &server, &self.mons, t);
            if changes.is_empty() {
                continue;
            }
            self.aggregate(s);
            if self.reporting(t) {
                self.rep.selector_changes += changes.len() as u64;
            }
            for c in changes {
                let p = s * self.m + c.monitor_id as usize;
                self.pairs[p].status = c.to;
                self.ledger.set_status(s, c.monitor_id, c.to);
                self.schedule(p, t);
            }
        }
    }

    /// A zone-guard pass, as `Store::run_zone_guard` does it over
    /// `server_dns`: per zone the servers in DNS now or within the window,
    /// `guard` decides which to hold, and membership follows; then the
    /// minute is counted for the report.
    fn guard(&mut self, t: i64) {
        let w = self.w;
        let t0 = t - GUARD_WINDOW_S;
        let thr = self.policy.in_dns_threshold;
        for s in 0..w.servers.len() {
            self.aggregate(s);
        }
        let by_score: Vec<bool> = self
            .srv
            .iter()
            .map(|v| self.policy.in_dns(v.score, 1, None, t))
            .collect();
        let mut held = vec![false; w.servers.len()];
        for (z, ids) in w.zone_servers.iter().enumerate() {
            let window_lost = |s: usize| {
                let v = &self.srv[s];
                !by_score[s] && (v.in_dns || v.left_at.is_some_and(|l| l > t0))
            };
            // No server lost in the window: `guard` holds nothing.
            if !ids.iter().any(|&s| window_lost(s)) {
                continue;
            }
            let mut baseline = 0;
            let mut inputs = Vec::new();
            for &s in ids {
                let v = &self.srv[s];
                let in_at_t0 = if v.in_dns {
                    v.in_since.is_none_or(|x| x <= t0)
                } else {
                    v.left_at.is_some_and(|l| l > t0) && v.in_since.is_none_or(|x| x <= t0)
                };
                baseline += usize::from(in_at_t0);
                let left = v.left_at.filter(|&l| l > t0);
                if !v.in_dns && left.is_none() {
                    continue;
                }
                // What the monitors see only matters for a server leaving
                // (`guard` holds from the lost ones); a zone has thousands
                // in DNS by score, so skip them.
                let (mut last_good, mut seeing) = (None, 0);
                for p in self.ledger.monitors(s).iter().filter(|_| !by_score[s]) {
                    if p.status == MonitorStatus::Candidate || p.score < thr {
                        continue;
                    }
                    last_good = last_good.max(Some(p.ts));
                    if p.status != MonitorStatus::Paused && p.ts >= t - SEEN_GOOD_WITHIN_S {
                        seeing += 1;
                    }
                }
                inputs.push(ZoneServer {
                    server_id: s as i64,
                    in_dns_by_score: by_score[s],
                    last_good_ts: last_good,
                    monitors_seeing_good_now: seeing,
                    dropped_at: if v.in_dns { None } else { left },
                });
            }
            let d = guard(&w.zones[z], &inputs, baseline, w.guard, t);
            for id in d.held {
                held[id as usize] = true;
            }
        }
        let reporting = self.reporting(t) && t < w.end;
        let mut in_dns_now = 0;
        for s in 0..w.servers.len() {
            let h = !by_score[s] && held[s];
            let now_in = by_score[s] || h;
            let dead_since = w.dead_since(s, t);
            let v = &mut self.srv[s];
            if now_in && !v.in_dns {
                v.in_since = Some(t);
            }
            let left_now = !now_in && v.in_dns;
            if left_now {
                v.left_at = Some(t);
            }
            if reporting && h && !v.held {
                self.rep.guard_holds += 1;
            }
            v.in_dns = now_in;
            v.held = h;
            if !now_in && let Some(since) = dead_since {
                let d = self.watch(s, since);
                if d.left.is_none() {
                    d.left = Some(t);
                }
            }
            let v = &mut self.srv[s];
            if !reporting {
                continue;
            }
            in_dns_now += usize::from(now_in);
            if h {
                self.rep.guard_held_server_minutes += 1;
            }
            if dead_since.is_some() {
                v.out_streak = 0;
                continue;
            }
            if left_now {
                self.rep.healthy_left += 1;
                v.ever_left = true;
            }
            if now_in {
                v.out_streak = 0;
            } else {
                v.out_streak += 1;
                self.rep.healthy_out_server_minutes += 1;
                self.rep.healthy_longest_out_minutes =
                    self.rep.healthy_longest_out_minutes.max(v.out_streak);
            }
        }
        if reporting {
            self.rep.in_dns_min = self.rep.in_dns_min.min(in_dns_now);
            let held_now = held.iter().filter(|h| **h).count();
            self.rep.guard_max_held = self.rep.guard_max_held.max(held_now);
        }
    }

    fn finish(mut self) -> PolicyReport {
        self.rep.healthy_servers_left = self.srv.iter().filter(|v| v.ever_left).count();
        for (s, v) in self.srv.iter().enumerate() {
            for d in &v.dead {
                self.rep.dead.push(DeadServer {
                    server: s,
                    zone: self.w.zones[self.w.servers[s].region].clone(),
                    died_after_minutes: (d.since - self.w.report_from) as f64 / 60.0,
                    left_after_minutes: d.left.map(|l| (l - d.since) as f64 / 60.0),
                    left_after_checks: d
                        .left
                        .map(|_| f64::from(d.checks) / f64::from(d.monitors.max(1))),
                });
            }
        }
        self.rep.summarise();
        self.rep
    }
}
