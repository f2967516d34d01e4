//! The score log's wire formats, byte for byte as the pool writes them:
//! the CSV columns, float and time formatting, error sanitising and the
//! cache header. Pure functions; the handlers in `scores` only fetch rows.

use std::fmt::Write;
use store::LogRow;

/// The CSV header, exactly as the pool's data API writes it.
pub const CSV_HEADER: [&str; 10] = [
    "ts_epoch",
    "ts",
    "offset",
    "step",
    "score",
    "monitor_id",
    "monitor_name",
    "rtt",
    "leap",
    "error",
];

/// `%.9f`, then trailing zeros and a trailing '.' removed (`0.5`, `20`,
/// `-0.000123457`).
#[cfg(test)]
fn float(v: f64) -> String {
    let mut s = String::new();
    push_float(&mut s, v);
    s
}

/// [`float`] appended to `out` (nothing for NaN or infinity).
fn push_float(out: &mut String, v: f64) {
    if !v.is_finite() {
        return;
    }
    let start = out.len();
    let _ = write!(out, "{v:.9}");
    // `{:.9}` always writes a '.', so trimming zeros stops there.
    let kept = out[start..]
        .trim_end_matches('0')
        .trim_end_matches('.')
        .len();
    out.truncate(start + kept);
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn timestamp(ts: i64) -> String {
    let mut s = String::new();
    push_timestamp(&mut s, ts);
    s
}

fn push_timestamp(out: &mut String, ts: i64) {
    use chrono::{Datelike, Timelike};
    if let Some(t) = chrono::DateTime::from_timestamp(ts, 0) {
        let _ = write!(
            out,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
    }
}

/// RFC 3339 in UTC (the JSON `monitors[].ts`).
pub fn rfc3339(ts: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Control characters made visible: NUL → `<NULL>`, others → `<0xNN>`.
pub fn sanitize_error(e: &str) -> String {
    let mut out = String::with_capacity(e.len());
    for c in e.chars() {
        match c {
            '\0' => out.push_str("<NULL>"),
            c if c.is_control() => {
                let _ = write!(out, "<0x{:02x}>", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A CSV field, quoted (RFC 4180) only when it must be.
fn push_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// One CSV line for a log row. Aggregate rows (no monitor) have
/// monitor_id 0 and an empty name; rtt is written in milliseconds.
fn push_record(out: &mut String, row: &LogRow) {
    let _ = write!(out, "{},", row.ts);
    push_timestamp(out, row.ts);
    out.push(',');
    if let Some(o) = row.offset {
        push_float(out, o);
    }
    out.push(',');
    push_float(out, row.step);
    out.push(',');
    push_float(out, row.score);
    let _ = write!(out, ",{},", row.monitor_id.unwrap_or(0));
    if let Some(id) = row.monitor_id {
        match &row.monitor_name {
            Some(name) => push_field(out, name),
            None => {
                let _ = write!(out, "{id}");
            }
        }
    }
    out.push(',');
    if let Some(rtt) = row.rtt {
        push_float(out, rtt * 1000.0);
    }
    out.push(',');
    if let Some(l) = row.leap.filter(|l| *l != 0) {
        let _ = write!(out, "{l}");
    }
    out.push(',');
    if let Some(e) = &row.error {
        push_field(out, &sanitize_error(e));
    }
    out.push('\n');
}

/// The whole CSV document: header, then one line per row. Written by hand
/// into one buffer: this is the hot path of a 10,000-row log request.
pub fn csv_document(rows: &[LogRow]) -> String {
    let mut out = String::with_capacity(80 + rows.len() * 80);
    out.push_str(&CSV_HEADER.join(","));
    out.push('\n');
    for row in rows {
        push_record(&mut out, row);
    }
    out
}

/// Cache-Control for a history answer, as the pool sets it: short for a
/// single row (a client polling for the newest), longer for a stale or
/// empty history (nothing will change soon).
pub fn cache_control(rows: &[LogRow], now: i64) -> &'static str {
    let newest = rows.iter().map(|r| r.ts).max();
    match newest {
        None => "s-maxage=260,max-age=360",
        Some(ts) if now - ts > 8 * 3600 => "s-maxage=260,max-age=360",
        Some(_) if rows.len() == 1 => "s-maxage=60,max-age=35",
        Some(_) => "s-maxage=90,max-age=120",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: i64, monitor_id: Option<i64>) -> LogRow {
        LogRow {
            id: 1,
            ts,
            offset: None,
            step: 1.0,
            score: 20.0,
            monitor_id,
            monitor_name: monitor_id.map(|_| "deksf1-1a6a7hp".to_string()),
            rtt: None,
            stratum: None,
            leap: None,
            refid: None,
            error: None,
            no_response: false,
        }
    }

    #[test]
    fn floats() {
        for (v, want) in [
            (0.0, "0"),
            (20.0, "20"),
            (0.5, "0.5"),
            (-4.0, "-4"),
            (0.833_250_000_1, "0.83325"),
            (1.234_567_890_123, "1.23456789"),
            (-0.000_123_456_789, "-0.000123457"),
            (12.345, "12.345"),
            (100.0, "100"),
            (1e-10, "0"),
        ] {
            assert_eq!(float(v), want, "{v}");
        }
        assert_eq!(float(f64::NAN), "");
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(rfc3339(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn errors_are_sanitised() {
        assert_eq!(sanitize_error("i/o timeout"), "i/o timeout");
        assert_eq!(sanitize_error("a\0b"), "a<NULL>b");
        assert_eq!(sanitize_error("x\ny\t\x7f"), "x<0x0a>y<0x09><0x7f>");
        assert_eq!(sanitize_error("DENY"), "DENY");
    }

    fn line(row: &LogRow) -> String {
        let mut s = String::new();
        push_record(&mut s, row);
        s
    }

    #[test]
    fn records() {
        let mut r = row(1_700_000_000, Some(7));
        r.offset = Some(0.001_234_5);
        r.rtt = Some(0.012_345);
        r.leap = Some(0);
        r.step = 0.833_25;
        r.score = 12.5;
        r.error = Some("bad reply: short, 12 \"bytes\"".into());
        assert_eq!(
            line(&r),
            "1700000000,2023-11-14 22:13:20,0.0012345,0.83325,12.5,7,deksf1-1a6a7hp,12.345,,\"bad reply: short, 12 \"\"bytes\"\"\"\n"
        );
        let mut agg = row(1_700_000_000, None);
        agg.leap = Some(1);
        agg.error = Some("x\0\n".into());
        assert_eq!(
            line(&agg),
            "1700000000,2023-11-14 22:13:20,,1,20,0,,,1,x<NULL><0x0a>\n"
        );
        let mut unnamed = row(0, Some(9));
        unnamed.monitor_name = None;
        assert_eq!(line(&unnamed), "0,1970-01-01 00:00:00,,1,20,9,9,,,\n");

        let doc = csv_document(&[r.clone(), agg]);
        let mut lines = doc.lines();
        assert_eq!(
            lines.next().unwrap(),
            "ts_epoch,ts,offset,step,score,monitor_id,monitor_name,rtt,leap,error"
        );
        assert_eq!(format!("{}\n", lines.next().unwrap()), line(&r));
        assert!(lines.next().is_some());
        assert!(lines.next().is_none());
        // What a CSV reader makes of it.
        let mut rd = csv::Reader::from_reader(doc.as_bytes());
        let rec = rd.records().next().unwrap().unwrap();
        assert_eq!(&rec[9], "bad reply: short, 12 \"bytes\"");
    }

    #[test]
    fn cache_headers() {
        let now = 1_700_000_000;
        assert_eq!(cache_control(&[], now), "s-maxage=260,max-age=360");
        assert_eq!(
            cache_control(&[row(now - 9 * 3600, None)], now),
            "s-maxage=260,max-age=360"
        );
        assert_eq!(
            cache_control(&[row(now - 60, None)], now),
            "s-maxage=60,max-age=35"
        );
        assert_eq!(
            cache_control(&[row(now - 60, None), row(now - 120, None)], now),
            "s-maxage=90,max-age=120"
        );
    }
}
