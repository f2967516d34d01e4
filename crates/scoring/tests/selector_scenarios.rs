//! Scenario tests for the per-server monitor selector.

use scoring::GlobalStatus;
use scoring::MonitorStatus::{self, Active, Candidate, Paused, Testing};
use scoring::monitor_selection::{
    ACCOUNT_ACTIVE_LIMIT, ACCOUNT_TOTAL_LIMIT, Change, Constraint, MonitorStats, Reason,
    SelectorConfig, SelectorMonitor, SelectorServer, select, select_with,
};
use std::collections::BTreeMap;
use std::net::IpAddr;

const NOW: i64 = 1_700_000_000;

fn server() -> SelectorServer {
    SelectorServer {
        ip: "192.0.2.10".parse().unwrap(),
        account_id: Some(1),
    }
}

fn stats(count: u32, avg_step: f64, avg_rtt_ms: f64) -> MonitorStats {
    MonitorStats {
        count,
        avg_step,
        avg_rtt_ms,
    }
}

/// A globally active monitor in its own /16 and its own account.
fn mon(id: i64, status: MonitorStatus, s: MonitorStats) -> SelectorMonitor {
    SelectorMonitor {
        monitor_id: id,
        account_id: Some(1000 + id),
        ip: format!("10.{id}.0.1").parse().unwrap(),
        global_status: GlobalStatus::Active,
        status,
        stats: s,
    }
}

fn with_ip(mut m: SelectorMonitor, ip: &str) -> SelectorMonitor {
    m.ip = ip.parse().unwrap();
    m
}

fn with_account(mut m: SelectorMonitor, a: i64) -> SelectorMonitor {
    m.account_id = Some(a);
    m
}

fn with_global(mut m: SelectorMonitor, g: GlobalStatus) -> SelectorMonitor {
    m.global_status = g;
    m
}

fn good() -> MonitorStats {
    stats(100, 1.0, 20.0)
}

fn bad() -> MonitorStats {
    stats(100, -1.2, 20.0)
}

fn apply(monitors: &mut [SelectorMonitor], changes: &[Change]) {
    for c in changes {
        let m = monitors
            .iter_mut()
            .find(|m| m.monitor_id == c.monitor_id)
            .expect("change for a known monitor");
        assert_eq!(
            m.status, c.from,
            "change {c:?} starts from the current status"
        );
        m.status = c.to;
    }
}

fn counts(monitors: &[SelectorMonitor]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for m in monitors {
        *out.entry(m.status.as_str()).or_insert(0) += 1;
    }
    out
}

fn count(monitors: &[SelectorMonitor], st: MonitorStatus) -> usize {
    monitors.iter().filter(|m| m.status == st).count()
}

fn status_of(monitors: &[SelectorMonitor], id: i64) -> MonitorStatus {
    monitors.iter().find(|m| m.monitor_id == id).unwrap().status
}

fn change_for(changes: &[Change], id: i64) -> Option<&Change> {
    changes.iter().find(|c| c.monitor_id == id)
}

/// Changes per group in one run: (active removals, testing removals,
/// promotions excluding emergency/bootstrap).
fn groups(changes: &[Change]) -> (usize, usize, usize) {
    let mut g = (0, 0, 0);
    for c in changes {
        if matches!(
            c.reason,
            Reason::MonitorStatus(_) | Reason::ConstraintResolved
        ) || matches!(
            c.reason,
            Reason::Constraint(Constraint::SameSubnet { .. } | Constraint::SameAccount)
        ) {
            continue;
        }
        match (c.from, c.to) {
            (Active, _) => g.0 += 1,
            (Testing, Candidate) => g.1 += 1,
            (_, Active | Testing)
                if !matches!(c.reason, Reason::Emergency { .. } | Reason::Bootstrap) =>
            {
                g.2 += 1
            }
            _ => {}
        }
    }
    g
}

fn prefix(ip: IpAddr, v4: u32, v6: u32) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a) & (u32::MAX << (32 - v4))),
        IpAddr::V6(a) => (1 << 127) | (u128::from(a) & (u128::MAX << (128 - v6))),
    }
}

