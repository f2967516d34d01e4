//! A replay [`Report`] as text: a table for people, CSV (one tidy table,
//! a `kind` column per section) and JSON (the report as is).

use super::{PolicyReport, Report};
use crate::logfmt::timestamp;
use std::fmt::Write as _;

/// Output formats of `policy replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            _ => Err(format!("{s:?}: use table, csv or json")),
        }
    }
}

pub fn render(r: &Report, f: Format) -> String {
    match f {
        Format::Table => table(r),
        Format::Csv => csv(r),
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default() + "\n",
    }
}

/// The CSV header: every row is one of `kind` = `mark` (servers in DNS
/// at `time`), `zone` (a zone's servers and mean in DNS), `changed` (a
/// server whose membership differs from the baseline's).
pub const CSV_HEADER: [&str; 9] = [
    "kind",
    "policy",
    "time",
    "zone",
    "server",
    "servers",
    "in_dns",
    "baseline_in_dns",
    "why",
];

/// "samples 4 · best-of · timeout 3 s · in DNS from 10".
pub fn describe(p: &scoring::Policy) -> String {
    format!(
        "samples {} · {} · timeout {} s · in DNS from {}",
        p.samples,
        p.combine.as_str(),
        p.timeout,
        p.in_dns_threshold
    )
}

fn csv(r: &Report) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(CSV_HEADER);
    let base = &r.policies[0];
    for p in &r.policies {
        let name = p.policy.name.as_str();
        for (t, n) in r.marks.iter().zip(&p.in_dns) {
            let _ = w.write_record([
                "mark",
                name,
                &timestamp(*t),
                "",
                "",
                "",
                &n.to_string(),
                "",
                "",
            ]);
        }
        for (z, bz) in p.zones.iter().zip(&base.zones) {
            let _ = w.write_record([
                "zone",
                name,
                "",
                &z.zone,
                "",
                &z.servers.to_string(),
                &format!("{:.1}", z.mean_in_dns),
                &format!("{:.1}", bz.mean_in_dns),
                &format!("left {}, joined {}", z.left, z.joined),
            ]);
        }
        for s in &p.servers {
            let _ = w.write_record([
                "changed",
                name,
                "",
                &s.zones.join(" "),
                &s.ip,
                "",
                &s.marks_in.to_string(),
                &s.marks_in_baseline.to_string(),
                &s.why,
            ]);
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn table(r: &Report) -> String {
    let mut o = String::new();
    let base = &r.policies[0];
    let _ = writeln!(
        o,
        "policy replay {} → {} UTC: {} servers, {} checks; in DNS counted every {} s at {} marks \
         after a {} h warm-up; monitor statuses as today",
        timestamp(r.from),
        timestamp(r.to),
        r.servers,
        r.checks,
        r.every_s,
        r.marks.len(),
        r.warmup_h
    );
    let _ = writeln!(o, "\nbaseline: {}\n", base.policy.name);
    let width = r
        .policies
        .iter()
        .map(|p| p.policy.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        o,
        "{:<width$}  {:>9}  {:>6}  {:>6}  {:>7}  {:>6}  {:>6}  rules",
        "policy", "mean DNS", "min", "max", "changed", "left", "joined"
    );
    for p in &r.policies {
        let (min, max) = min_max(p);
        let _ = writeln!(
            o,
            "{:<width$}  {:>9.1}  {:>6}  {:>6}  {:>7}  {:>6}  {:>6}  {}",
            p.policy.name,
            p.mean_in_dns(),
            min,
            max,
            p.changed,
            p.left,
            p.joined,
            describe(&p.policy)
        );
    }

    // At most ~48 rows of the marks' counts; every row in CSV and JSON.
    let every = r.marks.len().div_ceil(48).max(1);
    let _ = writeln!(
        o,
        "\nservers in DNS (every {} s):",
        every as i64 * r.every_s
    );
    let _ = write!(o, "{:<19}", "time (UTC)");
    for p in &r.policies {
        let _ = write!(o, "  {:>w$}", p.policy.name, w = p.policy.name.len().max(6));
    }
    o.push('\n');
    for (i, t) in r.marks.iter().enumerate().step_by(every) {
        let _ = write!(o, "{:<19}", timestamp(*t));
        for p in &r.policies {
            let _ = write!(o, "  {:>w$}", p.in_dns[i], w = p.policy.name.len().max(6));
        }
        o.push('\n');
    }

    let _ = writeln!(
        o,
        "\nper zone (mean servers in DNS; left/joined vs baseline):"
    );
    let _ = write!(o, "{:<10}  {:>7}", "zone", "servers");
    for p in &r.policies {
        let _ = write!(
            o,
            "  {:>w$}",
            p.policy.name,
            w = p.policy.name.len().max(14)
        );
    }
    o.push('\n');
    for (z, bz) in base.zones.iter().enumerate() {
        let _ = write!(o, "{:<10}  {:>7}", bz.zone, bz.servers);
        for p in &r.policies {
            let pz = &p.zones[z];
            let cell = format!("{:.1} -{}/+{}", pz.mean_in_dns, pz.left, pz.joined);
            let _ = write!(o, "  {:>w$}", cell, w = p.policy.name.len().max(14));
        }
        o.push('\n');
    }

    for p in &r.policies[1..] {
        if p.servers.is_empty() {
            continue;
        }
        let _ = writeln!(
            o,
            "\n{} servers in DNS differently under {} than under {} ({} listed):",
            p.changed,
            p.policy.name,
            base.policy.name,
            p.servers.len()
        );
        for s in &p.servers {
            let _ = writeln!(
                o,
                "  {:<39} {:<10} in DNS at {:>4} marks under {}, {:>4} under {}: {}",
                s.ip,
                s.zones.join(","),
                s.marks_in_baseline,
                base.policy.name,
                s.marks_in,
                p.policy.name,
                s.why
            );
        }
    }
    o
}

fn min_max(p: &PolicyReport) -> (u32, u32) {
    (
        p.in_dns.iter().copied().min().unwrap_or(0),
        p.in_dns.iter().copied().max().unwrap_or(0),
    )
}
