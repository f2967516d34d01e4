//! Operator actions behind `poolwatch admin`: adding monitors (and making
//! their keys) and servers (and finding their zones), and parsing the
//! operator's input. Every check happens before the store is touched, so a
//! refused command changes nothing.

use crate::keys::{generate_key, hash_key};
use std::net::IpAddr;
use store::{
    GlobalStatus, MonitorRow, NewMonitor, NewServer, ServerRow, Store, StoreError, ZoneSeed,
};

/// Why an admin action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The operator's input is wrong (exit status 2); one line, says what
    /// to do instead.
    #[error("{0}")]
    Usage(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            // Duplicates, unknown names and refused values are the
            // operator's to fix, not system failures.
            StoreError::Conflict(m) => AdminError::Usage(format!("already exists: {m}")),
            StoreError::NotFound(m) => AdminError::Usage(format!("not found: {m}")),
            StoreError::Invalid(m) => AdminError::Usage(m),
            other => AdminError::Store(other),
        }
    }
}

fn usage(msg: impl Into<String>) -> AdminError {
    AdminError::Usage(msg.into())
}

/// The zone tree of `geo`, as the store seeds it.
pub fn zone_seeds() -> Vec<ZoneSeed> {
    geo::zone_tree()
        .into_iter()
        .map(|z| ZoneSeed {
            name: z.name,
            parent: z.parent,
            description: z.description,
        })
        .collect()
}

/// An IP address as the operator typed it.
pub fn parse_ip(s: &str) -> Result<IpAddr, AdminError> {
    s.trim()
        .parse()
        .map_err(|_| usage(format!("'{s}' is not an IP address")))
}

/// Whether an address may be a pool server: globally routable unicast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 shared
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15 benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

/// A date `YYYY-MM-DD` as unix seconds at 00:00 UTC.
pub fn parse_date(s: &str) -> Result<i64, AdminError> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| usage(format!("'{s}' is not a date (use YYYY-MM-DD)")))
}

/// `YYYY-MM-DD` of unix seconds, UTC.
pub fn format_date(ts: i64) -> String {
    crate::logfmt::timestamp(ts)
        .get(..10)
        .unwrap_or_default()
        .to_string()
}

/// Midnight UTC of the day `now` falls in.
pub fn today(now: i64) -> i64 {
    now - now.rem_euclid(86_400)
}

/// Monitor names end up in URLs (`?monitor=NAME`) and metrics labels.
pub fn check_monitor_name(name: &str) -> Result<(), AdminError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "'{name}' is not a monitor name (letters, digits and '-', up to 63, not all digits)"
        )))
    }
}

/// A monitor to add.
#[derive(Debug, Clone)]
pub struct AddMonitor {
    pub name: String,
    pub ip: IpAddr,
    pub location: String,
    pub account: Option<String>,
    pub status: GlobalStatus,
}

/// Add a monitor; returns it and its key, which exists nowhere else (the
/// store keeps only the hash).
pub async fn add_monitor(
    store: &Store,
    m: AddMonitor,
    now: i64,
) -> Result<(MonitorRow, String), AdminError> {
    check_monitor_name(&m.name)?;
    let location = check_location(&m.location)?;
    if store.monitor_by_name(&m.name).await?.is_some() {
        return Err(usage(format!(
            "a monitor named '{}' already exists",
            m.name
        )));
    }
    let account_id = match &m.account {
        Some(a) => Some(store.ensure_account(a).await?),
        None => None,
    };
    let key = generate_key();
    let row = store
        .add_monitor(
            NewMonitor {
                name: m.name,
                location,
                ip: m.ip,
                account_id,
                status: m.status,
                key_hash: hash_key(&key),
            },
            now,
        )
        .await?;
    Ok((row, key))
}

/// Longest monitor location.
pub const LOCATION_MAX: usize = 100;

/// A monitor's location as stored (trimmed): at most [`LOCATION_MAX`]
/// characters, none of [`crate::extract::forbidden_char`]. One rule for
/// `admin monitor add` and a volunteer's accept form.
pub fn check_location(location: &str) -> Result<String, AdminError> {
    let l = location.trim();
    if l.chars().count() > LOCATION_MAX {
        return Err(usage(format!(
            "location: at most {LOCATION_MAX} characters"
        )));
    }
    if let Some(c) = crate::extract::forbidden_char(l) {
        return Err(usage(format!(
            "location: character U+{:04X} not allowed",
            c as u32
        )));
    }
    Ok(l.to_string())
}

