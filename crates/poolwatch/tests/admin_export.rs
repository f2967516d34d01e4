//! `poolwatch admin export` (issue 16 item 5) with the real binary, on
//! SQLite and on PostgreSQL (`POOLWATCH_TEST_PG_URL`): a day's Parquet file
//! read back equals that day's CSV row by row and the rows put in; a
//! second run skips complete days; a crash's leftover is replaced; today
//! and bad flags are refused.

mod common;

use common::BIN;
use common::pg::TestPg;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use store::testing::StoreTesting as _;
use store::{ExportLogRow, Store};
use tempfile::TempDir;

/// 2023-11-14 00:00 UTC.
const DAY0: i64 = 1_699_920_000;
const DAY: i64 = 86_400;
const D0: &str = "2023-11-14";
const D1: &str = "2023-11-15";

const HEADER: [&str; 13] = [
    "id",
    "ts",
    "server_ip",
    "monitor_name",
    "step",
    "score",
    "offset",
    "rtt_us",
    "stratum",
    "leap",
    "refid",
    "error",
    "no_response",
];

/// A store the test fills and the binary reads: SQLite in `dir`, or a
/// PostgreSQL database of its own.
struct TestDb {
    store: Store,
    url: Option<String>,
    dir: TempDir,
    _pg: Option<TestPg>,
}

