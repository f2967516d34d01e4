//! The rules of operator-added servers, as the pages and the JSON manage
//! API both call them (no HTTP here beyond the error type): which
//! addresses may be added and in which zones, the live check that must
//! pass first, netspeed, deletion, alerts, note. What needs the database
//! to be decided atomically (already in the pool, the account's limits,
//! the unverified netspeed cap, another account's server) is decided in
//! the store's transaction (`store/src/operator_servers.rs`), which also
//! writes the audit log.
//!
//! Errors are [`ApiError`]s whose detail names the field: 400 bad input,
//! 404 not this account's, 409 refused by a rule.

use crate::admin::{is_public, parse_date, today};
use crate::error::ApiError;
use crate::state::AppState;
use std::net::IpAddr;
use store::{AddCheck, AddLimits, Added, LiveCheckRow, OperatorAdd, ServerRow};

/// The pool's netspeed choices, kbit/s (0: monitoring only, never in DNS).
pub const NETSPEED_CHOICES: [i64; 15] = [
    0, 512, 1500, 3000, 6000, 12000, 25000, 50000, 100000, 250000, 500000, 1000000, 1500000,
    2000000, 3000000,
];
/// A new server's netspeed, and the most an unverified one may have: a
/// small share (the pool's second-smallest choice) until the operator has
/// proved the server is theirs, so a mistyped or someone else's address
/// gets little traffic.
pub const DEFAULT_NETSPEED: i64 = 1500;
/// A deletion date is at least this far ahead: the server leaves DNS this
/// long before it (`scoring::in_dns`).
pub const DELETION_NOTICE_DAYS: i64 = 14;
/// The pool's advice when no monitor got a usable answer.
pub const RESTART_ADVICE: &str =
    "If you just restarted your NTP daemon, wait 10–20 minutes and try again.";
pub const MAX_NOTE_CHARS: usize = 500;
/// A passed live check may be used to add the server this long after it
/// expired (the operator may take a while to confirm).
pub const LIVE_CHECK_USE_S: i64 = 3600;

/// Live checks (each an add attempt) one account may start: a burst of
/// [`ADD_BURST`], then one every [`ADD_EVERY_S`] seconds. Each asks three
/// monitors for a check, so a script looping on adds would load the
/// monitors, not only us.
pub const ADD_BURST: f64 = 10.0;
pub const ADD_EVERY_S: f64 = 120.0;

/// The per-account limiter's settings.
pub fn add_limit() -> crate::config::RateLimitConfig {
    crate::config::RateLimitConfig {
        per_second: 1.0 / ADD_EVERY_S,
        burst: ADD_BURST,
        trusted_proxies: Vec::new(),
        max_clients: 100_000,
    }
}

/// Take one add for `account_id`: 429 with `Retry-After` when it has used
/// its burst.
pub fn check_add_rate(st: &AppState, account_id: i64) -> Result<(), ApiError> {
    st.add_limiter()
        .take(account_id, std::time::Instant::now())
        .map_err(|wait| ApiError::rate_limited(wait.as_secs_f64().ceil().max(1.0) as u64))
}

/// One address of what the operator typed, and what may be done with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub ip: IpAddr,
    /// The hostname it came from, if one was typed.
    pub hostname: Option<String>,
    /// Why it cannot be added; `None` when it may be.
    pub refused: Option<String>,
    /// The account's own server scheduled for deletion: adding cancels it.
    pub readd: bool,
    /// The country GeoIP gives (pool zone name, `uk` for GB); `None`: the
    /// operator must pick one.
    pub country: Option<String>,
}

fn limits(st: &AppState) -> AddLimits {
    let m = &st.cfg().manage;
    AddLimits {
        max_servers: i64::from(m.max_servers_per_account),
        max_unverified: i64::from(m.max_unverified),
    }
}

/// A hostname as DNS allows it: dot-separated labels of letters, digits
/// and `-` (not at either end), at most 253 characters.
pub fn check_hostname(h: &str) -> Result<String, ApiError> {
    let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if h.len() > 253 || !h.contains('.') || !h.split('.').all(label_ok) {
        return Err(ApiError::bad_request(
            "address: not an IPv4 or IPv6 address nor a hostname",
        ));
    }
    Ok(h)
}