/// Gives the monitor a new key and returns it; the old key stops working
/// at once (the next API call with it is 401). For a key that leaked or was
/// lost: the agent needs the new one.
pub async fn rotate_monitor_key(
    store: &Store,
    name: &str,
) -> Result<(MonitorRow, String), AdminError> {
    let Some(row) = store.monitor_by_name(name).await? else {
        return Err(usage(format!("no monitor named '{name}'")));
    };
    let key = generate_key();
    store.set_monitor_key_hash(name, &hash_key(&key)).await?;
    Ok((row, key))
}

/// A monitor's own check settings (`admin monitor set`, the admin
/// pages), written into `monitors.config` over the service's defaults.
/// `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorSettings {
    pub samples: Option<u32>,
    pub sample_interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub batch_size: Option<u32>,
}

/// Queries per check: as the agent clamps them.
pub const SAMPLES: std::ops::RangeInclusive<u32> = 1..=16;
/// Longest pause between queries and longest wait for an answer, in ms
/// (the agent caps both at a minute).
pub const CHECK_WAIT_MAX_MS: u64 = 60_000;

impl MonitorSettings {
    /// The first value out of range, as (field, why): the ranges of
    /// `serve`'s own settings, so a monitor can be told nothing the
    /// service could not be.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(n) = self.samples
            && !SAMPLES.contains(&n)
        {
            return Err(("samples", format!("{n} is not between 1 and 16")));
        }
        if let Some(ms) = self.sample_interval_ms
            && ms > CHECK_WAIT_MAX_MS
        {
            return Err(("sample_interval", format!("{ms} ms is over a minute")));
        }
        if let Some(ms) = self.timeout_ms
            && !(1..=CHECK_WAIT_MAX_MS).contains(&ms)
        {
            return Err((
                "timeout",
                format!("{ms} ms is not more than 0 and at most a minute"),
            ));
        }
        if let Some(n) = self.batch_size
            && !(1..=api::MAX_BATCH_SIZE).contains(&n)
        {
            return Err((
                "batch_size",
                format!("{n} is not between 1 and {}", api::MAX_BATCH_SIZE),
            ));
        }
        Ok(())
    }

    fn fields(&self) -> [(&'static str, Option<u64>); 4] {
        [
            ("samples", self.samples.map(u64::from)),
            ("sample_interval_ms", self.sample_interval_ms),
            ("timeout_ms", self.timeout_ms),
            ("batch_size", self.batch_size.map(u64::from)),
        ]
    }

    /// Whether no field is given.
    pub fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, v)| v.is_none())
    }
}

/// Writes `set` into the monitor's config (after clearing the four check
/// settings when `clear`), keeping its other keys, audited as `actor`.
/// Returns the config now stored. Nothing is written when a value is out
/// of range.
pub async fn set_monitor_settings(
    store: &Store,
    name: &str,
    set: MonitorSettings,
    clear: bool,
    actor: &str,
    now: i64,
) -> Result<Option<String>, AdminError> {
    set.check()
        .map_err(|(field, why)| usage(format!("{field}: {why}")))?;
    let Some(row) = store.monitor_by_name(name).await? else {
        return Err(usage(format!("no monitor named '{name}'")));
    };
    let mut obj = match row.config.as_deref().map(serde_json::from_str) {
        Some(Ok(serde_json::Value::Object(o))) => o,
        _ => serde_json::Map::new(),
    };
    let mut detail = Vec::new();
    if clear {
        for (k, _) in MonitorSettings::default().fields() {
            obj.remove(k);
        }
        detail.push("cleared".to_string());
    }
    for (k, v) in set.fields() {
        if let Some(v) = v {
            obj.insert(k.into(), v.into());
            detail.push(format!("{k} {v}"));
        }
    }
    let config = (!obj.is_empty()).then(|| serde_json::Value::Object(obj).to_string());
    store
        .set_monitor_settings(name, config.as_deref(), actor, &detail.join(", "), now)
        .await?;
    Ok(config)
}

