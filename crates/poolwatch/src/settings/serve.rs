//! `serve`'s settings (and `admin`'s, which reads the same file). The TOML
//! file has the same keys; flags and variables are in `serve --help`:
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! metrics_listen = "127.0.0.1:9122"   # /metrics here only (404 on listen)
//! data_dir = "/var/lib/poolwatch"
//! database_url = "postgres://poolwatch@db/poolwatch"
//! geoip = "/usr/share/GeoIP/GeoLite2-Country.mmdb"
//! log_format = "json"
//! instance_name = "web-1"     # in logs, job leases, the admin status page
//! samples = 4
//! sample_interval = "2s"
//! timeout = "3s"
//! batch_size = 10
//! interval_active = "9m"
//! interval_testing = "45m"
//! interval_candidate = "2h"
//! reference_servers = ["time.example.net", "192.0.2.123"]
//! ticket_secret_file = "/etc/poolwatch/ticket-secret"
//! zone_guard = 0.1            # or "off", or "10%"
//! log_retention = "forever"  # or "90d": older score log rows are deleted
//! sample_retention = "15d"   # every sample of each check, kept this long
//! dns_count_retention = "15d"  # DNS answer counts (client distribution), at least 3d
//! public_sample_detail = false  # true: score pages show answer rates by sample position
//! public_url = "https://pool.example.org"
//! zone = "pool.example.org"
//! dns_listen = "0.0.0.0:53"
//! dns_ns = ["ns1.example.org.", "ns2"]
//! ipv6_everywhere = false
//! dns_refresh = "30s"
//! dns_count_interval = "1m"   # the DNS inside serve stores its answer counts this often
//! dns_token_file = "/etc/poolwatch/dns.token"
//!
//! [http]
//! header_timeout = "10s"
//! idle_timeout = "5s"
//! max_connections = 4096
//! max_connections_per_client = 32
//! shutdown_grace = "10s"     # the whole stop: drain delay, requests, jobs
//! drain_delay = "5s"         # /readyz 503 while still serving, on SIGTERM
//!
//! [rate_limit]
//! per_second = 20
//! burst = 40
//! trusted_proxies = ["10.0.0.0/8"]
//!
//! [alerts]
//! smtp_url = "smtp://127.0.0.1:25"   # or "smtps://USER:PASSWORD@mail.example.org"
//! # smtp_ca = "/etc/poolwatch/relay-ca.pem"
//! from = "Pool <alerts@pool.example.org>"
//! interval = "1h"
//! check = "60s"
//! reminder = "24h"
//! max_reminders = 5
//!
//! [dns_rrl]                   # DNS response rate limiting (UDP)
//! rate = 200                  # responses per second per prefix; 0 = off
//! slip = 2
//! ipv4_prefix = 24
//! ipv6_prefix = 64
//! size = 1000000
//!
//! [manage]                    # operators' accounts and servers (/manage)
//! signup = "open"             # "closed": only members and invited addresses sign in
//! session_idle = "2h"
//! session_max_age = "7d"
//! max_servers_per_account = 20
//! max_unverified = 2
//! max_monitors_per_account = 3  # agents (IPv4 + IPv6 rows each); accounts.max_monitors overrides
//! allow_private = false       # true: accept private/loopback addresses (labs)
//!
//! [selector]
//! enabled = true              # false: as --no-selector
//! interval = "10m"
//! active = 7
//! testing = 5
//! min_testing = 9
//! min_active = 32
//! candidate_budget = 8000
//! ```

