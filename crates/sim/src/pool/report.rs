//! What a simulation reports per policy, and its table, CSV and JSON.

use serde::Serialize;
use std::fmt::Write;

/// A dead server: when it died and how long until it left DNS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadServer {
    pub server: usize,
    pub zone: String,
    /// Minutes after the warm-up.
    pub died_after_minutes: f64,
    /// `None`: still in DNS when it came back or the run ended.
    pub left_after_minutes: Option<f64>,
    /// Checks each of its active monitors made, on average, before it left.
    pub left_after_checks: Option<f64>,
}

/// One policy's results over the reported time (after the warm-up).
/// Membership is sampled by the guard pass, once a minute.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PolicyReport {
    pub policy: String,
    pub checks: u64,
    /// Times a healthy (not dead) server left DNS.
    pub healthy_left: u64,
    /// Healthy servers that left DNS at least once.
    pub healthy_servers_left: usize,
    /// Minutes healthy servers spent out of DNS, summed.
    pub healthy_out_server_minutes: u64,
    /// The longest a healthy server stayed out in a row.
    pub healthy_longest_out_minutes: u64,
    /// Servers that die in the scenario.
    pub dead_servers: usize,
    /// Deaths after which the server left DNS.
    pub dead_left: usize,
    /// Deaths after which it did not (it came back or the run ended first).
    pub dead_stayed: usize,
    pub dead_minutes_median: Option<f64>,
    pub dead_minutes_max: Option<f64>,
    pub dead_checks_median: Option<f64>,
    pub dead_checks_max: Option<f64>,
    /// Times the zone guard started holding a server in DNS.
    pub guard_holds: u64,
    pub guard_held_server_minutes: u64,
    /// Most servers held at once.
    pub guard_max_held: usize,
    /// Monitor status changes made by the selector.
    pub selector_changes: u64,
    /// Fewest servers in DNS at once.
    pub in_dns_min: usize,
    pub dead: Vec<DeadServer>,
}

/// The lower median, as the pool's aggregate takes it.
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[(v.len() - 1) / 2])
}

impl PolicyReport {
    /// Fills the dead servers' summary from `dead`.
    pub fn summarise(&mut self) {
        let minutes: Vec<f64> = self
            .dead
            .iter()
            .filter_map(|d| d.left_after_minutes)
            .collect();
        let checks: Vec<f64> = self
            .dead
            .iter()
            .filter_map(|d| d.left_after_checks)
            .collect();
        self.dead_left = minutes.len();
        self.dead_stayed = self.dead.len() - minutes.len();
        self.dead_minutes_max = minutes.iter().copied().reduce(f64::max);
        self.dead_checks_max = checks.iter().copied().reduce(f64::max);
        self.dead_minutes_median = median(minutes);
        self.dead_checks_median = median(checks);
    }
}

/// A whole simulation's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub servers: usize,
    pub monitors: usize,
    /// Reported minutes (after the warm-up).
    pub minutes: u64,
    pub zone_guard: String,
    pub policies: Vec<PolicyReport>,
}

/// Output formats of [`Report::render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.1}"))
}

/// The table's and CSV's columns: (header, value).
fn columns(p: &PolicyReport) -> Vec<(&'static str, String)> {
    vec![
        ("policy", p.policy.clone()),
        ("checks", p.checks.to_string()),
        ("healthy_left", p.healthy_left.to_string()),
        ("healthy_servers_left", p.healthy_servers_left.to_string()),
        (
            "healthy_out_server_min",
            p.healthy_out_server_minutes.to_string(),
        ),
        (
            "healthy_longest_out_min",
            p.healthy_longest_out_minutes.to_string(),
        ),
        ("dead", p.dead_servers.to_string()),
        ("dead_left", p.dead_left.to_string()),
        ("dead_min_median", num(p.dead_minutes_median)),
        ("dead_min_max", num(p.dead_minutes_max)),
        ("dead_checks_median", num(p.dead_checks_median)),
        ("dead_checks_max", num(p.dead_checks_max)),
        ("guard_holds", p.guard_holds.to_string()),
        (
            "guard_held_server_min",
            p.guard_held_server_minutes.to_string(),
        ),
        ("guard_max_held", p.guard_max_held.to_string()),
        ("selector_changes", p.selector_changes.to_string()),
        ("in_dns_min", p.in_dns_min.to_string()),
    ]
}

