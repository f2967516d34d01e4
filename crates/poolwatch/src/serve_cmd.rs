//! `poolwatch serve`: the central service. Its settings are
//! `settings::serve::ServeSettings`, read by `settings::load`: defaults,
//! then the `--config` TOML file, then `POOLWATCH_*` variables, then flags.
//! The flags below only declare names and help: each takes text under its
//! TOML key (its clap id), judged by the settings' one validation.

use crate::settings::serve::ServeSettings;
use crate::settings::{self, Loaded, LogFormat};
use crate::util::init_logging;
use anyhow::{Context, Result};
use clap::{ArgMatches, Command};
use server::ServerConfig;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use store::{Store, StoreOptions};

/// Where the store is; shared by `serve` and `admin`.
#[derive(clap::Args, Debug, Clone)]
#[allow(dead_code)] // declares flags; settings::load reads them by id
pub struct StoreArgs {
    /// Directory for the SQLite database and the ticket secret
    /// [default: ./poolwatch-data].
    #[arg(long, value_name = "DIR", env = "POOLWATCH_DATA_DIR", global = true)]
    data_dir: Option<String>,

    /// PostgreSQL instead of SQLite, e.g.
    /// postgres://poolwatch:secret@db.example.net/poolwatch.
    #[arg(
        long,
        value_name = "URL",
        env = "POOLWATCH_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    database_url: Option<String>,

    /// Largest size the SQLite database file may reach, e.g. 20G or 500M
    /// (K/M/G/T are powers of 1024). Writes needing more are refused as on
    /// a full disk (monitors get 503 and retry; reads keep working) before
    /// the filesystem the OS and logs share fills up. SQLite only
    /// [default: no limit].
    #[arg(
        long,
        value_name = "SIZE",
        env = "POOLWATCH_SQLITE_MAX_SIZE",
        global = true
    )]
    sqlite_max_size: Option<String>,

    /// MaxMind country or city database (.mmdb) for finding a server's
    /// country.
    #[arg(long, value_name = "FILE", env = "POOLWATCH_GEOIP", global = true)]
    geoip: Option<String>,

    /// TOML file with the same settings (keys as shown by each flag);
    /// POOLWATCH_* variables override it, and flags override those.
    #[arg(long, value_name = "FILE", env = "POOLWATCH_CONFIG", global = true)]
    config: Option<PathBuf>,
}

/// The store location and GeoIP database of `serve`'s settings.
pub struct StoreSetup {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub geoip: Option<geo::GeoIp>,
    pub options: StoreOptions,
}

impl StoreSetup {
    /// Open the GeoIP database of the settings.
    pub fn new(l: &Loaded<ServeSettings>) -> Result<StoreSetup> {
        let s = &l.settings;
        let geoip = match &s.geoip {
            Some(p) => Some(geo::GeoIp::open(p).map_err(|e| l.refuse("geoip", e))?),
            None => None,
        };
        Ok(StoreSetup {
            data_dir: s.data_dir.clone(),
            database_url: s.database_url().map(str::to_string),
            geoip,
            options: StoreOptions {
                sqlite_max_bytes: s.sqlite_max_size.map(|b| b.0),
            },
        })
    }

    /// Read `serve`'s settings for the command `cmd` parsed into `m` (also
    /// `admin`'s) and open the GeoIP database.
    pub fn load(cmd: &Command, m: &ArgMatches) -> Result<(Loaded<ServeSettings>, StoreSetup)> {
        let loaded = settings::load::<ServeSettings>(cmd, m, &settings::process_env)?;
        let setup = StoreSetup::new(&loaded)?;
        Ok((loaded, setup))
    }

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
#[allow(dead_code)] // declares flags; settings::load reads them by id
pub struct Args {
    /// Address and port for HTTP [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT", env = "POOLWATCH_LISTEN")]
    listen: Option<String>,

    #[command(flatten)]
    store: StoreArgs,

