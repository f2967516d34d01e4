//! The I/O edge of this crate: one SNTP query over tokio UDP, and a check
//! (several queries, spaced, best one chosen).

use crate::check::{CheckConfig, CheckResult, Next, Sample, next_after};
use crate::classify::{ErrorCode, evaluate, match_reply};
use crate::packet::Packet;
use crate::target::{Refused, TargetPolicy};
use crate::time::{NtpTimestamp, unix_seconds};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;

/// Send one NTPv4 client request to `addr` and wait up to `timeout` for the
/// matching reply. Datagrams that are not a reply to this request (wrong
/// origin timestamp, mode or version, too short) are ignored; if only such
/// datagrams came, the error says why the last one was rejected.
pub async fn query(addr: SocketAddr, timeout: Duration) -> Sample {
    query_from(addr, None, timeout).await
}

/// `query`, sending from the local address `source` when given.
pub async fn query_from(addr: SocketAddr, source: Option<IpAddr>, timeout: Duration) -> Sample {
    let start_wall = SystemTime::now();
    let ts = unix_seconds(start_wall);
    let bind: SocketAddr = match (source, addr.ip()) {
        (Some(ip), _) => (ip, 0).into(),
        (None, IpAddr::V4(_)) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        (None, IpAddr::V6(_)) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => return Sample::failed(ts, ErrorCode::from_io(&e)),
    };
    // A connected socket only receives from the queried address and is told
    // about ICMP errors (port/host/network unreachable).
    if let Err(e) = sock.connect(addr).await {
        return Sample::failed(ts, ErrorCode::from_io(&e));
    }
    // A random transmit timestamp is the nonce; it also hides our clock.
    let nonce = NtpTimestamp(rand::random::<u64>());
    let request = Packet::client_request(nonce).encode();
    let t1 = NtpTimestamp::from_system_time(SystemTime::now());
    let sent = Instant::now();
    if let Err(e) = sock.send(&request).await {
        return Sample::failed(ts, ErrorCode::from_io(&e));
    }
    let deadline = tokio::time::Instant::from_std(sent + timeout);
    let mut buf = [0u8; 1024];
    let mut rejected: Option<String> = None;
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) => {
                return match rejected {
                    Some(why) => Sample {
                        no_response: false,
                        ..Sample::failed(ts, ErrorCode::BadReply(why))
                    },
                    None => Sample::failed(ts, ErrorCode::Timeout),
                };
            }
            Ok(Err(e)) => return Sample::failed(ts, ErrorCode::from_io(&e)),
            Ok(Ok(n)) => n,
        };
        let elapsed = sent.elapsed();
        match match_reply(&buf[..n], nonce) {
            Ok(p) => {
                let m = evaluate(&p, t1, elapsed);
                return Sample {
                    ts,
                    offset: m.offset,
                    rtt: Some(m.rtt),
                    stratum: Some(p.stratum),
                    leap: Some(p.leap),
                    refid: Some(p.refid_string()),
                    error: m.error,
                    no_response: false,
                    packet: Some(p),
                };
            }
            Err(why) => rejected = Some(why),
        }
    }
}

/// Check one server: `cfg.samples` queries `cfg.sample_interval` apart,
/// stopping early on `DENY`/`RSTR` and waiting longer after `RATE`.
pub async fn check(server: String, addr: SocketAddr, cfg: &CheckConfig) -> CheckResult {
    check_until(server, addr, cfg, std::future::pending()).await
}

/// `check`, but when `stop` completes no further sample is started; the
/// samples taken so far (at least one) make the result. A monitor uses this
/// to shut down within a few seconds without losing work in flight.
pub async fn check_until(
    server: String,
    addr: SocketAddr,
    cfg: &CheckConfig,
    stop: impl std::future::Future<Output = ()>,
) -> CheckResult {
    let n = cfg.samples.max(1);
    let mut samples = Vec::with_capacity(n as usize);
    tokio::pin!(stop);
    for i in 0..n {
        let started = tokio::time::Instant::now();
        let sample = query_from(addr, cfg.source, cfg.timeout).await;
        let next = next_after(&sample, cfg);
        samples.push(sample);
        let wait = match next {
            _ if i + 1 == n => break,
            Next::Stop => break,
            Next::Continue => cfg.sample_interval,
            Next::BackOff(extra) => cfg.sample_interval + extra,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(started + wait) => {}
            _ = &mut stop => break,
        }
    }
    CheckResult::new(server, addr, samples)
}

/// `check`, after asking the policy whether `addr` may be queried at all.
pub async fn check_allowed(
    server: String,
    addr: SocketAddr,
    cfg: &CheckConfig,
    policy: TargetPolicy,
) -> Result<CheckResult, Refused> {
    policy.check(addr.ip())?;
    Ok(check(server, addr, cfg).await)
}
