//! The public data API on SQLite and PostgreSQL: the score log CSV byte
//! for byte, its filters and limits, the JSON history, servers and zones.

mod common;

use common::{Backend, TestApp};
use server::ServerConfig;
use store::testing::StoreTesting as _;
use store::{GlobalStatus, MonitorRow, ResultIn, ServerRow};

const HEADER: &str = "ts_epoch,ts,offset,step,score,monitor_id,monitor_name,rtt,leap,error";

/// Results straight through the store, one batch per result, each scored
/// at its own time (so the aggregate is computed as it would have been).
async fn fill(t: &TestApp, s: &ServerRow, m: &MonitorRow, start: i64, n: i64, template: &ResultIn) {
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

fn good() -> ResultIn {
    ResultIn {
        offset: Some(0.001),
        rtt: Some(0.0123),
        stratum: Some(2),
        leap: Some(0),
        refid: Some("GPS".into()),
        ..ResultIn::default()
    }
}

fn timeout_with_tab() -> ResultIn {
    ResultIn {
        error: Some("i/o\ttimeout".into()),
        no_response: true,
        ..ResultIn::default()
    }
}

struct Fixture {
    t: TestApp,
    alpha: MonitorRow,
    beta: MonitorRow,
    start: i64,
}

/// One server, monitor alpha (good, leap 1 on the last result) and
/// monitor beta (timeouts), 5 rounds each a minute apart, ending now.
async fn fixture(backend: Backend, cfg: ServerConfig) -> Option<Fixture> {
    let db = common::TestDb::open(backend).await?;
    let t = TestApp::new(db, cfg);
    t.seed_zones().await;
    let s = t.add_server("192.0.2.1").await;
    let (alpha, _) = t.add_monitor("alpha", GlobalStatus::Active).await;
    let (beta, _) = t.add_monitor("beta", GlobalStatus::Active).await;
    let start = common::now() - 5 * 60;
    fill(&t, &s, &alpha, start, 4, &good()).await;
    fill(
        &t,
        &s,
        &alpha,
        start + 240,
        1,
        &ResultIn {
            leap: Some(1),
            ..good()
        },
    )
    .await;
    fill(&t, &s, &beta, start + 30, 5, &timeout_with_tab()).await;
    Some(Fixture {
        t,
        alpha,
        beta,
        start,
    })
}

macro_rules! fixture_or_skip {
    ($backend:expr) => {
        match fixture($backend, ServerConfig::default()).await {
            Some(f) => f,
            None => return,
        }
    };
}

on_both_backends!(
    csv_format_and_headers,
    csv_monitor_filters,
    csv_not_found,
    csv_limit_and_since,
    json_history,
    servers_and_zones,
);

/// The CSV's records, header checked.
fn records(body: &str) -> Vec<Vec<String>> {
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some(HEADER));
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes());
    let mut out: Vec<Vec<String>> = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    out.remove(0);
    out
}

async fn csv_format_and_headers(backend: Backend) {
    let f = fixture_or_skip!(backend);
    let r = f.t.get("/scores/192.0.2.1/log").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(r.header("content-disposition"), "inline");
    assert_eq!(r.header("access-control-allow-origin"), "*");
    assert_eq!(r.header("cache-control"), "s-maxage=90,max-age=120");
    let body = r.text();
    assert!(body.ends_with('\n'));
    let rows = records(&body);
    assert!(!rows.is_empty(), "aggregate rows exist: {body}");
    for row in &rows {
        assert_eq!(row.len(), 10);
        // Aggregate only: monitor_id 0, empty name, no rtt.
        assert_eq!(row[5], "0", "{row:?}");
        assert_eq!(row[6], "", "{row:?}");
        let epoch: i64 = row[0].parse().unwrap();
        let want = chrono::DateTime::from_timestamp(epoch, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        assert_eq!(row[1], want);
    }

    // Alpha's rows, newest first: offset in s, rtt in ms, leap only when
    // non-zero, floats without trailing zeros.
    let r =
        f.t.get(&format!("/scores/192.0.2.1/log?monitor={}", f.alpha.id))
            .await;
    let rows = records(&r.text());
    assert_eq!(rows.len(), 5);
    let newest = &rows[0];
    assert_eq!(newest[0], (f.start + 240).to_string());
    assert_eq!(newest[2], "0.001");
    assert_eq!(newest[3], "1");
    assert_eq!(newest[5], f.alpha.id.to_string());
    assert_eq!(newest[6], "alpha");
    assert_eq!(newest[7], "12.3");
    assert_eq!(newest[8], "1");
    assert_eq!(newest[9], "");
    assert_eq!(rows[1][8], "", "leap 0 is not printed");
    // Score after the first good result: 0 × 0.95 + 1.
    assert_eq!(rows[4][4], "1");
    assert_eq!(rows[3][4], "1.95");

    // Beta's: no offset, no rtt, step −5, control characters made visible.
    let r = f.t.get("/scores/192.0.2.1/log?monitor=beta").await;
    let rows = records(&r.text());
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0][2], "");
    assert_eq!(rows[0][3], "-5");
    assert_eq!(rows[0][7], "");
    assert_eq!(rows[0][9], "i/o<0x09>timeout");
}

