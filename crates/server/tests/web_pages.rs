//! The public web pages on SQLite and PostgreSQL: status codes, content
//! types and cache headers, the key facts on each page, the history chart
//! of a seeded server, 404s, and every stored string HTML-escaped.

mod common;

use common::{Backend, TestApp};
use server::ServerConfig;
use server::admin::AddMonitor;
use store::testing::StoreTesting as _;
use store::{GlobalStatus, MonitorRow, ResultIn, ServerRow};

const HOSTILE: &str = "<script>alert(1)</script>";
const HOSTILE_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

/// One result per minute for `n` minutes ending now, each scored at its
/// own time so the aggregate is logged as it would have been.
async fn fill(t: &TestApp, s: &ServerRow, m: &MonitorRow, n: i64, template: &ResultIn) {
    let start = common::now() - n * 60;
    for i in 0..n {
        let ts = start + i * 60;
        let seq = t.store().create_batch(m.id, &[s.id], ts).await.unwrap();
        let r = ResultIn {
            server_id: s.id,
            ts,
            ..template.clone()
        };
        t.store().submit_results(m.id, seq, &[r], ts).await.unwrap();
    }
}

fn good(offset: f64) -> ResultIn {
    ResultIn {
        offset: Some(offset),
        rtt: Some(0.0123),
        stratum: Some(2),
        leap: Some(0),
        refid: Some("GPS".into()),
        ..ResultIn::default()
    }
}

struct Fixture {
    t: TestApp,
    alpha: MonitorRow,
    beta: MonitorRow,
}

/// Server 192.0.2.1 in zone `de`: monitor alpha (good, 20 results: the
/// score crosses 10) with a hostile location, monitor beta (an error
/// string with markup in it).
async fn fixture(backend: Backend) -> Option<Fixture> {
    let db = common::TestDb::open(backend).await?;
    let t = TestApp::new(db, ServerConfig::default());
    t.seed_zones().await;
    let s = t.add_server("192.0.2.1").await;
    let (alpha, _) = server::admin::add_monitor(
        t.store(),
        AddMonitor {
            name: "alpha".into(),
            ip: "192.0.2.200".parse().unwrap(),
            location: HOSTILE.into(),
            account: None,
            status: GlobalStatus::Active,
        },
        common::now(),
    )
    .await
    .unwrap();
    let (beta, _) = t.add_monitor("beta", GlobalStatus::Active).await;
    fill(&t, &s, &alpha, 20, &good(0.002)).await;
    let bad = ResultIn {
        error: Some("<b>bad</b>".into()),
        no_response: true,
        ..ResultIn::default()
    };
    fill(&t, &s, &beta, 3, &bad).await;
    fill(&t, &s, &beta, 2, &good(0.3)).await;
    Some(Fixture { t, alpha, beta })
}

macro_rules! fixture_or_skip {
    ($backend:expr) => {
        match fixture($backend).await {
            Some(f) => f,
            None => return,
        }
    };
}

on_both_backends!(
    overview,
    server_page,
    server_not_in_dns,
    zone_page,
    monitors_page,
    lookup_and_not_found,
);

fn assert_html(r: &common::Resp, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    assert!(r.header("cache-control").starts_with("public, max-age="));
    let body = r.text();
    assert!(body.starts_with("<!doctype html>"), "{body}");
    assert!(body.contains("name=\"viewport\""));
    assert!(!body.contains(HOSTILE), "unescaped stored string: {body}");
    body
}

async fn overview(backend: Backend) {
    let f = fixture_or_skip!(backend);
    let body = assert_html(&f.t.get("/").await, 200);
    assert!(body.contains("<a href=\"/zones/de\">de</a>"), "{body}");
    // Zones with servers in the table; the many without folded below it.
    assert!(body.contains("<tr data-zone=\"de\">"), "{body}");
    assert!(!body.contains("<tr data-zone=\"fr\">"), "{body}");
    let folded = body
        .find("<details id=\"empty-zones\">")
        .expect("folded zones");
    let fr = body.find("<a href=\"/zones/fr\"").expect("fr still linked");
    assert!(fr > folded && body.find("<tr data-zone=\"de\">").unwrap() < folded);
    assert!(body.contains(" zones without servers</summary>"), "{body}");
    assert!(body.contains("action=\"/scores\""));
    // Both monitors were never seen through the API.
    assert!(body.contains("<strong id=\"monitors-online\">0</strong> of 2 monitors online"));
    // Alpha's results lifted the aggregate past 10.
    assert!(body.contains("entered DNS"), "{body}");
    assert!(body.contains("<a href=\"/scores/192.0.2.1\">192.0.2.1</a>"));
}