/// The selector's steady-state invariants.
fn check_invariants(server: &SelectorServer, monitors: &[SelectorMonitor]) {
    let sel: Vec<&SelectorMonitor> = monitors
        .iter()
        .filter(|m| matches!(m.status, Active | Testing))
        .collect();
    let active = count(monitors, Active);
    assert!(active <= 7, "at most 7 active: {:?}", counts(monitors));
    assert!(
        count(monitors, Testing) <= 5 + 7 - active.min(7),
        "testing within target: {:?}",
        counts(monitors)
    );
    let mut per_net: BTreeMap<u128, usize> = BTreeMap::new();
    let mut per_acct: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    for m in &sel {
        assert_ne!(
            prefix(m.ip, 24, 48),
            prefix(server.ip, 24, 48),
            "monitor {} in the server's subnet",
            m.monitor_id
        );
        assert_ne!(m.account_id, server.account_id, "server's own account");
        if m.status == Active {
            assert_eq!(m.global_status, GlobalStatus::Active);
        }
        *per_net.entry(prefix(m.ip, 20, 44)).or_default() += 1;
        if let Some(a) = m.account_id {
            let e = per_acct.entry(a).or_default();
            e.1 += 1;
            if m.status == Active {
                e.0 += 1;
            }
        }
    }
    assert!(per_net.values().all(|&n| n <= 1), "network diversity");
    assert!(
        per_acct
            .values()
            .all(|&(a, t)| a <= ACCOUNT_ACTIVE_LIMIT && t <= ACCOUNT_TOTAL_LIMIT),
        "account limits"
    );
}

/// Apply runs until no changes; checks the per-run limits and that active
/// never drops to zero once reached. Returns the number of runs with changes.
fn converge(server: &SelectorServer, monitors: &mut [SelectorMonitor]) -> usize {
    for run in 0..50 {
        // Paused/deleted/pending monitors do not measure: they may leave.
        let had_active = monitors.iter().any(|m| {
            m.status == Active
                && matches!(
                    m.global_status,
                    GlobalStatus::Active | GlobalStatus::Testing
                )
        });
        let changes = select(server, monitors, NOW + run as i64 * 1200);
        if changes.is_empty() {
            return run;
        }
        let (ar, tr, pr) = groups(&changes);
        assert!(
            ar <= 4 && tr <= 4 && pr <= 4,
            "per-run limits: {changes:#?}"
        );
        if !had_active {
            assert!(ar == 0);
        } else if count(monitors, Active) > 0 {
            assert!(
                ar <= 3 && tr <= 3 && pr <= 3,
                "per-run limits: {changes:#?}"
            );
        }
        let mut ids: Vec<i64> = changes.iter().map(|c| c.monitor_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), changes.len(), "one change per monitor per run");
        apply(monitors, &changes);
        if had_active {
            assert!(count(monitors, Active) > 0, "never zero active");
        }
    }
    panic!("selector did not converge: {:?}", counts(monitors));
}

#[test]
fn bootstrap_from_zero() {
    let srv = server();
    // (name, monitors, expected ids promoted to testing)
    let cases: Vec<(&str, Vec<SelectorMonitor>, Vec<i64>)> = vec![
        (
            "no data at all: lowest ids",
            (1..=10)
                .map(|i| mon(i, Candidate, stats(0, 0.0, 0.0)))
                .collect(),
            vec![1, 2, 3, 4, 5],
        ),
        (
            "healthy first, then priority",
            (1..=10)
                .map(|i| {
                    let s = if i % 2 == 0 {
                        stats(3, 1.0, 100.0 - i as f64)
                    } else {
                        stats(3, -2.0, 5.0)
                    };
                    mon(i, Candidate, s)
                })
                .collect(),
            vec![10, 8, 6, 4, 2],
        ),
        (
            "paused/deleted/pending monitors are skipped",
            (1..=8)
                .map(|i| {
                    let g = match i {
                        1 => GlobalStatus::Paused,
                        2 => GlobalStatus::Deleted,
                        3 => GlobalStatus::Pending,
                        4 => GlobalStatus::Testing,
                        _ => GlobalStatus::Active,
                    };
                    with_global(mon(i, Candidate, stats(0, 0.0, 0.0)), g)
                })
                .collect(),
            vec![4, 5, 6, 7, 8],
        ),
        (
            "fewer candidates than five",
            (1..=3)
                .map(|i| mon(i, Candidate, stats(3, 1.0, 20.0)))
                .collect(),
            vec![1, 2, 3],
        ),
    ];
    for (name, monitors, expect) in cases {
        let changes = select(&srv, &monitors, NOW);
        let ids: Vec<i64> = changes.iter().map(|c| c.monitor_id).collect();
        assert_eq!(ids, expect, "{name}");
        for c in &changes {
            assert_eq!((c.from, c.to), (Candidate, Testing), "{name}");
            assert_eq!(c.reason, Reason::Bootstrap, "{name}");
            assert_eq!(c.reason.to_string(), "bootstrap");
        }
    }
}