async fn csv_monitor_filters(backend: Backend) {
    let f = fixture_or_skip!(backend);
    let ids =
        |body: &str| -> Vec<String> { records(body).into_iter().map(|r| r[5].clone()).collect() };
    let all = ids(&f.t.get("/scores/192.0.2.1/log?monitor=*").await.text());
    let a = f.alpha.id.to_string();
    let b = f.beta.id.to_string();
    assert!(all.contains(&"0".to_string()));
    assert_eq!(all.iter().filter(|i| **i == a).count(), 5);
    assert_eq!(all.iter().filter(|i| **i == b).count(), 5);
    // Newest first.
    let rows = records(&f.t.get("/scores/192.0.2.1/log?monitor=*").await.text());
    let ts: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] >= w[1]), "{ts:?}");

    for q in ["", "?monitor=", "?limit=50"] {
        let only = ids(&f.t.get(&format!("/scores/192.0.2.1/log{q}")).await.text());
        assert!(
            !only.is_empty() && only.iter().all(|i| i == "0"),
            "{q}: {only:?}"
        );
    }
    for q in [format!("monitor={a}"), "monitor=alpha".to_string()] {
        let only = ids(&f.t.get(&format!("/scores/192.0.2.1/log?{q}")).await.text());
        assert_eq!(only, vec![a.clone(); 5], "{q}");
    }
}

async fn csv_not_found(backend: Backend) {
    let f = fixture_or_skip!(backend);
    for q in [
        "monitor=alp_ha",
        "monitor=alpha%25",
        "monitor=al%25",
        "monitor=alpha.example",
        "monitor=alpha%20beta",
        "monitor=alpha%09",
        "monitor=**",
        "monitor=nosuchmonitor",
        "monitor=99999",
    ] {
        let r = f.t.get(&format!("/scores/192.0.2.1/log?{q}")).await;
        assert_eq!(r.status, 404, "{q}: {}", r.text());
        assert!(r.header("content-type").starts_with("text/plain"), "{q}");
        assert!(r.text().contains("monitor not found"), "{q}: {}", r.text());
    }
    for ip in [
        "192.0.2.99",
        "not-an-ip",
        "999.1.1.1",
        "192.0.2.1%20",
        "2001:db8::1",
    ] {
        for kind in ["log", "json"] {
            let r = f.t.get(&format!("/scores/{ip}/{kind}")).await;
            assert_eq!(r.status, 404, "{ip} {kind}");
        }
    }
    let r = f.t.get("/scores/192.0.2.1/json?monitor=a_b").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "not_found");
    assert_eq!(f.t.get("/no/such/route").await.status, 404);
}

async fn csv_limit_and_since(backend: Backend) {
    let f = fixture_or_skip!(backend);
    let n = |body: String| records(&body).len();
    assert_eq!(
        n(f.t
            .get("/scores/192.0.2.1/log?monitor=*&limit=3")
            .await
            .text()),
        3
    );
    assert_eq!(
        n(f.t
            .get("/scores/192.0.2.1/log?monitor=alpha&limit=1")
            .await
            .text()),
        1
    );
    let r = f.t.get("/scores/192.0.2.1/log?monitor=alpha&limit=1").await;
    assert_eq!(r.header("cache-control"), "s-maxage=60,max-age=35");

    // since: strictly later rows, oldest first.
    let since = f.start + 60;
    let rows = records(
        &f.t.get(&format!(
            "/scores/192.0.2.1/log?monitor=alpha&since={since}"
        ))
        .await
        .text(),
    );
    let ts: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(ts, vec![f.start + 120, f.start + 180, f.start + 240]);
    let rows = records(
        &f.t.get(&format!(
            "/scores/192.0.2.1/log?monitor=alpha&since={since}&limit=2"
        ))
        .await
        .text(),
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], (f.start + 120).to_string());

    // Default 100, also for a limit that is not a number; at most 10000.
    let s =
        f.t.store()
            .server_by_ip("192.0.2.1".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
    fill(&f.t, &s, &f.alpha, f.start - 200 * 60, 110, &good()).await;
    for q in ["", "&limit=abc", "&limit=0", "&limit=-3", "&limit=1e3"] {
        let got = n(f
            .t
            .get(&format!("/scores/192.0.2.1/log?monitor=alpha{q}"))
            .await
            .text());
        assert_eq!(got, 100, "{q}");
    }
    assert_eq!(
        n(f.t
            .get("/scores/192.0.2.1/log?monitor=alpha&limit=20000")
            .await
            .text()),
        115
    );
    assert_eq!(
        n(f.t
            .get("/scores/192.0.2.1/log?monitor=alpha&limit=112")
            .await
            .text()),
        112
    );
}

