//! `poolwatch dns`: stand-alone GeoDNS fed from a central service.

use crate::settings::dns::DnsSettings;
use crate::settings::{self, LogFormat};
use crate::util::usage;
use anyhow::Result;
use clap::{ArgMatches, Command};
use dns::{
    ApiSource, CountPoster, DnsListener, GeoDnsHandler, ZoneData, ZoneStore, count_loop,
    refresh_loop,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
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
/// Every `--count-interval` it reports to the service (`POST
/// /api/dns-counts`, same token) how many answers included each server, by
/// client country, for the server pages' client distribution. Reports that
/// cannot be sent are kept (up to a day's worth) and sent again, unchanged,
/// with the next ones; at SIGTERM it sends what is left. With `--zone-file`
/// the counts go to `--api` when given, else nowhere.
///
/// One process may answer for several names (`--zone` repeated: the pool
/// under `pool.example.org` and `pool.example.net`, or a vendor's own
/// domain): the same servers under each, each name with its own SOA and NS
/// records (NS names in the zone data without a final dot are relative to
/// each name; the service's, from `serve --dns-ns`, are absolute, so every
/// name lists the same name servers).
///
/// Try it: `dig @ADDR -p PORT ZONE` (add `+subnet=81.2.69.142/32` to ask as
/// a client in the UK, or `_country.ZONE TXT` to see how you are located).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  poolwatch dns --api https://pool.example.org --token-file /etc/poolwatch/dns.token \\\n      --zone pool.example.org --zone pool.example.net --geoip /usr/share/GeoIP/GeoLite2-Country.mmdb --listen [::]:53 \\\n      --count-interval 1m"
)]
#[allow(dead_code)] // declares flags; settings::load reads them by id
pub struct Args {
    /// Base URL of the central service: the zone comes from it (unless
    /// --zone-file) and answer counts go to it.
    #[arg(long, env = "POOLWATCH_API", value_name = "URL")]
    api: Option<String>,
    /// Bearer token for `GET /api/dns-zone` and `POST /api/dns-counts`.
    #[arg(long, env = "POOLWATCH_DNS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the token from this file instead (safer than a flag).
    #[arg(long, env = "POOLWATCH_DNS_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<String>,
    /// Serve the zone from this GeoDNS-style JSON file instead of `--api` (labs, benchmarks).
    /// With --api too, answer counts still go to the service.
    #[arg(long, env = "POOLWATCH_ZONE_FILE", value_name = "FILE")]
    zone_file: Option<String>,
    /// The zone to answer for, e.g. pool.example.org (required). Repeat it
    /// (or give NAME,NAME) to answer the same zone data under several names,
    /// each with its own SOA and NS records; names under none of them are
    /// REFUSED. Where names nest, the longest wins.
    #[arg(long, env = "POOLWATCH_ZONE", value_name = "NAME")]
    zone: Vec<String>,
    /// Address for UDP and TCP (port 0: any free port, printed at start)
    /// [default: 0.0.0.0:53].
    #[arg(long, env = "POOLWATCH_DNS_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// MaxMind GeoIP2/GeoLite2 Country or City database (.mmdb). Without it
    /// every client gets the global zone.
    #[arg(long, env = "POOLWATCH_GEOIP", value_name = "FILE")]
    geoip: Option<String>,
    /// How often to refresh the zone [default: 30s].
    #[arg(long, env = "POOLWATCH_DNS_REFRESH", value_name = "DURATION")]
    refresh: Option<String>,
    /// How often to send the service the answers given per server and
    /// client country, e.g. 30s or 5m (1s to 1h); 0 or off: never
    /// [default: 1m].
    #[arg(long, env = "POOLWATCH_DNS_COUNT_INTERVAL", value_name = "DURATION")]
    count_interval: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "POOLWATCH_METRICS_LISTEN", value_name = "ADDR:PORT")]
    metrics_listen: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "POOLWATCH_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    #[command(flatten)]
    rrl: crate::rrl_args::RrlArgs,
    /// TOML file with any of the settings above.
    #[arg(long, env = "POOLWATCH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
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

