//! `poolwatch dns`: stand-alone GeoDNS fed from a central service.

use crate::util::{parse_duration, usage};
use anyhow::Result;
use dns::{ApiSource, DnsListener, GeoDnsHandler, ZoneData, ZoneStore, refresh_loop};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Answer DNS for the pool zone.
///
/// Serves the zone on UDP and TCP: up to 4 servers per answer, near the
/// client (EDNS Client Subnet, else the resolver's address, located with
/// the `--geoip` database), picked at random by netspeed. The zone data
/// comes from the central service (`--api`, `GET /api/dns-zone` with the
/// token) or from a GeoDNS-style JSON file (`--zone-file`), re-read every
/// `--refresh`. When the service cannot be reached the last good zone keeps
/// being served; until a first zone is loaded, queries get SERVFAIL.
///
/// Try it: `dig @ADDR -p PORT ZONE` (add `+subnet=81.2.69.142/32` to ask as
/// a client in the UK, or `_country.ZONE TXT` to see how you are located).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  poolwatch dns --api https://pool.example.org --token-file /etc/poolwatch/dns.token \\\n      --zone pool.example.org --geoip /usr/share/GeoIP/GeoLite2-Country.mmdb --listen [::]:53"
)]
pub struct Args {
    /// Base URL of the central service.
    #[arg(
        long,
        env = "POOLWATCH_API",
        value_name = "URL",
        required_unless_present = "zone_file"
    )]
    pub api: Option<String>,
    /// Bearer token for `GET /api/dns-zone`.
    #[arg(
        long,
        env = "POOLWATCH_DNS_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// Read the token from this file instead (safer than a flag).
    #[arg(long, env = "POOLWATCH_DNS_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Serve the zone from this GeoDNS-style JSON file instead of `--api` (labs, benchmarks).
    #[arg(long, value_name = "FILE", conflicts_with = "api")]
    pub zone_file: Option<PathBuf>,
    /// The zone to answer for, e.g. pool.example.org.
    #[arg(long, env = "POOLWATCH_ZONE", value_name = "NAME")]
    pub zone: String,
    /// Address for UDP and TCP (port 0: any free port, printed at start).
    #[arg(
        long,
        env = "POOLWATCH_DNS_LISTEN",
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:53"
    )]
    pub listen: SocketAddr,
    /// MaxMind GeoIP2/GeoLite2 Country or City database (.mmdb). Without it
    /// every client gets the global zone.
    #[arg(long, env = "POOLWATCH_GEOIP", value_name = "FILE")]
    pub geoip: Option<PathBuf>,
    /// How often to refresh the zone.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub refresh: Duration,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "POOLWATCH_METRICS_LISTEN", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log format.
    #[arg(long, env = "POOLWATCH_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text")]
    pub log_format: String,
    #[command(flatten)]
    pub rrl: crate::rrl_args::RrlArgs,
    /// Pick addresses with one generator seeded with N (reproducible tests).
    #[arg(long, hide = true, value_name = "N")]
    pub seed: Option<u64>,
}

/// Where the zone comes from.
enum Source {
    Api(ApiSource),
    File(PathBuf),
}

impl Source {
    async fn fetch(&self) -> Result<ZoneData, String> {
        match self {
            Source::Api(api) => api.fetch().await.map_err(|e| e.to_string()),
            Source::File(path) => read_zone_file(path),
        }
    }
}

fn read_zone_file(path: &Path) -> Result<ZoneData, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read zone file {}: {e}", path.display()))?;
    ZoneData::from_json(&text).map_err(|e| format!("zone file {}: {e}", path.display()))
}

pub async fn run(args: Args) -> Result<ExitCode> {
    let store = ZoneStore::new(&args.zone).map_err(|e| usage(e.to_string()))?;
    // `dns` has no config file: flags and POOLWATCH_DNS_RRL_* only.
    let rrl = args.rrl.config(&Default::default())?;
    // The recorder must exist before a zone loads: zones register their
    // counter handles when they load.
    let shutdown = CancellationToken::new();
    if let Some(addr) = args.metrics_listen {
        crate::util::serve_metrics(addr, shutdown.clone()).await?;
    }
    let source = match (&args.api, &args.zone_file) {
        (_, Some(path)) => {
            // A bad file at start is the user's mistake; later, the last good copy stays.
            let data = read_zone_file(path).map_err(usage)?;
            store.load(&data).map_err(|e| usage(e.to_string()))?;
            Source::File(path.clone())
        }
        (Some(api), None) => {
            if !(api.starts_with("http://") || api.starts_with("https://")) {
                return Err(usage(format!(
                    "--api must be an http:// or https:// URL, not {api:?}"
                )));
            }
            let token = match (&args.token, &args.token_file) {
                (Some(t), _) => t.clone(),
                (None, Some(p)) => std::fs::read_to_string(p)
                    .map_err(|e| usage(format!("cannot read token file {}: {e}", p.display())))?
                    .trim()
                    .to_string(),
                (None, None) => return Err(usage("no token: pass --token or --token-file")),
            };
            Source::Api(ApiSource::new(api, &token)?)
        }
        (None, None) => return Err(usage("pass --api URL or --zone-file FILE")),
    };
    let geo = match &args.geoip {
        Some(p) => Some(geo::GeoIp::open(p).map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    crate::util::init_logging(args.log_format == "json");
    if geo.is_none() {
        tracing::warn!("no --geoip database: every client gets the global zone");
    }

    if let Some(addr) = args.metrics_listen {
        tracing::info!("metrics at http://{addr}/metrics");
    }
    let listener = DnsListener::bind(args.listen)
        .await
        .map_err(|e| usage(format!("cannot listen for DNS on {}: {e}", args.listen)))?;
    let bound = listener.local_addr()?;
    println!("dns: answering for {} on {bound} (udp+tcp)", store.origin());
    let _ = std::io::stdout().flush();

    let signals = shutdown.clone();
    tokio::spawn(async move {
        crate::util::shutdown_signal().await;
        tracing::info!("signal received: stopping");
        signals.cancel();
    });
    let source = std::sync::Arc::new(source);
    let refresh = tokio::spawn(refresh_loop(
        store.clone(),
        args.refresh,
        move || {
            let source = source.clone();
            async move { source.fetch().await }
        },
        shutdown.clone().cancelled_owned(),
    ));
    let mut handler = GeoDnsHandler::new(store, geo).with_rrl(&rrl);
    if let Some(seed) = args.seed {
        handler = handler.with_seed(seed);
    }
    listener
        .serve(handler, shutdown.clone().cancelled_owned())
        .await?;
    shutdown.cancel();
    let _ = refresh.await;
    Ok(ExitCode::SUCCESS)
}
