//! The volunteer's monitor pages over HTTP, on SQLite and PostgreSQL: the
//! list and the overview's link, one monitor's page (status and approval,
//! clock, checks, traceroutes, and a monitor blind to one server showing
//! it where its view differs), pause and resume (the monitor API gives a
//! paused monitor no work), CSRF, another account's monitor, escaping.
mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
#[macro_use]
#[path = "support/manage.rs"]
mod manage_support;

use axum::http::{Method, StatusCode};
use common::{Backend, TestApp};
use manage_support::*;
use server::admin::AddMonitor;
use store::testing::StoreTesting as _;
use store::{GlobalStatus, MonitorClock, MonitorStatus, ResultIn, SelectorChange, TracerouteIn};

on_both_backends!(
    pages_show_a_blind_link,
    pause_and_resume,
    refused_without_csrf_or_for_another_account,
    admin_add_checks_the_location
);

const ME: &str = "vol@example.net";

/// A monitor of `account` (None: the pool's own); its id and key.
async fn monitor(
    t: &TestApp,
    name: &str,
    location: &str,
    account: Option<&str>,
    status: GlobalStatus,
) -> (i64, String) {
    let (m, key) = server::admin::add_monitor(
        t.store(),
        AddMonitor {
            name: name.into(),
            ip: "198.51.100.7".parse().unwrap(),
            location: location.into(),
            account: account.map(str::to_string),
            status,
        },
        T0 - 86_400,
    )
    .await
    .unwrap();
    (m.id, key)
}

/// `n` results of `monitor` for `server`, through the store's ingest,
/// ending a minute before T0; timeouts when `ok` is false.
async fn results(t: &TestApp, monitor: i64, server: i64, n: i64, ok: bool) {
    for i in 0..n {
        let ts = T0 - 60 - n + i;
        let seq = t
            .store()
            .create_batch(monitor, &[server], ts)
            .await
            .unwrap();
        let r = ResultIn {
            server_id: server,
            ts,
            offset: ok.then_some(0.001),
            rtt: ok.then_some(0.02),
            stratum: ok.then_some(2),
            leap: ok.then_some(0),
            refid: ok.then(|| "GPS".into()),
            error: (!ok).then(|| "i/o timeout".into()),
            no_response: !ok,
        };
        t.store()
            .submit_results(monitor, seq, &[r], ts)
            .await
            .unwrap();
    }
}

/// The selector made `monitor` active for `server`.
async fn promote(t: &TestApp, monitor: i64, server: i64) {
    let change = SelectorChange {
        server_id: server,
        monitor_id: monitor,
        from: MonitorStatus::Candidate,
        to: MonitorStatus::Active,
        reason: "test".into(),
    };
    t.store()
        .apply_selector_changes(&[change], T0)
        .await
        .unwrap();
}

async fn account_name(t: &TestApp, email: &str) -> String {
    let id = account_id(t, email).await;
    t.store().account_info(id).await.unwrap().unwrap().name
}

async fn status(t: &TestApp, name: &str) -> GlobalStatus {
    t.store()
        .monitor_by_name(name)
        .await
        .unwrap()
        .unwrap()
        .status
}

/// The element with `id`, from the id to its table's, `dd`'s or `p`'s end.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[at..];
    let end = ["</table>", "</dd>", "</p>"]
        .iter()
        .filter_map(|e| rest.find(e))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

