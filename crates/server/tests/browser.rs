//! The server page in a real headless browser (Debian's `chromium`): the
//! service runs on a real listener with a seeded history of four monitors;
//! the test loads `/scores/{ip}`, reads the DOM after the page's script ran
//! and checks the chart (dots for every monitor, the aggregate line), the
//! legend and that the console stayed quiet, and saves a screenshot under
//! the test output directory (`target/tmp/browser/`, desktop and phone
//! width).

mod common;

use common::Backend;
use server::ServerConfig;
use server::admin::AddMonitor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use store::{MonitorGlobalStatus, ResultIn};
use tokio::net::TcpListener;

const CHROMIUM: &str = "/usr/bin/chromium";
const ROUNDS: i64 = 100;
/// (name, location, offset in seconds; None: no reply).
const MONITORS: [(&str, &str, Option<f64>); 4] = [
    ("zrh", "Zürich, CH", Some(0.0015)),
    ("fra", "Frankfurt, DE", Some(0.045)),
    ("sjc", "San José, US", Some(0.3)),
    ("syd", "Sydney, AU", None),
];

struct Output {
    stdout: String,
    stderr: String,
}

/// Runs chromium headless on `url` with `args`, killed after 60 s.
async fn chromium(profile: &Path, args: &[String], url: &str) -> Output {
    let mut cmd = tokio::process::Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url)
    .env("HOME", profile)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let child = cmd.spawn().expect("start chromium");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("chromium finished within 60 s")
        .expect("chromium output");
    let o = Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(out.status.success(), "chromium failed: {}", o.stderr);
    o
}

