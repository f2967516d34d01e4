//! `poolwatch policy replay`, run as the real binary on a SQLite store
//! filled with generated samples: a server that answers only the first of
//! four queries (RATE for the rest) at every monitor stays in DNS under
//! `current` (best of 4) and leaves under all-must-answer, a clean server
//! stays under both; the CSV and JSON reports parse back; `--save` keeps
//! the report; bad flags and files exit 2 naming what is wrong.

use server::policy_replay::{Report, render::CSV_HEADER};
use std::path::Path;
use std::process::{Command, Output};
use store::testing::StoreTesting as _;
use store::{GlobalStatus, MonitorStatus, NewMonitor, NewServer, SampleRow, Store};

const DAY: i64 = 86_400;
const LIMITED: &str = "192.0.2.1";
const CLEAN: &str = "192.0.2.2";

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_poolwatch"))
        .args(["policy", "replay", "--data-dir"])
        .arg(dir)
        .args(args)
        .env_remove("POOLWATCH_DATABASE_URL")
        .env_remove("POOLWATCH_CONFIG")
        .env_remove("POOLWATCH_GEOIP")
        .output()
        .expect("run poolwatch")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn refused(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    err
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sample(position: u8, rate: bool) -> SampleRow {
    SampleRow {
        position,
        send_ms: u16::from(position) * 2000,
        answered: true,
        rtt_us: Some(15_000),
        offset: (!rate).then_some(0.002),
        stratum: Some(if rate { 0 } else { 2 }),
        leap: Some(if rate { 3 } else { 0 }),
        error: rate.then(|| "RATE".to_string()),
    }
}

/// Two days of checks every 10 minutes by 3 active monitors, up to
/// midnight UTC today: the window is (today − 2 d, today).
fn fill(dir: &Path) -> (String, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = now - now.rem_euclid(DAY);
    let from = today - 2 * DAY;
    rt().block_on(async {
        let s = Store::open(None, dir).await.unwrap();
        s.seed_zones(&server::admin::zone_seeds()).await.unwrap();
        let mut monitors = Vec::new();
        for (i, name) in ["m1", "m2", "m3"].iter().enumerate() {
            let m = s
                .add_monitor(
                    NewMonitor {
                        name: name.to_string(),
                        location: "Lab".into(),
                        ip: format!("203.0.113.{}", i + 5).parse().unwrap(),
                        account_id: None,
                        status: GlobalStatus::Active,
                        key_hash: format!("{i:0>64}"),
                    },
                    from,
                )
                .await
                .unwrap();
            monitors.push(m.id);
        }
        let limited = [
            sample(0, false),
            sample(1, true),
            sample(2, true),
            sample(3, true),
        ];
        let clean = [0, 1, 2, 3].map(|p| sample(p, false));
        for (ip, zone, samples) in [(LIMITED, "de", &limited), (CLEAN, "nl", &clean)] {
            let id = s
                .add_server(
                    NewServer {
                        ip: ip.parse().unwrap(),
                        netspeed: 1000,
                        account_id: None,
                        zones: vec![zone.into()],
                    },
                    from,
                )
                .await
                .unwrap()
                .id;
            let data = store::encode_samples(samples).unwrap();
            for (k, m) in monitors.iter().enumerate() {
                s.set_server_score_status(id, *m, MonitorStatus::Active)
                    .await
                    .unwrap();
                let rows: Vec<(i64, i64, Vec<u8>)> = (0..2 * DAY / 600)
                    .map(|j| (id, from + j * 600 + k as i64 * 60, data.clone()))
                    .collect();
                s.insert_samples(*m, &rows).await.unwrap();
            }
        }
        s.close().await;
    });
    (
        server::admin::format_date(from),
        server::admin::format_date(today),
    )
}

#[test]
fn best_of_four_keeps_a_rate_limited_server_all_must_answer_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = fill(dir.path());
    let window = ["--from", &from, "--to", &to];
    let args = |more: &[&'static str]| -> Vec<String> {
        window
            .iter()
            .map(|s| s.to_string())
            .chain(more.iter().map(|s| s.to_string()))
            .collect()
    };

    let json_args = args(&["--policy", "all-must-answer", "--format", "json"]);
    let report: Report = serde_json::from_str(&ok(dir.path(), &strs(&json_args))).unwrap();
    assert_eq!(report.servers, 2);
    assert_eq!(report.checks, 2 * 3 * 2 * DAY as u64 / 600);
    let names: Vec<&str> = report
        .policies
        .iter()
        .map(|p| p.policy.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["current", "all-must-answer"],
        "current is the baseline"
    );
    let (current, all) = (&report.policies[0], &report.policies[1]);
    let marks = report.marks.len();
    assert_eq!(marks, 2 * 24 - 12 + 1);
    // Both in DNS at every mark under best-of-4; only the clean one under
    // all-must-answer.
    assert_eq!(current.in_dns, vec![2; marks]);
    assert_eq!(all.in_dns, vec![1; marks]);
    assert_eq!((all.changed, all.left, all.joined), (1, 1, 0));
    let s = &all.servers[0];
    assert_eq!(s.ip, LIMITED);
    assert_eq!(s.zones, ["de"]);
    assert_eq!((s.marks_in_baseline, s.marks_in), (marks as u32, 0));
    assert!(
        s.why.contains("100 % of checks lost samples 2–4")
            && s.why.contains("RATE at 3 of 3 monitors"),
        "{}",
        s.why
    );
    let zone = |p: &server::policy_replay::PolicyReport, z: &str| {
        p.zones.iter().find(|x| x.zone == z).unwrap().clone()
    };
    assert_eq!(zone(all, "de").mean_in_dns, 0.0);
    assert_eq!(zone(all, "de").left, 1);
    assert_eq!(zone(all, "nl").mean_in_dns, 1.0);
    assert_eq!(zone(current, "de").mean_in_dns, 1.0);

    // CSV: the same report, parsed back.
    let csv_args = args(&[
        "--policy",
        "current",
        "--policy",
        "all-must-answer",
        "--format",
        "csv",
    ]);
    let text = ok(dir.path(), &strs(&csv_args));
    let mut r = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), CSV_HEADER);
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let of = |kind: &str, policy: &str| {
        rows.iter()
            .filter(|x| &x[0] == kind && &x[1] == policy)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(of("mark", "all-must-answer").len(), marks);
    assert!(of("mark", "current").iter().all(|x| &x[6] == "2"));
    assert!(of("mark", "all-must-answer").iter().all(|x| &x[6] == "1"));
    let changed = of("changed", "all-must-answer");
    assert_eq!(changed.len(), 1);
    assert_eq!((&changed[0][4], &changed[0][3]), (LIMITED, "de"));
    assert!(of("changed", "current").is_empty());

    // The table names both and the server; --output writes a file.
    let out = dir.path().join("r.txt");
    let table_args = args(&["--policy", "all-must-answer", "--output"]);
    let mut table_args = table_args;
    table_args.push(out.to_str().unwrap().to_string());
    assert_eq!(ok(dir.path(), &strs(&table_args)), "");
    let table = std::fs::read_to_string(&out).unwrap();
    assert!(
        table.contains("all-must-answer") && table.contains(LIMITED),
        "{table}"
    );
    assert!(
        !table.contains(CLEAN),
        "a server under both is not listed: {table}"
    );

    // --save keeps it for the admin page.
    let save_args = args(&["--policy", "first-1", "--format", "json", "--save"]);
    let saved: Report = serde_json::from_str(&ok(dir.path(), &strs(&save_args))).unwrap();
    let kept = rt().block_on(async {
        let s = Store::open(None, dir.path()).await.unwrap();
        let list = s.policy_reports().await.unwrap();
        let one = s.policy_report(list[0].id).await.unwrap().unwrap();
        s.close().await;
        (list, one)
    });
    assert_eq!(kept.0.len(), 1);
    assert_eq!(kept.0[0].policies, "current,first-1");
    assert_eq!(serde_json::from_str::<Report>(&kept.1.1).unwrap(), saved);
}

