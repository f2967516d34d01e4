//! `serve`'s flags for its HTTP listeners: where /metrics is served, and the
//! timeouts and connection caps of every listener.

use crate::util::{parse_duration, usage};
use anyhow::Result;
use server::HttpLimits;
use server::file_config::FileHttp;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "HTTP listeners")]
pub struct HttpArgs {
    /// Serve /metrics on this address only (e.g. 127.0.0.1:9122, for
    /// Prometheus on a private network); the public listener then answers
    /// 404 for /metrics. Without it /metrics is on --listen.
    #[arg(long, value_name = "ADDR:PORT", env = "POOLWATCH_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,

    /// Time a client has to send a request's line and headers, from the
    /// connection's start or the end of its previous response; slower
    /// clients are disconnected [default: 10s].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_HEADER_TIMEOUT", value_parser = parse_duration)]
    header_timeout: Option<Duration>,

    /// Time a kept-alive connection may sit idle between two requests
    /// before it is closed [default: 5s].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_IDLE_TIMEOUT", value_parser = parse_duration)]
    idle_timeout: Option<Duration>,

    /// Open HTTP connections at most, all clients together; more are
    /// closed at once [default: 4096]. Keep it below the open-file limit
    /// (ulimit -n).
    #[arg(long, value_name = "N", env = "POOLWATCH_MAX_CONNECTIONS")]
    max_connections: Option<usize>,

    /// Open HTTP connections at most from one client address (IPv6: one
    /// /64); more are closed at once. --trusted-proxy addresses are exempt
    /// [default: 32].
    #[arg(long, value_name = "N", env = "POOLWATCH_MAX_CONNECTIONS_PER_CLIENT")]
    max_connections_per_client: Option<usize>,

    /// On SIGTERM or Ctrl-C, time the requests in flight get to finish
    /// before their connections are dropped [default: 10s].
    #[arg(long, value_name = "DURATION", env = "POOLWATCH_SHUTDOWN_GRACE", value_parser = parse_duration)]
    shutdown_grace: Option<Duration>,
}

impl HttpArgs {
    /// The metrics address: flag, then the file's `metrics_listen`.
    pub fn metrics_listen(&self, file: Option<&str>) -> Result<Option<SocketAddr>> {
        match (self.metrics_listen, file) {
            (Some(a), _) => Ok(Some(a)),
            (None, Some(text)) => text
                .parse()
                .map(Some)
                .map_err(|_| usage(format!("config metrics_listen: '{text}' is not ADDR:PORT"))),
            (None, None) => Ok(None),
        }
    }

    /// Flags, then the file's `[http]`, then defaults.
    pub fn limits(&self, file: &FileHttp) -> Result<HttpLimits> {
        let d = HttpLimits::default();
        let duration = |flag: Option<Duration>, text: Option<&str>, key: &str, default| {
            let d = match (flag, text) {
                (Some(d), _) => d,
                (None, Some(t)) => {
                    parse_duration(t).map_err(|e| usage(format!("config http.{key}: {e}")))?
                }
                (None, None) => default,
            };
            if d < Duration::from_millis(100) {
                return Err(usage(format!(
                    "--{} must be at least 100ms",
                    key.replace('_', "-")
                )));
            }
            Ok(d)
        };
        let count = |flag: Option<usize>, file: Option<usize>, key: &str, default| {
            let n = flag.or(file).unwrap_or(default);
            if n == 0 {
                return Err(usage(format!(
                    "--{} must be at least 1",
                    key.replace('_', "-")
                )));
            }
            Ok(n)
        };
        Ok(HttpLimits {
            header_timeout: duration(
                self.header_timeout,
                file.header_timeout.as_deref(),
                "header_timeout",
                d.header_timeout,
            )?,
            idle_timeout: duration(
                self.idle_timeout,
                file.idle_timeout.as_deref(),
                "idle_timeout",
                d.idle_timeout,
            )?,
            max_connections: count(
                self.max_connections,
                file.max_connections,
                "max_connections",
                d.max_connections,
            )?,
            max_connections_per_client: count(
                self.max_connections_per_client,
                file.max_connections_per_client,
                "max_connections_per_client",
                d.max_connections_per_client,
            )?,
            shutdown_grace: duration(
                self.shutdown_grace,
                file.shutdown_grace.as_deref(),
                "shutdown_grace",
                d.shutdown_grace,
            )?,
            exempt: Vec::new(),
        })
    }
}