async fn json_history(backend: Backend) {
    let f = fixture_or_skip!(backend);
    let r = f.t.get("/scores/192.0.2.1/json?monitor=*&limit=200").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), "*");
    assert!(r.header("content-type").starts_with("application/json"));
    let v = r.json();
    let history = v["history"].as_array().unwrap();
    assert!(history.len() >= 10);
    let alpha_point = history
        .iter()
        .find(|p| p["monitor_id"] == f.alpha.id)
        .unwrap();
    assert_eq!(alpha_point["offset"], 0.001);
    assert!((alpha_point["rtt"].as_f64().unwrap() - 12.3).abs() < 1e-9);
    assert!(alpha_point["ts"].is_i64());
    assert!(alpha_point["step"].is_number() && alpha_point["score"].is_number());
    assert!(history.iter().any(|p| p["monitor_id"] == 0));

    let monitors = v["monitors"].as_array().unwrap();
    let alpha = monitors.iter().find(|m| m["name"] == "alpha").unwrap();
    assert_eq!(alpha["id"], f.alpha.id);
    assert_eq!(alpha["type"], "monitor");
    // No selector runs here: pairs keep their first status.
    assert_eq!(alpha["status"], "candidate");
    assert!((alpha["avg_rtt"].as_f64().unwrap() - 12.3).abs() < 1e-9);
    assert!(alpha["ts"].as_str().unwrap().ends_with('Z'));
    let beta = monitors.iter().find(|m| m["name"] == "beta").unwrap();
    assert!(beta["avg_rtt"].is_null());
    let total = monitors.iter().find(|m| m["type"] == "score").unwrap();
    assert_eq!(total["id"], 0);

    let server = &v["server"];
    assert_eq!(server["ip"], "192.0.2.1");
    assert_eq!(server["netspeed"], 10_000);
    assert_eq!(server["in_dns"], false);
    assert!(server["score"].is_number());
    assert_eq!(server["zones"], serde_json::json!(["@", "de", "europe"]));

    // Without monitor=: aggregate points only, and only that monitor entry.
    let v = f.t.get("/scores/192.0.2.1/json").await.json();
    assert!(
        v["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["monitor_id"] == 0)
    );
    assert_eq!(v["monitors"].as_array().unwrap().len(), 1);
}

async fn servers_and_zones(backend: Backend) {
    let f = fixture_or_skip!(backend);
    let t = &f.t;
    // A server only alpha has checked, 15 times well: score ≥ 10, in DNS.
    let good_one = t.add_server("192.0.2.3").await;
    fill(t, &good_one, &f.alpha, common::now() - 15 * 60, 15, &good()).await;
    t.add_server("2001:db8::5").await;

    let v = t.get("/api/v1/servers").await.json();
    let servers = v["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    let in_dns = servers.iter().find(|s| s["ip"] == "192.0.2.3").unwrap();
    assert_eq!(in_dns["in_dns"], true, "{in_dns}");
    assert!(in_dns["score"].as_f64().unwrap() >= 10.0);
    let one = servers.iter().find(|s| s["ip"] == "192.0.2.1").unwrap();
    for k in ["ip", "score", "in_dns", "zones", "netspeed"] {
        assert!(!one[k].is_null(), "{k}");
    }
    let six = servers.iter().find(|s| s["ip"] == "2001:db8::5").unwrap();
    assert_eq!(six["ip_version"], 6);
    assert_eq!(six["in_dns"], false);
    assert_eq!(six["score"], 0.0);

    let r = t.get("/api/v1/servers/192.0.2.1").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["ip"], "192.0.2.1");
    assert_eq!(v["netspeed"], 10_000);
    let mons = v["monitors"].as_array().unwrap();
    assert!(mons.iter().any(|m| m["name"] == "alpha"));

    for bad in ["192.0.2.99", "nope", "2001:db8::6"] {
        let r = t.get(&format!("/api/v1/servers/{bad}")).await;
        assert_eq!(r.status, 404, "{bad}");
        assert_eq!(r.json()["error"], "not_found");
    }

    let v = t.get("/api/v1/zones").await.json();
    let zones = v["zones"].as_array().unwrap();
    let de = zones.iter().find(|z| z["name"] == "de").unwrap();
    assert_eq!(de["parent"], "europe");
    assert_eq!(de["v4"]["registered"], 2);
    assert_eq!(de["v4"]["active"], 1);
    assert_eq!(de["v6"]["registered"], 1);
    assert_eq!(de["v6"]["active"], 0);
    let root = zones.iter().find(|z| z["name"] == "@").unwrap();
    assert!(root["parent"].is_null());
    assert_eq!(root["v4"]["registered"], 2);
}