/// The value of `attr="…"` in the first tag at or after `at`.
fn attr<'a>(html: &'a str, at: usize, attr: &str) -> Option<&'a str> {
    let tag = &html[at..at + html[at..].find('>')?];
    let key = format!(" {attr}=\"");
    let start = tag.find(&key)? + key.len();
    Some(&tag[start..start + tag[start..].find('"')?])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_page_renders_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/test, which installs Debian's chromium \
         (or: apt-get install -y chromium)"
    );

    // A server and four monitors, one result each per minute for 100 min.
    let db = common::TestDb::open(Backend::Sqlite).await.expect("sqlite");
    let store = db.store.clone();
    store
        .seed_zones(&server::admin::zone_seeds())
        .await
        .unwrap();
    let now = common::now();
    let s = server::admin::add_server(
        &store,
        None,
        server::admin::AddServer {
            ip: "192.0.2.1".parse().unwrap(),
            zone: Some("de".into()),
            netspeed: 10_000,
            account: None,
            allow_private: true,
        },
        now,
    )
    .await
    .unwrap();
    let mut monitors = Vec::new();
    for (i, (name, location, _)) in MONITORS.iter().enumerate() {
        let (m, _) = server::admin::add_monitor(
            &store,
            AddMonitor {
                name: name.to_string(),
                ip: format!("198.51.100.{}", 10 + i).parse().unwrap(),
                location: location.to_string(),
                account: None,
                status: MonitorGlobalStatus::Active,
            },
            now,
        )
        .await
        .unwrap();
        monitors.push(m);
    }
    for round in 0..ROUNDS {
        for (m, (_, _, offset)) in monitors.iter().zip(MONITORS) {
            let ts = now - (ROUNDS - round) * 60 + m.id;
            let seq = store.create_batch(m.id, &[s.id], ts).await.unwrap();
            // Wobble so dots spread; syd answers only every fifth time.
            let wobble = 1.0 + 0.2 * ((round % 7) as f64 - 3.0) / 3.0;
            let r = match offset {
                Some(o) => ResultIn {
                    offset: Some(o * wobble),
                    rtt: Some(0.02 + 0.01 * m.id as f64),
                    stratum: Some(2),
                    leap: Some(0),
                    ..ResultIn::default()
                },
                None if round % 5 == 0 => ResultIn {
                    offset: Some(-0.004),
                    rtt: Some(0.3),
                    stratum: Some(2),
                    ..ResultIn::default()
                },
                None => ResultIn {
                    error: Some("i/o timeout".into()),
                    no_response: true,
                    ..ResultIn::default()
                },
            };
            let r = ResultIn {
                server_id: s.id,
                ts,
                ..r
            };
            store.submit_results(m.id, seq, &[r], ts).await.unwrap();
        }
    }

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve_on(
        listener,
        ServerConfig::default(),
        store.clone(),
        async {
            let _ = stopped.await;
        },
    ));

    let url = format!("http://{addr}/scores/192.0.2.1");
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&out_dir).unwrap();
    let shot = out_dir.join("scores.png");
    let profiles = tempfile::tempdir().unwrap();
    for name in ["scores.png", "scores-phone.png"] {
        let _ = std::fs::remove_file(out_dir.join(name));
    }
    let (p1, p2) = (profiles.path().join("dom"), profiles.path().join("shot"));
    let dom_args = ["--dump-dom".to_string()];
    let shot_args = [
        format!("--screenshot={}", shot.display()),
        "--window-size=1200,900".to_string(),
        "--hide-scrollbars".to_string(),
    ];
    let phone = out_dir.join("scores-phone.png");
    let phone_args = [
        format!("--screenshot={}", phone.display()),
        "--window-size=390,1400".to_string(),
        "--hide-scrollbars".to_string(),
    ];
    let p3 = profiles.path().join("phone");
    let (dom, screenshot, phone_shot) = tokio::join!(
        chromium(&p1, &dom_args, &url),
        chromium(&p2, &shot_args, &url),
        chromium(&p3, &phone_args, &url),
    );
    let _ = stop.send(());
    serving.await.unwrap().unwrap();

    let html = &dom.stdout;
    // The inline script ran to its end and saw every monitor's group.
    let section = html.find("<section").expect("history section");
    assert_eq!(attr(html, section, "data-script"), Some("ok"), "{html}");
    assert_eq!(
        attr(html, section, "data-script-monitors"),
        Some("4"),
        "{html}"
    );
    for m in &monitors {
        let open = format!("<g class=\"monitor\" data-monitor=\"{}\"", m.id);
        let at = html.find(&open).unwrap_or_else(|| panic!("no {open}"));
        let group = &html[at..at + html[at..].find("</g>").unwrap()];
        let dots: usize = group
            .match_indices("data-points=\"")
            .map(|(i, _)| attr(group, group[..i].rfind('<').unwrap(), "data-points"))
            .map(|v| v.unwrap().parse::<usize>().unwrap())
            .sum();
        assert!(group.contains("class=\"dots score"), "{}: {group}", m.name);
        assert!(dots >= ROUNDS as usize, "{}: {dots} points", m.name);
        if m.name != "syd" {
            assert!(group.contains("class=\"dots offset"), "{}", m.name);
        }
        // Legend row.
        assert!(
            html.contains(&format!(
                "<tr data-monitor=\"{}\" tabindex=\"0\"><td>{}</td>",
                m.id, m.name
            )),
            "legend row of {}",
            m.name
        );
    }
    let agg = html
        .find("<path class=\"aggregate\"")
        .expect("aggregate line");
    let d = attr(html, agg, "d").expect("aggregate path data");
    assert!(d.starts_with('M') && d.contains('V'), "{d}");
    assert!(html.contains("Zürich, CH"));

    // Nothing from the page on the console (errors or otherwise).
    for out in [&dom, &screenshot, &phone_shot] {
        let noisy: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
            .collect();
        assert!(noisy.is_empty(), "console output: {noisy:#?}");
    }
    for path in [&shot, &phone] {
        let png = std::fs::read(path).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        println!("screenshot: {} ({} bytes)", path.display(), png.len());
    }
}
