//! Each message's JSON is pinned to the examples of `crates/server/API.md`:
//! an example parses into its type, and the type writes it back unchanged
//! (compared as JSON values, so spacing and key order do not matter).

use api::{
    Accepted, AccessToken, ClockReport, LiveCheckReport, MonitorConfig, Registered, Registration,
    RegistrationPoll, RegistrationState, RegistrationStatus, Submission, TracerouteStored,
    TracerouteSubmission, Work, WorkRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const API_MD: &str = include_str!("../../server/API.md");

/// The JSON examples of the `### ` section whose heading starts with
/// `heading`, in order (the heading line itself not included): fenced
/// blocks and inline code spans that parse as a JSON object.
fn examples(heading: &str) -> Vec<Value> {
    let start = API_MD
        .find(&format!("\n### {heading}"))
        .unwrap_or_else(|| panic!("API.md has no section {heading:?}"));
    let body = &API_MD[start + 1..];
    let body = &body[body.find('\n').unwrap()..];
    let section = &body[..body.find("\n#").unwrap_or(body.len())];
    let mut out = Vec::new();
    let mut rest = section;
    while let Some(i) = rest.find('`') {
        rest = &rest[i..];
        let fenced = rest
            .strip_prefix("```json\n")
            .or_else(|| rest.strip_prefix("```"));
        let (code, after) = if let Some(block) = fenced {
            let end = block.find("```").expect("closed block");
            (&block[..end], &block[end + 3..])
        } else {
            let span = &rest[1..];
            let end = span.find('`').expect("closed span");
            (&span[..end], &span[end + 1..])
        };
        if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(code) {
            out.push(v);
        }
        rest = after;
    }
    out
}

/// Parse `example` as `T`, write it back, and compare.
fn round_trip<T: Serialize + DeserializeOwned + std::fmt::Debug>(example: &Value) -> T {
    let typed: T = serde_json::from_value(example.clone())
        .unwrap_or_else(|e| panic!("{example} is not a {}: {e}", std::any::type_name::<T>()));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(&back, example, "{typed:?}");
    typed
}

#[test]
fn token() {
    let ex = examples("`POST /api/v1/monitor/token`");
    let t: AccessToken = round_trip(&ex[0]);
    assert_eq!(t.expires_in, 3600);
    assert!(t.token.starts_with("pwa_"));
}

#[test]
fn config() {
    let ex = examples("`GET /api/v1/monitor/config`");
    let c: MonitorConfig = round_trip(&ex[0]);
    assert_eq!((c.name.as_str(), c.batch_size), ("defra1", 10));
}

#[test]
fn work() {
    let ex = examples("`POST /api/v1/monitor/work`");
    let w: Work = round_trip(&ex[0]);
    assert_eq!(w.servers.len(), 1);
    assert_eq!(w.traceroutes.len(), 1);
    assert_eq!(w.live_checks[0].ip, "198.51.100.7");
    // The request: `{}`, and written as `{}`.
    let r: WorkRequest = serde_json::from_str("{}").unwrap();
    assert_eq!(serde_json::to_string(&r).unwrap(), "{}");
}

#[test]
fn work_without_traceroutes_is_read_as_none() {
    let w: Work =
        serde_json::from_str(r#"{"batch_id":"","servers":[],"retry_after_s":5}"#).unwrap();
    assert!(w.traceroutes.is_empty());
    assert!(w.live_checks.is_empty());
}

#[test]
fn results_and_answer() {
    let ex = examples("`POST /api/v1/monitor/results`");
    let s: Submission = round_trip(&ex[0]);
    assert_eq!(s.results[0].ip.to_string(), "192.0.2.1");
    let samples = &s.results[0].samples;
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[1].error.as_deref(), Some("RATE"));
    assert!(!samples[2].answered);
    // `{"accepted": n, …}` is prose; the duplicate answer is an example.
    let a: Accepted = round_trip(&ex[1]);
    assert!(a.duplicate);
    round_trip::<Accepted>(&serde_json::json!({"accepted": 3, "duplicate": false}));
}

#[test]
fn results_may_omit_what_api_md_says_is_optional() {
    let s: Submission = serde_json::from_str(
        r#"{"batch_id":"1","results":[{"ip":"2001:db8::1","ticket":"t","ts":1}]}"#,
    )
    .unwrap();
    let r = &s.results[0];
    assert_eq!(
        (r.offset, r.error.as_deref(), r.no_response),
        (None, None, false)
    );
    // An older agent's result: no samples, and none written back.
    assert!(r.samples.is_empty());
    assert!(serde_json::to_value(r).unwrap().get("samples").is_none());
    // A sample's optional fields may be omitted too.
    let s: api::Sample =
        serde_json::from_str(r#"{"position":0,"send_ms":0,"answered":false}"#).unwrap();
    assert_eq!((s.rtt, s.error), (None, None));
}

#[test]
fn clock() {
    let ex = examples("`POST /api/v1/monitor/clock`");
    let c: ClockReport = round_trip(&ex[0]);
    assert!(c.ok);
}

#[test]
fn traceroute_and_answer() {
    let ex = examples("Automatic traceroutes");
    let t: TracerouteSubmission = round_trip(&ex[0]);
    assert_eq!((t.hops.len(), t.hops[1].ip), (2, None));
    let s: TracerouteStored = round_trip(&ex[1]);
    assert!(s.stored);
}

#[test]
fn live_check_report() {
    let ex = examples("Live checks");
    let r: LiveCheckReport = round_trip(&ex[0]);
    assert_eq!((r.id.as_str(), r.stratum), ("17", Some(2)));
}

#[test]
fn registration_and_answer() {
    let ex = examples("Monitor registration");
    let r: Registration = round_trip(&ex[0]);
    assert_eq!(r.secret.len(), 64);
    assert_eq!(r.name_hint, "zrh1");
    let a: Registered = round_trip(&ex[1]);
    assert!(a.url.ends_with(&a.code), "{a:?}");
    assert_eq!(a.expires_in, 3600);
    // Only the secret is required.
    let bare: Registration =
        serde_json::from_value(serde_json::json!({"secret": r.secret})).unwrap();
    assert_eq!(bare.hostname, "");
}

#[test]
fn registration_status() {
    let ex = examples("`POST /api/v1/monitor/register/status`");
    let p: RegistrationPoll = round_trip(&ex[0]);
    assert_eq!(p.secret.len(), 64);
    let s: RegistrationStatus = round_trip(&ex[1]);
    assert_eq!(s.state, RegistrationState::Accepted);
    let names: Vec<_> = s
        .credentials
        .iter()
        .map(|c| (c.family, c.name.as_str()))
        .collect();
    assert_eq!(names, [(4, "zrh1"), (6, "zrh1-v6")]);
    // The key stays out of Debug output.
    assert!(!format!("{s:?}").contains("pwk_"));
    let later: RegistrationStatus = round_trip(&ex[2]);
    assert_eq!(later.state, RegistrationState::Delivered);
    assert!(later.credentials.is_empty());
}