/// A server to add.
#[derive(Debug, Clone)]
pub struct AddServer {
    pub ip: IpAddr,
    /// Country code given by the operator; overrides GeoIP.
    pub zone: Option<String>,
    /// kbit/s.
    pub netspeed: i64,
    pub account: Option<String>,
    /// Accept loopback, private and documentation addresses (labs, demos).
    pub allow_private: bool,
}

/// The zones of a server: from `--zone` if given, else from GeoIP.
pub fn server_zones(
    ip: IpAddr,
    zone: Option<&str>,
    geoip: Option<&geo::GeoIp>,
) -> Result<Vec<String>, AdminError> {
    if let Some(cc) = zone {
        return geo::zones_for_country(cc).ok_or_else(|| {
            usage(format!(
                "'{cc}' is not a country zone (use a two-letter country code, e.g. de or uk)"
            ))
        });
    }
    geoip
        .and_then(|g| g.lookup(ip))
        .and_then(|loc| geo::zones_for_country(&loc.country))
        .ok_or_else(|| {
            usage(format!(
                "cannot determine the country of {ip}; pass --zone CC"
            ))
        })
}

/// Add a server in its country, continent and global zones.
pub async fn add_server(
    store: &Store,
    geoip: Option<&geo::GeoIp>,
    s: AddServer,
    now: i64,
) -> Result<ServerRow, AdminError> {
    if !s.allow_private && !is_public(s.ip) {
        return Err(usage(format!(
            "{} is not a public address (pass --allow-private for a lab)",
            s.ip
        )));
    }
    if s.netspeed < 0 || s.netspeed > 100_000_000 {
        return Err(usage(format!(
            "netspeed {} kbit is out of range (0 to 100000000; 0 = monitor only)",
            s.netspeed
        )));
    }
    let zones = server_zones(s.ip, s.zone.as_deref(), geoip)?;
    if store.server_by_ip(s.ip).await?.is_some() {
        return Err(usage(format!("server {} is already registered", s.ip)));
    }
    let account_id = match &s.account {
        Some(a) => Some(store.ensure_account(a).await?),
        None => None,
    };
    Ok(store
        .add_server(
            NewServer {
                ip: s.ip,
                netspeed: s.netspeed,
                account_id,
                zones,
            },
            now,
        )
        .await?)
}

/// Longest contact address, as the longest sign-in address.
pub const CONTACT_EMAIL_MAX: usize = 254;
/// Longest webhook URL.
pub const WEBHOOK_MAX: usize = 2000;

/// Check an account's alert contacts as the operator typed them: an
/// e-mail address, an http(s) webhook URL. `""` (clear) passes. One rule
/// for the contacts page and `admin account contact`.
pub fn check_contact(email: Option<&str>, webhook: Option<&str>) -> Result<(), AdminError> {
    if let Some(e) = email.map(str::trim).filter(|e| !e.is_empty()) {
        // As sign-in addresses (store::normalize_email); lettre takes longer.
        if e.chars().count() > CONTACT_EMAIL_MAX {
            return Err(usage(format!(
                "e-mail address: at most {CONTACT_EMAIL_MAX} characters"
            )));
        }
        e.parse::<lettre::Address>()
            .map_err(|_| usage(format!("'{e}' is not an e-mail address")))?;
    }
    if let Some(w) = webhook.map(str::trim).filter(|w| !w.is_empty()) {
        if w.chars().count() > WEBHOOK_MAX {
            return Err(usage(format!("webhook: at most {WEBHOOK_MAX} characters")));
        }
        let ok = reqwest::Url::parse(w)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            return Err(usage(format!("'{w}' is not an http:// or https:// URL")));
        }
    }
    Ok(())
}

/// Set an account's alert contacts: `None` keeps the current value, `""`
/// clears it. Returns the account as stored.
pub async fn set_account_contact(
    store: &Store,
    name: &str,
    email: Option<&str>,
    webhook: Option<&str>,
) -> Result<store::AccountRow, AdminError> {
    check_contact(email, webhook)?;
    let Some(cur) = store.account_by_name(name).await? else {
        return Err(usage(format!(
            "no account '{name}' (add it with `poolwatch admin account add {name}`)"
        )));
    };
    let pick = |new: Option<&str>, old: Option<String>| match new.map(str::trim) {
        Some("") => None,
        Some(v) => Some(v.to_string()),
        None => old,
    };
    let email = pick(email, cur.email);
    let webhook = pick(webhook, cur.webhook);
    store
        .set_account_contact(name, email.as_deref(), webhook.as_deref())
        .await?;
    Ok(store
        .account_by_name(name)
        .await?
        .unwrap_or(store::AccountRow {
            email,
            webhook,
            ..cur
        }))
}