/// The addresses of what the operator typed: the address itself, or a
/// hostname's A and AAAA records (each its own candidate).
pub async fn resolve(input: &str) -> Result<(Vec<IpAddr>, Option<String>), ApiError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(ApiError::bad_request(
            "address: give an IPv4 or IPv6 address or a hostname",
        ));
    }
    if let Ok(ip) = input.parse::<IpAddr>() {
        return Ok((vec![ip.to_canonical()], None));
    }
    let host = check_hostname(input)?;
    let found = tokio::net::lookup_host((host.as_str(), 123))
        .await
        .map_err(|e| ApiError::bad_request(format!("address: cannot resolve {host}: {e}")))?;
    let mut ips: Vec<IpAddr> = found.map(|a| a.ip().to_canonical()).collect();
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        return Err(ApiError::bad_request(format!(
            "address: {host} has no A or AAAA record"
        )));
    }
    Ok((ips, Some(host)))
}

/// The country GeoIP gives `ip`, as a pool zone name.
pub fn geo_country(st: &AppState, ip: IpAddr) -> Option<String> {
    st.cfg()
        .geoip
        .as_ref()
        .and_then(|g| g.lookup(ip))
        .and_then(|loc| geo::country_zone(&loc.country))
}

/// Whether `account_id` may add `ip` now.
enum Verdict {
    New,
    Readd,
    Refused(String),
}

/// The rules before a live check: a public address, then the store's
/// (already in the pool, the account's limits).
async fn verdict(st: &AppState, account_id: i64, ip: IpAddr) -> Result<Verdict, ApiError> {
    if !st.cfg().manage.allow_private && !is_public(ip) {
        return Ok(Verdict::Refused(format!(
            "{ip} is not a public address: only globally reachable unicast addresses can serve the pool"
        )));
    }
    match st
        .store()
        .check_operator_add(account_id, ip, limits(st))
        .await
    {
        Ok(AddCheck::New) => Ok(Verdict::New),
        Ok(AddCheck::Readd) => Ok(Verdict::Readd),
        Err(store::StoreError::Conflict(why)) => Ok(Verdict::Refused(why)),
        Err(e) => Err(e.into()),
    }
}

/// Step one of an add: every address of `input`, with whether it may be
/// added and its country, for the operator to confirm.
pub async fn candidates(
    st: &AppState,
    account_id: i64,
    input: &str,
) -> Result<Vec<Candidate>, ApiError> {
    let (ips, hostname) = resolve(input).await?;
    let mut out = Vec::with_capacity(ips.len());
    for ip in ips {
        let (refused, readd) = match verdict(st, account_id, ip).await? {
            Verdict::New => (None, false),
            Verdict::Readd => (None, true),
            Verdict::Refused(why) => (Some(why), false),
        };
        out.push(Candidate {
            ip,
            hostname: hostname.clone(),
            refused,
            readd,
            country: geo_country(st, ip),
        });
    }
    Ok(out)
}

/// Step two: ask monitors to check `ip` (refused again if it may not be
/// added; 409 when no monitor can be asked).
pub async fn start_live_check(
    st: &AppState,
    account_id: i64,
    ip: IpAddr,
) -> Result<LiveCheckRow, ApiError> {
    let ip = ip.to_canonical();
    if let Verdict::Refused(why) = verdict(st, account_id, ip).await? {
        return Err(ApiError::conflict(why));
    }
    Ok(st
        .store()
        .create_live_check(account_id, ip, st.now())
        .await?)
}

/// A live check of `account_id` (404 for another account's or none).
pub async fn live_check(st: &AppState, account_id: i64, id: i64) -> Result<LiveCheckRow, ApiError> {
    st.store()
        .live_check(id)
        .await?
        .filter(|c| c.account_id == account_id)
        .ok_or_else(|| ApiError::not_found(format!("live check {id}")))
}

/// One monitor's answer as the operator reads it ("stratum 2 offset
/// +1.2 ms", "error i/o timeout", "checking…"); `finished`: the check is
/// over, so a missing answer is one that never came.
pub fn answer_text(m: &store::LiveCheckMonitor, finished: bool) -> String {
    let Some(a) = &m.answer else {
        return match (finished, m.handed_out) {
            (true, _) => "no answer before the check expired".into(),
            (false, Some(_)) => "checking…".into(),
            (false, None) => "waiting for the monitor to call".into(),
        };
    };
    let mut t = Vec::new();
    if let Some(s) = a.stratum {
        t.push(format!("stratum {s}"));
    }
    if let Some(o) = a.offset {
        t.push(format!("offset {:+.1} ms", o * 1000.0));
    }
    match &a.error {
        Some(e) => t.push(format!("error {e}")),
        None if a.stratum.is_some_and(|s| !(1..=15).contains(&s)) => {
            t.push("(not a usable stratum: 1–15)".into())
        }
        None => {}
    }
    t.join(" ")
}

