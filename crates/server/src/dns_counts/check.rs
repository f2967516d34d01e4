//! What a [`CountReport`] must be before anything of it is stored, and the
//! body cap those limits give. Pure: the route answers 422 with the field
//! and the reason.

use crate::extract::forbidden_char;
use dns::{CountReport, MAX_SERVERS_PER_REPORT, UNKNOWN_COUNTRY};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// A report's `to` may be this far ahead of the service's clock (two
/// hosts' clocks differ a little).
pub const CLOCK_SKEW_S: i64 = 300;
/// Client countries per server and per report: ISO 3166 has 249 codes,
/// plus `-` and room for codes the GeoIP database adds.
pub const MAX_COUNTRIES: usize = 300;
/// Largest count taken: a million answers a second for eleven days, far
/// past a report's minute, and far from overflowing the stored sums.
pub const MAX_COUNT: u64 = 1_000_000_000_000;
/// Longest `report_id` and `instance`.
pub const REPORT_ID_MAX: usize = 128;

/// The body cap of `POST /api/dns-counts`, from the limits above: the
/// largest valid report is [`MAX_SERVERS_PER_REPORT`] servers of
/// [`MAX_COUNTRIES`] countries each. A server's fixed part (the longest
/// IPv6 text, 20-digit counts, a float and the keys) is under 200 bytes,
/// a country entry (`"xx":1000000000000,`) under 24 with spacing.
pub const fn report_body_cap() -> usize {
    let server = 200 + MAX_COUNTRIES * 24;
    let head = 2 * REPORT_ID_MAX + 200 + MAX_COUNTRIES * 24;
    head + MAX_SERVERS_PER_REPORT * server
}

/// `Err((field, why))` for the first thing wrong with `r` at `now`, the
/// service keeping counts for `retention`.
pub fn check_report(
    r: &CountReport,
    now: i64,
    retention: Duration,
) -> Result<(), (String, String)> {
    let bad = |field: &str, why: String| Err((field.to_string(), why));
    if r.report_id.is_empty()
        || r.report_id.len() > REPORT_ID_MAX
        || !r.report_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return bad(
            "report_id",
            format!("must be 1 to {REPORT_ID_MAX} printable ASCII characters, no spaces"),
        );
    }
    if r.instance.len() > REPORT_ID_MAX {
        return bad("instance", format!("longer than {REPORT_ID_MAX} bytes"));
    }
    if let Some(c) = forbidden_char(&r.instance) {
        return bad(
            "instance",
            format!("character U+{:04X} not allowed", c as u32),
        );
    }
    if r.from > r.to {
        return bad("from", format!("{} is after to ({})", r.from, r.to));
    }
    if r.from < 0 {
        return bad("from", format!("{} is before 1970", r.from));
    }
    if r.to > now + CLOCK_SKEW_S {
        return bad(
            "to",
            format!(
                "{} is {} s in the future (the service's clock says {now})",
                r.to,
                r.to - now
            ),
        );
    }
    let kept = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    if r.to < now.saturating_sub(kept) {
        return bad(
            "to",
            format!(
                "{} is older than the {} days counts are kept (--dns-count-retention)",
                r.to,
                kept / 86_400
            ),
        );
    }
    check_countries("answers_by_country", &r.answers_by_country)?;
    if r.servers.len() > MAX_SERVERS_PER_REPORT {
        return bad(
            "servers",
            format!(
                "{} servers, at most {MAX_SERVERS_PER_REPORT} per report",
                r.servers.len()
            ),
        );
    }
    let mut seen = HashSet::with_capacity(r.servers.len());
    for (i, s) in r.servers.iter().enumerate() {
        let field = |f: &str| format!("servers[{i}].{f}");
        if !seen.insert(s.ip.to_canonical()) {
            return Err((field("ip"), format!("{} is listed twice", s.ip)));
        }
        check_countries(&field("answers"), &s.answers)?;
        if s.zone_answers > MAX_COUNT {
            return Err((field("zone_answers"), format!("over {MAX_COUNT}")));
        }
        if !s.expected.is_finite() || s.expected < 0.0 || s.expected > MAX_COUNT as f64 {
            return Err((
                field("expected"),
                format!(
                    "{} must be a finite number from 0 to {MAX_COUNT}",
                    s.expected
                ),
            ));
        }
    }
    Ok(())
}

