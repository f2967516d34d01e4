//! `poolwatch serve`: the central service. Flags, then `POOLWATCH_*`
//! environment variables, then the `--config` TOML file, then defaults.

use crate::util::{init_logging, parse_duration, parse_size, usage};
use anyhow::{Context, Result};
use server::file_config::FileConfig;
use server::{RateLimitConfig, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use store::{Store, StoreOptions, WorkIntervals};

/// Where the store is; shared by `serve` and `admin`.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory for the SQLite database and the ticket secret
    /// [default: ./poolwatch-data].
    #[arg(long, value_name = "DIR", env = "POOLWATCH_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// PostgreSQL instead of SQLite, e.g.
    /// postgres://poolwatch:secret@db.example.net/poolwatch.
    #[arg(
        long,
        value_name = "URL",
        env = "POOLWATCH_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<String>,

    /// Largest size the SQLite database file may reach, e.g. 20G or 500M
    /// (K/M/G/T are powers of 1024). Writes needing more are refused as on
    /// a full disk (monitors get 503 and retry; reads keep working) before
    /// the filesystem the OS and logs share fills up. SQLite only
    /// [default: no limit].
    #[arg(long, value_name = "SIZE", env = "POOLWATCH_SQLITE_MAX_SIZE", global = true,
          value_parser = parse_size)]
    pub sqlite_max_size: Option<u64>,

    /// MaxMind country or city database (.mmdb) for finding a server's
    /// country.
    #[arg(long, value_name = "FILE", env = "POOLWATCH_GEOIP", global = true)]
    pub geoip: Option<PathBuf>,

    /// TOML file with the same settings; flags and POOLWATCH_* variables
    /// override it.
    #[arg(long, value_name = "FILE", env = "POOLWATCH_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// The store location and GeoIP database after merging flags and file.
pub struct StoreSetup {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub geoip: Option<geo::GeoIp>,
    pub options: StoreOptions,
    pub file: FileConfig,
}

impl StoreArgs {
    /// Read the config file (if any), merge and open the GeoIP database.
    pub fn resolve(&self) -> Result<StoreSetup> {
        let file = match &self.config {
            Some(p) => FileConfig::load(p).map_err(|e| usage(format!("{e:#}")))?,
            None => FileConfig::default(),
        };
        let data_dir = self
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("./poolwatch-data"));
        let database_url = self
            .database_url
            .clone()
            .or_else(|| file.database_url.clone())
            .filter(|u| !u.is_empty());
        let geoip = match self.geoip.clone().or_else(|| file.geoip.clone()) {
            Some(p) => Some(geo::GeoIp::open(&p).map_err(|e| usage(e.to_string()))?),
            None => None,
        };
        let sqlite_max_bytes = match (self.sqlite_max_size, &file.sqlite_max_size) {
            (Some(n), _) => Some(n),
            (None, Some(s)) => {
                Some(parse_size(s).map_err(|e| usage(format!("sqlite_max_size: {e}")))?)
            }
            (None, None) => None,
        };
        if sqlite_max_bytes.is_some()
            && database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres"))
        {
            return Err(usage(
                "--sqlite-max-size applies to SQLite only, not to --database-url postgres://…",
            ));
        }
        Ok(StoreSetup {
            data_dir,
            database_url,
            geoip,
            options: StoreOptions { sqlite_max_bytes },
            file,
        })
    }
}

impl StoreSetup {
    /// Open the store (creating the data directory) and seed the zone tree.
    pub async fn open_store(&self) -> Result<Store> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create {}", self.data_dir.display()))?;
        let store =
            Store::open_with(self.database_url.as_deref(), &self.data_dir, &self.options).await?;
        store.seed_zones(&server::admin::zone_seeds()).await?;
        Ok(store)
    }
}

/// Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Run the central service: monitor API, data API and metrics.
///
/// Monitors get work and submit results at /api/v1/monitor/*; operators and
/// their scripts read /scores/IP/log (CSV), /scores/IP/json, /api/v1/servers
/// and /api/v1/zones; Prometheus scrapes /metrics. Add servers and monitors
/// with `poolwatch admin`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = SERVE_EXAMPLES)]
pub struct Args {
    /// Address and port for HTTP [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT", env = "POOLWATCH_LISTEN")]
    listen: Option<SocketAddr>,

    #[command(flatten)]
    store: StoreArgs,

    #[command(flatten)]
    selector: crate::selector_args::SelectorArgs,

    #[command(flatten)]
    alerts: crate::alert_args::AlertArgs,

    #[command(flatten)]
    http: crate::http_args::HttpArgs,

    #[command(flatten)]
    dns_rrl: crate::rrl_args::RrlArgs,

    /// The pool zone this service answers DNS for and publishes at
    /// /api/dns-zone, e.g. pool.example.org.
    #[arg(long, value_name = "NAME", env = "POOLWATCH_ZONE")]
    zone: Option<String>,

    /// Answer DNS (UDP and TCP) for --zone on this address, e.g. 0.0.0.0:53
    /// (port 53 needs root or CAP_NET_BIND_SERVICE).
    #[arg(long, value_name = "ADDR:PORT", env = "POOLWATCH_DNS_LISTEN")]
    dns_listen: Option<SocketAddr>,

    /// File holding the token stand-alone `poolwatch dns` servers present to
    /// GET /api/dns-zone; without it that route stays closed.
    #[arg(long, value_name = "FILE", env = "POOLWATCH_DNS_TOKEN_FILE")]
    dns_token_file: Option<PathBuf>,

    /// Name server of the zone (repeat the flag) [default: ns.<zone>].
    #[arg(long = "dns-ns", value_name = "NAME", value_delimiter = ',')]
    dns_ns: Vec<String>,

    /// How often the DNS zone is rebuilt from the scores.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    dns_refresh: Duration,

    /// How often an active monitor re-checks a server [default: 9m].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_INTERVAL_ACTIVE", value_parser = parse_duration)]
    interval_active: Option<Duration>,

    /// How often a testing monitor re-checks a server [default: 45m].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_INTERVAL_TESTING", value_parser = parse_duration)]
    interval_testing: Option<Duration>,

    /// How often a candidate monitor re-checks a server [default: 2h].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_INTERVAL_CANDIDATE", value_parser = parse_duration)]
    interval_candidate: Option<Duration>,

    /// Queries per check that monitors make [default: 4].
    #[arg(long, value_name = "N", env = "POOLWATCH_SAMPLES")]
    samples: Option<u32>,

    /// Time between the queries of a check [default: 2s].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_SAMPLE_INTERVAL", value_parser = parse_duration)]
    sample_interval: Option<Duration>,

    /// How long a monitor waits for each reply [default: 3s].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_TIMEOUT", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// Servers per batch of work [default: 10].
    #[arg(long, value_name = "N", env = "POOLWATCH_BATCH_SIZE")]
    batch_size: Option<u32>,