    #[command(flatten)]
    selector: crate::selector_args::SelectorArgs,

    #[command(flatten)]
    alerts: crate::alert_args::AlertArgs,

    #[command(flatten)]
    manage: crate::manage_args::ManageArgs,

    #[command(flatten)]
    http: crate::http_args::HttpArgs,

    #[command(flatten)]
    dns_rrl: crate::rrl_args::RrlArgs,

    /// The pool zone this service answers DNS for and publishes at
    /// /api/dns-zone, e.g. pool.example.org (one name here; `poolwatch dns
    /// --zone A --zone B` answers that zone under several names).
    #[arg(long, value_name = "NAME", env = "POOLWATCH_ZONE")]
    zone: Option<String>,

    /// Answer DNS (UDP and TCP) for --zone on this address, e.g. 0.0.0.0:53
    /// (port 53 needs root or CAP_NET_BIND_SERVICE).
    #[arg(long, value_name = "ADDR:PORT", env = "POOLWATCH_DNS_LISTEN")]
    dns_listen: Option<String>,

    /// File holding the token stand-alone `poolwatch dns` servers present to
    /// GET /api/dns-zone; without it that route stays closed.
    #[arg(long, value_name = "FILE", env = "POOLWATCH_DNS_TOKEN_FILE")]
    dns_token_file: Option<String>,

