//! What an alert says: the webhook JSON and the e-mail text, built from the
//! server, its evidence and the kind of alert. Pure; no I/O.
//!
//! Webhook body (`Content-Type: application/json`), stable; fields may be
//! added, none removed or renamed:
//!
//! ```json
//! {"kind": "down",                       // "down" | "reminder" | "recovered"
//!  "ts": 1700000000,                     // unix seconds, when it was sent
//!  "server": {"ip": "192.0.2.1", "score": 3.2,
//!             "page_url": "https://pool.example.org/scores/192.0.2.1",
//!             "down_since": 1699990000},  // null for "recovered"
//!  "account": "example",
//!  "reminder": null,                     // 1, 2, … for "reminder"
//!  "monitors": [{"name": "defra1", "location": "Frankfurt, DE",
//!                "status": "active", "score": -3.1, "offset": 0.0012,
//!                "rtt_ms": 23.0, "error": "i/o timeout", "ts": 1699999990}],
//!  "traceroutes": [{"monitor": "defra1", "ts": 1699999995, "tool": "mtr",
//!                   "reason": "…", "hops": [{"ttl": 1, "ip": "192.0.2.254",
//!                   "rtt_ms": [1.2], "sent": 3}], "error": null}]}
//! ```
//!
//! `monitors` holds each monitor's latest result (active monitors first),
//! `offset` in seconds, `rtt_ms` in milliseconds, `error` the KoD code or
//! socket error (`"no response"` when the check got no reply and no code);
//! `traceroutes` the newest traceroute of each monitor (`hops` as the
//! monitor sent it).

use crate::logfmt::{sanitize_error, timestamp};
use serde::Serialize;
use std::fmt::Write as _;
use store::{AlertEvidence, AlertKind, AlertTarget};

/// Monitors listed in one message, at most (active ones come first).
pub const MAX_MONITORS: usize = 25;

