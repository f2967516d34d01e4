//! The monitor selector in the service, on SQLite and PostgreSQL: a pass
//! over the store bootstraps, promotes on data and replaces a monitor that
//! went bad; every change is logged with its reason and shown by
//! `GET /api/v1/servers/{ip}/monitors` and on the server page. Submissions
//! report the pair transitions (traceroute triggers).

mod common;

use common::{Backend, now, today_at};
use scoring::SelectorConfig;
use server::admin::AddMonitor;
use server::selector_job::{CANDIDATE_BUDGET, run_pass};
use server::{Clock, ServerConfig};
use store::testing::StoreTesting as _;
use store::{GlobalStatus, MonitorRow, MonitorStatus, PairState, ResultIn, Store};

on_both_backends!(selector_pass_and_api, candidate_budget_spreads_over_passes);

fn cfg() -> SelectorConfig {
    SelectorConfig {
        target_active: 3,
        base_testing: 2,
        min_count_testing: 2,
        min_count_active: 4,
        ..SelectorConfig::default()
    }
}

/// Submits `n` results of monitor `m` for `server`, one per minute from
/// `*ts`; good ones with `rtt_ms`, or timeouts. Returns the transitions.
async fn results(
    s: &Store,
    m: &MonitorRow,
    server: i64,
    n: usize,
    good: Option<f64>,
    ts: &mut i64,
) -> Vec<store::PairTransition> {
    let mut transitions = Vec::new();
    for _ in 0..n {
        *ts += 60;
        let seq = s.create_batch(m.id, &[server], *ts).await.unwrap();
        let r = match good {
            Some(rtt_ms) => ResultIn {
                server_id: server,
                ts: *ts,
                offset: Some(0.001),
                rtt: Some(rtt_ms / 1e3),
                stratum: Some(2),
                leap: Some(0),
                ..ResultIn::default()
            },
            None => ResultIn {
                server_id: server,
                ts: *ts,
                error: Some("i/o timeout".into()),
                no_response: true,
                ..ResultIn::default()
            },
        };
        let out = s.submit_results(m.id, seq, &[r], *ts).await.unwrap();
        transitions.extend(out.transitions);
    }
    transitions
}

/// Active monitors named `names`, each in its own /20 (10.16.0.5,
/// 10.32.0.5, …), none in a server's /24.
async fn lab_monitors(s: &Store, names: &[&str]) -> Vec<MonitorRow> {
    let mut mons = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (m, _) = server::admin::add_monitor(
            s,
            AddMonitor {
                name: (*name).into(),
                ip: format!("10.{}.0.5", 16 * (i + 1)).parse().unwrap(),
                location: "Lab".into(),
                account: None,
                status: GlobalStatus::Active,
            },
            now(),
        )
        .await
        .unwrap();
        mons.push(m);
    }
    mons
}

/// The app without serve's selector loop: tests run the passes by hand.
fn passes_by_hand() -> ServerConfig {
    ServerConfig {
        selector: None,
        ..ServerConfig::default()
    }
}