    /// NTP server the agents check their own clock against before they
    /// submit anything (repeat the flag; 3 or 5 is good). With none the
    /// check is off: serve warns at start and hourly, and /metrics and
    /// /monitors show it.
    #[arg(
        long = "reference-server",
        value_name = "HOST",
        env = "POOLWATCH_REFERENCE_SERVERS",
        value_delimiter = ','
    )]
    reference_servers: Vec<String>,

    /// File with the secret that signs work tickets [default:
    /// DATA_DIR/ticket-secret, created with mode 0600 on first start].
    #[arg(long, value_name = "FILE", env = "POOLWATCH_TICKET_SECRET_FILE")]
    ticket_secret_file: Option<PathBuf>,

    /// Requests per second per client address on the public routes (0 =
    /// no limit) [default: 20].
    #[arg(long, value_name = "N", env = "POOLWATCH_RATE_LIMIT")]
    rate_limit: Option<f64>,

    /// Requests a client may make at once before the limit applies
    /// [default: 40].
    #[arg(long, value_name = "N", env = "POOLWATCH_RATE_BURST")]
    rate_burst: Option<f64>,

    /// Reverse proxy whose X-Forwarded-For is believed (address or CIDR,
    /// repeatable). Without it the socket peer is the client.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "POOLWATCH_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,

    /// Log format on stderr: text or json [default: text].
    #[arg(long, value_name = "FORMAT", env = "POOLWATCH_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,

    /// Zone guard: when a zone would lose more than this share of its
    /// in-DNS servers within 24 h while the servers being dropped still get
    /// good answers at a monitor, keep the excess in DNS (most recently good
    /// first) and record a guard event (shown on the zone page). A share
    /// between 0 and 1 (0.2 or 20%), or off [default: 0.1].
    #[arg(long, value_name = "off|SHARE", env = "POOLWATCH_ZONE_GUARD", value_parser = server::zone_guard_job::parse_zone_guard)]
    zone_guard: Option<scoring::ZoneGuardConfig>,

    /// How long to keep the score log (every monitor's results and the
    /// aggregate): rows older than this are deleted by the hourly
    /// housekeeping, which also always deletes work batches older than
    /// 48 h (no agent can still submit them). forever, or at least 2d:
    /// 90d, 2w, 72h [default: forever].
    #[arg(long, value_name = "forever|DURATION", env = "POOLWATCH_LOG_RETENTION", value_parser = server::housekeeping_job::parse_log_retention)]
    log_retention: Option<server::housekeeping_job::LogRetention>,
}

const SERVE_EXAMPLES: &str = "\
Examples:
  # SQLite in ./poolwatch-data, on localhost:8080
  poolwatch serve
  # PostgreSQL, public listener behind a proxy, fast intervals for a lab
  POOLWATCH_DATABASE_URL=postgres://poolwatch:secret@127.0.0.1/poolwatch \\
    poolwatch serve --listen 0.0.0.0:8080 --trusted-proxy 10.0.0.0/8 \\
      --interval-active 30s --interval-testing 1m --interval-candidate 2m
  # Everything from a file (see the server crate's file_config docs)
  poolwatch serve --config /etc/poolwatch/serve.toml

Then add monitors and servers with `poolwatch admin`, and point agents at
http://ADDR:PORT with their key.";

/// A duration from a flag, else the file's text, else the default.
fn duration(
    flag: Option<Duration>,
    file: Option<&str>,
    key: &str,
    default: Duration,
) -> Result<Duration> {
    if let Some(d) = flag {
        return Ok(d);
    }
    match file {
        Some(text) => parse_duration(text).map_err(|e| usage(format!("config {key}: {e}"))),
        None => Ok(default),
    }
}

fn positive_secs(d: Duration, what: &str) -> Result<i64> {
    let s = d.as_secs() as i64;
    if s < 1 {
        return Err(usage(format!("{what} must be at least 1s")));
    }
    Ok(s)
}

/// The ticket secret from its file, made on first start.
fn load_secret(path: &Path) -> Result<Vec<u8>> {
    let (secret, created) = server::keys::load_or_create_secret(path).map_err(usage)?;
    if created {
        tracing::info!(path = %path.display(), "created a new ticket secret");
    }
    Ok(secret)
}

