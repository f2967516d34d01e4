//! The pages in a real headless browser (Debian's `chromium`), driven
//! through the DevTools protocol (`crates/cdp`): the service runs on a real
//! listener with a seeded history of four monitors; the test types a
//! server's address into the overview's lookup form and sends it with the
//! mouse, reads the server page's DOM after its script ran and checks the
//! chart (dots for every monitor, the aggregate line) and the legend,
//! clicks a legend row to hide and show a monitor, checks that the console
//! stayed quiet, and saves screenshots under the test output directory
//! (`target/tmp/browser/`, desktop and phone width).

mod common;

use common::Backend;
use server::ServerConfig;
use server::admin::AddMonitor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use store::testing::StoreTesting as _;
use store::{GlobalStatus, ResultIn};
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
                status: GlobalStatus::Active,
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

    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let (shot, phone) = (out_dir.join("scores.png"), out_dir.join("scores-phone.png"));
    for path in [&shot, &phone] {
        let _ = std::fs::remove_file(path);
    }
    let profile = tempfile::tempdir().unwrap();
    let mut b = cdp::Browser::launch(Path::new(CHROMIUM), profile.path())
        .await
        .expect("chromium with DevTools");

    // As a visitor: the overview, the lookup form filled in and sent with
    // the mouse, then the server page it leads to.
    b.goto(&format!("http://{addr}/")).await.unwrap();
    b.type_text("main form.lookup input[name=ip]", " 192.0.2.1 ")
        .await
        .unwrap();
    b.click_and_wait("main form.lookup button[type=submit]")
        .await
        .unwrap();
    assert_eq!(
        b.eval("location.pathname").await.unwrap(),
        "/scores/192.0.2.1"
    );
    // The page's script ran (it is an external file under the CSP).
    b.wait_for("document.getElementById('history')?.dataset.script === 'ok'")
        .await
        .unwrap();
    let dom = b
        .eval("document.documentElement.outerHTML")
        .await
        .unwrap()
        .as_str()
        .expect("the DOM as text")
        .to_string();

    // Clicking a legend row hides that monitor's points; again shows them.
    let first = monitors[0].id;
    let hidden = format!(
        "document.querySelector('g.monitor[data-monitor=\"{first}\"]').classList.contains('hidden')"
    );
    assert_eq!(b.eval(&hidden).await.unwrap(), false);
    let row = format!("#history tr[data-monitor=\"{first}\"]");
    b.click(&row).await.unwrap();
    assert_eq!(b.eval(&hidden).await.unwrap(), true, "legend click hides");
    b.click(&row).await.unwrap();
    assert_eq!(b.eval(&hidden).await.unwrap(), false, "second click shows");

    b.eval("window.scrollTo(0, 0)").await.unwrap();
    b.screenshot(&shot).await.unwrap();
    b.set_viewport(390, 1400, true).await.unwrap();
    b.goto(&format!("http://{addr}/scores/192.0.2.1"))
        .await
        .unwrap();
    b.screenshot(&phone).await.unwrap();
    b.settle().await.unwrap();
    // Nothing from the pages on the console (errors or otherwise), no
    // uncaught exception, no CSP violation or failed load.
    assert!(b.problems().is_empty(), "{:#?}", b.problems());
    drop(b);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();

    let html = dom.as_str();
    // The page's script ran to its end and saw every monitor's group.
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

    for path in [&shot, &phone] {
        let png = std::fs::read(path).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        println!("screenshot: {} ({} bytes)", path.display(), png.len());
    }
}