use super::dns::RrlSection;
use super::{HumanDuration, Invalid, LogFormat, Settings, at_least};
use scoring::{SelectorConfig, ZoneGuardConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use server::alerts::{AlertConfig, AlertPolicy, SmtpUrl};
use server::housekeeping_job::MIN_LOG_RETENTION;
use server::manage::settings::{ManageSettings, Signup};
use server::selector_job::SelectorSettings;
use server::{HttpLimits, RateLimitConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use store::WorkIntervals;

/// Everything `serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    /// Empty means SQLite, as unset.
    pub database_url: Option<String>,
    pub sqlite_max_size: Option<ByteSize>,
    pub geoip: Option<PathBuf>,
    pub log_format: LogFormat,
    /// Empty: `HOSTNAME-PID`.
    pub instance_name: Option<String>,
    pub samples: u32,
    pub sample_interval: HumanDuration,
    pub timeout: HumanDuration,
    pub batch_size: u32,
    pub interval_active: HumanDuration,
    pub interval_testing: HumanDuration,
    pub interval_candidate: HumanDuration,
    pub reference_servers: Vec<String>,
    pub ticket_secret_file: Option<PathBuf>,
    pub zone_guard: ZoneGuard,
    pub log_retention: LogRetention,
    pub sample_retention: HumanDuration,
    /// DNS answer counts (client distribution) are kept this long.
    pub dns_count_retention: HumanDuration,
    /// The public server page shows the answer rate by sample position
    /// beside the samples' verdict.
    pub public_sample_detail: bool,
    pub public_url: Option<String>,
    pub zone: Option<String>,
    pub dns_listen: Option<SocketAddr>,
    pub dns_token_file: Option<PathBuf>,
    pub dns_ns: Vec<String>,
    pub ipv6_everywhere: bool,
    pub dns_refresh: HumanDuration,
    /// How often the DNS inside `serve` stores its answer counts; 0 (or
    /// "off"): never.
    #[serde(deserialize_with = "super::dns::duration_or_off")]
    pub dns_count_interval: HumanDuration,
    pub http: HttpSection,
    pub rate_limit: RateLimitSection,
    pub alerts: AlertsSection,
    pub selector: SelectorSection,
    pub dns_rrl: RrlSection,
    pub manage: ManageSection,
}

/// `[manage]`: operators' sign-in, sessions and the limits of their
/// accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManageSection {
    pub signup: Signup,
    pub session_idle: HumanDuration,
    pub session_max_age: HumanDuration,
    pub max_servers_per_account: u32,
    pub max_unverified: u32,
    pub max_monitors_per_account: u32,
    pub allow_private: bool,
}

impl Default for ManageSection {
    fn default() -> Self {
        let d = ManageSettings::default();
        ManageSection {
            signup: d.signup,
            session_idle: HumanDuration(d.session_idle),
            session_max_age: HumanDuration(d.session_absolute),
            max_servers_per_account: d.max_servers_per_account,
            max_unverified: d.max_unverified,
            max_monitors_per_account: d.max_monitors_per_account,
            allow_private: d.allow_private,
        }
    }
}

/// `[http]`: timeouts and connection caps of the HTTP listeners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    pub header_timeout: HumanDuration,
    pub idle_timeout: HumanDuration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub shutdown_grace: HumanDuration,
    pub drain_delay: HumanDuration,
}

/// `[rate_limit]`: the public routes' limit per client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    pub per_second: f64,
    pub burst: f64,
    pub trusted_proxies: Vec<String>,
}

/// `[alerts]`: e-mail and the policy of alerts to server accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    pub smtp_url: Option<String>,
    pub smtp_ca: Option<PathBuf>,
    pub from: Option<String>,
    pub interval: HumanDuration,
    pub check: HumanDuration,
    pub reminder: HumanDuration,
    pub max_reminders: u32,
}

/// `[selector]`: the monitor selector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectorSection {
    /// `false`: as `--no-selector`.
    pub enabled: bool,
    pub interval: HumanDuration,
    pub active: usize,
    pub testing: usize,
    pub min_testing: u32,
    pub min_active: u32,
    pub candidate_budget: usize,
}

impl Default for ServeSettings {
    /// The pool's values, from the crates that use them.
    fn default() -> Self {
        let iv = WorkIntervals::default();
        let d = server::ServerConfig::default();
        ServeSettings {
            listen: d.listen,
            metrics_listen: None,
            data_dir: PathBuf::from("./poolwatch-data"),
            database_url: None,
            sqlite_max_size: None,
            geoip: None,
            log_format: LogFormat::Text,
            instance_name: None,
            samples: d.samples,
            sample_interval: HumanDuration::millis(d.sample_interval_ms),
            timeout: HumanDuration::millis(d.timeout_ms),
            batch_size: d.batch_size,
            interval_active: HumanDuration::secs(iv.active_s as u64),
            interval_testing: HumanDuration::secs(iv.testing_s as u64),
            interval_candidate: HumanDuration::secs(iv.candidate_s as u64),
            reference_servers: Vec::new(),
            ticket_secret_file: None,
            zone_guard: ZoneGuard(ZoneGuardConfig::default()),
            log_retention: LogRetention(None),
            sample_retention: HumanDuration(server::housekeeping_job::DEFAULT_SAMPLE_RETENTION),
            dns_count_retention: HumanDuration(
                server::housekeeping_job::DEFAULT_DNS_COUNT_RETENTION,
            ),
            public_sample_detail: d.public_sample_detail,
            public_url: None,
            zone: None,
            dns_listen: None,
            dns_token_file: None,
            dns_ns: Vec::new(),
            ipv6_everywhere: false,
            dns_refresh: HumanDuration::secs(30),
            dns_count_interval: HumanDuration(server::dns_counts::DEFAULT_INTERVAL),
            http: HttpSection::default(),
            rate_limit: RateLimitSection::default(),
            alerts: AlertsSection::default(),
            selector: SelectorSection::default(),
            dns_rrl: RrlSection::default(),
            manage: ManageSection::default(),
        }
    }
}