/// One alert, as sent (the webhook body is its JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertMessage {
    pub kind: AlertKind,
    pub ts: i64,
    pub server: ServerPart,
    pub account: String,
    pub reminder: Option<i64>,
    pub monitors: Vec<MonitorPart>,
    pub traceroutes: Vec<TraceroutePart>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerPart {
    pub ip: String,
    pub score: f64,
    pub page_url: String,
    pub down_since: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorPart {
    pub name: String,
    pub location: String,
    pub status: String,
    pub score: f64,
    pub offset: Option<f64>,
    pub rtt_ms: Option<f64>,
    pub error: Option<String>,
    pub ts: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceroutePart {
    pub monitor: String,
    pub ts: i64,
    pub tool: String,
    pub reason: String,
    pub hops: serde_json::Value,
    pub error: Option<String>,
}

/// The server's page: `public_url` + `/scores/{ip}`.
pub fn page_url(public_url: &str, ip: &str) -> String {
    format!("{}/scores/{ip}", public_url.trim_end_matches('/'))
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

impl AlertMessage {
    /// The message for `kind` about `target` at `now`. `down_since` is the
    /// start of the episode (ignored for a recovery); `reminder` the
    /// reminder's number.
    pub fn new(
        kind: AlertKind,
        target: &AlertTarget,
        evidence: &AlertEvidence,
        public_url: &str,
        down_since: Option<i64>,
        reminder: Option<i64>,
        now: i64,
    ) -> AlertMessage {
        let ip = target.ip.to_string();
        let monitors = evidence
            .monitors
            .iter()
            .filter(|m| m.ts.is_some())
            .take(MAX_MONITORS)
            .map(|m| MonitorPart {
                name: m.name.clone(),
                location: m.location.clone(),
                status: m.status.as_str().to_string(),
                score: round(m.score, 2),
                offset: m.offset,
                rtt_ms: m.rtt.map(|r| round(r * 1000.0, 3)),
                error: match (&m.error, m.no_response) {
                    (Some(e), _) => Some(sanitize_error(e)),
                    (None, true) => Some("no response".to_string()),
                    (None, false) => None,
                },
                ts: m.ts,
            })
            .collect();
        let traceroutes = evidence
            .traceroutes
            .iter()
            .map(|t| TraceroutePart {
                monitor: t.monitor.clone(),
                ts: t.ts,
                tool: t.tool.clone(),
                reason: t.reason.clone(),
                hops: serde_json::from_str(&t.hops)
                    .unwrap_or_else(|_| serde_json::Value::String(t.hops.clone())),
                error: t.error.clone(),
            })
            .collect();
        AlertMessage {
            kind,
            ts: now,
            server: ServerPart {
                page_url: page_url(public_url, &ip),
                ip,
                score: round(target.score, 2),
                down_since: if kind == AlertKind::Recovered {
                    None
                } else {
                    down_since
                },
            },
            account: target.account.clone(),
            reminder: if kind == AlertKind::Reminder {
                reminder
            } else {
                None
            },
            monitors,
            traceroutes,
        }
    }

    /// The webhook body.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("plain data always serializes")
    }

    /// The e-mail subject.
    pub fn subject(&self) -> String {
        let (ip, score) = (&self.server.ip, self.server.score);
        match self.kind {
            AlertKind::Down => format!("poolwatch: {ip} is out of the pool (score {score:.1})"),
            AlertKind::Reminder => {
                format!("poolwatch: {ip} is still out of the pool (score {score:.1})")
            }
            AlertKind::Recovered => {
                format!("poolwatch: {ip} is back in the pool (score {score:.1})")
            }
        }
    }

    /// The e-mail body, plain text with the same facts as the JSON.
    pub fn text(&self) -> String {
        let s = &self.server;
        let mut out = String::new();
        match self.kind {
            AlertKind::Down | AlertKind::Reminder => {
                let _ = write!(
                    out,
                    "Your NTP server {} has a score of {:.1}, below 10",
                    s.ip, s.score
                );
                if let Some(t) = s.down_since {
                    let _ = write!(out, ", since {} UTC", timestamp(t));
                }
                out.push_str(
                    ".\nThe pool's DNS does not hand it out until its score is 10 or more again.\n",
                );
                if let Some(n) = self.reminder {
                    let _ = writeln!(out, "This is reminder {n}.");
                }
            }
            AlertKind::Recovered => {
                let _ = writeln!(
                    out,
                    "Your NTP server {} is back: its score is {:.1}, so the pool's DNS hands it out again.",
                    s.ip, s.score
                );
            }
        }
        let _ = writeln!(out, "\nScores, graph and logs: {}", s.page_url);
        let _ = writeln!(
            out,
            "CSV log with every check: {}/log?monitor=*",
            s.page_url
        );

        out.push_str("\nWhat each monitor saw last:\n\n");
        if self.monitors.is_empty() {
            out.push_str("  (no results yet)\n");
        } else {
            let w = self
                .monitors
                .iter()
                .map(|m| m.name.chars().count())
                .max()
                .unwrap_or(0)
                .max(7);
            let _ = writeln!(
                out,
                "  {:<w$}  {:<9}  {:>6}  {:<19}  {:>13}  {:>10}  error",
                "monitor", "status", "score", "checked (UTC)", "offset", "rtt"
            );
            for m in &self.monitors {
                let offset = m
                    .offset
                    .map(|o| format!("{:+.6} s", o))
                    .unwrap_or_else(|| "-".into());
                let rtt = m
                    .rtt_ms
                    .map(|r| format!("{r:.1} ms"))
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "  {:<w$}  {:<9}  {:>6.1}  {:<19}  {:>13}  {:>10}  {}",
                    m.name,
                    m.status,
                    m.score,
                    m.ts.map(timestamp).unwrap_or_default(),
                    offset,
                    rtt,
                    m.error.as_deref().unwrap_or("-"),
                );
            }
        }

        if !self.traceroutes.is_empty() {
            out.push_str("\nTraceroutes (UDP/123) from the monitors:\n");
            for t in &self.traceroutes {
                let _ = writeln!(
                    out,
                    "\n  from {} at {} UTC ({}{}{})",
                    t.monitor,
                    timestamp(t.ts),
                    t.tool,
                    if t.reason.is_empty() { "" } else { "; " },
                    t.reason
                );
                if let Some(e) = &t.error {
                    let _ = writeln!(out, "    failed: {}", sanitize_error(e));
                }
                push_hops(&mut out, &t.hops);
            }
        }
        let _ = writeln!(
            out,
            "\nYou get this because the server belongs to the account \"{}\".\n-- \npoolwatch",
            self.account
        );
        out
    }
}

/// Hops as `  ttl  address  rtts`, whatever shape the monitor sent: known
/// keys (`ttl`, `ip`, `rtt_ms`) when present, else the JSON of the hop.
fn push_hops(out: &mut String, hops: &serde_json::Value) {
    use serde_json::Value;
    let Value::Array(list) = hops else {
        if !hops.is_null() {
            let _ = writeln!(out, "    {hops}");
        }
        return;
    };
    for (i, h) in list.iter().enumerate() {
        let Value::Object(o) = h else {
            let _ = writeln!(out, "    {h}");
            continue;
        };
        let ttl = o.get("ttl").and_then(Value::as_u64).unwrap_or(i as u64 + 1);
        let addr = match o.get("ip").or_else(|| o.get("addr")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "*".to_string(),
            Some(v) => v.to_string(),
        };
        let rtts = match o.get("rtt_ms") {
            Some(Value::Array(r)) => r
                .iter()
                .filter_map(Value::as_f64)
                .map(|r| format!("{r:.1} ms"))
                .collect::<Vec<_>>()
                .join("  "),
            Some(Value::Number(n)) => n.as_f64().map(|r| format!("{r:.1} ms")).unwrap_or_default(),
            _ => String::new(),
        };
        let _ = writeln!(out, "    {ttl:>2}  {addr:<39}  {rtts}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{AlertState, MonitorEvidence, MonitorStatus, TracerouteEvidence};

    fn target() -> AlertTarget {
        AlertTarget {
            server_id: 1,
            ip: "192.0.2.1".parse().unwrap(),
            score: 3.2345,
            score_ts: Some(1_700_000_000),
            deletion_on: None,
            account: "acme".into(),
            email: Some("ops@example.net".into()),
            webhook: None,
            state: Some(AlertState::default()),
            last_attempt_at: None,
        }
    }

    fn evidence() -> AlertEvidence {
        let m = |name: &str, status, offset, error: Option<&str>, no_response| MonitorEvidence {
            monitor_id: 1,
            name: name.into(),
            location: "Lab".into(),
            status,
            score: -3.25,
            score_ts: Some(1_700_000_000),
            ts: Some(1_700_000_000),
            offset,
            rtt: offset.map(|_| 0.0234),
            error: error.map(Into::into),
            no_response,
        };
        AlertEvidence {
            monitors: vec![
                m("defra1", MonitorStatus::Active, None, None, true),
                m("usnyc1", MonitorStatus::Active, Some(0.25), Some("RATE"), false),
                MonitorEvidence {
                    ts: None,
                    ..m("never", MonitorStatus::Candidate, None, None, false)
                },
            ],
            traceroutes: vec![TracerouteEvidence {
                monitor_id: 1,
                monitor: "defra1".into(),
                ts: 1_700_000_100,
                reason: "healthy → i/o timeout".into(),
                tool: "mtr".into(),
                hops: r#"[{"ttl":1,"ip":"198.51.100.1","rtt_ms":[1.25,1.5],"sent":3},{"ttl":2,"ip":null,"rtt_ms":[],"sent":3}]"#.into(),
                error: None,
            }],
        }
    }

    #[test]
    fn json_is_the_documented_shape() {
        let m = AlertMessage::new(
            AlertKind::Down,
            &target(),
            &evidence(),
            "https://pool.example.org/",
            Some(1_699_990_000),
            None,
            1_700_000_200,
        );
        let v: serde_json::Value = serde_json::from_str(&m.json()).unwrap();
        assert_eq!(v["kind"], "down");
        assert_eq!(v["ts"], 1_700_000_200);
        assert_eq!(v["server"]["ip"], "192.0.2.1");
        assert_eq!(v["server"]["score"], 3.23);
        assert_eq!(
            v["server"]["page_url"],
            "https://pool.example.org/scores/192.0.2.1"
        );
        assert_eq!(v["server"]["down_since"], 1_699_990_000);
        assert_eq!(v["reminder"], serde_json::Value::Null);
        let mons = v["monitors"].as_array().unwrap();
        assert_eq!(mons.len(), 2, "monitors without a result are left out");
        assert_eq!(mons[0]["name"], "defra1");
        assert_eq!(mons[0]["error"], "no response");
        assert_eq!(mons[1]["error"], "RATE");
        assert_eq!(mons[1]["offset"], 0.25);
        assert_eq!(mons[1]["rtt_ms"], 23.4);
        assert_eq!(mons[1]["status"], "active");
        assert_eq!(mons[1]["ts"], 1_700_000_000);
        let tr = &v["traceroutes"][0];
        assert_eq!(tr["monitor"], "defra1");
        assert_eq!(tr["tool"], "mtr");
        assert_eq!(tr["hops"][0]["ip"], "198.51.100.1");
    }

    #[test]
    fn email_text_has_the_facts() {
        let m = AlertMessage::new(
            AlertKind::Reminder,
            &target(),
            &evidence(),
            "http://127.0.0.1:8080",
            Some(1_699_990_000),
            Some(2),
            1_700_000_200,
        );
        assert_eq!(
            m.subject(),
            "poolwatch: 192.0.2.1 is still out of the pool (score 3.2)"
        );
        let t = m.text();
        for want in [
            "score of 3.2, below 10, since 2023-11-14 19:26:40 UTC",
            "reminder 2",
            "http://127.0.0.1:8080/scores/192.0.2.1",
            "defra1",
            "no response",
            "usnyc1",
            "+0.250000 s",
            "23.4 ms",
            "RATE",
            "from defra1 at 2023-11-14 22:15:00 UTC (mtr; healthy → i/o timeout)",
            "198.51.100.1",
            "1.2 ms  1.5 ms",
            " 2  *",
            "\"acme\"",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        let r = AlertMessage::new(
            AlertKind::Recovered,
            &AlertTarget {
                score: 14.0,
                ..target()
            },
            &AlertEvidence::default(),
            "http://x",
            Some(1),
            Some(3),
            1_700_000_200,
        );
        assert_eq!(
            r.subject(),
            "poolwatch: 192.0.2.1 is back in the pool (score 14.0)"
        );
        assert_eq!(r.server.down_since, None);
        assert_eq!(r.reminder, None);
        assert!(r.text().contains("(no results yet)"));
    }

    #[test]
    fn odd_hops_still_render() {
        let mut out = String::new();
        push_hops(&mut out, &serde_json::json!("not a list"));
        push_hops(
            &mut out,
            &serde_json::json!([1, {"addr": "192.0.2.9", "rtt_ms": 3.0}]),
        );
        assert!(out.contains("\"not a list\""), "{out}");
        assert!(out.contains("    1\n"), "{out}");
        assert!(out.contains(" 2  192.0.2.9"), "{out}");
        assert!(out.contains("3.0 ms"), "{out}");
    }
}