#[test]
fn bootstrap_then_converge_to_targets() {
    let srv = server();
    let mut monitors: Vec<SelectorMonitor> = (1..=20)
        .map(|i| mon(i, Candidate, stats(0, 0.0, 0.0)))
        .collect();
    let first = select(&srv, &monitors, NOW);
    apply(&mut monitors, &first);
    assert_eq!(count(&monitors, Testing), 5);
    // Without data nothing else moves.
    assert!(select(&srv, &monitors, NOW).is_empty());
    // Data arrives: emergency promotion of all five testing, then the rest.
    for m in &mut monitors {
        m.stats = stats(100, 1.0, 10.0 + m.monitor_id as f64);
    }
    let second = select(&srv, &monitors, NOW);
    let emergency = second
        .iter()
        .filter(|c| matches!(c.reason, Reason::Emergency { .. }))
        .count();
    assert_eq!(emergency, 5, "{second:#?}");
    apply(&mut monitors, &second);
    converge(&srv, &mut monitors);
    assert_eq!(count(&monitors, Active), 7);
    assert_eq!(count(&monitors, Testing), 5);
    assert_eq!(count(&monitors, Candidate), 8);
    check_invariants(&srv, &monitors);
}

#[test]
fn steady_state_no_changes() {
    let srv = server();
    let mut monitors: Vec<SelectorMonitor> = Vec::new();
    for i in 1..=7 {
        monitors.push(mon(i, Active, stats(100, 1.0, 20.0 + i as f64)));
    }
    for i in 8..=12 {
        monitors.push(mon(i, Testing, stats(100, 1.0, 22.0 + i as f64)));
    }
    for i in 13..=15 {
        monitors.push(mon(i, Candidate, stats(100, 1.0, 30.0 + i as f64)));
    }
    check_invariants(&srv, &monitors);
    assert_eq!(select(&srv, &monitors, NOW), vec![]);
    // A slightly better testing monitor (< 5 %) does not cause churn.
    monitors[7].stats = stats(100, 1.0, 26.0);
    assert_eq!(select(&srv, &monitors, NOW), vec![]);
}

#[test]
fn monitor_going_bad_is_replaced() {
    let srv = server();
    let mut monitors: Vec<SelectorMonitor> = Vec::new();
    for i in 1..=7 {
        monitors.push(mon(i, Active, good()));
    }
    for i in 8..=12 {
        monitors.push(mon(i, Testing, stats(100, 1.0, 20.0 + i as f64)));
    }
    // Not 5 % better than the worst testing one (priority 34): no swap.
    monitors.push(mon(13, Candidate, stats(100, 1.0, 33.0)));
    monitors[2].stats = bad(); // monitor 3 goes bad
    let changes = select(&srv, &monitors, NOW);
    let down = change_for(&changes, 3).expect("bad monitor demoted");
    assert_eq!((down.from, down.to), (Active, Testing));
    assert_eq!(
        down.reason,
        Reason::Unhealthy {
            avg_step: -1.2,
            replaced_by: 8
        }
    );
    assert_eq!(
        down.reason.to_string(),
        "demoted: unhealthy (avg step -1.2), replaced by monitor 8"
    );
    let up = change_for(&changes, 8).expect("best testing promoted");
    assert_eq!((up.from, up.to), (Testing, Active));
    assert_eq!(changes.len(), 2, "{changes:#?}");
    apply(&mut monitors, &changes);
    // Next run: the bad one leaves testing for the healthy candidate.
    let changes = select(&srv, &monitors, NOW + 1200);
    assert_eq!(change_for(&changes, 3).map(|c| c.to), Some(Candidate));
    assert_eq!(change_for(&changes, 13).map(|c| c.to), Some(Testing));
    apply(&mut monitors, &changes);
    assert!(select(&srv, &monitors, NOW + 2400).is_empty());
    check_invariants(&srv, &monitors);
}

