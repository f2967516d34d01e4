//! Per-client token buckets for the public routes, and who the client is.
//!
//! Written here rather than taken from a crate: it is forty lines, needs no
//! timer task, and keys IPv6 clients by /64 (one subscriber's whole
//! allocation), which the usual crates leave to the caller anyway.

use crate::config::RateLimitConfig;
use crate::http::client_key;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by client (IPv4 address, or IPv6 /64), or by
/// another key (an account id for the manage side's adds).
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    per_second: f64,
    burst: f64,
    max_clients: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl RateLimiter<IpAddr> {
    /// Take one token for `client` (IPv6 by /64); `Err(wait)` says how long
    /// until one is available.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        self.take(client_key(client), now)
    }

    /// Gives back the token [`check`](Self::check) took for `client`.
    pub fn refund(&self, client: IpAddr) {
        self.give_back(client_key(client))
    }
}

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        RateLimiter {
            per_second: cfg.per_second,
            burst: cfg.burst.max(1.0),
            max_clients: cfg.max_clients.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `key`; `Err(wait)` says how long until one is
    /// available.
    pub fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= self.max_clients && !buckets.contains_key(&key) {
            // Forget clients whose bucket has refilled: they lose nothing.
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| refill(b, now, rate, burst) < burst);
            if buckets.len() >= self.max_clients {
                // Still full of busy clients: admit nobody new rather than
                // grow without bound.
                return Err(Duration::from_secs(1));
            }
        }
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let tokens = refill(b, now, self.per_second, self.burst);
        if tokens >= 1.0 {
            b.tokens = tokens - 1.0;
            b.last = now;
            Ok(())
        } else {
            b.tokens = tokens;
            b.last = now;
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }
}

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    /// Gives back a token taken for `key` (up to the burst): for limits
    /// that count only failures, taken before the attempt so that an
    /// empty bucket refuses it, given back when it succeeded.
    pub fn give_back(&self, key: K) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get_mut(&key) {
            b.tokens = (b.tokens + 1.0).min(self.burst);
        }
    }
}

fn refill(b: &Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
    (b.tokens + elapsed * rate).min(burst)
}

/// The client of a request from its parts: [`client_addr`] of its socket
/// peer (`ConnectInfo`; unspecified without one) and `X-Forwarded-For`.
pub fn request_client(
    ext: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
    trusted: &[IpNet],
) -> IpAddr {
    let peer = ext
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    client_addr(peer, forwarded, trusted)
}

/// The client's address: the socket peer, unless the peer is a trusted
/// proxy, in which case the right-most `X-Forwarded-For` entry that is not
/// itself a trusted proxy (entries further left are the client's own claim).
pub fn client_addr(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for part in header.rsplit(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage in the chain: stop at the last address we could
            // attribute.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter::new(&RateLimitConfig {
            per_second: rate,
            burst,
            trusted_proxies: vec![],
            max_clients: 3,
        })
    }

    #[test]
    fn burst_then_refill() {
        let l = limiter(2.0, 3.0);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a, t0).is_ok());
        }
        let wait = l.check(a, t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500));
        // Another client is not affected.
        assert!(l.check("192.0.2.2".parse().unwrap(), t0).is_ok());
        // Half a second later one token is back.
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.check(a, t1).is_ok());
        assert!(l.check(a, t1).is_err());
    }

    #[test]
    fn ipv6_shares_a_bucket_per_64() {
        let l = limiter(1.0, 1.0);
        let t0 = Instant::now();
        assert!(l.check("2001:db8:1:2::1".parse().unwrap(), t0).is_ok());
        assert!(l.check("2001:db8:1:2::ffff".parse().unwrap(), t0).is_err());
        assert!(l.check("2001:db8:1:3::1".parse().unwrap(), t0).is_ok());
    }

    #[test]
    fn table_stays_bounded() {
        let l = limiter(1.0, 1.0);
        let t0 = Instant::now();
        for i in 1..=3u8 {
            assert!(l.check(IpAddr::from([192, 0, 2, i]), t0).is_ok());
        }
        // All three are busy: a fourth client waits.
        assert!(l.check("192.0.2.4".parse().unwrap(), t0).is_err());
        // Once they have refilled they are forgotten and room is made.
        let t1 = t0 + Duration::from_secs(2);
        assert!(l.check("192.0.2.4".parse().unwrap(), t1).is_ok());
    }

    #[test]
    fn zero_rate_disables() {
        let l = limiter(0.0, 1.0);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(l.check("192.0.2.1".parse().unwrap(), t0).is_ok());
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let xff = Some("198.51.100.9, 203.0.113.7, 10.0.0.2");
        // Untrusted peer: header ignored.
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_addr(peer, xff, &trusted), peer);
        // No trusted proxies configured: header ignored.
        assert_eq!(client_addr(proxy, xff, &[]), proxy);
        // Trusted: right-most untrusted entry.
        assert_eq!(
            client_addr(proxy, xff, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_addr(proxy, None, &trusted), proxy);
        assert_eq!(
            client_addr(proxy, Some("junk, 10.0.0.3"), &trusted),
            "10.0.0.3".parse::<IpAddr>().unwrap()
        );
    }
}
