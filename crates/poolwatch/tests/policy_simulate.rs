//! `poolwatch policy simulate` through the real binary: a shipped scenario
//! in every format, presets and a policy file, and bad input refused with
//! status 2 naming the flag or field, nothing written; and the
//! simulation's copy of the service's schedule kept equal to it.

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_poolwatch"))
        .args(["policy", "simulate"])
        .args(args)
        .output()
        .expect("poolwatch runs")
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn refused(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    assert!(out.stdout.is_empty(), "{args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_rate_limiter_under_a_preset_and_a_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    // Best of the first two, which must both answer: the second is a RATE.
    let strict = dir.path().join("strict.toml");
    std::fs::write(
        &strict,
        "name = \"first-2-all\"\nsamples = 2\ncombine = \"all-must-answer\"\n",
    )
    .unwrap();
    let json = dir.path().join("out.json");
    let s = scenario("rate-limiter.toml");
    let out = run(&[
        &s,
        "--policy",
        "current",
        "--policy",
        strict.to_str().unwrap(),
        "--format",
        "json",
        "--output",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["scenario"], "rate-limiter");
    let p = r["policies"].as_array().unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(p[0]["policy"], "current");
    assert_eq!(p[0]["healthy_servers_left"], 0);
    assert_eq!(p[1]["policy"], "first-2-all");
    assert_eq!(p[1]["healthy_servers_left"], 10);

    // CSV to stdout: a header and a row per policy, same numbers.
    let out = run(&[&s, "--policy", "current", "--format", "csv"]);
    assert!(out.status.success(), "{out:?}");
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("scenario,policy,checks,healthy_left,"));
    let checks = p[0]["checks"].to_string();
    assert!(
        lines[1].starts_with(&format!("rate-limiter,current,{checks},0,")),
        "{csv}"
    );
}

#[test]
fn help_teaches_the_scenario_format() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for want in [
        "[[region]]",
        "[[event]]",
        "blind-link",
        "region-cut",
        "rate-limit",
        "all-must-answer",
        "examples/scenarios/los-angeles-blind-link.toml",
    ] {
        assert!(help.contains(want), "{want}");
    }
}

#[test]
fn bad_input_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario("dead-server.toml");
    let out = dir.path().join("never.txt");
    let o = out.to_str().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nduration = \"1d\"\n[[region]]\nname = \"eu\"\nservers = 3\n\
         monitors = [\"a\"]\n[[event]]\nkind = \"dead\"\nservers = { region = \"eu\", count = 9 }\n\
         start = \"1h\"\n",
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![&s, "--policy", "best-of-9", "--output", o], "--policy"),
        (
            vec![&s, "--policy", "current", "--policy", "current"],
            "given twice",
        ),
        (
            vec![&s, "--zone-guard", "150%", "--output", o],
            "--zone-guard",
        ),
        (
            vec![bad.to_str().unwrap(), "--output", o],
            "event[0].servers",
        ),
        (vec!["/no/such/scenario.toml"], "cannot read"),
        (vec![&s, "--format", "xml"], "--format"),
        (vec![&s, "--threads", "0"], "--threads"),
    ];
    for (args, want) in cases {
        let err = refused(&args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(!out.exists(), "nothing written on a refusal");
}

/// The simulation keeps its own copy of how `serve` schedules checks, the
/// selector and the zone guard (`sim` depends on neither `store` nor
/// `server`); this fails when the service's defaults move without it.
#[test]
fn the_simulation_schedules_as_the_service_does() {
    use sim::pool::{checks, engine};
    let work = store::WorkIntervals::default();
    assert_eq!(
        (engine::ACTIVE_S, engine::TESTING_S, engine::CANDIDATE_S),
        (work.active_s, work.testing_s, work.candidate_s)
    );
    let cfg = server::ServerConfig::default();
    assert_eq!(u32::from(checks::SAMPLES), cfg.samples);
    assert_eq!(
        (checks::SAMPLE_INTERVAL * 1000.0) as u64,
        cfg.sample_interval_ms
    );
    assert_eq!((checks::TIMEOUT * 1000.0) as u64, cfg.timeout_ms);
    let selector = server::selector_job::SelectorSettings::default();
    assert_eq!(engine::SELECTOR_S as u64, selector.interval.as_secs());
    assert_eq!(
        engine::CANDIDATE_ROTATION as u64,
        server::selector_job::CANDIDATE_ROTATION
    );
    assert_eq!(
        engine::GUARD_S as u64,
        server::zone_guard_job::GUARD_INTERVAL.as_secs()
    );
    assert_eq!(engine::GUARD_WINDOW_S, store::GUARD_WINDOW_S);
    assert_eq!(engine::SEEN_GOOD_WITHIN_S, store::SEEN_GOOD_WITHIN_S);
}