#[test]
fn priority_improvement_needs_five_percent_and_five_points() {
    let srv = server();
    // (testing monitor's rtt, whether it replaces the active one at 100 ms)
    // Priority with avg_step 1 is the rtt itself.
    let cases = [(94.0, true), (95.0, true), (96.0, false), (99.0, false)];
    for (rtt, swaps) in cases {
        let mut monitors: Vec<SelectorMonitor> = (1..=6)
            .map(|i| mon(i, Active, stats(100, 1.0, 10.0)))
            .collect();
        monitors.push(mon(7, Active, stats(100, 1.0, 100.0)));
        monitors.push(mon(8, Testing, stats(100, 1.0, rtt)));
        for i in 9..=12 {
            monitors.push(mon(i, Testing, stats(100, 1.0, 200.0)));
        }
        let changes = select(&srv, &monitors, NOW);
        if swaps {
            assert_eq!(
                change_for(&changes, 7).map(|c| &c.reason),
                Some(&Reason::ReplacedBy { monitor_id: 8 }),
                "rtt {rtt}"
            );
            assert_eq!(
                change_for(&changes, 7).unwrap().reason.to_string(),
                "replaced by better monitor 8"
            );
        } else {
            assert!(changes.is_empty(), "rtt {rtt}: {changes:#?}");
        }
    }
    // An unhealthy replacer never replaces.
    let mut monitors: Vec<SelectorMonitor> = (1..=7)
        .map(|i| mon(i, Active, stats(100, -0.5, 10.0)))
        .collect();
    monitors.push(mon(8, Testing, stats(100, -0.1, 1.0)));
    assert!(
        select(&srv, &monitors, NOW)
            .iter()
            .all(|c| c.from != Active),
    );
}

