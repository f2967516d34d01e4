//! The one HTTP accept loop of every poolwatch listener (the service, its
//! metrics address, the agent's and `dns`'s metrics), with the limits a
//! public listener needs: `axum::serve` has none of them.
//!
//! - a header-read timeout (hyper's, which needs a timer to run at all):
//!   a connection that sends nothing or half a request head is closed;
//! - an idle timeout between the requests of a kept-alive connection;
//! - a cap of open connections per client address (IPv6 by /64) and one
//!   overall: a connection over a cap is closed at once, so a flood costs a
//!   file descriptor only for a moment;
//! - a bounded shutdown: on stop, idle connections close and requests in
//!   flight get `shutdown_grace` to finish; whatever is left is dropped.

/// The default listen address: loopback, so a first run exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Limits of one HTTP listener.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpLimits {
    /// Time a client has to send a whole request head (request line and
    /// headers), counted from the connection's start or the end of its
    /// previous response.
    pub header_timeout: Duration,
    /// Time a kept-alive connection may wait between requests.
    pub idle_timeout: Duration,
    /// Open connections at most, all clients together.
    pub max_connections: usize,
    /// Open connections at most from one client address (IPv6: one /64).
    pub max_connections_per_client: usize,
    /// Time requests in flight get to finish after a stop.
    pub shutdown_grace: Duration,
    /// Peers not held to the per-client cap (the trusted reverse proxies,
    /// which carry many clients' connections).
    pub exempt: Vec<IpNet>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            max_connections: 4096,
            max_connections_per_client: 32,
            shutdown_grace: Duration::from_secs(10),
            exempt: Vec::new(),
        }
    }
}

/// What the listeners sharing it saw of connections, read at scrape time:
/// a cap that refuses connections is otherwise invisible to the operator.
#[derive(Debug, Default)]
pub struct HttpStats {
    open: AtomicU64,
    refused_per_client: AtomicU64,
    refused_overall: AtomicU64,
}

impl HttpStats {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed at once so far: over the per-client cap, and
    /// over the overall cap.
    pub fn refused(&self) -> (u64, u64) {
        (
            self.refused_per_client.load(Ordering::Relaxed),
            self.refused_overall.load(Ordering::Relaxed),
        )
    }
}

/// Serve `app` on `listener` until `stop` is cancelled, within `limits`,
/// counting connections in `stats`. Handlers see the client's address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve_http(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stats: Arc<HttpStats>,
    stop: CancellationToken,
) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Slots {
        inner: Mutex::default(),
        stats,
    });
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            // Reap finished connections so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some(slot) = slots.take(peer.ip(), &limits) else {
                    // Dropping the stream closes it at once.
                    tracing::debug!(%peer, "connection refused: over the connection cap");
                    continue;
                };
                let (app, limits, stop) = (app.clone(), limits.clone(), stop.clone());
                conns.spawn(async move {
                    serve_connection(stream, peer, app, &limits, stop).await;
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    let open = conns.len();
    if open > 0 {
        let drained = tokio::time::timeout(limits.shutdown_grace, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                connections = conns.len(),
                grace = ?limits.shutdown_grace,
                "shutdown grace over: dropping the connections left"
            );
            conns.abort_all();
            while conns.join_next().await.is_some() {}
        }
    }
}

/// Requests in flight on one connection and when the last one ended.
#[derive(Default)]
struct Activity {
    in_flight: usize,
    last_done: Option<Instant>,
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: &HttpLimits,
    stop: CancellationToken,
) {
    let activity = Arc::new(Mutex::new(Activity::default()));
    let seen = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        seen.lock().expect("activity lock").in_flight += 1;
        let done = Done(seen.clone());
        let mut app = app.clone();
        async move {
            let resp = tower::Service::call(&mut app, req).await;
            drop(done);
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut closing = false;
    // Before its first request a connection is under the header timeout;
    // after one, under the idle timeout as well.
    let mut check = Instant::now() + limits.idle_timeout;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.cancelled(), if !closing => {
                // Closes an idle connection now, a busy one after its
                // response (the caller bounds that by the grace).
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep_until(check), if !closing => {
                let a = activity.lock().expect("activity lock");
                match a.last_done {
                    Some(t) if a.in_flight == 0 => {
                        if t + limits.idle_timeout <= Instant::now() {
                            drop(a);
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        } else {
                            check = t + limits.idle_timeout;
                        }
                    }
                    _ => check = Instant::now() + limits.idle_timeout,
                }
            }
        }
    }
}

/// Ends a request's share of [`Activity`] also when its future is dropped.
struct Done(Arc<Mutex<Activity>>);

impl Drop for Done {
    fn drop(&mut self) {
        if let Ok(mut a) = self.0.lock() {
            a.in_flight -= 1;
            a.last_done = Some(Instant::now());
        }
    }
}

/// Open connections per client key and in total.
#[derive(Default)]
struct Slots {
    inner: Mutex<SlotCounts>,
    stats: Arc<HttpStats>,
}

#[derive(Default)]
struct SlotCounts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

impl Slots {
    /// A slot for a connection from `ip`, or `None` over a cap.
    fn take(self: &Arc<Self>, ip: IpAddr, limits: &HttpLimits) -> Option<Slot> {
        let key = client_key(ip);
        let exempt = limits.exempt.iter().any(|n| n.contains(&ip));
        let mut c = self.inner.lock().expect("slots lock");
        if c.total >= limits.max_connections {
            self.stats.refused_overall.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mine = c.per_client.get(&key).copied().unwrap_or(0);
        if !exempt && mine >= limits.max_connections_per_client {
            self.stats
                .refused_per_client
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        c.total += 1;
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        *c.per_client.entry(key).or_insert(0) += 1;
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }
}

/// One open connection's place; given back on drop.
struct Slot {
    slots: Arc<Slots>,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut c) = self.slots.inner.lock() {
            c.total -= 1;
            self.slots.stats.open.fetch_sub(1, Ordering::Relaxed);
            if let Some(n) = c.per_client.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    c.per_client.remove(&self.key);
                }
            }
        }
    }
}

/// The per-client key of the connection caps and the rate limiter: the
/// IPv4 address (also when mapped into IPv6), or the /64 of an IPv6 one
/// (one subscriber usually holds a whole /64).
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_client_and_in_total() {
        let slots = Arc::new(Slots::default());
        let limits = HttpLimits {
            max_connections: 3,
            max_connections_per_client: 2,
            exempt: vec!["10.0.0.1/32".parse().unwrap()],
            ..Default::default()
        };
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = slots.take(a, &limits).unwrap();
        let _a2 = slots.take(a, &limits).unwrap();
        assert!(slots.take(a, &limits).is_none(), "third from one client");
        let _b1 = slots.take(b, &limits).unwrap();
        assert!(slots.take(b, &limits).is_none(), "over the total");
        assert_eq!(slots.stats.refused(), (1, 1));
        assert_eq!(slots.stats.open(), 3);
        drop(a1);
        assert_eq!(slots.stats.open(), 2);
        assert!(slots.take(a, &limits).is_some(), "a slot came back");
    }

    #[test]
    fn exempt_peers_have_no_per_client_cap() {
        let slots = Arc::new(Slots::default());
        let limits = HttpLimits {
            max_connections: 10,
            max_connections_per_client: 1,
            exempt: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let held: Vec<_> = (0..5).map(|_| slots.take(proxy, &limits)).collect();
        assert!(held.iter().all(Option::is_some));
    }

    #[test]
    fn ipv6_clients_count_by_64() {
        let a = client_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_key("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = client_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            client_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