/// Sets an account's pool-admin and disabled flags (`None` keeps one),
/// from the command line (`admin:cli` in the audit log). Returns the
/// account as stored.
pub async fn set_account_flags(
    store: &Store,
    name: &str,
    is_admin: Option<bool>,
    disabled: Option<bool>,
    now: i64,
) -> Result<store::AccountInfo, AdminError> {
    if is_admin.is_none() && disabled.is_none() {
        return Err(usage("give --admin/--no-admin and/or --disabled/--enabled"));
    }
    store
        .set_account_flags(name, is_admin, disabled, "admin:cli", now)
        .await?;
    let id = store
        .account_by_name(name)
        .await?
        .ok_or_else(|| usage(format!("no account '{name}'")))?
        .id;
    store
        .account_info(id)
        .await?
        .ok_or_else(|| usage(format!("no account '{name}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(check_location(" Zürich, CH ").unwrap(), "Zürich, CH");
        for (bad, says) in [
            ("x".repeat(101), "at most 100"),
            ("Zürich\u{202E}HC".into(), "U+202E"),
            ("a\nb".into(), "U+000A"),
        ] {
            let e = check_location(&bad).unwrap_err().to_string();
            assert!(e.starts_with("location: ") && e.contains(says), "{e}");
        }
    }

    #[test]
    fn contacts() {
        assert!(
            check_contact(Some("noc@example.net"), Some("https://hooks.example.net/x")).is_ok()
        );
        assert!(check_contact(Some(""), Some("")).is_ok());
        assert!(check_contact(None, None).is_ok());
        assert!(check_contact(Some("not an address"), None).is_err());
        assert!(check_contact(None, Some("ftp://example.net/")).is_err());
        assert!(check_contact(None, Some("example.net/hook")).is_err());
    }

    #[test]
    fn public_addresses() {
        for ip in ["81.2.69.142", "2a02:d180::1", "8.8.8.8", "2001:4860::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "127.0.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "192.0.2.1",
            "224.0.0.1",
            "0.1.2.3",
            "100.64.0.1",
            "198.18.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "2001:db8::1",
            "ff02::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-02").unwrap(), 86_400);
        assert_eq!(parse_date("2024-02-29").unwrap(), 1_709_164_800);
        assert_eq!(format_date(1_709_164_800), "2024-02-29");
        for bad in ["2023-02-29", "2024-13-01", "tomorrow", "", "2024-1-1x"] {
            assert!(
                matches!(parse_date(bad), Err(AdminError::Usage(_))),
                "{bad}"
            );
        }
        assert_eq!(today(86_400 * 3 + 5), 86_400 * 3);
    }

    #[test]
    fn monitor_names() {
        for ok in ["deksf1-1a6a7hp", "a", "mon-1"] {
            assert!(check_monitor_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a_b", "a.b", "a b", "123", &"x".repeat(64)] {
            assert!(check_monitor_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zones_from_flag_or_geoip() {
        let g = geo::GeoIp::open(std::path::Path::new(geo::fixtures::COUNTRY_MMDB)).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            server_zones(ip("81.2.69.142"), None, Some(&g)).unwrap(),
            ["uk", "europe", "@"]
        );
        assert_eq!(
            server_zones(ip("2a02:d180::1"), None, Some(&g)).unwrap(),
            ["de", "europe", "@"]
        );
        assert_eq!(
            server_zones(ip("192.0.2.1"), Some("GB"), None).unwrap(),
            ["uk", "europe", "@"]
        );
        let e = server_zones(ip("2001:db8::1"), None, Some(&g)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot determine the country of 2001:db8::1; pass --zone CC"
        );
        assert!(server_zones(ip("81.2.69.142"), None, None).is_err());
        assert!(server_zones(ip("81.2.69.142"), Some("zz"), Some(&g)).is_err());
        assert!(server_zones(ip("81.2.69.142"), Some("europe"), Some(&g)).is_err());
    }
}
