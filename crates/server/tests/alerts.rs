//! Alerts with evidence, end to end through the store, a local SMTP sink
//! and a local webhook receiver, on SQLite and PostgreSQL. Time is driven
//! by passing `now` to `run_alert_pass`.

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Backend, TestApp, TestDb};
use serde_json::Value;
use server::ServerConfig;
use server::alerts::{AlertConfig, Alerter, PassReport, run_alert_pass};
use smtp_sink::SmtpSink;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::testing::StoreTesting as _;
use store::{AlertChannel, AlertKind, GlobalStatus, MonitorStatus, ResultIn, ServerRow};

on_both_backends!(down_reminder_recovered, failed_delivery_waits_the_interval);

const H: i64 = 3600;
const MIN: i64 = 60;

/// What the webhook receiver got: headers and JSON body per request.
type Received = Arc<Mutex<Vec<(HeaderMap, Value)>>>;
/// A monitor id and how its results look.
type Feed = (i64, fn(i64, i64) -> ResultIn);

/// A webhook receiver on 127.0.0.1:0 answering `status`.
#[derive(Clone)]
struct Hooks {
    url: String,
    got: Received,
}

async fn receiver(status: StatusCode) -> Hooks {
    let got: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook/{token}",
            post(
                move |State(got): State<Received>, headers: HeaderMap, body: String| async move {
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
                    got.lock().unwrap().push((headers, v));
                    status
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Hooks {
        url: format!("http://{addr}/hook/s3cret"),
        got,
    }
}

impl Hooks {
    fn all(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|x| x.1.clone())
            .collect()
    }
}

fn good(server_id: i64, ts: i64) -> ResultIn {
    ResultIn {
        server_id,
        ts,
        offset: Some(0.0004),
        rtt: Some(0.012),
        stratum: Some(2),
        leap: Some(0),
        refid: Some("GPS".into()),
        error: None,
        no_response: false,
    }
}

fn timeout(server_id: i64, ts: i64) -> ResultIn {
    ResultIn {
        offset: None,
        rtt: None,
        stratum: None,
        leap: None,
        refid: None,
        error: Some("i/o timeout".into()),
        no_response: true,
        ..good(server_id, ts)
    }
}

fn far_off(server_id: i64, ts: i64) -> ResultIn {
    ResultIn {
        offset: Some(1.234567),
        rtt: Some(0.0456),
        ..good(server_id, ts)
    }
}

/// Each monitor submits `n` results (one per minute from `from`), made by
/// `make`; returns the time after the last.
async fn feed(t: &TestApp, monitors: &[Feed], server: &ServerRow, from: i64, n: i64) -> i64 {
    let mut now = from;
    for _ in 0..n {
        for (mid, make) in monitors {
            let seq = t
                .store()
                .create_batch(*mid, &[server.id], now)
                .await
                .unwrap();
            t.store()
                .submit_results(*mid, seq, &[make(server.id, now)], now)
                .await
                .unwrap();
        }
        now += MIN;
    }
    now
}

struct Fixture {
    t: TestApp,
    sink: SmtpSink,
    hooks: Hooks,
    alerter: Alerter,
    server: ServerRow,
    never_up: ServerRow,
    defra: i64,
    usnyc: i64,
}

async fn fixture(
    backend: Backend,
    hook_status: StatusCode,
    refusing_smtp: bool,
) -> Option<Fixture> {
    let db = TestDb::open(backend).await?;
    let t = TestApp::new(db, ServerConfig::default());
    t.seed_zones().await;
    let sink = if refusing_smtp {
        SmtpSink::start_refusing().await
    } else {
        SmtpSink::start().await
    };
    let hooks = receiver(hook_status).await;
    let (defra, _) = t.add_monitor("defra1", GlobalStatus::Active).await;
    let (usnyc, _) = t.add_monitor("usnyc1", GlobalStatus::Active).await;
    let account = t.store().ensure_account("acme").await.unwrap();
    t.store()
        .set_account_contact("acme", Some("noc@acme.test"), Some(&hooks.url))
        .await
        .unwrap();
    let mut servers = Vec::new();
    for ip in ["192.0.2.1", "192.0.2.2"] {
        let s = server::admin::add_server(
            t.store(),
            None,
            server::admin::AddServer {
                ip: ip.parse().unwrap(),
                zone: Some("de".into()),
                netspeed: 10_000,
                account: Some("acme".into()),
                allow_private: true,
            },
            common::now(),
        )
        .await
        .unwrap();
        assert_eq!(s.account_id, Some(account));
        for m in [defra.id, usnyc.id] {
            t.store()
                .set_server_score_status(s.id, m, MonitorStatus::Active)
                .await
                .unwrap();
        }
        servers.push(s);
    }
    let alerter = Alerter::new(AlertConfig {
        smtp: Some(sink.url().parse().unwrap()),
        from: Some("poolwatch <alerts@pool.test>".into()),
        public_url: "https://pool.test/".into(),
        send_timeout: Duration::from_secs(5),
        ..AlertConfig::default()
    })
    .unwrap();
    let never_up = servers.pop().unwrap();
    Some(Fixture {
        t,
        sink,
        hooks,
        alerter,
        server: servers.pop().unwrap(),
        never_up,
        defra: defra.id,
        usnyc: usnyc.id,
    })
}

impl Fixture {
    async fn pass(&self, now: i64) -> PassReport {
        run_alert_pass(&self.t.state, &self.alerter, now)
            .await
            .unwrap()
    }

    async fn score(&self) -> f64 {
        self.t
            .store()
            .server_by_id(self.server.id)
            .await
            .unwrap()
            .unwrap()
            .score
    }
}

fn kinds(r: &PassReport) -> Vec<(String, AlertKind, bool)> {
    r.alerts
        .iter()
        .map(|a| (a.ip.to_string(), a.kind, a.delivered))
        .collect()
}

async fn down_reminder_recovered(backend: Backend) {
    let Some(f) = fixture(backend, StatusCode::NO_CONTENT, false).await else {
        return;
    };
    let (srv, never) = (&f.server, &f.never_up);
    let t0 = common::now() - 10 * 86_400;
    let both: [Feed; 2] = [(f.defra, good), (f.usnyc, good)];

    // The second server never gets good results: never armed, never alerted.
    let bad: [Feed; 2] = [(f.defra, timeout), (f.usnyc, timeout)];
    feed(&f.t, &bad, never, t0, 3).await;

    // Up: armed, nothing sent.
    let mut now = feed(&f.t, &both, srv, t0, 16).await;
    assert!(f.score().await >= 10.0, "{}", f.score().await);
    let r = f.pass(now).await;
    assert_eq!(r.checked, 2);
    assert!(r.alerts.is_empty(), "{r:?}");

    // Down: defra1 times out, usnyc1 sees a 1.23 s offset.
    let mixed: [Feed; 2] = [(f.defra, timeout), (f.usnyc, far_off)];
    now = feed(&f.t, &mixed, srv, now, 3).await;
    let score = f.score().await;
    assert!(score < 10.0, "{score}");
    let (sid, defra) = (srv.id, f.defra);
    f.t.db
        .exec(&format!(
            "INSERT INTO traceroutes (server_id, monitor_id, ts, reason, tool, hops, error) VALUES \
             ({sid}, {defra}, {}, 'defra1: healthy -> i/o timeout', 'mtr', \
              '[{{\"ttl\":1,\"ip\":\"198.51.100.1\",\"rtt_ms\":[0.8],\"sent\":3}},\
                {{\"ttl\":2,\"ip\":null,\"rtt_ms\":[],\"sent\":3}}]', NULL)",
            now - 30
        ))
        .await;
    let down_at = now;
    let r = f.pass(down_at).await;
    assert_eq!(
        kinds(&r),
        [("192.0.2.1".to_string(), AlertKind::Down, true)],
        "exactly one alert, for the server that was up"
    );
    let mails = f.sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.to, ["noc@acme.test"]);
    assert_eq!(m.from, "alerts@pool.test");
    assert_eq!(
        m.subject(),
        format!("poolwatch: 192.0.2.1 is out of the pool (score {score:.1})")
    );
    let text = m.text();
    for want in [
        "https://pool.test/scores/192.0.2.1",
        "defra1",
        "i/o timeout",
        "usnyc1",
        "+1.234567 s",
        "45.6 ms",
        "from defra1",
        "198.51.100.1",
    ] {
        assert!(text.contains(want), "e-mail lacks {want:?}:\n{text}");
    }
    let hooks = f.hooks.all();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let h = &hooks[0];
    assert_eq!(h["kind"], "down");
    assert_eq!(h["ts"], down_at);
    assert_eq!(h["server"]["ip"], "192.0.2.1");
    assert_eq!(
        h["server"]["page_url"],
        "https://pool.test/scores/192.0.2.1"
    );
    assert!((h["server"]["score"].as_f64().unwrap() - score).abs() < 0.01);
    let mons = h["monitors"].as_array().unwrap();
    let by_name = |n: &str| mons.iter().find(|m| m["name"] == n).unwrap().clone();
    assert_eq!(by_name("defra1")["error"], "i/o timeout");
    assert_eq!(by_name("defra1")["offset"], Value::Null);
    assert_eq!(by_name("usnyc1")["offset"], 1.234567);
    assert_eq!(by_name("usnyc1")["rtt_ms"], 45.6);
    assert_eq!(by_name("usnyc1")["error"], Value::Null);
    assert_eq!(by_name("usnyc1")["status"], "active");
    assert_eq!(h["traceroutes"][0]["monitor"], "defra1");
    assert_eq!(h["traceroutes"][0]["tool"], "mtr");
    assert_eq!(h["traceroutes"][0]["hops"][0]["ip"], "198.51.100.1");
    let hdrs = f.hooks.got.lock().unwrap()[0].0.clone();
    assert_eq!(hdrs["content-type"], "application/json");
    assert_eq!(hdrs["x-poolwatch-event"], "down");

    let rows = f.t.store().alerts_for_server(srv.id, 10).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.ok && r.kind == AlertKind::Down));
    // The public server page says an alert went out and how, never to whom.
    let page = f.t.get("/scores/192.0.2.1").await.text();
    let section = page
        .split("<section id=\"alerts\">")
        .nth(1)
        .expect("an Alerts section");
    assert!(section.contains("<td>down</td><td>email</td>"), "{section}");
    assert!(
        section.contains("<td>down</td><td>webhook</td>"),
        "{section}"
    );
    assert!(!page.contains("noc@acme.test"), "the address is private");
    assert!(!page.contains(&f.hooks.url), "the webhook is private");
    let mut chans: Vec<_> = rows.iter().map(|r| r.channel).collect();
    chans.sort_by_key(|c| c.as_str());
    assert_eq!(chans, [AlertChannel::Email, AlertChannel::Webhook]);
    let metrics = f.t.state.metrics().render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("poolwatch_alerts_total{")
                && l.contains("kind=\"down\"")
                && l.contains("channel=\"email\"")
                && l.contains("result=\"ok\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );

    // Nothing more while it stays down, before the first reminder.
    for later in [10 * MIN, 2 * H, 23 * H] {
        assert!(f.pass(down_at + later).await.alerts.is_empty());
    }
    assert_eq!(f.sink.mails().len(), 1);
    assert_eq!(f.hooks.all().len(), 1);

    // The first reminder 24 h after the down alert.
    let remind_at = down_at + 24 * H;
    let r = f.pass(remind_at).await;
    assert_eq!(
        kinds(&r),
        [("192.0.2.1".to_string(), AlertKind::Reminder, true)]
    );
    let mails = f.sink.wait_for(2, Duration::from_secs(5)).await;
    assert!(mails[1].subject().contains("is still out of the pool"));
    assert!(mails[1].text().contains("reminder 1"));
    assert_eq!(f.hooks.all()[1]["kind"], "reminder");
    assert_eq!(f.hooks.all()[1]["reminder"], 1);

    // Back up within the hour after the reminder: the notice waits.
    now = feed(&f.t, &both, srv, remind_at, 40).await;
    assert!(f.score().await >= 10.0, "{}", f.score().await);
    assert!(now - remind_at < H);
    assert!(f.pass(now).await.alerts.is_empty(), "inside the interval");
    let r = f.pass(remind_at + H).await;
    assert_eq!(
        kinds(&r),
        [("192.0.2.1".to_string(), AlertKind::Recovered, true)]
    );
    let mails = f.sink.wait_for(3, Duration::from_secs(5)).await;
    assert!(
        mails[2].subject().contains("is back in the pool"),
        "{}",
        mails[2].subject()
    );
    let hooks = f.hooks.all();
    assert_eq!(hooks.len(), 3);
    assert_eq!(hooks[2]["kind"], "recovered");
    assert_eq!(hooks[2]["server"]["down_since"], Value::Null);

    // Up and told so: quiet.
    assert!(f.pass(remind_at + 5 * H).await.alerts.is_empty());
    assert_eq!(f.sink.mails().len(), 3);
    assert_eq!(
        f.t.store().alerts_for_server(never.id, 10).await.unwrap(),
        [],
        "a server that was never up is never alerted"
    );
}

