//! `serve`'s flags for its HTTP listeners: where /metrics is served, and the
//! timeouts and connection caps of every listener (`[http]` in the file).

#[derive(clap::Args, Debug, Clone)]
#[allow(dead_code)] // declares flags; settings::load reads them by id
#[command(next_help_heading = "HTTP listeners")]
pub struct HttpArgs {
    /// Serve /metrics on this address only (e.g. 127.0.0.1:9122, for
    /// Prometheus on a private network); the public listener then answers
    /// 404 for /metrics. Without it /metrics is on --listen.
    #[arg(long, value_name = "ADDR:PORT", env = "POOLWATCH_METRICS_LISTEN")]
    metrics_listen: Option<String>,

    /// Time a client has to send a request's line and headers, from the
    /// connection's start or the end of its previous response; slower
    /// clients are disconnected [default: 10s].
    #[arg(
        long,
        id = "http.header_timeout",
        value_name = "DURATION",
        env = "POOLWATCH_HEADER_TIMEOUT"
    )]
    header_timeout: Option<String>,

    /// Time a kept-alive connection may sit idle between two requests
    /// before it is closed [default: 5s].
    #[arg(
        long,
        id = "http.idle_timeout",
        value_name = "DURATION",
        env = "POOLWATCH_IDLE_TIMEOUT"
    )]
    idle_timeout: Option<String>,

    /// Open HTTP connections at most, all clients together; more are
    /// closed at once [default: 4096]. Keep it below the open-file limit
    /// (ulimit -n).
    #[arg(
        long,
        id = "http.max_connections",
        value_name = "N",
        env = "POOLWATCH_MAX_CONNECTIONS"
    )]
    max_connections: Option<String>,

    /// Open HTTP connections at most from one client address (IPv6: one
    /// /64); more are closed at once. --trusted-proxy addresses are exempt
    /// [default: 32].
    #[arg(
        long,
        id = "http.max_connections_per_client",
        value_name = "N",
        env = "POOLWATCH_MAX_CONNECTIONS_PER_CLIENT"
    )]
    max_connections_per_client: Option<String>,

    /// On SIGTERM or Ctrl-C, the most the whole stop may take: the drain
    /// delay, then the requests in flight finishing and the background jobs
    /// stopping (and giving back their leases); whatever is left is dropped
    /// and serve exits 0 [default: 10s].
    #[arg(
        long,
        id = "http.shutdown_grace",
        value_name = "DURATION",
        env = "POOLWATCH_SHUTDOWN_GRACE"
    )]
    shutdown_grace: Option<String>,

    /// On SIGTERM, how long /readyz answers 503 while serving goes on, so
    /// a load balancer that probes /readyz takes the instance out before
    /// it stops accepting (e.g. the probe interval × its fall count).
    /// Skipped when nothing ever asked /readyz. Part of --shutdown-grace,
    /// and shorter than it; 0s turns it off [default: 5s].
    #[arg(
        long,
        id = "http.drain_delay",
        value_name = "DURATION",
        env = "POOLWATCH_DRAIN_DELAY"
    )]
    drain_delay: Option<String>,
}