async fn pages_show_a_blind_link(backend: Backend) {
    let (t, sink, _clock) = setup!(backend);
    t.seed_zones().await;
    let me = sign_in(&t, &sink, ME).await;
    let account = account_name(&t, ME).await;
    let blind = t.add_server("192.0.2.1").await.id;
    let seen = t.add_server("192.0.2.2").await.id;
    let (mine, _) = monitor(
        &t,
        "zrh1",
        "<b>Zürich</b>",
        Some(&account),
        GlobalStatus::Active,
    )
    .await;
    let (o1, _) = monitor(&t, "other-1", "Lab", None, GlobalStatus::Active).await;
    let (o2, _) = monitor(&t, "other-2", "Lab", None, GlobalStatus::Testing).await;
    monitor(
        &t,
        "zrh1-v6",
        "Zürich",
        Some(&account),
        GlobalStatus::Pending,
    )
    .await;

    // Both others see both servers well; zrh1 sees 192.0.2.2 well and
    // 192.0.2.1 not at all (a blind link).
    for m in [mine, o1, o2] {
        for s in [blind, seen] {
            promote(&t, m, s).await;
            results(&t, m, s, 16, !(m == mine && s == blind)).await;
        }
    }
    t.store()
        .set_monitor_clock(&MonitorClock {
            monitor_id: mine,
            ok: true,
            detail: "clock agrees with 3 reference servers".into(),
            ts: T0 - 30,
        })
        .await
        .unwrap();
    t.store()
        .request_traceroutes(
            &[(blind, mine, "zrh1: healthy → i/o timeout".into())],
            T0 - 20,
        )
        .await
        .unwrap();
    let hops = vec![store::TracerouteHop {
        ttl: 1,
        ip: Some("10.0.0.1".parse().unwrap()),
        rtt_ms: vec![0.3],
        sent: 2,
    }];
    t.store()
        .store_traceroute(
            mine,
            "192.0.2.1".parse().unwrap(),
            &TracerouteIn {
                ts: T0 - 10,
                tool: "mtr".into(),
                hops,
                error: None,
            },
            T0 - 10,
        )
        .await
        .unwrap();

    // The overview links to the list; the list has the account's monitors only.
    let r = me.get(&t, "/manage").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(section(&r.text(), "monitors-summary").contains("href=\"/manage/monitors\""));
    assert!(r.text().contains("1 awaiting approval"), "{}", r.text());
    let r = me.get(&t, "/manage/monitors").await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.text();
    let table = section(&list, "monitors");
    assert!(table.contains("href=\"/manage/monitors/zrh1\""));
    assert!(table.contains("href=\"/manage/monitors/zrh1-v6\""));
    assert!(table.contains("awaiting approval"));
    assert!(!table.contains("other-1"), "{table}");
    assert!(list.contains("poolwatch agent setup --api http://pool.test"));
    assert!(list.contains("href=\"/manage/monitors/accept\""));
    assert_eq!(
        me.get(&t, "/manage/monitors/accept").await.status,
        StatusCode::OK
    );
    // Escaped, never markup.
    assert!(table.contains("&lt;b&gt;Zürich&lt;/b&gt;"), "{table}");
    assert!(!list.contains("<b>Zürich"));

    let page = me.get(&t, "/manage/monitors/zrh1").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(section(&html, "status").contains("active"));
    assert!(section(&html, "clock").contains("clock agrees with 3 reference servers"));
    assert_eq!(section(&html, "checks"), "id=\"checks\">32");
    let diff = section(&html, "differences");
    assert!(diff.contains("data-server=\"192.0.2.1\""), "{diff}");
    assert!(diff.contains("i/o timeout"));
    assert!(diff.contains("2 of 2"));
    assert!(!diff.contains("192.0.2.2"), "{diff}");
    let tr = section(&html, "traceroutes");
    assert!(tr.contains("zrh1: healthy → i/o timeout"), "{tr}");
    assert!(tr.contains("1 hops, last answer from 10.0.0.1"));
    assert!(html.contains("id=\"pause\""));

    // The others agree among themselves: nothing differs for them (other-1
    // is not the volunteer's, so they see it through the public pages only).
    assert_eq!(
        t.store()
            .monitor_blind_spots(o1, scoring::IN_DNS_THRESHOLD, 10)
            .await
            .unwrap(),
        []
    );

    // The pending one says so and offers neither button.
    let html = me.get(&t, "/manage/monitors/zrh1-v6").await.text();
    assert!(
        section(&html, "status").contains("pending: awaiting approval by the pool's admins"),
        "{html}"
    );
    assert!(!html.contains("id=\"pause\"") && !html.contains("id=\"resume\""));
    assert!(html.contains("id=\"no-differences\"") && html.contains("id=\"no-traceroutes\""));
}