/// Build the service configuration from flags, environment and file.
fn build_config(a: &Args, setup: &StoreSetup) -> Result<ServerConfig> {
    let f = &setup.file;
    let d = ServerConfig::default();
    let listen = match (a.listen, &f.listen) {
        (Some(l), _) => l,
        (None, Some(text)) => text
            .parse()
            .map_err(|_| usage(format!("config listen: '{text}' is not ADDR:PORT")))?,
        (None, None) => d.listen,
    };
    let iv = WorkIntervals::default();
    let intervals = WorkIntervals {
        active_s: positive_secs(
            duration(
                a.interval_active,
                f.interval_active.as_deref(),
                "interval_active",
                Duration::from_secs(iv.active_s as u64),
            )?,
            "--interval-active",
        )?,
        testing_s: positive_secs(
            duration(
                a.interval_testing,
                f.interval_testing.as_deref(),
                "interval_testing",
                Duration::from_secs(iv.testing_s as u64),
            )?,
            "--interval-testing",
        )?,
        candidate_s: positive_secs(
            duration(
                a.interval_candidate,
                f.interval_candidate.as_deref(),
                "interval_candidate",
                Duration::from_secs(iv.candidate_s as u64),
            )?,
            "--interval-candidate",
        )?,
    };
    let samples = a.samples.or(f.samples).unwrap_or(d.samples);
    if !(1..=16).contains(&samples) {
        return Err(usage("--samples must be between 1 and 16"));
    }
    let batch_size = a.batch_size.or(f.batch_size).unwrap_or(d.batch_size);
    if !(1..=server::MAX_BATCH_SIZE).contains(&batch_size) {
        return Err(usage(format!(
            "--batch-size must be between 1 and {}",
            server::MAX_BATCH_SIZE
        )));
    }
    let sample_interval = duration(
        a.sample_interval,
        f.sample_interval.as_deref(),
        "sample_interval",
        Duration::from_millis(d.sample_interval_ms),
    )?;
    let timeout = duration(
        a.timeout,
        f.timeout.as_deref(),
        "timeout",
        Duration::from_millis(d.timeout_ms),
    )?;
    if timeout.is_zero() {
        return Err(usage("--timeout must be more than 0"));
    }
    let reference_servers = if a.reference_servers.is_empty() {
        f.reference_servers.clone().unwrap_or_default()
    } else {
        a.reference_servers.clone()
    };
    let proxies_text = if a.trusted_proxies.is_empty() {
        f.rate_limit.trusted_proxies.clone().unwrap_or_default()
    } else {
        a.trusted_proxies.clone()
    };
    let trusted_proxies = proxies_text
        .iter()
        .map(|p| RateLimitConfig::parse_proxy(p).map_err(usage))
        .collect::<Result<Vec<_>>>()?;
    let rd = RateLimitConfig::default();
    let per_second = a
        .rate_limit
        .or(f.rate_limit.per_second)
        .unwrap_or(rd.per_second);
    let burst = a.rate_burst.or(f.rate_limit.burst).unwrap_or(rd.burst);
    if !per_second.is_finite() || per_second < 0.0 || !burst.is_finite() || burst < 1.0 {
        return Err(usage("--rate-limit must be ≥ 0 and --rate-burst ≥ 1"));
    }
    let mut http = a.http.limits(&f.http)?;
    // A proxy carries many clients' connections.
    http.exempt = trusted_proxies.clone();
    let secret_path = a
        .ticket_secret_file
        .clone()
        .or_else(|| f.ticket_secret_file.clone())
        .unwrap_or_else(|| setup.data_dir.join("ticket-secret"));
    Ok(ServerConfig {
        listen,
        metrics_listen: a.http.metrics_listen(f.metrics_listen.as_deref())?,
        http,
        samples,
        sample_interval_ms: sample_interval.as_millis() as u64,
        timeout_ms: timeout.as_millis() as u64,
        batch_size,
        intervals,
        reference_servers,
        ticket_secret: load_secret(&secret_path)?,
        max_body_bytes: d.max_body_bytes,
        rate_limit: RateLimitConfig {
            per_second,
            burst,
            trusted_proxies,
            max_clients: rd.max_clients,
        },
        geoip: setup.geoip.clone(),
        dns_zone: None,
        process_metrics: None,
        selector: a.selector.settings(&f.selector)?,
        housekeeping: Some(server::housekeeping_job::HousekeepingSettings {
            log_retention: match (a.log_retention, f.log_retention.as_deref()) {
                (Some(r), _) => r.0,
                (None, Some(text)) => {
                    server::housekeeping_job::parse_log_retention(text)
                        .map_err(|e| usage(format!("config log_retention: {e}")))?
                        .0
                }
                (None, None) => None,
            },
            ..Default::default()
        }),
        alerts: Some(
            a.alerts
                .config(f.public_url.as_deref(), &f.alerts, listen)?,
        ),
    })
}