    /// Name server of the zone (repeat the flag) [default: ns.<zone>].
    #[arg(
        long = "dns-ns",
        value_name = "NAME",
        env = "POOLWATCH_DNS_NS",
        value_delimiter = ','
    )]
    dns_ns: Vec<String>,

    /// Put AAAA records in every name of the zone (the apex, continents,
    /// countries and their 0-3), not only in the 2. names as the NTP Pool
    /// does. Only for a pool whose clients all handle IPv6 answers well.
    #[arg(long, env = "POOLWATCH_IPV6_EVERYWHERE",
          value_parser = clap::builder::FalseyValueParser::new())]
    ipv6_everywhere: bool,

    /// How often the DNS zone is rebuilt from the scores [default: 30s].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_DNS_REFRESH")]
    dns_refresh: Option<String>,

    /// How often the DNS inside serve (--dns-listen) stores the answers it
    /// counted, per server and client country (the server pages' client
    /// distribution); once more when it stops. 1s to 1h, or off (nothing
    /// stored) [default: 1m].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_DNS_COUNT_INTERVAL")]
    dns_count_interval: Option<String>,

    /// How often an active monitor re-checks a server [default: 9m].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_INTERVAL_ACTIVE")]
    interval_active: Option<String>,

    /// How often a testing monitor re-checks a server [default: 45m].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_INTERVAL_TESTING")]
    interval_testing: Option<String>,

    /// How often a candidate monitor re-checks a server [default: 2h].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_INTERVAL_CANDIDATE")]
    interval_candidate: Option<String>,

    /// Queries per check that monitors make, 1 to 16 [default: 4].
    #[arg(long, value_name = "N", env = "POOLWATCH_SAMPLES")]
    samples: Option<String>,

    /// Time between the queries of a check [default: 2s].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_SAMPLE_INTERVAL")]
    sample_interval: Option<String>,

    /// How long a monitor waits for each reply [default: 3s].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_TIMEOUT")]
    timeout: Option<String>,

    /// Servers per batch of work [default: 10].
    #[arg(long, value_name = "N", env = "POOLWATCH_BATCH_SIZE")]
    batch_size: Option<String>,

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

    /// File with the secret that signs work tickets and monitor access
    /// tokens [default: on SQLite DATA_DIR/ticket-secret, created with mode
    /// 0600 on first start; on PostgreSQL kept in the database, made by the
    /// first instance (from DATA_DIR/ticket-secret if that exists), so every
    /// serve on it accepts the others' tickets]. With several serve and
    /// this flag, give them all the same file.
    #[arg(long, value_name = "FILE", env = "POOLWATCH_TICKET_SECRET_FILE")]
    ticket_secret_file: Option<String>,

    /// Requests per second per client address on the public routes (0 =
    /// no limit) [default: 20].
    #[arg(
        long = "rate-limit",
        id = "rate_limit.per_second",
        value_name = "N",
        env = "POOLWATCH_RATE_LIMIT"
    )]
    rate_limit: Option<String>,

    /// Requests a client may make at once before the limit applies
    /// [default: 40].
    #[arg(
        long = "rate-burst",
        id = "rate_limit.burst",
        value_name = "N",
        env = "POOLWATCH_RATE_BURST"
    )]
    rate_burst: Option<String>,

    /// Reverse proxy whose X-Forwarded-For is believed (address or CIDR,
    /// repeatable). Without it the socket peer is the client.
    #[arg(
        long = "trusted-proxy",
        id = "rate_limit.trusted_proxies",
        value_name = "CIDR",
        env = "POOLWATCH_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,

    /// This instance's name, in its log lines, the job leases and the admin
    /// status page (/manage/admin/instances): 1 to 64 letters, digits, '.',
    /// '_', '-' or ':'. With several serve on one PostgreSQL, give each a
    /// stable name [default: HOSTNAME-PID].
    #[arg(long, value_name = "NAME", env = "POOLWATCH_INSTANCE_NAME")]
    instance_name: Option<String>,

    /// Log format on stderr: text or json [default: text].
    #[arg(long, value_name = "FORMAT", env = "POOLWATCH_LOG_FORMAT")]
    log_format: Option<String>,

    /// Zone guard: when a zone would lose more than this share of its
    /// in-DNS servers within 24 h while the servers being dropped still get
    /// good answers at a monitor, keep the excess in DNS (most recently good
    /// first) and record a guard event (shown on the zone page). A share
    /// between 0 and 1 (0.2 or 20%), or off [default: 0.1].
    #[arg(long, value_name = "off|SHARE", env = "POOLWATCH_ZONE_GUARD")]
    zone_guard: Option<String>,

    /// How long to keep the score log (every monitor's results and the
    /// aggregate): rows older than this are deleted by the hourly
    /// housekeeping, which also always deletes work batches older than
    /// 48 h (no agent can still submit them). forever, or at least 2d:
    /// 90d, 2w, 72h [default: forever].
    #[arg(long, value_name = "forever|DURATION", env = "POOLWATCH_LOG_RETENTION")]
    log_retention: Option<String>,

    /// How long to keep every sample of each check (the evidence for
    /// rate limiting vs loss, issue 15): older samples are deleted by the
    /// hourly housekeeping; at least 1h [default: 15d].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_SAMPLE_RETENTION")]
    sample_retention: Option<String>,

    /// How long to keep the DNS servers' answer counts (per server, hour
    /// and client country; the client distribution on the server pages,
    /// and `/api/v1/servers/IP/dns?days=` up to 14): older hours are
    /// deleted by the hourly housekeeping, and reports older than this are
    /// refused. At least 3d, e.g. 30d [default: 15d].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_DNS_COUNT_RETENTION")]
    dns_count_retention: Option<String>,

    /// Show the overall answer rate by sample position (first, second, …
    /// query of a check) on the public server pages, beside the verdict of
    /// what the samples say (rate-limited, path-loss, …). Off, the public
    /// page shows the verdict only; the per-monitor detail is always on the
    /// owning account's manage page and its API.
    #[arg(long, env = "POOLWATCH_PUBLIC_SAMPLE_DETAIL",
          value_parser = clap::builder::FalseyValueParser::new())]
    public_sample_detail: bool,
}