fn status_of(v: &serde_json::Value, name: &str) -> String {
    v["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {v}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn selector_pass_and_api(backend: Backend) {
    // The API reads each pair's 24 h window (two UTC-day buckets) at the
    // app's "now": at noon, the results of the three hours before it are
    // all in today's bucket whatever hour the test runs at (from the
    // system clock, before 03:00 UTC they fell in yesterday's, weighted
    // down by the window's share of it: 15 of 16).
    let clock = Clock::fixed(today_at(12));
    let t = app_or_skip!(backend, passes_by_hand()).with_clock(clock.clone());
    let s = t.store().clone();
    t.seed_zones().await;
    let server = t.add_server("198.51.100.10").await;
    let mons = lab_monitors(&s, &["m1", "m2", "m3", "m4", "m5"]).await;
    let t0 = clock.now() - 3 * 3600;
    let mut ts = t0;

    // Nothing measured yet: five candidates, bootstrap makes them testing.
    let r = run_pass(&s, &cfg(), CANDIDATE_BUDGET, ts, 1).await.unwrap();
    assert_eq!((r.servers, r.pairs), (1, 5));
    assert_eq!(r.to_testing, 5, "{r:?}");
    let v = t
        .get(&format!("/api/v1/servers/{}/monitors", server.ip))
        .await
        .json();
    assert!(
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["reason"] == "bootstrap" && c["to"] == "testing"),
        "{v}"
    );

    // Four see the server well (faster to slower), m5 gets no answer.
    for (i, m) in mons.iter().enumerate().take(4) {
        let tr = results(&s, m, server.id, 16, Some(10.0 * (i + 1) as f64), &mut ts).await;
        // From 0 up past 10 on answered queries: nothing for a traceroute.
        assert!(tr.is_empty(), "{tr:?}");
    }
    let tr = results(&s, &mons[4], server.id, 16, None, &mut ts).await;
    assert!(
        tr.is_empty(),
        "a monitor that never saw the server well has nothing to report: {tr:?}"
    );

    // No active monitor yet: the best three become active at once.
    let r = run_pass(&s, &cfg(), CANDIDATE_BUDGET, ts, 1).await.unwrap();
    assert_eq!(r.to_active, 3, "{r:?}");
    let v = t
        .get(&format!("/api/v1/servers/{}/monitors", server.ip))
        .await
        .json();
    for (name, want) in [
        ("m1", "active"),
        ("m2", "active"),
        ("m3", "active"),
        ("m4", "testing"),
    ] {
        assert_eq!(status_of(&v, name), want, "{v}");
    }
    // m5 is unhealthy and over the testing target: not kept on trial.
    assert_ne!(status_of(&v, "m5"), "active", "{v}");
    let m1 = v["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "m1")
        .unwrap()
        .clone();
    assert_eq!(m1["stats_24h"]["count"], 16, "{m1}");
    assert_eq!(m1["stats_24h"]["healthy"], true);
    assert_eq!(m1["stats_24h"]["avg_rtt_ms"], 10.0);
    // A stable assignment: the next pass changes nothing.
    assert_eq!(
        run_pass(&s, &cfg(), CANDIDATE_BUDGET, ts, 1)
            .await
            .unwrap()
            .changes,
        0
    );

    // m2's link breaks: its results time out. One transition when its
    // score for the server falls below 10, with the error code.
    let tr = results(&s, &mons[1], server.id, 8, None, &mut ts).await;
    assert_eq!(tr.len(), 1, "{tr:?}");
    assert_eq!(tr[0].monitor_id, mons[1].id);
    assert_eq!(tr[0].from, PairState::Healthy);
    assert_eq!(
        tr[0].to,
        PairState::Unhealthy {
            error: "i/o timeout".into()
        }
    );
    let r = run_pass(&s, &cfg(), CANDIDATE_BUDGET, ts, 1).await.unwrap();
    assert_eq!((r.to_active, r.to_testing), (1, 1), "{r:?}");
    let v = t
        .get(&format!("/api/v1/servers/{}/monitors?limit=5", server.ip))
        .await
        .json();
    assert_eq!(status_of(&v, "m2"), "testing", "{v}");
    assert_eq!(status_of(&v, "m4"), "active", "{v}");
    let changes = v["changes"].as_array().unwrap();
    assert!(changes.len() <= 5);
    let m2_change = changes
        .iter()
        .find(|c| c["monitor"] == "m2")
        .expect("m2's demotion is logged");
    assert_eq!(m2_change["from"], "active");
    assert!(
        m2_change["reason"]
            .as_str()
            .unwrap()
            .starts_with("demoted: unhealthy"),
        "{m2_change}"
    );
    let rows = s.server_monitors(server.id).await.unwrap();
    let active = rows
        .iter()
        .filter(|r| r.status == MonitorStatus::Active)
        .count();
    assert_eq!(active, 3);

    // m2's link heals: answered queries clear nothing until its score is
    // back at 10; then one transition, from the error to healthy.
    let tr = results(&s, &mons[1], server.id, 40, Some(20.0), &mut ts).await;
    assert_eq!(tr.len(), 1, "{tr:?}");
    assert_eq!(
        tr[0].from,
        PairState::Unhealthy {
            error: "i/o timeout".into()
        }
    );
    assert_eq!(tr[0].to, PairState::Healthy);

    // The server page shows the monitors and the reasons.
    let page = t.get(&format!("/scores/{}", server.ip)).await.text();
    assert!(page.contains("<h2>Monitors</h2>"), "{page}");
    assert!(page.contains("demoted: unhealthy"), "{page}");

    // Bad requests change nothing and say why.
    let before = s.selector_log(server.id, 100).await.unwrap().len();
    for q in ["limit=0", "limit=501", "limit=x"] {
        let r = t
            .get(&format!("/api/v1/servers/{}/monitors?{q}", server.ip))
            .await;
        assert_eq!(r.status, axum::http::StatusCode::BAD_REQUEST, "{q}");
        assert!(r.error_detail().contains("limit"), "{}", r.text());
    }
    for path in [
        "/api/v1/servers/192.0.2.99/monitors",
        "/api/v1/servers/x/monitors",
    ] {
        assert_eq!(t.get(path).await.status, axum::http::StatusCode::NOT_FOUND);
    }
    assert_eq!(s.selector_log(server.id, 100).await.unwrap().len(), before);
}

/// Servers with at least one testing monitor.
async fn with_testing(s: &Store, servers: &[i64]) -> Vec<i64> {
    let mut out = Vec::new();
    for &id in servers {
        let input = s.selector_input(id).await.unwrap().unwrap();
        if input
            .pairs
            .iter()
            .any(|p| p.status == MonitorStatus::Testing)
        {
            out.push(id);
        }
    }
    out
}

/// More servers need candidates than the budget allows: each pass reads
/// the candidates of at most `budget` servers, the rest are counted as
/// deferred, and the following passes reach them.
async fn candidate_budget_spreads_over_passes(backend: Backend) {
    let t = app_or_skip!(backend, passes_by_hand());
    let s = t.store().clone();
    t.seed_zones().await;
    let mut servers = Vec::new();
    for i in 1..=5 {
        servers.push(t.add_server(&format!("198.51.100.{i}")).await.id);
    }
    lab_monitors(&s, &["m1", "m2", "m3"]).await;
    let ts = now();
    // Every server is new (only candidates): all five want theirs read.
    let r = run_pass(&s, &cfg(), 2, ts, 0).await.unwrap();
    assert_eq!((r.candidate_servers, r.deferred), (2, 3), "{r:?}");
    assert_eq!(r.to_testing, 6, "{r:?}");
    assert_eq!(with_testing(&s, &servers).await.len(), 2);
    // Servers without any counted monitor come first, so two more now and
    // the last one in the pass after.
    let r = run_pass(&s, &cfg(), 2, ts, 1).await.unwrap();
    assert_eq!(r.candidate_servers, 2, "{r:?}");
    assert!(r.deferred >= 1, "{r:?}");
    assert_eq!(with_testing(&s, &servers).await.len(), 4);
    let r = run_pass(&s, &cfg(), 2, ts, 2).await.unwrap();
    assert_eq!(r.candidate_servers, 2, "{r:?}");
    assert_eq!(with_testing(&s, &servers).await, servers);
    // The default budget reads them all in one pass.
    let r = run_pass(&s, &cfg(), CANDIDATE_BUDGET, ts, 3).await.unwrap();
    assert_eq!(r.deferred, 0, "{r:?}");
}
