//! Helpers of the manage tests: an app whose mail goes to a local SMTP
//! sink, and a signed-in "browser" (its session cookie) that reads CSRF
//! tokens from pages and posts forms. Include it with
//! `#[macro_use] #[path = "support/manage.rs"] mod manage_support;` after
//! `mod common;` and the `smtp_sink` module.

#![allow(dead_code)]

use crate::common::{Backend, CLIENT, Resp, TestApp, TestDb};
use crate::smtp_sink::SmtpSink;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use server::alerts::AlertConfig;
use server::{Clock, ServerConfig};
use std::time::Duration;

pub const T0: i64 = 1_800_000_000;
pub const WAIT: Duration = Duration::from_secs(10);

pub fn config(sink: &SmtpSink, public_url: &str) -> ServerConfig {
    let mut cfg = ServerConfig {
        alerts: Some(AlertConfig {
            smtp: Some(sink.url().parse().unwrap()),
            from: Some("poolwatch <pool@pool.test>".into()),
            public_url: public_url.into(),
            send_timeout: Duration::from_secs(5),
            ..AlertConfig::default()
        }),
        ..ServerConfig::default()
    };
    cfg.manage.session_idle = Duration::from_secs(3600);
    cfg.manage.session_absolute = Duration::from_secs(3 * 3600);
    cfg
}

/// An app at fixed time [`T0`] sending mail to a fresh sink.
pub async fn app(backend: Backend, public_url: &str) -> Option<(TestApp, SmtpSink, Clock)> {
    let sink = SmtpSink::start().await;
    let db = TestDb::open(backend).await?;
    let clock = Clock::fixed(T0);
    let t = TestApp::new(db, config(&sink, public_url)).with_clock(clock.clone());
    Some((t, sink, clock))
}

#[macro_export]
macro_rules! setup {
    ($backend:expr) => {
        match $crate::manage_support::app($backend, "http://pool.test").await {
            Some(x) => x,
            None => return,
        }
    };
}

/// A browser's session: its cookie.
#[derive(Clone)]
pub struct Browser {
    pub cookie: String,
}

pub async fn send(
    t: &TestApp,
    cookie: Option<&str>,
    method: Method,
    uri: &str,
    form: &str,
) -> Resp {
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    let c = cookie.map(|c| format!("poolwatch_session={c}"));
    if let Some(c) = &c {
        headers.push(("cookie", c));
    }
    t.send_from(CLIENT, method, uri, &headers, Body::from(form.to_string()))
        .await
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Browser {
    pub async fn get(&self, t: &TestApp, uri: &str) -> Resp {
        send(t, Some(&self.cookie), Method::GET, uri, "").await
    }

    /// The CSRF token printed on `page`.
    pub async fn csrf(&self, t: &TestApp, page: &str) -> String {
        let r = self.get(t, page).await;
        assert_eq!(r.status, StatusCode::OK, "{page}: {}", r.text());
        let html = r.text();
        let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
        html[at..at + 64].to_string()
    }

    /// POSTs `fields` to `uri` with the CSRF token of `page`.
    pub async fn post(&self, t: &TestApp, page: &str, uri: &str, fields: &[(&str, &str)]) -> Resp {
        let csrf = self.csrf(t, page).await;
        let mut body = format!("csrf={csrf}");
        for (k, v) in fields {
            body.push_str(&format!("&{k}={}", enc(v)));
        }
        send(t, Some(&self.cookie), Method::POST, uri, &body).await
    }
}

/// The sign-in (or invitation) link in the newest mail to `to`.
pub fn link_in(sink: &SmtpSink, to: &str) -> String {
    let mail = sink
        .mails()
        .into_iter()
        .rev()
        .find(|m| m.header("To").is_some_and(|h| h.contains(to)))
        .unwrap_or_else(|| panic!("no mail to {to}"));
    let text = mail.text();
    let at = text.find("/manage/link/").expect("a link in the mail");
    text[at..at + "/manage/link/pwl_".len() + 64].to_string()
}

pub async fn ask_link(t: &TestApp, email: &str) -> Resp {
    send(
        t,
        None,
        Method::POST,
        "/manage/signin",
        &format!("email={}", enc(email)),
    )
    .await
}

/// Follows `link` (POST, as its page's button does) with `cookie`.
pub async fn follow(t: &TestApp, link: &str, cookie: Option<&str>) -> Resp {
    send(t, cookie, Method::POST, link, "").await
}

pub fn session_cookie(r: &Resp) -> String {
    let set = r.header("set-cookie");
    let v = set
        .strip_prefix("poolwatch_session=")
        .unwrap_or_else(|| panic!("no session cookie: {set:?} ({})", r.status));
    v.split(';').next().unwrap().to_string()
}

/// Signs `email` in through the mailed link: its browser.
pub async fn sign_in(t: &TestApp, sink: &SmtpSink, email: &str) -> Browser {
    let before = sink.mails().len();
    assert_eq!(ask_link(t, email).await.status, StatusCode::OK);
    sink.wait_for(before + 1, WAIT).await;
    let r = follow(t, &link_in(sink, email), None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location"), "/manage");
    Browser {
        cookie: session_cookie(&r),
    }
}

pub async fn account_id(t: &TestApp, email: &str) -> i64 {
    let u = t.store().user_by_email(email).await.unwrap().unwrap();
    t.store().memberships(u.id).await.unwrap()[0].account_id
}