impl TestDb {
    async fn open(pg: Option<TestPg>) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = pg.as_ref().map(|p| p.url.clone());
        let store = Store::open(url.as_deref(), dir.path()).await.unwrap();
        TestDb {
            store,
            url,
            dir,
            _pg: pg,
        }
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// `poolwatch admin --data-dir DIR [--database-url URL] export ARGS…`.
fn export(db: &TestDb, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("admin").arg("--data-dir").arg(db.data_dir());
    if let Some(url) = &db.url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.arg("export")
        .args(args)
        .env_remove("POOLWATCH_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run poolwatch")
}

fn ok(o: &Output) -> (String, String) {
    let (out, err) = (common::stdout(o), common::stderr(o));
    assert!(o.status.success(), "exit {:?}\n{out}\n{err}", o.status);
    (out, err)
}

/// Two servers, two monitors, a day of rows with every kind of value
/// (aggregate, NULLs, an error with a comma and a quote), and rows on the
/// days around it that must stay out. The day's rows in file order.
async fn seed(db: &TestDb) -> Vec<ExportLogRow> {
    let s = &db.store;
    let global = store::ZoneSeed {
        name: "@".into(),
        parent: None,
        description: "Global".into(),
    };
    s.seed_zones(&[global]).await.unwrap();
    let server = async |ip: &str| {
        let new = store::NewServer {
            ip: ip.parse().unwrap(),
            netspeed: 1000,
            account_id: None,
            zones: vec!["@".into()],
        };
        s.add_server(new, DAY0).await.unwrap().id
    };
    let a = server("192.0.2.7").await;
    let b = server("2001:db8::7").await;
    let monitor = store::NewMonitor {
        name: "defra1".into(),
        location: "Frankfurt, DE".into(),
        ip: "203.0.113.5".parse().unwrap(),
        account_id: None,
        status: store::GlobalStatus::Active,
        key_hash: "f".repeat(64),
    };
    let m1 = s.add_monitor(monitor, DAY0).await.unwrap().id;
    let row = |id, server_id, ip: &str, monitor: Option<&str>, ts| ExportLogRow {
        id,
        server_id,
        ts,
        server_ip: ip.into(),
        monitor_name: monitor.map(str::to_string),
        step: 1.0,
        score: 19.123_456_789_012_345,
        offset: Some(-0.000_123_456_789),
        rtt_us: Some(23_456),
        stratum: Some(2),
        leap: Some(0),
        refid: Some("GPS".into()),
        error: None,
        no_response: false,
    };
    let mut timeout = row(5, a, "192.0.2.7", Some("defra1"), DAY0 + 7_200);
    timeout.step = -5.0;
    timeout.offset = None;
    timeout.rtt_us = None;
    timeout.stratum = None;
    timeout.leap = None;
    timeout.refid = None;
    timeout.error = Some("bad reply: \"odd\", short".into());
    timeout.no_response = true;
    let mut agg = row(6, a, "192.0.2.7", None, DAY0 + 7_200);
    agg.offset = None;
    agg.rtt_us = None;
    agg.stratum = None;
    agg.leap = None;
    agg.refid = None;
    let day = vec![
        (Some(m1), row(4, a, "192.0.2.7", Some("defra1"), DAY0)),
        (Some(m1), timeout),
        (None, agg),
        (
            Some(m1),
            row(7, b, "2001:db8::7", Some("defra1"), DAY0 + DAY - 1),
        ),
    ];
    let around = vec![
        (Some(m1), row(1, a, "192.0.2.7", Some("defra1"), DAY0 - 1)),
        (
            Some(m1),
            row(2, b, "2001:db8::7", Some("defra1"), DAY0 + 2 * DAY),
        ),
    ];
    s.insert_log_rows(&day).await.unwrap();
    s.insert_log_rows(&around).await.unwrap();
    day.into_iter().map(|(_, r)| r).collect()
}

/// A row as text, by the export's rules: NULL is empty, numbers as Rust
/// prints them, the aggregate's monitor name empty.
fn text(r: &ExportLogRow) -> Vec<String> {
    let o = |v: Option<String>| v.unwrap_or_default();
    vec![
        r.id.to_string(),
        r.ts.to_string(),
        r.server_ip.clone(),
        o(r.monitor_name.clone()),
        r.step.to_string(),
        r.score.to_string(),
        o(r.offset.map(|v| v.to_string())),
        o(r.rtt_us.map(|v| v.to_string())),
        o(r.stratum.map(|v| v.to_string())),
        o(r.leap.map(|v| v.to_string())),
        o(r.refid.clone()),
        o(r.error.clone()),
        r.no_response.to_string(),
    ]
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        r.headers().unwrap(),
        &csv::StringRecord::from(HEADER.to_vec())
    );
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// The Parquet file's rows as text, checking the schema's column names.
fn read_parquet(path: &Path) -> Vec<Vec<String>> {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let schema = reader.metadata().file_metadata().schema_descr();
    let names: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, HEADER);
    reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| {
            row.unwrap()
                .get_column_iter()
                .map(|(_, f)| match f {
                    Field::Null => String::new(),
                    Field::Bool(v) => v.to_string(),
                    Field::Long(v) => v.to_string(),
                    Field::Double(v) => v.to_string(),
                    Field::Str(v) => v.clone(),
                    other => panic!("unexpected field {other:?}"),
                })
                .collect()
        })
        .collect()
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn parquet_equals_csv(db: &TestDb) {
    let want: Vec<Vec<String>> = seed(db).await.iter().map(text).collect();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    for format in ["parquet", "csv"] {
        let (stdout, _) = ok(&export(
            db,
            &["--from", D0, "--to", D1, "--format", format, "--out", dir],
        ));
        assert!(
            stdout.contains(&format!("log_scores-{D0}.{format}  4 rows")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("log_scores-{D1}.{format}  0 rows")),
            "{stdout}"
        );
        assert!(stdout.contains("exported 2 day(s): 4 rows"), "{stdout}");
    }
    let p = out.path().join(format!("log_scores-{D0}.parquet"));
    let c = out.path().join(format!("log_scores-{D0}.csv"));
    let csv_rows = read_csv(&c);
    assert_eq!(read_parquet(&p), csv_rows);
    assert_eq!(csv_rows, want);
    // An empty day: the header alone, and a Parquet file with the schema
    // and no rows.
    let empty_csv = out.path().join(format!("log_scores-{D1}.csv"));
    assert_eq!(
        std::fs::read_to_string(&empty_csv).unwrap().lines().count(),
        1
    );
    assert_eq!(read_csv(&empty_csv), Vec::<Vec<String>>::new());
    let empty = out.path().join(format!("log_scores-{D1}.parquet"));
    assert_eq!(read_parquet(&empty), Vec::<Vec<String>>::new());
    // No temporary file is left.
    assert_eq!(
        file_names(out.path()),
        [
            format!("log_scores-{D0}.csv"),
            format!("log_scores-{D0}.parquet"),
            format!("log_scores-{D1}.csv"),
            format!("log_scores-{D1}.parquet"),
        ]
    );

    // Again: every day exists, nothing is written.
    let before = std::fs::read(&p).unwrap();
    std::fs::write(&c, "kept as it is\n").unwrap();
    let (stdout, stderr) = ok(&export(
        db,
        &["--from", D0, "--to", D1, "--format", "csv", "--out", dir],
    ));
    assert!(
        stderr.contains(&format!("{D0}: ")) && stderr.contains("exists; skipped"),
        "{stderr}"
    );
    assert!(stdout.contains("exported 0 day(s): 0 rows") && stdout.contains("skipped 2 existing"));
    assert_eq!(std::fs::read_to_string(&c).unwrap(), "kept as it is\n");
    assert_eq!(std::fs::read(&p).unwrap(), before);
}

