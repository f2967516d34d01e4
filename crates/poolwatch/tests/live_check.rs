//! A server added end to end with the real binaries on loopback: `poolwatch
//! sim`, `poolwatch serve --allow-private` and two `poolwatch agent --lab`.
//! Through the manage API (an account's token): a live check of a sim
//! server is handed out with both agents' next work calls, each checks the
//! address itself (the service sends no NTP packet), their answers come
//! back and the server is added. A public address is refused by the lab
//! agents' target policy: they say so instead of checking it, and it is not
//! added.

mod common;

use common::Sim;
use common::e2e::{
    Proc, add_monitor_key, agent_args, busy_serve_args, free_tcp_port, free_udp_port_on, get,
    request, wait_until,
};
use serde_json::{Value, json};
use std::time::Duration;
use store::Store;

const SERVER: &str = "127.0.5.1";
const AGENTS: [(&str, &str); 2] = [("zrh", "127.0.4.1"), ("ams", "127.0.4.2")];
const TOKEN: &str = "pwt_live_check_test";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A manage API call with the account's token: (status, JSON).
fn call(http: u16, method: &str, path: &str, body: Value) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let mut h = vec![("Authorization", auth.as_str())];
    let body = if body.is_null() {
        String::new()
    } else {
        h.push(("Content-Type", "application/json"));
        body.to_string()
    };
    let (st, text) = request(http, method, path, &h, &body).expect("the service answers");
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (st, v)
}

/// Starts a live check of `ip`; waits until every monitor asked answered.
fn checked(http: u16, ip: &str) -> Value {
    let (st, c) = call(
        http,
        "POST",
        "/api/v1/manage/servers/checks",
        json!({"ip": ip}),
    );
    assert_eq!(st, 201, "{c}");
    assert_eq!(c["monitors"].as_array().unwrap().len(), 2, "{c}");
    let path = format!("/api/v1/manage/servers/checks/{}", c["id"]);
    let mut last = Value::Null;
    wait_until("both agents to answer", Duration::from_secs(60), || {
        last = call(http, "GET", &path, Value::Null).1;
        last["finished"] == true
    });
    last
}

#[test]
fn two_lab_agents_answer_a_live_check_and_the_server_is_added() {
    let ntp = free_udp_port_on(&[SERVER]);
    let http = free_tcp_port();
    let _sim = Sim::start(&format!(
        "[[server]]\naddr = \"{SERVER}:{ntp}\"\nbehaviour = {{ offset = 0.25, stratum = 3 }}\n"
    ));
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let keys: Vec<String> = AGENTS
        .iter()
        .map(|(name, ip)| add_monitor_key(dir, name, ip))
        .collect();
    let mut args = busy_serve_args(&format!("127.0.0.1:{http}"), dir, &[]);
    args.push("--allow-private".into());
    let _serve = Proc::spawn(&args);
    wait_until("the service to answer", Duration::from_secs(30), || {
        get(http, "/api/v1/zones").is_some()
    });
    // An account and its API token, in the service's own database (SQLite
    // allows both).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::open(None, dir)).unwrap();
    let acct = rt.block_on(store.ensure_account("op")).unwrap();
    rt.block_on(store.create_token(
        acct,
        "test",
        &server::keys::hash_key(TOKEN),
        None,
        "admin:test",
        now(),
    ))
    .unwrap();

    let api = format!("http://127.0.0.1:{http}");
    let agents: Vec<Proc> = AGENTS
        .iter()
        .zip(&keys)
        .map(|((name, ip), key)| Proc::spawn(&agent_args(dir, &api, ntp, name, ip, key)))
        .collect();
    // Monitors are asked only once they have called (seen recently).
    wait_until("both agents to call", Duration::from_secs(60), || {
        rt.block_on(store.list_monitors())
            .unwrap()
            .iter()
            .all(|m| m.last_seen.is_some())
    });

    let c = checked(http, SERVER);
    assert_eq!(c["usable"], true, "{c}");
    let mut names = Vec::new();
    for m in c["monitors"].as_array().unwrap() {
        names.push(m["monitor"].as_str().unwrap().to_string());
        let a = &m["answer"];
        assert_eq!(
            (a["stratum"].as_u64(), &a["error"]),
            (Some(3), &Value::Null),
            "{m}"
        );
        let off = a["offset"].as_f64().expect("an offset");
        assert!((off - 0.25).abs() < 0.05, "{m}");
    }
    names.sort();
    assert_eq!(names, ["ams", "zrh"]);
    // No GeoIP here: the operator picks the zone.
    let (st, added) = call(
        http,
        "POST",
        "/api/v1/manage/servers",
        json!({"check_id": c["id"]}),
    );
    assert_eq!(st, 400, "{added}");
    let (st, added) = call(
        http,
        "POST",
        "/api/v1/manage/servers",
        json!({"check_id": c["id"], "country": "de"}),
    );
    assert_eq!(st, 201, "{added}");
    assert_eq!(added["server"]["netspeed"], 1500);
    let (st, public) = get(http, &format!("/api/v1/servers/{SERVER}")).unwrap();
    assert_eq!(st, 200, "{public}");

    // Lab agents never send to a public address: they answer why not, and
    // the server is not added.
    let c = checked(http, "8.8.8.8");
    assert_eq!(c["usable"], false, "{c}");
    for m in c["monitors"].as_array().unwrap() {
        let e = m["answer"]["error"].as_str().unwrap_or("");
        assert!(e.starts_with("not checked: "), "{m}");
    }
    assert!(
        c["failure"]
            .as_str()
            .unwrap()
            .contains("wait 10–20 minutes"),
        "{c}"
    );
    let (st, refused) = call(
        http,
        "POST",
        "/api/v1/manage/servers",
        json!({"check_id": c["id"], "country": "de"}),
    );
    assert_eq!(st, 409, "{refused}");
    for a in &agents {
        assert!(
            a.log().contains(&format!("of {SERVER}: stratum 3")),
            "{}",
            a.log()
        );
    }
    rt.block_on(store.close());
}
