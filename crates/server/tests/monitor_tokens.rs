//! Short-lived access tokens on the monitor API, each on SQLite and
//! PostgreSQL: the key buys a token, the token works on every other route
//! until it expires, and the monitor's row is read on every call, so a
//! revoked, paused or rotated monitor is refused at its next call.

mod common;

use axum::http::{Method, StatusCode};
use common::{Backend, now};
use server::{Clock, ServerConfig};
use store::GlobalStatus;

const CONFIG: &str = api::CONFIG_PATH;

on_both_backends!(
    token_works_until_it_expires,
    revoked_monitor_is_refused_at_its_next_call,
    forged_or_altered_tokens_are_refused,
    rotated_key_voids_old_tokens,
    pending_and_paused_are_forbidden,
    legacy_key_still_works,
);

/// A token for `key`, asserting the answer's shape.
async fn token(t: &common::TestApp, key: &str) -> String {
    let r = t
        .monitor_call(Method::POST, api::TOKEN_PATH, Some(key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let a: api::AccessToken = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(a.expires_in, server::keys::TOKEN_LIFETIME_S as u64);
    assert!(a.token.starts_with("pwa_") && !a.token.contains(key));
    a.token
}

async fn status(t: &common::TestApp, method: Method, path: &str, bearer: &str) -> StatusCode {
    t.monitor_call(method, path, Some(bearer), None)
        .await
        .status
}

async fn token_works_until_it_expires(backend: Backend) {
    // One instant for the whole test: the token is made at t0 on the
    // fixed clock, so its expiry is t0 + lifetime whatever the wall clock.
    let t0 = now();
    let clock = Clock::fixed(t0);
    let t = app_or_skip!(backend, ServerConfig::default()).with_clock(clock.clone());
    let (_, key) = t.add_monitor("tok-mon", GlobalStatus::Active).await;
    let tok = token(&t, &key).await;
    for (m, p) in [(Method::GET, CONFIG), (Method::POST, api::WORK_PATH)] {
        assert_eq!(status(&t, m, p, &tok).await, StatusCode::OK, "{p}");
    }
    // A token cannot buy another token: only the key can.
    let r = t
        .monitor_call(Method::POST, api::TOKEN_PATH, Some(&tok), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    // One second before expiry it still works; at expiry it does not.
    clock.set(t0 + server::keys::TOKEN_LIFETIME_S - 1);
    assert_eq!(status(&t, Method::GET, CONFIG, &tok).await, StatusCode::OK);
    clock.set(t0 + server::keys::TOKEN_LIFETIME_S);
    let r = t.monitor_call(Method::GET, CONFIG, Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.error_detail().contains("expired"), "{}", r.text());
    // The key gets a fresh one.
    let fresh = token(&t, &key).await;
    assert_eq!(
        status(&t, Method::GET, CONFIG, &fresh).await,
        StatusCode::OK
    );
}

async fn revoked_monitor_is_refused_at_its_next_call(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (m, key) = t.add_monitor("revoke-me", GlobalStatus::Active).await;
    let (_, other_key) = t.add_monitor("stays", GlobalStatus::Active).await;
    let tok = token(&t, &key).await;
    let other = token(&t, &other_key).await;
    assert_eq!(status(&t, Method::GET, CONFIG, &tok).await, StatusCode::OK);
    t.store()
        .set_monitor_status(&m.name, GlobalStatus::Deleted)
        .await
        .unwrap();
    for bearer in [&tok, &key] {
        let r = t
            .monitor_call(Method::GET, CONFIG, Some(bearer), None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
        assert!(r.error_detail().contains("revoked"), "{}", r.text());
    }
    let r = t
        .monitor_call(Method::POST, api::TOKEN_PATH, Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The other monitor keeps working.
    assert_eq!(
        status(&t, Method::GET, CONFIG, &other).await,
        StatusCode::OK
    );
}

async fn forged_or_altered_tokens_are_refused(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (a, key) = t.add_monitor("mon-a", GlobalStatus::Active).await;
    let (b, _) = t.add_monitor("mon-b", GlobalStatus::Active).await;
    let tok = token(&t, &key).await;
    let mac = tok.rsplit('_').next().unwrap();
    let exp: i64 = tok.split('_').nth(2).unwrap().parse().unwrap();
    let other_secret = server::keys::AccessTokens::new(b"not the service's secret");
    let forged = [
        // Another monitor's id, a later expiry, on the same mac.
        format!("pwa_{}_{exp}_{mac}", b.id),
        format!("pwa_{}_{}_{mac}", a.id, exp + 86_400),
        // A mac made with another secret, one hex digit changed, none.
        other_secret.sign(a.id, exp, &a.key_hash),
        format!(
            "{}{}",
            &tok[..tok.len() - 1],
            if tok.ends_with('0') { '1' } else { '0' }
        ),
        format!("pwa_{}_{exp}", a.id),
        "pwa_".to_string(),
        // A monitor that does not exist.
        format!("pwa_999999_{exp}_{mac}"),
    ];
    for f in forged {
        let r = t.monitor_call(Method::GET, CONFIG, Some(&f), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{f}: {}", r.text());
    }
    assert_eq!(status(&t, Method::GET, CONFIG, &tok).await, StatusCode::OK);
}

async fn rotated_key_voids_old_tokens(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (m, key) = t.add_monitor("rot-mon", GlobalStatus::Active).await;
    let old = token(&t, &key).await;
    let (_, new_key) = server::admin::rotate_monitor_key(t.store(), &m.name)
        .await
        .unwrap();
    assert_eq!(
        status(&t, Method::GET, CONFIG, &old).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&t, Method::POST, api::TOKEN_PATH, &key).await,
        StatusCode::UNAUTHORIZED
    );
    let new = token(&t, &new_key).await;
    assert_eq!(status(&t, Method::GET, CONFIG, &new).await, StatusCode::OK);
}

async fn pending_and_paused_are_forbidden(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (_, pending) = t.add_monitor("waits", GlobalStatus::Pending).await;
    let r = t
        .monitor_call(Method::POST, api::TOKEN_PATH, Some(&pending), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.error_detail().contains("pending"), "{}", r.text());
    // A token made while active stops at the pause, and works again after.
    let (m, key) = t.add_monitor("pauses", GlobalStatus::Active).await;
    let tok = token(&t, &key).await;
    t.store()
        .set_monitor_status(&m.name, GlobalStatus::Paused)
        .await
        .unwrap();
    assert_eq!(
        status(&t, Method::POST, api::WORK_PATH, &tok).await,
        StatusCode::FORBIDDEN
    );
    t.store()
        .set_monitor_status(&m.name, GlobalStatus::Active)
        .await
        .unwrap();
    assert_eq!(
        status(&t, Method::POST, api::WORK_PATH, &tok).await,
        StatusCode::OK
    );
}

/// Agents older than tokens send their key on every call; it still works.
async fn legacy_key_still_works(backend: Backend) {
    let t = app_or_skip!(backend, ServerConfig::default());
    let (_, key) = t.add_monitor("old-agent", GlobalStatus::Active).await;
    for (m, p) in [(Method::GET, CONFIG), (Method::POST, api::WORK_PATH)] {
        assert_eq!(status(&t, m, p, &key).await, StatusCode::OK, "{p}");
    }
}