#[test]
fn constraint_violations() {
    let srv = server();
    let v6 = SelectorServer {
        ip: "2001:db8:1:2::10".parse().unwrap(),
        account_id: None,
    };
    // Base: 7 healthy active monitors 1..=7, testing 8..=12, candidate 13.
    let base = || -> Vec<SelectorMonitor> {
        let mut v: Vec<SelectorMonitor> = (1..=7).map(|i| mon(i, Active, good())).collect();
        v.extend((8..=12).map(|i| mon(i, Testing, good())));
        v.push(mon(13, Candidate, good()));
        v
    };
    type Edit = fn(&mut Vec<SelectorMonitor>);
    // (name, server, edit, monitor id, expected to, expected reason text)
    let cases: Vec<(&str, &SelectorServer, Edit, i64, MonitorStatus, &str)> = vec![
        (
            "active in the server's /24",
            &srv,
            |v| v[0] = with_ip(v[0].clone(), "192.0.2.200"),
            1,
            Paused,
            "constraint: same /24 as the server",
        ),
        (
            "candidate of the server's account",
            &srv,
            |v| v[12] = with_account(v[12].clone(), 1),
            13,
            Paused,
            "constraint: same account as the server",
        ),
        (
            "third active of one account",
            &srv,
            |v| {
                for m in v.iter_mut().take(3) {
                    m.account_id = Some(77);
                }
                // make monitor 3 the worst of the three
                v[2].stats = stats(100, 1.0, 50.0);
            },
            3,
            Candidate,
            "constraint: account limit",
        ),
        (
            "fourth of one account across active and testing",
            &srv,
            |v| {
                for i in [0, 1, 7, 8] {
                    v[i] = with_account(v[i].clone(), 77);
                }
                v[8].stats = stats(100, 1.0, 50.0);
            },
            9,
            Candidate,
            "constraint: account limit",
        ),
        (
            "two in one /20",
            &srv,
            |v| {
                v[0] = with_ip(v[0].clone(), "198.51.96.1");
                v[1] = with_ip(v[1].clone(), "198.51.111.254");
                v[1].stats = stats(100, 1.0, 30.0);
            },
            2,
            Candidate,
            "constraint: network diversity /20",
        ),
    ];
    for (name, s, edit, id, to, text) in cases {
        let mut v = base();
        edit(&mut v);
        let changes = select(s, &v, NOW);
        let c = change_for(&changes, id).unwrap_or_else(|| panic!("{name}: {changes:#?}"));
        assert_eq!(c.to, to, "{name}");
        assert_eq!(c.reason.to_string(), text, "{name}");
        apply(&mut v, &changes);
        converge(s, &mut v);
        check_invariants(s, &v);
        assert_eq!(count(&v, Active), 7, "{name}: back to target");
    }

    // IPv6: /48 of the server and /44 between monitors.
    let mut v: Vec<SelectorMonitor> = (1..=9)
        .map(|i| {
            with_ip(
                mon(i, Active, good()),
                &format!("2001:db8:{:x}::1", 0x100 * i),
            )
        })
        .collect();
    v[0] = with_ip(v[0].clone(), "2001:db8:1:ffff::1"); // server's /48
    v[1] = with_ip(v[1].clone(), "2001:db8:3000::1");
    v[2] = with_ip(v[2].clone(), "2001:db8:300f::1"); // same /44 as monitor 2
    v[2].stats = stats(100, 1.0, 40.0);
    let changes = select(&v6, &v, NOW);
    assert_eq!(
        change_for(&changes, 1).map(|c| c.reason.to_string()),
        Some("constraint: same /48 as the server".into())
    );
    assert_eq!(change_for(&changes, 1).unwrap().to, Paused);
    assert_eq!(
        change_for(&changes, 3).map(|c| c.reason.to_string()),
        Some("constraint: network diversity /44".into())
    );
    apply(&mut v, &changes);
    converge(&v6, &mut v);
    check_invariants(&v6, &v);

    // A paused pair is unpaused once the constraint is gone.
    let mut v = base();
    v[12].status = Paused;
    let changes = select(&srv, &v, NOW);
    assert_eq!(
        change_for(&changes, 13).map(|c| (c.to, c.reason.clone())),
        Some((Candidate, Reason::ConstraintResolved))
    );
}

#[test]
fn global_status_rules() {
    let srv = server();
    let mut v: Vec<SelectorMonitor> = (1..=7).map(|i| mon(i, Active, good())).collect();
    v.extend((8..=12).map(|i| mon(i, Testing, good())));
    v[0] = with_global(v[0].clone(), GlobalStatus::Deleted);
    v[1] = with_global(v[1].clone(), GlobalStatus::Testing);
    v[8] = with_global(v[8].clone(), GlobalStatus::Paused);
    let changes = select(&srv, &v, NOW);
    let got = |id| change_for(&changes, id).map(|c| (c.to, c.reason.to_string()));
    assert_eq!(
        got(1),
        Some((Candidate, "blocked: monitor is deleted".into()))
    );
    assert_eq!(
        got(2),
        Some((Testing, "blocked: monitor is testing".into()))
    );
    assert_eq!(
        got(9),
        Some((Candidate, "blocked: monitor is paused".into()))
    );
    apply(&mut v, &changes);
    converge(&srv, &mut v);
    check_invariants(&srv, &v);
    assert_eq!(status_of(&v, 2), Testing, "globally testing never active");
    assert_eq!(status_of(&v, 1), Candidate);
}

#[test]
fn more_monitors_than_targets() {
    let srv = server();
    let mut v: Vec<SelectorMonitor> = (1..=40)
        .map(|i| mon(i, Candidate, stats(100, 1.0, 10.0 + (i * 7 % 40) as f64)))
        .collect();
    let runs = converge(&srv, &mut v);
    assert!(runs > 1);
    assert_eq!(count(&v, Active), 7);
    assert_eq!(count(&v, Testing), 5);
    assert_eq!(count(&v, Candidate), 28);
    check_invariants(&srv, &v);
    // Adding a much better monitor eventually gets it active.
    v.push(mon(41, Candidate, stats(100, 1.0, 1.0)));
    converge(&srv, &mut v);
    assert_eq!(status_of(&v, 41), Active);
    check_invariants(&srv, &v);
}