pub async fn run(args: Args) -> Result<ExitCode> {
    let setup = args.store.resolve()?;
    let json = args
        .log_format
        .as_deref()
        .or(setup.file.log_format.as_deref())
        == Some("json");
    if let Some(fmt) = setup.file.log_format.as_deref()
        && !matches!(fmt, "text" | "json")
    {
        return Err(usage(format!(
            "config log_format: '{fmt}' is not text or json"
        )));
    }
    init_logging(json);
    let mut cfg = build_config(&args, &setup)?;
    let rrl = args.dns_rrl.config(&setup.file.dns_rrl)?;
    if args.dns_listen.is_some() && args.zone.is_none() {
        return Err(usage(
            "--dns-listen needs --zone NAME (the pool zone to answer for)",
        ));
    }
    if let Some(origin) = &args.zone {
        let token_hash = match &args.dns_token_file {
            Some(p) => {
                let t = std::fs::read_to_string(p)
                    .map_err(|e| usage(format!("cannot read {}: {e}", p.display())))?;
                let t = t.trim();
                if t.len() < 16 {
                    return Err(usage(format!(
                        "the DNS token in {} is shorter than 16 characters",
                        p.display()
                    )));
                }
                Some(server::keys::hash_key(t))
            }
            None => None,
        };
        cfg.dns_zone = Some(server::DnsZoneConfig {
            origin: origin.clone(),
            ns: args.dns_ns.clone(),
            token_hash,
        });
        // DNS counters go to the process-wide recorder; /metrics appends it.
        cfg.process_metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .ok();
    }
    let zone_guard = match (args.zone_guard, &setup.file.zone_guard) {
        (Some(g), _) => g,
        (None, Some(v)) => server::zone_guard_job::zone_guard_from_toml(v)
            .map_err(|e| usage(format!("config zone_guard: {e}")))?,
        (None, None) => scoring::ZoneGuardConfig::default(),
    };
    let store = setup.open_store().await?;
    tracing::info!(
        backend = store.backend_name(),
        data_dir = %setup.data_dir.display(),
        geoip = setup.geoip.is_some(),
        "store ready"
    );
    // The zone guard keeps every server's DNS state; with `off` it holds
    // nothing but still records who is in DNS.
    tracing::info!(?zone_guard, "zone guard");
    let mut extra: Vec<server::ExtraJob> = vec![Box::new(move |st: &server::AppState| {
        server::zone_guard_job::job(st.store().clone(), zone_guard, st.clock().clone())
    })];
    if let (Some(addr), Some(zone)) = (args.dns_listen, cfg.dns_zone.clone()) {
        let listener = dns::DnsListener::bind(addr)
            .await
            .map_err(|e| usage(format!("cannot listen for DNS on {addr}: {e}")))?;
        tracing::info!("answering DNS for {} on {addr} (udp+tcp)", zone.origin);
        let (geoip, refresh) = (setup.geoip.clone(), args.dns_refresh);
        extra.push(Box::new(move |st: &server::AppState| {
            server::DnsJob {
                store: st.store().clone(),
                zone,
                geoip,
                rrl,
                refresh,
                clock: st.clock().clone(),
            }
            .job(listener)
        }));
    }
    let shutdown = async {
        crate::util::shutdown_signal().await;
        tracing::info!("shutting down");
    };
    server::serve(cfg, store.clone(), extra, shutdown).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