const SERVE_EXAMPLES: &str = "\
Examples:
  # SQLite in ./poolwatch-data, on localhost:8080
  poolwatch serve
  # PostgreSQL, public listener behind a proxy, fast intervals for a lab
  POOLWATCH_DATABASE_URL=postgres://poolwatch:secret@127.0.0.1/poolwatch \\
    poolwatch serve --listen 0.0.0.0:8080 --trusted-proxy 10.0.0.0/8 \\
      --interval-active 30s --interval-testing 1m --interval-candidate 2m
  # Two instances on one PostgreSQL behind a load balancer probing /readyz
  poolwatch serve --database-url postgres://… --instance-name web-1 \
      --listen 0.0.0.0:8080 --drain-delay 6s --shutdown-grace 20s
  # Everything from a file: each flag above shows its [config: KEY]
  poolwatch serve --config /etc/poolwatch/serve.toml

Then add monitors and servers with `poolwatch admin`, and point agents at
http://ADDR:PORT with their key.";

/// The ticket secret from its file, made on first start.
fn load_secret(l: &Loaded<ServeSettings>, path: &Path) -> Result<Vec<u8>> {
    let (secret, created) =
        server::keys::load_or_create_secret(path).map_err(|e| l.refuse("ticket_secret_file", e))?;
    if created {
        tracing::info!(path = %path.display(), "created a new ticket secret");
    }
    Ok(secret)
}

/// The service's configuration from its settings (validated already; what
/// is left to refuse here are files that cannot be read).
fn build_config(
    l: &Loaded<ServeSettings>,
    setup: &StoreSetup,
    ticket_secret: Vec<u8>,
) -> Result<ServerConfig> {
    let s = &l.settings;
    let invalid = |e: settings::Invalid| l.refuse(&e.key, e.msg);
    let (rate_limit, http) = s.rate_limit().map_err(invalid)?;
    let smtp_ca = match &s.alerts.smtp_ca {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            l.refuse(
                "alerts.smtp_ca",
                format!("cannot read {}: {e}", path.display()),
            )
        })?),
        None => None,
    };
    let alerts = s.alert_config(smtp_ca).map_err(invalid)?;
    if s.public_url.is_none() && s.listen.ip().is_unspecified() {
        tracing::warn!(
            public_url = %alerts.public_url,
            "alerts link a server's page under --public-url; set it to the address people use"
        );
    }
    let d = ServerConfig::default();
    Ok(ServerConfig {
        listen: s.listen,
        metrics_listen: s.metrics_listen,
        http,
        samples: s.samples,
        sample_interval_ms: s.sample_interval.0.as_millis() as u64,
        timeout_ms: s.timeout.0.as_millis() as u64,
        batch_size: s.batch_size,
        intervals: s.intervals(),
        reference_servers: s.reference_servers.clone(),
        ticket_secret,
        max_body_bytes: d.max_body_bytes,
        rate_limit,
        geoip: setup.geoip.clone(),
        dns_zone: None,
        process_metrics: None,
        selector: s.selector_settings().map_err(invalid)?,
        housekeeping: Some(server::housekeeping_job::HousekeepingSettings {
            log_retention: s.log_retention.0,
            sample_retention: s.sample_retention.0,
            dns_count_retention: s.dns_count_retention.0,
            ..Default::default()
        }),
        alerts: Some(alerts),
        manage: s.manage_settings().map_err(invalid)?,
        public_sample_detail: s.public_sample_detail,
        instance_name: s.instance_name(),
        leases: d.leases,
        drain_delay: s.http.drain_delay.0,
    })
}

/// The ticket secret: from `--ticket-secret-file`; else on PostgreSQL the
/// one in the database, which every instance shares (the first instance
/// stores DATA_DIR/ticket-secret's if that exists, so an upgrade keeps
/// outstanding tickets valid, else a new random one); else on SQLite
/// DATA_DIR/ticket-secret, made on first start.
async fn ticket_secret(
    l: &Loaded<ServeSettings>,
    setup: &StoreSetup,
    store: &Store,
) -> Result<Vec<u8>> {
    let file = setup.data_dir.join("ticket-secret");
    if let Some(path) = &l.settings.ticket_secret_file {
        return load_secret(l, path);
    }
    if store.backend_name() != "postgres" {
        return load_secret(l, &file);
    }
    let candidate = if file.exists() {
        load_secret(l, &file)?
    } else {
        server::keys::generate_secret()
    };
    store
        .shared_secret(TICKET_SECRET, &candidate)
        .await
        .context("cannot read or store the shared ticket secret")
}