pub async fn run(args: Args, cmd: &Command, m: &ArgMatches) -> Result<ExitCode> {
    let loaded = settings::load::<DnsSettings>(cmd, m, &settings::process_env)?;
    let s = &loaded.settings;
    let store = ZoneStore::with_origins(&s.zone).map_err(|e| loaded.refuse("zone", e))?;
    let rrl = s.dns_rrl.config();
    // The recorder must exist before a zone loads: zones register their
    // counter handles when they load.
    let shutdown = CancellationToken::new();
    if let Some(addr) = s.metrics_listen {
        crate::util::serve_metrics(addr, shutdown.clone()).await?;
    }
    let token = match (&s.api, &s.token, &s.token_file) {
        (None, _, _) => None,
        (Some(_), Some(t), _) => Some(t.clone()),
        (Some(_), None, Some(p)) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| {
                    loaded.refuse(
                        "token_file",
                        format!("cannot read token file {}: {e}", p.display()),
                    )
                })?
                .trim()
                .to_string(),
        ),
        (Some(_), None, None) => {
            return Err(usage("no token: pass --token or --token-file"));
        }
    };
    let source = match (&s.api, &s.zone_file) {
        (_, Some(path)) => {
            // A bad file at start is the user's mistake; later, the last good copy stays.
            let data = read_zone_file(path).map_err(|e| loaded.refuse("zone_file", e))?;
            store
                .load(&data)
                .map_err(|e| loaded.refuse("zone_file", e))?;
            Source::File(path.clone())
        }
        (Some(api), None) => Source::Api(ApiSource::new(api, token.as_deref().unwrap_or(""))?),
        (None, None) => return Err(usage("pass --api URL or --zone-file FILE")),
    };
    let geo = match &s.geoip {
        Some(p) => Some(geo::GeoIp::open(p).map_err(|e| loaded.refuse("geoip", e))?),
        None => None,
    };
    crate::util::init_logging(s.log_format == LogFormat::Json);
    if geo.is_none() {
        tracing::warn!("no --geoip database: every client gets the global zone");
    }

    if let Some(addr) = s.metrics_listen {
        tracing::info!("metrics at http://{addr}/metrics");
    }
    let listener = DnsListener::bind(s.listen).await.map_err(|e| {
        loaded.refuse(
            "listen",
            format!("cannot listen for DNS on {}: {e}", s.listen),
        )
    })?;
    let bound = listener.local_addr()?;
    println!(
        "dns: answering for {} on {bound} (udp+tcp)",
        store.origins().join(", ")
    );
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
        s.refresh.0,
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
    // Stopped after the listener, so the last harvest holds the last answers.
    let stop_counting = CancellationToken::new();
    let counting = match (&s.api, s.count_interval.0) {
        (_, every) if every.is_zero() => {
            tracing::info!("--count-interval off: answer counts are not reported");
            None
        }
        (None, _) => {
            tracing::info!("no --api: answer counts are not reported (nowhere to send them)");
            None
        }
        (Some(api), every) => {
            let poster = CountPoster::new(api, token.as_deref().unwrap_or(""), every)?;
            tracing::info!(
                "answer counts go to {} every {}",
                poster.url(),
                s.count_interval
            );
            let counts = handler.counts();
            Some(tokio::spawn(count_loop(
                move |now| counts.harvest(now),
                poster,
                every,
                stop_counting.clone().cancelled_owned(),
            )))
        }
    };
    listener
        .serve(handler, shutdown.clone().cancelled_owned())
        .await?;
    shutdown.cancel();
    let _ = refresh.await;
    stop_counting.cancel();
    if let Some(counting) = counting {
        // The last harvest and send (bounded by FINAL_SEND_TIMEOUT).
        let _ = counting.await;
    }
    Ok(ExitCode::SUCCESS)
}