async fn leftover_replaced_and_today_refused(db: &TestDb) {
    let want: Vec<Vec<String>> = seed(db).await.iter().map(text).collect();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    // A crash mid-day left its temporary file: it does not count as done.
    let part = out.path().join(format!(".log_scores-{D0}.csv.part"));
    std::fs::write(&part, "id,ts\n1,half a ro").unwrap();
    ok(&export(
        db,
        &["--from", D0, "--to", D0, "--format", "csv", "--out", dir],
    ));
    assert!(!part.exists());
    assert_eq!(
        read_csv(&out.path().join(format!("log_scores-{D0}.csv"))),
        want
    );

    // Today is not over: nothing is written, and a later run will do it.
    let today = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    let today = String::from_utf8(today.stdout).unwrap().trim().to_string();
    let (stdout, stderr) = ok(&export(
        db,
        &[
            "--from", &today, "--to", &today, "--format", "parquet", "--out", dir,
        ],
    ));
    assert!(
        stderr.contains(&format!("{today}: not over until")),
        "{stderr}"
    );
    assert!(stdout.contains("1 not over"), "{stdout}");
    // Days beyond today too: one line for all of them.
    let (_, stderr) = ok(&export(
        db,
        &[
            "--from",
            &today,
            "--to",
            "2999-12-31",
            "--format",
            "csv",
            "--out",
            dir,
        ],
    ));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("{today} to 2999-12-31: not over until")),
        "{stderr}"
    );
    assert_eq!(file_names(out.path()), [format!("log_scores-{D0}.csv")]);
}

macro_rules! both {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = crate::TestDb::open(None).await;
                super::$name(&db).await;
                db.store.close().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(pg) = crate::TestPg::create() else { return };
                let db = crate::TestDb::open(Some(pg)).await;
                super::$name(&db).await;
                db.store.close().await;
            }
        }
    )*};
}
both!(parquet_equals_csv, leftover_replaced_and_today_refused);

/// Usage errors exit 2, name the flag and write nothing: no file in
/// --out, no store in --data-dir.
#[test]
fn bad_flags_exit_2_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let under_file = blocker.join("sub");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["admin", "--data-dir", data.to_str().unwrap(), "export"])
            .args(args)
            .env_remove("POOLWATCH_DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec![
                "--from",
                "2023-13-01",
                "--to",
                D0,
                "--format",
                "csv",
                "--out",
                o,
            ],
            vec!["--from", "2023-13-01"],
        ),
        (
            vec![
                "--from",
                D0,
                "--to",
                "yesterday",
                "--format",
                "csv",
                "--out",
                o,
            ],
            vec!["--to", "yesterday"],
        ),
        (
            vec!["--from", D1, "--to", D0, "--format", "csv", "--out", o],
            vec!["--from", "after --to"],
        ),
        (
            vec![
                "--from",
                D0,
                "--to",
                D0,
                "--format",
                "csv",
                "--out",
                under_file.to_str().unwrap(),
            ],
            vec!["--out", "cannot write"],
        ),
        // No store in --data-dir: refused rather than made empty.
        (
            vec!["--from", D0, "--to", D0, "--format", "csv", "--out", o],
            vec!["--data-dir", "no database"],
        ),
    ];
    for (args, want) in cases {
        common::assert_usage_error(&run(&args), &want);
    }
    // Clap's own refusals: the flag is named, status 2.
    for (args, flag) in [
        (
            vec!["--from", D0, "--to", D0, "--format", "xml", "--out", o],
            "--format",
        ),
        (vec!["--from", D0, "--format", "csv"], "--to"),
    ] {
        let r = run(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        assert!(common::stderr(&r).contains(flag), "{}", common::stderr(&r));
    }
    assert!(file_names(&out).is_empty());
    assert!(!data.exists());
}

#[test]
fn help_teaches_with_an_example() {
    let o = common::poolwatch(&["admin", "export", "--help"]);
    let help = common::stdout(&o);
    assert!(o.status.success());
    for want in [
        "--from",
        "--to",
        "included",
        "UTC",
        "--out",
        "current directory",
        "parquet",
        "csv",
        "skipped",
        "Examples:",
    ] {
        assert!(help.contains(want), "help lacks {want:?}:\n{help}");
    }
}