async fn failed_delivery_waits_the_interval(backend: Backend) {
    let Some(f) = fixture(backend, StatusCode::INTERNAL_SERVER_ERROR, true).await else {
        return;
    };
    let srv = &f.server;
    let t0 = common::now() - 5 * 86_400;
    let both: [Feed; 2] = [(f.defra, good), (f.usnyc, good)];
    let bad: [Feed; 2] = [(f.defra, timeout), (f.usnyc, timeout)];
    let now = feed(&f.t, &both, srv, t0, 16).await;
    assert!(f.pass(now).await.alerts.is_empty());
    let now = feed(&f.t, &bad, srv, now, 3).await;

    let r = f.pass(now).await;
    assert_eq!(
        kinds(&r),
        [("192.0.2.1".to_string(), AlertKind::Down, false)]
    );
    let rows = f.t.store().alerts_for_server(srv.id, 10).await.unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert!(!row.ok);
        let e = row.error.as_deref().unwrap();
        match row.channel {
            AlertChannel::Email => assert!(e.contains("refused by the test sink"), "{e}"),
            AlertChannel::Webhook => {
                assert_eq!(e, "webhook answered HTTP 500");
                assert!(!e.contains("s3cret"));
            }
        }
    }
    assert_eq!(f.hooks.all().len(), 1, "the receiver saw the attempt");
    assert!(f.sink.mails().is_empty());
    let metrics = f.t.state.metrics().render();
    assert!(metrics.contains("result=\"error\""), "{metrics}");

    // Not again inside the interval; retried after it.
    assert!(f.pass(now + 30 * MIN).await.alerts.is_empty());
    let r = f.pass(now + H).await;
    assert_eq!(
        kinds(&r),
        [("192.0.2.1".to_string(), AlertKind::Down, false)]
    );
    assert_eq!(
        f.t.store()
            .alerts_for_server(srv.id, 10)
            .await
            .unwrap()
            .len(),
        4
    );
}