async fn pause_and_resume(backend: Backend) {
    let (t, sink, _clock) = setup!(backend);
    t.seed_zones().await;
    let me = sign_in(&t, &sink, ME).await;
    let account = account_name(&t, ME).await;
    t.add_server("192.0.2.1").await;
    let (_, key) = monitor(&t, "zrh1", "Zürich", Some(&account), GlobalStatus::Active).await;
    monitor(
        &t,
        "zrh1-v6",
        "Zürich",
        Some(&account),
        GlobalStatus::Pending,
    )
    .await;
    let page = "/manage/monitors/zrh1";
    assert!(
        !t.work(&key).await.servers.is_empty(),
        "an active monitor gets work"
    );

    let r = me.post(&t, page, "/manage/monitors/zrh1/pause", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location"), page);
    assert_eq!(status(&t, "zrh1").await, GlobalStatus::Paused);
    let w = t
        .monitor_call(Method::POST, "/api/v1/monitor/work", Some(&key), None)
        .await;
    assert_eq!(
        w.status,
        StatusCode::FORBIDDEN,
        "a paused monitor gets no work"
    );
    let html = me.get(&t, page).await.text();
    assert!(section(&html, "status").contains("paused by you"));
    assert!(html.contains("id=\"resume\"") && !html.contains("id=\"pause\""));

    let r = me.post(&t, page, "/manage/monitors/zrh1/resume", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(status(&t, "zrh1").await, GlobalStatus::Active);
    let w = t
        .monitor_call(Method::POST, "/api/v1/monitor/work", Some(&key), None)
        .await;
    assert_eq!(w.status, StatusCode::OK);

    // Pending: the admins approve it, the volunteer cannot resume or pause it.
    for what in ["pause", "resume"] {
        let r = me
            .post(&t, page, &format!("/manage/monitors/zrh1-v6/{what}"), &[])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}");
        assert!(
            r.text().contains("status: monitor zrh1-v6 is pending"),
            "{}",
            r.text()
        );
    }
    assert_eq!(status(&t, "zrh1-v6").await, GlobalStatus::Pending);

    // Audited, in order.
    let id = account_id(&t, ME).await;
    let log: Vec<(String, String)> = t
        .store()
        .audit_log(id, 10)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .filter(|r| r.action.starts_with("monitor."))
        .map(|r| (r.action, r.detail))
        .collect();
    assert_eq!(
        log,
        [
            ("monitor.pause".to_string(), "active → paused".to_string()),
            ("monitor.resume".to_string(), "paused → active".to_string()),
        ]
    );
}

async fn refused_without_csrf_or_for_another_account(backend: Backend) {
    let (t, sink, _clock) = setup!(backend);
    t.seed_zones().await;
    let me = sign_in(&t, &sink, ME).await;
    let them = sign_in(&t, &sink, "other@example.net").await;
    let account = account_name(&t, ME).await;
    monitor(&t, "zrh1", "Zürich", Some(&account), GlobalStatus::Active).await;
    monitor(&t, "pool-1", "Lab", None, GlobalStatus::Active).await;

    // No CSRF token, or a wrong one: 403, nothing changed.
    for body in [
        "",
        "csrf=0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let r = send(
            &t,
            Some(&me.cookie),
            Method::POST,
            "/manage/monitors/zrh1/pause",
            body,
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{body:?}");
    }
    assert_eq!(status(&t, "zrh1").await, GlobalStatus::Active);
    // Not signed in: to the sign-in page.
    let r = send(&t, None, Method::GET, "/manage/monitors/zrh1", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // Another account's monitor, the pool's own, or none: 404 to page and post.
    for (who, name) in [(&them, "zrh1"), (&me, "pool-1"), (&me, "nope")] {
        let r = who.get(&t, &format!("/manage/monitors/{name}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{name}");
        let r = who
            .post(
                &t,
                "/manage/monitors",
                &format!("/manage/monitors/{name}/pause"),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{name}");
    }
    assert_eq!(status(&t, "zrh1").await, GlobalStatus::Active);
    assert_eq!(status(&t, "pool-1").await, GlobalStatus::Active);
    let list = them.get(&t, "/manage/monitors").await.text();
    assert!(list.contains("id=\"no-monitors\"") && !list.contains("zrh1"));
}

/// `admin monitor add` takes the location under the accept form's rule
/// (it is shown on the volunteer's and the public pages).
async fn admin_add_checks_the_location(backend: Backend) {
    let (t, _sink, _clock) = setup!(backend);
    for bad in ["x".repeat(101), "Lab\u{202E}BAL".into()] {
        let r = server::admin::add_monitor(
            t.store(),
            AddMonitor {
                name: "loc1".into(),
                ip: "198.51.100.7".parse().unwrap(),
                location: bad.clone(),
                account: None,
                status: GlobalStatus::Active,
            },
            T0,
        )
        .await;
        let e = r
            .err()
            .unwrap_or_else(|| panic!("{bad:?} taken"))
            .to_string();
        assert!(e.starts_with("location: "), "{e}");
    }
    assert!(t.store().monitor_by_name("loc1").await.unwrap().is_none());
}