/// The ticket secret's name in the database's shared secrets.
const TICKET_SECRET: &str = "ticket";

/// The zone to publish, with the hash of the `poolwatch dns` token.
fn dns_zone(l: &Loaded<ServeSettings>, origin: &str) -> Result<server::DnsZoneConfig> {
    let s = &l.settings;
    let token_hash = match &s.dns_token_file {
        Some(p) => {
            let t = std::fs::read_to_string(p).map_err(|e| {
                l.refuse(
                    "dns_token_file",
                    format!("cannot read {}: {e}", p.display()),
                )
            })?;
            let t = t.trim();
            if t.len() < 16 {
                return Err(l.refuse(
                    "dns_token_file",
                    format!(
                        "the DNS token in {} is shorter than 16 characters",
                        p.display()
                    ),
                ));
            }
            Some(server::keys::hash_key(t))
        }
        None => None,
    };
    Ok(server::DnsZoneConfig {
        origin: origin.to_string(),
        ns: s.dns_ns.clone(),
        ipv6_everywhere: s.ipv6_everywhere,
        token_hash,
    })
}

pub async fn run(cmd: &Command, m: &ArgMatches) -> Result<ExitCode> {
    let (loaded, setup) = StoreSetup::load(cmd, m)?;
    let s = &loaded.settings;
    init_logging(s.log_format == LogFormat::Json);
    // SQLite is one process: a second serve on the data directory stops
    // here, before it opens the database, naming the one running.
    let _lock = match s.database_url() {
        Some(u) if u.starts_with("postgres") => None,
        _ => Some(crate::data_lock::DataDirLock::take(
            &setup.data_dir,
            &s.instance_name(),
        )?),
    };
    let store = setup.open_store().await?;
    let secret = ticket_secret(&loaded, &setup, &store).await?;
    let mut cfg = build_config(&loaded, &setup, secret)?;
    server::manage::auth::log_signin_status(&cfg);
    let rrl = s.dns_rrl.config();
    if let Some(origin) = &s.zone {
        cfg.dns_zone = Some(dns_zone(&loaded, origin)?);
        // DNS counters go to the process-wide recorder; /metrics appends it.
        cfg.process_metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .ok();
    }
    let zone_guard = s.zone_guard.0;
    tracing::info!(
        backend = store.backend_name(),
        data_dir = %setup.data_dir.display(),
        geoip = setup.geoip.is_some(),
        instance = %cfg.instance_name,
        "store ready"
    );
    // The zone guard keeps every server's DNS state; with `off` it holds
    // nothing but still records who is in DNS.
    tracing::info!(?zone_guard, "zone guard");
    let mut extra: Vec<server::ExtraJob> = vec![Box::new(move |st: &server::AppState| {
        server::zone_guard_job::job(st.store().clone(), zone_guard, st.clock().clone())
    })];
    if let (Some(addr), Some(zone)) = (s.dns_listen, cfg.dns_zone.clone()) {
        let listener = dns::DnsListener::bind(addr).await.map_err(|e| {
            loaded.refuse(
                "dns_listen",
                format!("cannot listen for DNS on {addr}: {e}"),
            )
        })?;
        tracing::info!("answering DNS for {} on {addr} (udp+tcp)", zone.origin);
        let (geoip, refresh) = (setup.geoip.clone(), s.dns_refresh.0);
        let count_interval = s.dns_count_interval.0;
        extra.push(Box::new(move |st: &server::AppState| {
            server::DnsJob {
                store: st.store().clone(),
                zone,
                geoip,
                rrl,
                refresh,
                count_interval,
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
