//! Client distribution on the pages (issue 17 item 3), on SQLite and
//! PostgreSQL: the server page's section (share beside netspeed share,
//! top countries; a clear text before any counts) and the admin page's
//! list of servers far above their netspeed share (admins only).

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
#[macro_use]
#[path = "support/manage.rs"]
mod manage_support;

use axum::http::StatusCode;
use common::Backend;
use dns::{CountReport, ServerCount};
use manage_support::*;

on_both_backends!(server_page_shows_the_distribution, admin_flags_outliers);

fn server(ip: &str, answers: &[(&str, u64)], zone_answers: u64, expected: f64) -> ServerCount {
    ServerCount {
        ip: ip.parse().unwrap(),
        answers: answers.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
        zone_answers,
        expected,
    }
}

fn report(id: &str, countries: &[(&str, u64)], servers: Vec<ServerCount>) -> CountReport {
    CountReport {
        report_id: id.into(),
        instance: "dns-1".into(),
        from: T0 - 60,
        to: T0,
        answers_by_country: countries.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
        servers,
    }
}

async fn server_page_shows_the_distribution(backend: Backend) {
    let (t, _sink, _) = setup!(backend);
    t.seed_zones().await;
    t.add_server("192.0.2.10").await;
    let before = t.get("/scores/192.0.2.10").await;
    assert_eq!(before.status, StatusCode::OK);
    let html = before.text();
    assert!(html.contains("Client distribution"), "{html}");
    assert!(html.contains("id=\"distribution-none\""), "{html}");
    assert!(html.contains("No DNS answer counts"), "{html}");

    let r = report(
        "p1",
        &[("de", 20_000), ("fr", 5_000), ("-", 100)],
        vec![server(
            "192.0.2.10",
            &[("de", 3_000), ("fr", 50), ("-", 7)],
            25_100,
            1_255.0,
        )],
    );
    t.store().record_dns_counts(&r, T0).await.unwrap();
    let html = t.get("/scores/192.0.2.10").await.text();
    assert!(!html.contains("id=\"distribution-none\""), "{html}");
    // 3057 of 25100 answers = 12.2 %; netspeed share 1255 / 25100 = 5.0 %.
    assert!(html.contains("<dd id=\"dns-share\">12.2 %</dd>"), "{html}");
    assert!(
        html.contains("<dd id=\"netspeed-share\">5.000 %</dd>"),
        "{html}"
    );
    // Countries, most answers first, with the permyriad of each.
    let de = html.find("data-country=\"de\"").expect("de row");
    let fr = html.find("data-country=\"fr\"").expect("fr row");
    let unknown = html.find("data-country=\"-\"").expect("- row");
    assert!(de < fr && fr < unknown, "{html}");
    assert!(html.contains("<td>DE</td><td class=\"num\">3000</td><td class=\"num\">20000</td><td class=\"num\">1500.0</td>"), "{html}");
    assert!(html.contains("<td>not located</td>"), "{html}");
    assert!(html.contains("href=\"/api/v1/servers/192.0.2.10/dns\""));
}

async fn admin_flags_outliers(backend: Backend) {
    let (t, sink, _) = setup!(backend);
    let vic = sign_in(&t, &sink, "vic@example.org").await;
    let wyn = sign_in(&t, &sink, "wyn@example.org").await;
    server::admin::set_account_flags(t.store(), "vic", Some(true), None, T0)
        .await
        .unwrap();
    t.seed_zones().await;
    for ip in ["192.0.2.10", "192.0.2.11", "192.0.2.12"] {
        t.add_server(ip).await;
    }
    let page = vic.get(&t, "/manage/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text().contains("id=\"dns-share-none\""),
        "{}",
        page.text()
    );

    let r = report(
        "a1",
        &[("de", 30_000)],
        vec![
            // 2.5× its netspeed share, plenty of answers: flagged.
            server("192.0.2.10", &[("de", 5_000)], 30_000, 2_000.0),
            // 1.5×: not.
            server("192.0.2.11", &[("de", 3_000)], 30_000, 2_000.0),
            // 5×, but 500 answers are too few to mean anything.
            server("192.0.2.12", &[("de", 500)], 30_000, 100.0),
        ],
    );
    t.store().record_dns_counts(&r, T0).await.unwrap();
    let html = vic.get(&t, "/manage/admin").await.text();
    assert!(!html.contains("id=\"dns-share-none\""), "{html}");
    assert!(
        html.contains("href=\"/scores/192.0.2.10#client-distribution\""),
        "{html}"
    );
    assert!(html.contains("2.5×"), "{html}");
    assert!(!html.contains("/scores/192.0.2.11#"), "{html}");
    assert!(!html.contains("/scores/192.0.2.12#"), "{html}");
    // Not an admin: no such page.
    assert_eq!(
        wyn.get(&t, "/manage/admin").await.status,
        StatusCode::NOT_FOUND
    );
}