#[test]
fn bad_flags_and_files_exit_2_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).to_str().unwrap().to_string();
    std::fs::write(p("bad.toml"), "name = \"x\"\nsamples = 0\n").unwrap();
    std::fs::write(p("typo.toml"), "name = \"x\"\ncombine = \"most\"\n").unwrap();
    let today = server::admin::format_date(server::admin::today(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    ));
    let bad = p("bad.toml");
    let typo = p("typo.toml");
    // A valid window, so only --every is wrong.
    let week = server::admin::format_date(
        server::admin::today(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64,
        ) - 7 * 86_400,
    );
    for (args, want) in [
        (
            vec!["--from", &today, "--to", &today, "--policy", "current"],
            "--from: must be before --to",
        ),
        (
            vec![
                "--from",
                "2020-01-01",
                "--to",
                &today,
                "--policy",
                "current",
            ],
            "samples are kept 15 days",
        ),
        (
            vec!["--from", "last week", "--to", &today, "--policy", "current"],
            "--from \"last week\" is not a date",
        ),
        (
            vec![
                "--from",
                &today,
                "--to",
                "2999-01-01",
                "--policy",
                "current",
            ],
            "--to: is in the future",
        ),
        (
            vec!["--from", &today, "--to", &today, "--policy", "best-of-9"],
            "neither a preset",
        ),
        (
            vec!["--from", &today, "--to", &today, "--policy", &bad],
            "bad.toml: samples: must be 1 to 16",
        ),
        (
            vec!["--from", &today, "--to", &today, "--policy", &typo],
            "typo.toml: line 2: combine: unknown variant",
        ),
        (
            vec![
                "--from", &today, "--to", &today, "--policy", "current", "--format", "xml",
            ],
            "--format \"xml\"",
        ),
        (
            vec![
                "--from", &week, "--to", &today, "--policy", "current", "--every", "10s",
            ],
            "--every: must be from 1 minute to 1 day",
        ),
        (
            vec![
                "--from", &week, "--to", &today, "--policy", "current", "--every", "soon",
            ],
            "--every",
        ),
    ] {
        let err = refused(dir.path(), &args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // A missing --policy is clap's usage error, status 2 too.
    let err = refused(dir.path(), &["--from", &today, "--to", &today]);
    assert!(err.contains("--policy"), "{err}");
}