#[test]
fn never_zero_active() {
    let srv = server();
    // (name, monitors, id that must stay active)
    let cases: Vec<(&str, Vec<SelectorMonitor>, i64)> = vec![
        (
            "only active is in the server's /24",
            vec![
                with_ip(mon(1, Active, good()), "192.0.2.99"),
                mon(2, Testing, stats(3, 1.0, 10.0)),
            ],
            1,
        ),
        (
            "all actives became globally testing: keep the best",
            vec![
                with_global(mon(1, Active, stats(100, 1.0, 50.0)), GlobalStatus::Testing),
                with_global(mon(2, Active, stats(100, 1.0, 20.0)), GlobalStatus::Testing),
            ],
            2,
        ),
        (
            "all actives unhealthy (real outage): nobody to replace them",
            (1..=7)
                .map(|i| mon(i, Active, bad()))
                .chain((8..=12).map(|i| mon(i, Testing, bad())))
                .collect(),
            1,
        ),
    ];
    for (name, v, keep) in cases {
        let changes = select(&srv, &v, NOW);
        assert!(change_for(&changes, keep).is_none(), "{name}: {changes:#?}");
        let mut v = v;
        apply(&mut v, &changes);
        assert!(count(&v, Active) > 0, "{name}");
    }
}

#[test]
fn emergency_promotes_when_no_active() {
    let srv = server();
    let mut v: Vec<SelectorMonitor> = (1..=6).map(|i| mon(i, Testing, bad())).collect();
    v[0].stats = stats(10, 1.0, 5.0); // not enough data for active
    v[1] = with_global(v[1].clone(), GlobalStatus::Testing); // not globally active
    let changes = select(&srv, &v, NOW);
    let ids: Vec<i64> = changes
        .iter()
        .filter(|c| matches!(c.reason, Reason::Emergency { .. }))
        .map(|c| c.monitor_id)
        .collect();
    assert_eq!(ids, vec![3, 4, 5, 6]);
    assert!(changes[0].reason.to_string().starts_with("emergency"));
}

#[test]
fn limits_per_run_over_repeated_runs() {
    let srv = server();
    // All seven actives go bad at once; plenty of healthy replacements.
    let mut v: Vec<SelectorMonitor> = (1..=7).map(|i| mon(i, Active, bad())).collect();
    v.extend((8..=12).map(|i| mon(i, Testing, good())));
    v.extend((13..=30).map(|i| mon(i, Candidate, good())));
    let first = select(&srv, &v, NOW);
    let (ar, tr, pr) = groups(&first);
    assert!(ar <= 2 && tr <= 2 && pr <= 2, "{first:#?}");
    let runs = converge(&srv, &mut v);
    assert!(runs >= 4, "gradual: {runs} runs");
    check_invariants(&srv, &v);
    assert_eq!(count(&v, Active), 7);
    assert!(
        v.iter()
            .filter(|m| m.status == Active)
            .all(|m| m.stats.healthy())
    );
    assert!(
        v.iter()
            .filter(|m| m.status == Testing)
            .all(|m| m.stats.healthy())
    );
}

#[test]
fn deterministic_and_order_independent() {
    let srv = server();
    let mut v: Vec<SelectorMonitor> = (1..=20).map(|i| mon(i, Candidate, good())).collect();
    v[3].stats = bad();
    let a = select(&srv, &v, NOW);
    v.reverse();
    let b = select(&srv, &v, NOW);
    assert_eq!(a, b);
}