async fn server_page(backend: Backend) {
    let f = fixture_or_skip!(backend);
    let r = f.t.get("/scores/192.0.2.1").await;
    let body = assert_html(&r, 200);
    assert_eq!(
        r.header("cache-control"),
        "public, max-age=120, s-maxage=120"
    );
    assert!(body.contains("<h1>192.0.2.1</h1>"));
    assert!(
        body.contains("<dd id=\"in-dns\" class=\"ok\">yes</dd>"),
        "{body}"
    );
    assert!(body.contains("10000 kbit/s"));
    assert!(body.contains("<a href=\"/zones/de\">de</a>"));
    // The chart: both monitors' groups with their dots, the aggregate line
    // and the threshold.
    assert!(body.contains("<svg class=\"chart\""));
    for (m, offset_class) in [(&f.alpha, "offset ok"), (&f.beta, "offset bad")] {
        let open = format!(
            "<g class=\"monitor\" data-monitor=\"{}\" data-name=\"{}\">",
            m.id, m.name
        );
        let at = body
            .find(&open)
            .unwrap_or_else(|| panic!("no {open}: {body}"));
        let group = &body[at..at + body[at..].find("</g>").unwrap()];
        assert!(
            group.contains(&format!("class=\"dots {offset_class}\"")),
            "{group}"
        );
        assert!(group.contains("class=\"dots score"), "{group}");
        // Legend row.
        assert!(body.contains(&format!(
            "<tr data-monitor=\"{}\"><td>{}</td>",
            m.id, m.name
        )));
    }
    assert!(body.contains("<path class=\"aggregate\""));
    assert!(body.contains("class=\"threshold\""));
    assert!(body.contains(HOSTILE_ESCAPED));
    // Recent errors, escaped.
    assert!(
        body.contains("<code>&lt;b&gt;bad&lt;/b&gt;</code>"),
        "{body}"
    );
    assert!(!body.contains("<b>bad</b>"));
    assert!(body.contains("href=\"/scores/192.0.2.1/log?limit=200&amp;monitor=*\""));
    assert!(body.contains("href=\"/scores/192.0.2.1/json?monitor=*&amp;limit=5000\""));
    // Legend hover works without script.
    assert!(body.contains(&format!(
        ".history:has(tr[data-monitor=\"{}\"]:hover)",
        f.alpha.id
    )));
}

async fn server_not_in_dns(backend: Backend) {
    let f = fixture_or_skip!(backend);
    let ip = "192.0.2.1".parse().unwrap();
    f.t.store().set_netspeed(ip, 0).await.unwrap();
    f.t.store()
        .set_deletion(ip, Some(common::now() + 3 * 86_400))
        .await
        .unwrap();
    let body = assert_html(&f.t.get("/scores/192.0.2.1").await, 200);
    assert!(
        body.contains("<dd id=\"in-dns\" class=\"bad\">no: "),
        "{body}"
    );
    assert!(body.contains("netspeed is 0"));
    assert!(body.contains("scheduled for deletion on "));
    assert!(body.contains("<dd id=\"deletion\" class=\"bad\">scheduled for "));
    // A server without history still has a page.
    f.t.add_server("192.0.2.2").await;
    let body = assert_html(&f.t.get("/scores/192.0.2.2").await, 200);
    assert!(body.contains("No history yet."));
    assert!(body.contains("below 10"));
}

async fn zone_page(backend: Backend) {
    let f = fixture_or_skip!(backend);
    let body = assert_html(&f.t.get("/zones/de").await, 200);
    assert!(body.contains("<h1>Zone de</h1>"));
    assert!(
        body.contains("<dd id=\"v4-counts\">1 active of 1 registered</dd>"),
        "{body}"
    );
    assert!(body.contains("<tr data-ip=\"192.0.2.1\">"));
    assert!(body.contains("<span class=\"ok\">yes</span>"));
    // The daily history of counts, as the service records it.
    assert!(!body.contains("<h2>History</h2>"));
    let now = common::now();
    assert!(f.t.store().record_zone_counts(now).await.unwrap() >= 3);
    let body = assert_html(&f.t.get("/zones/de").await, 200);
    let day = now - now.rem_euclid(86_400);
    let row = format!(
        "<tr data-day=\"{day}\"><td>{}</td><td class=\"num\">1</td><td class=\"num\">1</td>",
        chrono::DateTime::from_timestamp(day, 0)
            .unwrap()
            .format("%Y-%m-%d")
    );
    assert!(
        body.contains("<h2>History</h2>") && body.contains(&row),
        "{body}"
    );
    // A parent zone lists no servers of its children.
    let body = assert_html(&f.t.get("/zones/europe").await, 200);
    assert!(body.contains("Zone europe"));
}

async fn monitors_page(backend: Backend) {
    let f = fixture_or_skip!(backend);
    let body = assert_html(&f.t.get("/monitors").await, 200);
    let row = |m: &MonitorRow| {
        let at = body
            .find(&format!("<tr data-monitor=\"{}\">", m.id))
            .expect("row");
        body[at..at + body[at..].find("</tr>").unwrap()].to_string()
    };
    let alpha = row(&f.alpha);
    assert!(alpha.contains(HOSTILE_ESCAPED), "{alpha}");
    assert!(alpha.contains("<td>active</td>"));
    assert!(alpha.contains("<td>never</td>"));
    assert!(alpha.contains("<td class=\"num\">20</td>"), "{alpha}");
    assert!(row(&f.beta).contains("<td class=\"num\">5</td>"));
}

async fn lookup_and_not_found(backend: Backend) {
    let f = fixture_or_skip!(backend);
    let r = f.t.get("/scores?ip=+192.0.2.1+").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), "/scores/192.0.2.1");
    let r = f.t.get("/scores?ip=2001:DB8:0:0::1").await;
    assert_eq!(r.header("location"), "/scores/2001:db8::1");
    let r = f.t.get("/scores?ip=").await;
    assert_eq!(r.header("location"), "/");
    let body = assert_html(&f.t.get("/scores?ip=%3Cscript%3E").await, 400);
    assert!(body.contains("not an IP address"));
    for path in ["/scores/192.0.2.99", "/scores/not-an-ip", "/zones/atlantis"] {
        let body = assert_html(&f.t.get(path).await, 404);
        assert!(body.contains("<h1>Not Found</h1>"), "{path}: {body}");
    }
}
