//! The agent's client and access tokens, against a scripted service on
//! 127.0.0.1: the key goes only to the token route; a 401 on a token gets
//! a new token and one more try; a service without the route (404) gets
//! the key on every call; a revoked monitor's refusal is the call's error.

use agent::api_client::{Api, ApiError};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

type Calls = Arc<Mutex<Vec<(String, String)>>>;
/// What the service answers: (path, bearer, earlier calls) → (status, body).
type Script = fn(&str, &str, &[(String, String)]) -> (u16, String);

/// Answers each request with `script(path, bearer, calls so far)` →
/// (status, body); records (path, bearer).
fn service(script: Script) -> (String, Calls) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let calls: Calls = Arc::default();
    let c = calls.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().map_while(Result::ok) {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&raw).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let bearer = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .starts_with("authorization:")
                        .then(|| l[14..].trim().to_string())
                })
                .unwrap_or_default()
                .trim_start_matches("Bearer ")
                .to_string();
            let (status, body) = {
                let mut calls = c.lock().unwrap();
                let r = script(&path, &bearer, &calls);
                calls.push((path, bearer));
                r
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, calls)
}

const CONFIG: &str = r#"{"name":"m","ip":"192.0.2.1","samples":4,"sample_interval_ms":2000,"timeout_ms":3000,"reference_servers":[],"batch_size":10}"#;

fn token(n: usize) -> (u16, String) {
    (
        200,
        format!(r#"{{"token":"pwa_1_9_{n}","expires_in":3600}}"#),
    )
}

#[tokio::test]
async fn key_buys_a_token_and_a_401_renews_it_once() {
    let (url, calls) = service(|path, bearer, calls| {
        let tokens = calls.iter().filter(|(p, _)| p == api::TOKEN_PATH).count();
        match path {
            api::TOKEN_PATH if bearer == "pwk_k" => token(tokens),
            // The first token is refused (expired, say); the second works.
            api::CONFIG_PATH if bearer == "pwa_1_9_1" => (200, CONFIG.into()),
            _ => (401, r#"{"error":"unauthorized","detail":"no"}"#.into()),
        }
    });
    let api = Api::new(&url, "pwk_k").unwrap();
    assert_eq!(api.config().await.unwrap().name, "m");
    // The token is kept: the next call asks for none.
    api.config().await.unwrap();
    let calls = calls.lock().unwrap().clone();
    let seen: Vec<(&str, &str)> = calls
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (api::TOKEN_PATH, "pwk_k"),
            (api::CONFIG_PATH, "pwa_1_9_0"),
            (api::TOKEN_PATH, "pwk_k"),
            (api::CONFIG_PATH, "pwa_1_9_1"),
            (api::CONFIG_PATH, "pwa_1_9_1"),
        ]
    );
}

#[tokio::test]
async fn a_service_without_tokens_gets_the_key() {
    let (url, calls) = service(|path, _, _| match path {
        api::CONFIG_PATH => (200, CONFIG.into()),
        _ => (
            404,
            r#"{"error":"not_found","detail":"no such route"}"#.into(),
        ),
    });
    let api = Api::new(&url, "pwk_k").unwrap();
    api.config().await.unwrap();
    api.config().await.unwrap();
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "one token try, then the key: {calls:?}");
    assert!(
        calls[1..]
            .iter()
            .all(|(p, b)| p == api::CONFIG_PATH && b == "pwk_k")
    );
}

#[tokio::test]
async fn a_revoked_monitor_gets_the_refusal() {
    let (url, calls) = service(|_, _, _| {
        (
            401,
            r#"{"error":"unauthorized","detail":"monitor m is revoked"}"#.into(),
        )
    });
    let api = Api::new(&url, "pwk_k").unwrap();
    match api.config().await {
        Err(ApiError::Rejected { status: 401, body }) => {
            assert!(body.contains("revoked"), "{body}")
        }
        other => panic!("{other:?}"),
    }
    let calls = calls.lock().unwrap().clone();
    assert!(calls.iter().all(|(p, _)| p == api::TOKEN_PATH), "{calls:?}");
}
