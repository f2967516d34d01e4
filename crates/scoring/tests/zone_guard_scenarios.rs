//! Scenario tests for the zone guard.

use scoring::zone_guard_rules::{ZoneGuardConfig, ZoneServer, allowed_loss, guard};

const NOW: i64 = 1_700_000_000;
const H: i64 = 3600;

fn up(id: i64) -> ZoneServer {
    ZoneServer {
        server_id: id,
        in_dns_by_score: true,
        last_good_ts: Some(NOW),
        monitors_seeing_good_now: 5,
        dropped_at: None,
    }
}

/// Score fell below 10 but `seen` monitors still get good answers; last
/// good `ago` seconds ago.
fn failing(id: i64, seen: usize, ago: i64) -> ZoneServer {
    ZoneServer {
        server_id: id,
        in_dns_by_score: false,
        last_good_ts: Some(NOW - ago),
        monitors_seeing_good_now: seen,
        dropped_at: None,
    }
}

/// Left DNS `ago` seconds ago.
fn gone(id: i64, ago: i64) -> ZoneServer {
    ZoneServer {
        server_id: id,
        in_dns_by_score: false,
        last_good_ts: Some(NOW - ago - H),
        monitors_seeing_good_now: 0,
        dropped_at: Some(NOW - ago),
    }
}

fn zone(n_up: i64, rest: Vec<ZoneServer>) -> Vec<ZoneServer> {
    let mut v: Vec<ZoneServer> = (1000..1000 + n_up).map(up).collect();
    v.extend(rest);
    v
}

#[test]
fn allowance() {
    // (share, baseline, allowed)
    for (share, base, want) in [
        (0.10, 100, 10),
        (0.10, 109, 10),
        (0.10, 9, 1),
        (0.10, 0, 1),
        (0.0, 100, 1),
        (0.25, 20, 5),
        (2.0, 20, 20),
        (f64::NAN, 20, 1),
    ] {
        assert_eq!(allowed_loss(share, base), want, "{share} × {base}");
    }
}

#[test]
fn scenarios() {
    let cfg = ZoneGuardConfig::default();
    // (name, servers, baseline, expected held ids, expected event dropped)
    type Case = (
        &'static str,
        Vec<ZoneServer>,
        usize,
        Vec<i64>,
        Option<usize>,
    );
    let cases: Vec<Case> = vec![
        ("all fine", zone(100, vec![]), 100, vec![], None),
        (
            "region-wide link failure seen by some monitors: excess held",
            // 30 of 100 fail at the monitors behind the broken link; 2 of
            // 5 monitors still see them fine.
            zone(70, (1..=30).map(|i| failing(i, 2, i * 60)).collect()),
            100,
            // 20 held (30 − 10 allowed), most recently good first.
            (1..=20).collect(),
            Some(10),
        ),
        (
            "real outage seen by all monitors: nothing held",
            zone(70, (1..=30).map(|i| failing(i, 0, 2 * H)).collect()),
            100,
            vec![],
            Some(30),
        ),
        (
            "slow trickle under the cap: nothing held",
            zone(
                92,
                (1..=7)
                    .map(|i| gone(i, i * 3 * H))
                    .chain([failing(8, 3, 60)])
                    .collect(),
            ),
            100,
            vec![],
            None,
        ),
        (
            "trickle used up the allowance: the next reachable one is held",
            zone(
                89,
                (1..=10)
                    .map(|i| gone(i, i * 2 * H))
                    .chain([failing(11, 1, 60)])
                    .collect(),
            ),
            100,
            vec![11],
            Some(10),
        ),
        (
            "mixed: dead servers count toward the loss, reachable ones held",
            zone(
                75,
                (1..=5)
                    .map(|i| failing(i, 0, 5 * H))
                    .chain((6..=25).map(|i| failing(i, 1, (30 - i) * 60)))
                    .collect(),
            ),
            100,
            // 25 lost, 10 allowed → 15 held from the 20 reachable (ids 6..=25),
            // most recently good first: 25, 24, … 11.
            (11..=25).rev().collect(),
            Some(10),
        ),
        (
            "small zone: one may always go",
            zone(4, vec![failing(1, 1, 60)]),
            5,
            vec![],
            None,
        ),
        (
            "small zone, two failing: one held",
            zone(3, vec![failing(1, 1, 120), failing(2, 1, 60)]),
            5,
            vec![2],
            Some(1),
        ),
        (
            "already gone servers are not put back",
            zone(80, (1..=20).map(|i| gone(i, H)).collect()),
            100,
            vec![],
            Some(20),
        ),
    ];
    for (name, servers, base, want, dropped) in cases {
        let d = guard("europe", &servers, base, cfg, NOW);
        assert_eq!(d.held, want, "{name}");
        assert_eq!(d.event.as_ref().map(|e| e.dropped), dropped, "{name}");
        if let Some(e) = &d.event {
            assert_eq!(e.held, d.held, "{name}");
            assert_eq!(e.zone, "europe");
            assert_eq!(e.ts, NOW);
            assert!(!e.reason.is_empty());
        }
        // Never hold a server that no monitor reaches.
        for id in &d.held {
            let s = servers.iter().find(|s| s.server_id == *id).unwrap();
            assert!(s.monitors_seeing_good_now > 0 && s.dropped_at.is_none());
        }
        // Off holds nothing.
        let off = guard("europe", &servers, base, ZoneGuardConfig::Off, NOW);
        assert!(off.held.is_empty() && off.event.is_none(), "{name}");
    }
}

#[test]
fn event_text() {
    let servers = zone(70, (1..=30).map(|i| failing(i, 2, 60)).collect());
    let d = guard("de", &servers, 100, ZoneGuardConfig::MaxShare(0.10), NOW);
    let e = d.event.unwrap();
    assert_eq!(
        (e.held.len(), e.dropped, e.allowed, e.baseline),
        (20, 10, 10, 100)
    );
    assert_eq!(
        e.reason,
        "30 of 100 servers would leave DNS within 24 h (allowed 10, 10 %); \
         held 20 still seen good by at least one monitor; 0 seen good by none"
    );
}