/// Country keys lower-case two letters or `-`; at most [`MAX_COUNTRIES`];
/// each count at most [`MAX_COUNT`].
fn check_countries(field: &str, m: &BTreeMap<String, u64>) -> Result<(), (String, String)> {
    if m.len() > MAX_COUNTRIES {
        return Err((
            field.to_string(),
            format!("{} countries, at most {MAX_COUNTRIES}", m.len()),
        ));
    }
    for (k, n) in m {
        let ok =
            k == UNKNOWN_COUNTRY || (k.len() == 2 && k.bytes().all(|b| b.is_ascii_lowercase()));
        if !ok {
            return Err((
                format!("{field}.{}", k.escape_default()),
                "a country is two lower-case letters, or \"-\" for clients not located".into(),
            ));
        }
        if *n > MAX_COUNT {
            return Err((format!("{field}.{k}"), format!("{n} is over {MAX_COUNT}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dns::ServerCount;

    const NOW: i64 = 1_700_000_000;
    const KEEP: Duration = Duration::from_secs(15 * 86_400);

    fn good() -> CountReport {
        CountReport {
            report_id: "a1b2-7".into(),
            instance: "dns-1".into(),
            from: NOW - 60,
            to: NOW,
            answers_by_country: [("de".to_string(), 5), ("-".to_string(), 1)].into(),
            servers: vec![ServerCount {
                ip: "192.0.2.1".parse().unwrap(),
                answers: [("de".to_string(), 3)].into(),
                zone_answers: 5,
                expected: 2.5,
            }],
        }
    }

    /// `n` distinct two-letter codes, each with count `v`.
    fn countries(n: usize, v: u64) -> BTreeMap<String, u64> {
        (0..n)
            .map(|i| {
                let a = (b'a' + (i / 26) as u8) as char;
                let b = (b'a' + (i % 26) as u8) as char;
                (format!("{a}{b}"), v)
            })
            .collect()
    }

    fn field(r: &CountReport) -> String {
        check_report(r, NOW, KEEP).unwrap_err().0
    }

    #[test]
    fn a_good_report_passes() {
        assert_eq!(check_report(&good(), NOW, KEEP), Ok(()));
        let mut r = good();
        r.to = NOW + CLOCK_SKEW_S;
        r.from = r.to;
        assert_eq!(
            check_report(&r, NOW, KEEP),
            Ok(()),
            "from == to, skew allowed"
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        type Bend = fn(&mut CountReport);
        let table: &[(&str, Bend)] = &[
            ("report_id", |r| r.report_id.clear()),
            ("report_id", |r| r.report_id = "a b".into()),
            ("report_id", |r| r.report_id = "x".repeat(REPORT_ID_MAX + 1)),
            ("instance", |r| r.instance = "dns\u{202E}1".into()),
            ("from", |r| r.from = r.to + 1),
            ("to", |r| r.to = NOW + CLOCK_SKEW_S + 1),
            ("to", |r| {
                r.to = NOW - 16 * 86_400;
                r.from = r.to - 60
            }),
            ("answers_by_country.DE", |r| {
                r.answers_by_country.insert("DE".into(), 1);
            }),
            ("answers_by_country.deu", |r| {
                r.answers_by_country.insert("deu".into(), 1);
            }),
            ("answers_by_country.fr", |r| {
                r.answers_by_country.insert("fr".into(), MAX_COUNT + 1);
            }),
            ("servers[0].answers.d1", |r| {
                r.servers[0].answers.insert("d1".into(), 1);
            }),
            ("servers[0].zone_answers", |r| {
                r.servers[0].zone_answers = u64::MAX
            }),
            ("servers[0].expected", |r| r.servers[0].expected = f64::NAN),
            ("servers[0].expected", |r| r.servers[0].expected = -1.0),
            ("servers[0].expected", |r| {
                r.servers[0].expected = f64::INFINITY
            }),
            ("servers[1].ip", |r| r.servers.push(r.servers[0].clone())),
            ("servers[0].answers", |r| {
                r.servers[0].answers = countries(MAX_COUNTRIES + 1, 1);
            }),
        ];
        for (want, bend) in table {
            let mut r = good();
            bend(&mut r);
            assert_eq!(&field(&r), want, "{r:?}");
        }
    }

    #[test]
    fn too_many_servers() {
        let mut r = good();
        r.servers = (0..=MAX_SERVERS_PER_REPORT)
            .map(|i| ServerCount {
                ip: std::net::IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]),
                answers: BTreeMap::new(),
                zone_answers: 0,
                expected: 0.0,
            })
            .collect();
        assert_eq!(field(&r), "servers");
    }

    #[test]
    fn the_largest_valid_report_fits_the_cap() {
        let mut r = good();
        r.report_id = "r".repeat(REPORT_ID_MAX);
        r.instance = "i".repeat(REPORT_ID_MAX);
        let countries = countries(MAX_COUNTRIES, MAX_COUNT);
        r.answers_by_country = countries.clone();
        r.servers = (0..MAX_SERVERS_PER_REPORT)
            .map(|i| ServerCount {
                ip: format!("2001:db8:ffff:ffff:ffff:ffff:ffff:{:x}", 0xf000 + i)
                    .parse()
                    .unwrap(),
                answers: countries.clone(),
                zone_answers: MAX_COUNT,
                expected: MAX_COUNT as f64 / 3.0,
            })
            .collect();
        assert_eq!(check_report(&r, NOW, KEEP), Ok(()));
        let body = serde_json::to_vec(&r).unwrap();
        assert!(
            body.len() <= report_body_cap(),
            "{} > {}",
            body.len(),
            report_body_cap()
        );
    }
}