#[test]
fn small_fleet_with_smaller_targets_demotes_a_blind_monitor() {
    // Five agents; the e2e fleet uses 3 active + 2 testing.
    let cfg = SelectorConfig {
        target_active: 3,
        base_testing: 2,
        ..SelectorConfig::default()
    };
    let srv = server();
    let mut v: Vec<SelectorMonitor> = (1..=5)
        .map(|i| mon(i, Candidate, stats(0, 0.0, 0.0)))
        .collect();
    for run in 0..10 {
        let changes = select_with(&cfg, &srv, &v, NOW + run * 1200);
        apply(&mut v, &changes);
        for m in &mut v {
            m.stats = stats(100, 1.0, 10.0 + m.monitor_id as f64);
        }
    }
    assert_eq!((count(&v, Active), count(&v, Testing)), (3, 2));
    assert!(select_with(&cfg, &srv, &v, NOW).is_empty());
    // Monitor 1's link to the server breaks.
    v[0].stats = stats(100, -3.0, 10.0);
    let changes = select_with(&cfg, &srv, &v, NOW);
    assert_eq!(change_for(&changes, 1).map(|c| c.to), Some(Testing));
    assert_eq!(change_for(&changes, 4).map(|c| c.to), Some(Active));
    // With the pool's targets all five are active and nobody can replace
    // it: the median copes, the selector keeps it.
    let mut all: Vec<SelectorMonitor> = (1..=5).map(|i| mon(i, Active, good())).collect();
    all[0].stats = stats(100, -3.0, 10.0);
    assert!(select(&srv, &all, NOW).is_empty());
}

#[test]
fn reason_texts() {
    let cases = [
        (
            Reason::Promoted {
                count: 32,
                healthy: true,
                priority: 58,
            },
            "promoted: 32 data points, healthy, priority 58",
        ),
        (Reason::Bootstrap, "bootstrap"),
        (
            Reason::Constraint(Constraint::AccountLimit),
            "constraint: account limit",
        ),
        (
            Reason::ReplacedBy { monitor_id: 9 },
            "replaced by better monitor 9",
        ),
        (Reason::Excess, "demoted: more than the target"),
    ];
    for (r, text) in cases {
        assert_eq!(r.to_string(), text);
    }
    // priority = round(avg_rtt × (1 + 2 × (1 − avg_step)))
    assert_eq!(stats(40, 0.5, 29.0).priority(), 58);
    assert_eq!(stats(40, -1.0, 10.0).priority(), 50);
    assert_eq!(stats(0, 1.0, 10.0).priority(), i64::MAX);
    assert!(!stats(0, 1.0, 10.0).healthy());
    assert!(stats(1, 0.0, 10.0).healthy());
}

mod random_fleets {
    use super::*;
    use proptest::prelude::*;

    fn arb_monitor(id: i64) -> impl Strategy<Value = SelectorMonitor> {
        (
            0u8..6,  // /20 block (few, to force diversity conflicts)
            0u8..16, // host part
            prop_oneof![Just(None), (1i64..6).prop_map(Some)],
            prop_oneof![
                8 => Just(GlobalStatus::Active),
                2 => Just(GlobalStatus::Testing),
                1 => Just(GlobalStatus::Paused),
                1 => Just(GlobalStatus::Deleted),
                1 => Just(GlobalStatus::Pending),
            ],
            prop_oneof![Just(Candidate), Just(Testing), Just(Active), Just(Paused)],
            0u32..120,
            -3.0f64..1.0,
            1.0f64..300.0,
        )
            .prop_map(move |(net, host, acct, g, st, n, step, rtt)| {
                // net 0 is the server's own /24 (192.0.2.0/24).
                let ip = if net == 0 {
                    format!("192.0.2.{}", 100 + host)
                } else {
                    format!("198.{}.{}.1", 18 + net, host * 16)
                };
                SelectorMonitor {
                    monitor_id: id,
                    account_id: acct,
                    ip: ip.parse().unwrap(),
                    global_status: g,
                    status: st,
                    stats: stats(n, step, rtt),
                }
            })
    }

    fn arb_fleet() -> impl Strategy<Value = Vec<SelectorMonitor>> {
        (0usize..40).prop_flat_map(|n| (1..=n as i64).map(arb_monitor).collect::<Vec<_>>())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn converges_within_limits(mut fleet in arb_fleet()) {
            let srv = server();
            converge(&srv, &mut fleet);
            let active = count(&fleet, Active);
            prop_assert!(active <= 7);
            // Without the never-zero override every constraint holds.
            let sel: Vec<SelectorMonitor> = fleet
                .iter()
                .filter(|m| m.status != Active || active > 1 || m.global_status == GlobalStatus::Active)
                .cloned()
                .collect();
            if active > 1 {
                check_invariants(&srv, &sel);
            }
        }
    }
}