impl Default for HttpSection {
    fn default() -> Self {
        let d = HttpLimits::default();
        HttpSection {
            header_timeout: HumanDuration(d.header_timeout),
            idle_timeout: HumanDuration(d.idle_timeout),
            max_connections: d.max_connections,
            max_connections_per_client: d.max_connections_per_client,
            shutdown_grace: HumanDuration(d.shutdown_grace),
            drain_delay: HumanDuration(server::ServerConfig::default().drain_delay),
        }
    }
}

impl Default for RateLimitSection {
    fn default() -> Self {
        let d = RateLimitConfig::default();
        RateLimitSection {
            per_second: d.per_second,
            burst: d.burst,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for AlertsSection {
    fn default() -> Self {
        let p = AlertPolicy::default();
        AlertsSection {
            smtp_url: None,
            smtp_ca: None,
            from: None,
            interval: HumanDuration::secs(p.min_interval_s as u64),
            check: HumanDuration(AlertConfig::default().check_every),
            reminder: HumanDuration::secs(p.first_reminder_s as u64),
            max_reminders: p.max_reminders as u32,
        }
    }
}

impl Default for SelectorSection {
    fn default() -> Self {
        let d = SelectorSettings::default();
        SelectorSection {
            enabled: true,
            interval: HumanDuration(d.interval),
            active: d.config.target_active,
            testing: d.config.base_testing,
            min_testing: d.config.min_count_testing,
            min_active: d.config.min_count_active,
            candidate_budget: d.candidate_budget,
        }
    }
}

impl Settings for ServeSettings {
    fn validate(&self) -> Result<(), Invalid> {
        for (key, d) in [
            ("interval_active", self.interval_active),
            ("interval_testing", self.interval_testing),
            ("interval_candidate", self.interval_candidate),
        ] {
            at_least(key, d, Duration::from_secs(1))?;
        }
        // The same ranges as a monitor's own settings (`admin monitor set`).
        let ms = |d: HumanDuration| u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX);
        server::admin::MonitorSettings {
            samples: Some(self.samples),
            sample_interval_ms: Some(ms(self.sample_interval)),
            timeout_ms: Some(ms(self.timeout)),
            batch_size: Some(self.batch_size),
        }
        .check()
        .map_err(|(key, why)| Invalid::new(key, format!("must be in range: {why}")))?;
        at_least("dns_refresh", self.dns_refresh, Duration::from_millis(100))?;
        super::dns::count_interval("dns_count_interval", self.dns_count_interval)?;
        // The server page reads the last 3 days.
        at_least(
            "dns_count_retention",
            self.dns_count_retention,
            server::housekeeping_job::MIN_DNS_COUNT_RETENTION,
        )?;
        // A check's samples must outlive the hour between housekeeping passes.
        at_least(
            "sample_retention",
            self.sample_retention,
            Duration::from_secs(3600),
        )?;
        if self.dns_listen.is_some() && self.zone.is_none() {
            return Err(Invalid::new(
                "dns_listen",
                "needs --zone NAME (the pool zone to answer for)",
            ));
        }
        if self.sqlite_max_size.is_some()
            && self
                .database_url()
                .is_some_and(|u| u.starts_with("postgres"))
        {
            return Err(Invalid::new(
                "sqlite_max_size",
                "applies to SQLite only, not to --database-url postgres://…",
            ));
        }
        let h = &self.http;
        for (key, d) in [
            ("http.header_timeout", h.header_timeout),
            ("http.idle_timeout", h.idle_timeout),
            ("http.shutdown_grace", h.shutdown_grace),
        ] {
            at_least(key, d, Duration::from_millis(100))?;
        }
        if h.drain_delay.0 >= h.shutdown_grace.0 {
            return Err(Invalid::new(
                "http.drain_delay",
                format!(
                    "must be shorter than http.shutdown_grace ({}), which it is part of",
                    humantime::format_duration(h.shutdown_grace.0)
                ),
            ));
        }
        if let Some(name) = self.instance_name.as_deref().filter(|n| !n.is_empty()) {
            server::leases::check_instance_name(name)
                .map_err(|why| Invalid::new("instance_name", why))?;
        }
        for (key, n) in [
            ("http.max_connections", h.max_connections),
            (
                "http.max_connections_per_client",
                h.max_connections_per_client,
            ),
        ] {
            if n == 0 {
                return Err(Invalid::new(key, "must be at least 1"));
            }
        }
        let r = &self.rate_limit;
        if !r.per_second.is_finite() || r.per_second < 0.0 {
            return Err(Invalid::new("rate_limit.per_second", "must be ≥ 0"));
        }
        if !r.burst.is_finite() || r.burst < 1.0 {
            return Err(Invalid::new("rate_limit.burst", "must be ≥ 1"));
        }
        self.trusted_proxies()?;
        self.selector_settings()?;
        self.dns_rrl.validate()?;
        self.manage_settings()?;
        // Whether a CA is set is all `check` asks of it; it is read later.
        let ca = self.alerts.smtp_ca.as_ref().map(|_| Vec::new());
        self.alert_config(ca)?
            .check()
            .map_err(|(key, msg)| Invalid::new(key, msg))?;
        Ok(())
    }
}

impl ServeSettings {
    /// This instance's name: the setting, or `HOSTNAME-PID`.
    pub fn instance_name(&self) -> String {
        self.instance_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(server::leases::default_instance_name)
    }

    /// The PostgreSQL URL; empty is none.
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref().filter(|u| !u.is_empty())
    }

    /// How often monitors re-check a server, by status.
    pub fn intervals(&self) -> WorkIntervals {
        let s = |d: HumanDuration| d.0.as_secs() as i64;
        WorkIntervals {
            active_s: s(self.interval_active),
            testing_s: s(self.interval_testing),
            candidate_s: s(self.interval_candidate),
        }
    }

    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, Invalid> {
        self.rate_limit
            .trusted_proxies
            .iter()
            .map(|p| {
                RateLimitConfig::parse_proxy(p)
                    .map_err(|e| Invalid::new("rate_limit.trusted_proxies", e))
            })
            .collect()
    }

    /// The public limit; its proxies are exempt from the connection caps.
    pub fn rate_limit(&self) -> Result<(RateLimitConfig, HttpLimits), Invalid> {
        let trusted_proxies = self.trusted_proxies()?;
        let h = &self.http;
        let http = HttpLimits {
            header_timeout: h.header_timeout.0,
            idle_timeout: h.idle_timeout.0,
            max_connections: h.max_connections,
            max_connections_per_client: h.max_connections_per_client,
            shutdown_grace: h.shutdown_grace.0,
            // A proxy carries many clients' connections.
            exempt: trusted_proxies.clone(),
        };
        let limit = RateLimitConfig {
            per_second: self.rate_limit.per_second,
            burst: self.rate_limit.burst,
            trusted_proxies,
            ..RateLimitConfig::default()
        };
        Ok((limit, http))
    }

    /// The selector's settings; `None` when it is off.
    pub fn selector_settings(&self) -> Result<Option<SelectorSettings>, Invalid> {
        let s = &self.selector;
        if !s.enabled {
            return Ok(None);
        }
        at_least("selector.interval", s.interval, Duration::from_secs(1))?;
        if s.active == 0 {
            return Err(Invalid::new("selector.active", "must be at least 1"));
        }
        if s.candidate_budget == 0 {
            return Err(Invalid::new(
                "selector.candidate_budget",
                "must be at least 1 (no new monitor could ever start testing)",
            ));
        }
        Ok(Some(SelectorSettings {
            config: SelectorConfig {
                target_active: s.active,
                base_testing: s.testing,
                min_count_testing: s.min_testing,
                min_count_active: s.min_active,
                ..SelectorConfig::default()
            },
            interval: s.interval.0,
            candidate_budget: s.candidate_budget,
        }))
    }

    /// The manage side's settings (link lifetimes are the pool's, fixed).
    pub fn manage_settings(&self) -> Result<ManageSettings, Invalid> {
        let m = &self.manage;
        at_least(
            "manage.session_idle",
            m.session_idle,
            Duration::from_secs(60),
        )?;
        if m.session_max_age.0 < m.session_idle.0 {
            return Err(Invalid::new(
                "manage.session_max_age",
                "must be at least manage.session_idle",
            ));
        }
        if m.max_servers_per_account == 0 {
            return Err(Invalid::new(
                "manage.max_servers_per_account",
                "must be at least 1",
            ));
        }
        if m.max_monitors_per_account == 0 {
            return Err(Invalid::new(
                "manage.max_monitors_per_account",
                "must be at least 1",
            ));
        }
        Ok(ManageSettings {
            signup: m.signup,
            session_idle: m.session_idle.0,
            session_absolute: m.session_max_age.0,
            max_servers_per_account: m.max_servers_per_account,
            max_unverified: m.max_unverified,
            max_monitors_per_account: m.max_monitors_per_account,
            allow_private: m.allow_private,
            ..ManageSettings::default()
        })
    }

    /// The alerter's settings, with the CA's bytes read from `smtp_ca`.
    pub fn alert_config(&self, smtp_ca: Option<Vec<u8>>) -> Result<AlertConfig, Invalid> {
        let a = &self.alerts;
        let smtp = match a.smtp_url.as_deref() {
            Some(u) if !u.trim().is_empty() => Some(
                u.parse::<SmtpUrl>()
                    .map_err(|e| Invalid::new("alerts.smtp_url", e))?,
            ),
            _ => None,
        };
        let d = AlertConfig::default();
        let secs = |d: HumanDuration| d.0.as_secs() as i64;
        Ok(AlertConfig {
            policy: AlertPolicy {
                min_interval_s: secs(a.interval),
                first_reminder_s: secs(a.reminder),
                max_reminders: i64::from(a.max_reminders),
                ..AlertPolicy::default()
            },
            check_every: a.check.0,
            smtp,
            smtp_ca,
            from: a.from.clone().filter(|f| !f.trim().is_empty()),
            public_url: self
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", self.listen))
                .trim_end_matches('/')
                .to_string(),
            ..d
        })
    }
}

/// A size in bytes as `--sqlite-max-size` takes it: `20G`, `500M`, `4096`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// `"off"` or the largest share of a zone's servers that may leave DNS in a
/// day (`0.1`, `"10%"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZoneGuard(pub ZoneGuardConfig);

/// `forever` (every row kept) or a duration of at least
/// [`MIN_LOG_RETENTION`] (`90d`, `2w`, `72h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention(pub Option<Duration>);

/// `forever`, or a duration in the one syntax of at least 2 days.
pub fn parse_log_retention(s: &str) -> Result<LogRetention, String> {
    if s.trim().eq_ignore_ascii_case("forever") {
        return Ok(LogRetention(None));
    }
    let d = HumanDuration::parse(s).map_err(|_| {
        format!("'{s}' is not a log retention: give forever or a duration such as 90d, 2w or 72h")
    })?;
    if d < MIN_LOG_RETENTION {
        return Err(format!(
            "log retention {s} is too short: at least 2d (the overview and the alerts read the \
             last day of the log); give forever or a duration such as 90d, 2w or 72h"
        ));
    }
    Ok(LogRetention(Some(d)))
}

/// Serde for a type read from text (and written back as text); numbers
/// are read as their text, so `zone_guard = 0.1` and `"10%"` both work.
macro_rules! text_setting {
    ($t:ty, $expecting:literal, $parse:expr, $show:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let show: fn(&$t) -> String = $show;
                s.serialize_str(&show(self))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl de::Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        let parse: fn(&str) -> Result<$t, String> = $parse;
                        parse(v).map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

text_setting!(
    ByteSize,
    "a size such as \"20G\" or \"500M\"",
    |s| crate::util::parse_size(s).map(ByteSize),
    |b| b.0.to_string()
);
text_setting!(
    ZoneGuard,
    "off or a share between 0 and 1",
    |s| server::zone_guard_job::parse_zone_guard(s).map(ZoneGuard),
    |g| match g.0 {
        ZoneGuardConfig::Off => "off".to_string(),
        ZoneGuardConfig::MaxShare(x) => x.to_string(),
    }
);
text_setting!(
    LogRetention,
    "forever or a duration such as 90d",
    parse_log_retention,
    |r| match r.0 {
        None => "forever".to_string(),
        Some(d) => HumanDuration(d).to_string(),
    }
);