/// A relay over STARTTLS or TLS with a login: the message arrives
/// encrypted with the credentials from the URL; the relay's certificate is
/// checked (refused without its CA); a URL that demands TLS never falls
/// back to plain text.
#[tokio::test]
async fn smtp_over_tls_with_login() {
    use server::alerts::Mailer;
    use smtp_sink::{CA_PEM, SinkTls};
    let t = Duration::from_secs(5);
    for (tls, scheme, query) in [
        (SinkTls::StartTls, "smtp", "?tls=required"),
        (SinkTls::Implicit, "smtps", ""),
    ] {
        let sink = SmtpSink::start_tls(tls).await;
        let port = sink.addr.port();
        let url: server::alerts::SmtpUrl =
            format!("{scheme}://alerts%40pool.test:s%3Acret@localhost:{port}{query}")
                .parse()
                .unwrap();
        let mailer = Mailer::new(&url, Some(CA_PEM), "alerts@pool.test", t).unwrap();
        mailer
            .send("op@example.org", "down: 192.0.2.1", "evidence")
            .await
            .unwrap_or_else(|e| panic!("{tls:?}: {e}"));
        let mails = sink.wait_for(1, Duration::from_secs(5)).await;
        assert!(mails[0].tls, "{tls:?}");
        assert_eq!(
            mails[0].login,
            Some(("alerts@pool.test".into(), "s:cret".into())),
            "{tls:?}"
        );
        assert_eq!(mails[0].to, ["op@example.org"]);
        assert_eq!(mails[0].text().trim(), "evidence");

        // Without the relay's CA the certificate is not trusted.
        let untrusted = Mailer::new(&url, None, "alerts@pool.test", t).unwrap();
        let err = untrusted
            .send("op@example.org", "down", "x")
            .await
            .unwrap_err();
        assert!(
            !err.contains("s:cret") && !err.contains("s%3Acret"),
            "{err}"
        );
        assert_eq!(sink.mails().len(), 1, "{tls:?}: nothing more delivered");
    }
    // A plain relay cannot satisfy ?tls=required: no mail, an error.
    let plain = SmtpSink::start().await;
    let url: server::alerts::SmtpUrl = format!("smtp://{}?tls=required", plain.addr)
        .parse()
        .unwrap();
    let mailer = Mailer::new(&url, Some(CA_PEM), "alerts@pool.test", t).unwrap();
    assert!(mailer.send("op@example.org", "down", "x").await.is_err());
    assert!(plain.mails().is_empty());
    // The CA only means something with TLS.
    let url: server::alerts::SmtpUrl = plain.url().parse().unwrap();
    let err = Mailer::new(&url, Some(CA_PEM), "alerts@pool.test", t).unwrap_err();
    assert!(err.contains("--smtp-ca"), "{err}");
}