impl Report {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(self).expect("plain data serializes");
                s.push('\n');
                s
            }
            Format::Csv => self.csv(),
            Format::Table => self.table(),
        }
    }

    /// One row per policy; names are letters, digits, `-_.`: no quoting.
    fn csv(&self) -> String {
        let mut out = String::from("scenario,");
        let Some(first) = self.policies.first() else {
            return out;
        };
        let heads: Vec<&str> = columns(first).iter().map(|c| c.0).collect();
        let _ = writeln!(out, "{}", heads.join(","));
        for p in &self.policies {
            let vals: Vec<String> = columns(p).into_iter().map(|c| c.1).collect();
            let _ = writeln!(out, "{},{}", self.scenario, vals.join(","));
        }
        out
    }

    /// A row per measure and a column per policy: the policies side by side.
    fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {}: {} servers, {} monitors, {:.1} days reported, zone guard {}, seed {}",
            self.scenario,
            self.servers,
            self.monitors,
            self.minutes as f64 / 1440.0,
            self.zone_guard,
            self.seed
        );
        let cols: Vec<Vec<(&str, String)>> = self.policies.iter().map(columns).collect();
        let Some(first) = cols.first() else {
            return out;
        };
        let label_w = first.iter().map(|c| c.0.len()).max().unwrap_or(0);
        let widths: Vec<usize> = cols
            .iter()
            .map(|c| c.iter().map(|x| x.1.len()).max().unwrap_or(0).max(8))
            .collect();
        for row in 0..first.len() {
            let _ = write!(out, "{:<label_w$}", first[row].0);
            for (c, w) in cols.iter().zip(&widths) {
                let _ = write!(out, "  {:>w$}", c[row].1);
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead(left: Option<f64>) -> DeadServer {
        DeadServer {
            server: 0,
            zone: "z".into(),
            died_after_minutes: 0.0,
            left_after_minutes: left,
            left_after_checks: left.map(|m| m / 9.0),
        }
    }

    #[test]
    fn dead_summary() {
        let mut p = PolicyReport {
            dead: vec![
                dead(Some(27.0)),
                dead(None),
                dead(Some(18.0)),
                dead(Some(36.0)),
            ],
            ..PolicyReport::default()
        };
        p.summarise();
        assert_eq!((p.dead_left, p.dead_stayed), (3, 1));
        assert_eq!(p.dead_minutes_median, Some(27.0));
        assert_eq!(p.dead_minutes_max, Some(36.0));
        assert_eq!(p.dead_checks_max, Some(4.0));
    }

    #[test]
    fn formats() {
        let r = Report {
            scenario: "s".into(),
            seed: 1,
            servers: 2,
            monitors: 3,
            minutes: 1440,
            zone_guard: "10%".into(),
            policies: vec![
                PolicyReport {
                    policy: "current".into(),
                    checks: 5,
                    ..PolicyReport::default()
                },
                PolicyReport {
                    policy: "first-1".into(),
                    ..PolicyReport::default()
                },
            ],
        };
        let csv = r.render(Format::Csv);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("scenario,policy,checks,"));
        assert!(lines[1].starts_with("s,current,5,"));
        let t = r.render(Format::Table);
        assert!(t.lines().nth(1).unwrap().contains("current"), "{t}");
        let j: serde_json::Value = serde_json::from_str(&r.render(Format::Json)).unwrap();
        assert_eq!(j["policies"][1]["policy"], "first-1");
    }
}
