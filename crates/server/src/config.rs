//! What `serve` can be told: the check parameters it hands to monitors, the
//! work intervals, the ticket secret and the public rate limit.

use crate::alerts::settings::AlertConfig;
use crate::dns_zone::settings::DnsZoneConfig;
use crate::housekeeping_job::settings::HousekeepingSettings;
use crate::http::{DEFAULT_LISTEN, HttpLimits};
use crate::leases::LeaseSettings;
use crate::manage::settings::ManageSettings;
use crate::selector_job::settings::SelectorSettings;
use ipnet::IpNet;
use std::net::SocketAddr;
use store::WorkIntervals;

/// Configuration of the central service. `Default` gives the pool's values
/// and a fresh random ticket secret (fine for tests; `serve` keeps its
/// secret in a file so tickets survive a restart).
#[derive(Clone)]
pub struct ServerConfig {
    /// Where to listen for HTTP.
    pub listen: SocketAddr,
    /// Serve `/metrics` here instead of on `listen` (which then answers
    /// 404 for it); `None`: on `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Timeouts and connection caps of the HTTP listeners.
    pub http: HttpLimits,
    /// Queries per check (the agent's `samples`).
    pub samples: u32,
    /// Time between the queries of one check.
    pub sample_interval_ms: u64,
    /// Time to wait for each reply.
    pub timeout_ms: u64,
    /// Servers per batch of work.
    pub batch_size: u32,
    /// How often a monitor re-checks a server, by its per-server status.
    pub intervals: WorkIntervals,
    /// Hostnames or addresses the agents check their own clock against.
    pub reference_servers: Vec<String>,
    /// HMAC key for work tickets.
    pub ticket_secret: Vec<u8>,
    /// Largest accepted request body (the monitor API); 413 above.
    pub max_body_bytes: usize,
    /// Per-client limit on the public routes.
    pub rate_limit: RateLimitConfig,
    /// Country lookups (for servers added through the service).
    pub geoip: Option<geo::GeoIp>,
    /// The pool zone to publish at `/api/dns-zone`, if any.
    pub dns_zone: Option<DnsZoneConfig>,
    /// The process-wide Prometheus recorder (DNS counters), appended to `/metrics`.
    pub process_metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The monitor selector's targets and interval; `None` turns it off.
    pub selector: Option<SelectorSettings>,
    /// Alerts to server accounts (e-mail, webhooks); `None` turns them off.
    pub alerts: Option<AlertConfig>,
    /// Pruning of old batches and (optionally) old log rows; `None` (the
    /// default here, so tests keep their data) turns it off. `serve` turns
    /// it on.
    pub housekeeping: Option<HousekeepingSettings>,
    /// Operators' accounts, sessions and the servers they add.
    pub manage: ManageSettings,
    /// Show the overall answer rate by sample position on the public
    /// server page (`--public-sample-detail`); off: the verdict only.
    pub public_sample_detail: bool,
    /// This instance's name (`--instance-name`): in logs, the job leases
    /// and the admin status page.
    pub instance_name: String,
    /// Job lease timing (PostgreSQL: one instance per singleton job).
    pub leases: LeaseSettings,
    /// How long a stopping instance keeps serving after `/readyz` turned
    /// 503, so the load balancer notices first (`--drain-delay`; skipped
    /// when `/readyz` was never asked). Within `http.shutdown_grace`.
    pub drain_delay: std::time::Duration,
}

impl std::fmt::Debug for ServerConfig {
    // By hand, so the ticket secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field("http", &self.http)
            .field("samples", &self.samples)
            .field("sample_interval_ms", &self.sample_interval_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("batch_size", &self.batch_size)
            .field("intervals", &self.intervals)
            .field("reference_servers", &self.reference_servers)
            .field("ticket_secret", &"<hidden>")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("rate_limit", &self.rate_limit)
            .field("geoip", &self.geoip.is_some())
            .field("dns_zone", &self.dns_zone.as_ref().map(|z| &z.origin))
            .field("alerts", &self.alerts)
            .field("housekeeping", &self.housekeeping)
            .field("manage", &self.manage)
            .field("public_sample_detail", &self.public_sample_detail)
            .field("instance_name", &self.instance_name)
            .field("leases", &self.leases)
            .field("drain_delay", &self.drain_delay)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            metrics_listen: None,
            http: HttpLimits::default(),
            samples: 4,
            sample_interval_ms: 2000,
            timeout_ms: 3000,
            batch_size: 10,
            intervals: WorkIntervals::default(),
            reference_servers: Vec::new(),
            ticket_secret: crate::keys::generate_secret(),
            max_body_bytes: 1 << 20,
            rate_limit: RateLimitConfig::default(),
            geoip: None,
            dns_zone: None,
            process_metrics: None,
            selector: Some(SelectorSettings::default()),
            alerts: None,
            housekeeping: None,
            manage: ManageSettings::default(),
            public_sample_detail: false,
            instance_name: crate::leases::default_instance_name(),
            leases: LeaseSettings::default(),
            drain_delay: std::time::Duration::from_secs(5),
        }
    }
}

/// Token bucket per client address on the public routes.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitConfig {
    /// Sustained requests per second; 0 turns the limit off.
    pub per_second: f64,
    /// Requests a client may make at once before the limit bites.
    pub burst: f64,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies). Empty:
    /// the socket peer is the client, whatever the headers say.
    pub trusted_proxies: Vec<IpNet>,
    /// Clients remembered at most; idle ones are forgotten first.
    pub max_clients: usize,
}

impl RateLimitConfig {
    /// A trusted proxy as the operator writes it: `10.0.0.0/8` or one
    /// address.
    pub fn parse_proxy(s: &str) -> Result<IpNet, String> {
        let s = s.trim();
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| format!("'{s}' is not an address or CIDR for --trusted-proxy"))
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_second: 20.0,
            burst: 40.0,
            trusted_proxies: Vec::new(),
            max_clients: 100_000,
        }
    }
}