/// Why a finished live check did not pass: every monitor's answer and the
/// pool's advice.
pub fn failed_check_text(c: &LiveCheckRow) -> String {
    let answers: Vec<String> = c
        .monitors
        .iter()
        .map(|m| format!("{}: {}", m.monitor_name, answer_text(m, true)))
        .collect();
    format!(
        "no monitor got a usable answer from {} (stratum 1–15): {}. {RESTART_ADVICE}",
        c.ip,
        answers.join("; ")
    )
}

/// The zones of `ip`: the operator's `country` if given, else GeoIP's;
/// neither → 400 asking the operator to pick (never a default).
pub fn zones(st: &AppState, ip: IpAddr, country: Option<&str>) -> Result<Vec<String>, ApiError> {
    let country = country.map(str::trim).filter(|c| !c.is_empty());
    match country {
        Some(cc) => geo::zones_for_country(cc).ok_or_else(|| {
            ApiError::bad_request(format!(
                "country: '{cc}' is not a country zone (a two-letter code, e.g. de or uk)"
            ))
        }),
        None => geo_country(st, ip)
            .and_then(|cc| geo::zones_for_country(&cc))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "country: GeoIP does not know where {ip} is; pick its country"
                ))
            }),
    }
}

/// Step three: add the server of a passed live check, in `country` (or
/// GeoIP's). Not added (409) while the check runs or when no monitor got a
/// usable answer, with every answer and the pool's advice.
pub async fn finish_add(
    st: &AppState,
    account_id: i64,
    actor: &str,
    check_id: i64,
    country: Option<&str>,
    hostname: Option<&str>,
) -> Result<Added, ApiError> {
    let now = st.now();
    let c = live_check(st, account_id, check_id).await?;
    if !c.usable() {
        if !c.finished(now) {
            return Err(ApiError::conflict(
                "live_check: the monitors have not answered yet; wait for them",
            ));
        }
        return Err(ApiError::conflict(failed_check_text(&c)));
    }
    if now > c.expires + LIVE_CHECK_USE_S {
        return Err(ApiError::conflict(
            "live_check: this check is too old; check the server again",
        ));
    }
    let hostname = hostname
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(check_hostname)
        .transpose()
        .map_err(|_| ApiError::bad_request("hostname: not a hostname"))?;
    if !st.cfg().manage.allow_private && !is_public(c.ip) {
        return Err(ApiError::conflict(format!(
            "{} is not a public address",
            c.ip
        )));
    }
    let zones = zones(st, c.ip, country)?;
    let add = OperatorAdd {
        account_id,
        ip: c.ip,
        hostname,
        netspeed: DEFAULT_NETSPEED,
        zones,
    };
    Ok(st
        .store()
        .add_operator_server(&add, limits(st), actor, now)
        .await?)
}

/// The account's server at `ip` (404 for another account's or none).
pub async fn server(st: &AppState, account_id: i64, ip: IpAddr) -> Result<ServerRow, ApiError> {
    st.store()
        .account_server(account_id, ip)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("server {ip}")))
}

/// One of the pool's netspeed choices, else 400 listing them.
pub fn check_netspeed(kbit: i64) -> Result<(), ApiError> {
    if NETSPEED_CHOICES.contains(&kbit) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "netspeed: {kbit} is not one of the pool's choices ({})",
        NETSPEED_CHOICES.map(|n| n.to_string()).join(", ")
    )))
}

/// A note as stored (trimmed): at most [`MAX_NOTE_CHARS`], no control
/// characters but line breaks and tabs.
pub fn check_note(note: &str) -> Result<&str, ApiError> {
    let note = note.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::bad_request(format!(
            "note: longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    if note
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::bad_request(
            "note: control characters not allowed",
        ));
    }
    Ok(note)
}

/// Netspeed: one of the pool's choices; an unverified server not above
/// [`DEFAULT_NETSPEED`].
pub async fn set_netspeed(
    st: &AppState,
    account_id: i64,
    actor: &str,
    ip: IpAddr,
    kbit: i64,
) -> Result<ServerRow, ApiError> {
    check_netspeed(kbit)?;
    Ok(st
        .store()
        .set_account_server_netspeed(account_id, ip, kbit, DEFAULT_NETSPEED, actor, st.now())
        .await?)
}

/// The deletion day of `date` (`YYYY-MM-DD`, 00:00 UTC), if it is at least
/// [`DELETION_NOTICE_DAYS`] after today.
pub fn deletion_day(date: &str, now: i64) -> Result<i64, ApiError> {
    let day = parse_date(date)
        .map_err(|_| ApiError::bad_request(format!("date: '{date}' is not a date (YYYY-MM-DD)")))?;
    let earliest = today(now) + DELETION_NOTICE_DAYS * 86_400;
    if day < earliest {
        return Err(ApiError::bad_request(format!(
            "date: at least {DELETION_NOTICE_DAYS} days ahead, {} or later (the server leaves DNS {DELETION_NOTICE_DAYS} days before)",
            crate::admin::format_date(earliest)
        )));
    }
    Ok(day)
}

/// Schedule deletion on `date`; monitoring stops and the server is removed
/// on that day (housekeeping), out of DNS 14 days before.
pub async fn schedule_deletion(
    st: &AppState,
    account_id: i64,
    actor: &str,
    ip: IpAddr,
    date: &str,
) -> Result<ServerRow, ApiError> {
    let now = st.now();
    let day = deletion_day(date, now)?;
    Ok(st
        .store()
        .set_account_server_deletion(account_id, ip, Some(day), actor, now)
        .await?)
}

pub async fn cancel_deletion(
    st: &AppState,
    account_id: i64,
    actor: &str,
    ip: IpAddr,
) -> Result<ServerRow, ApiError> {
    Ok(st
        .store()
        .set_account_server_deletion(account_id, ip, None, actor, st.now())
        .await?)
}

pub async fn set_alerts(
    st: &AppState,
    account_id: i64,
    actor: &str,
    ip: IpAddr,
    on: bool,
) -> Result<ServerRow, ApiError> {
    Ok(st
        .store()
        .set_account_server_alerts(account_id, ip, on, actor, st.now())
        .await?)
}

/// The operator's note (see [`check_note`]).
pub async fn set_note(
    st: &AppState,
    account_id: i64,
    actor: &str,
    ip: IpAddr,
    note: &str,
) -> Result<ServerRow, ApiError> {
    let note = check_note(note)?;
    Ok(st
        .store()
        .set_account_server_note(account_id, ip, note, actor, st.now())
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert_eq!(
            check_hostname(" NTP1.Example.NET. ").unwrap(),
            "ntp1.example.net"
        );
        for bad in [
            "localhost",
            "a..b",
            "-a.b",
            "a-.b",
            "a b.c",
            "<b>.x",
            &"a.".repeat(130),
        ] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deletion_needs_fourteen_days() {
        let now = 1_700_000_000; // 2023-11-14 22:13 UTC
        assert_eq!(
            deletion_day("2023-11-28", now).unwrap(),
            today(now) + 14 * 86_400
        );
        let e = deletion_day("2023-11-27", now).unwrap_err();
        assert!(
            e.detail()
                .starts_with("date: at least 14 days ahead, 2023-11-28"),
            "{e}"
        );
        assert!(
            deletion_day("next week", now)
                .unwrap_err()
                .detail()
                .starts_with("date:")
        );
    }

    #[test]
    fn answers_as_the_operator_reads_them() {
        let mut m = store::LiveCheckMonitor {
            monitor_id: 1,
            monitor_name: "zrh".into(),
            handed_out: None,
            answer: None,
        };
        assert_eq!(answer_text(&m, false), "waiting for the monitor to call");
        m.handed_out = Some(1);
        assert_eq!(answer_text(&m, false), "checking…");
        assert_eq!(answer_text(&m, true), "no answer before the check expired");
        let a = store::LiveCheckAnswer {
            ts: 1,
            offset: Some(-0.0012),
            rtt: Some(0.01),
            stratum: Some(2),
            leap: Some(0),
            refid: None,
            error: None,
            no_response: false,
        };
        m.answer = Some(a.clone());
        assert_eq!(answer_text(&m, true), "stratum 2 offset -1.2 ms");
        m.answer = Some(store::LiveCheckAnswer {
            stratum: Some(16),
            ..a.clone()
        });
        assert!(answer_text(&m, true).ends_with("(not a usable stratum: 1–15)"));
        m.answer = Some(store::LiveCheckAnswer {
            stratum: Some(0),
            offset: None,
            error: Some("RATE".into()),
            ..a
        });
        assert_eq!(answer_text(&m, true), "stratum 0 error RATE");
    }

    #[test]
    fn netspeed_default_is_a_choice() {
        assert!(NETSPEED_CHOICES.contains(&DEFAULT_NETSPEED));
        assert!(NETSPEED_CHOICES.windows(2).all(|w| w[0] < w[1]));
    }
}
