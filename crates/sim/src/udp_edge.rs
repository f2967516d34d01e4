//! The I/O edge: one UDP socket and one tokio task per simulated server.

use crate::behaviour::Behaviour;
use crate::fleet::{Fleet, ServerSpec};
use crate::reply::{Action, Responder};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

/// Room for a request with extension fields; longer datagrams are cut,
/// which does not matter since only the header is read.
const RECV_BUF: usize = 256;

/// A server that could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}{hint}")]
pub struct SpawnError {
    pub addr: SocketAddr,
    pub source: io::Error,
    hint: &'static str,
}

impl SpawnError {
    fn new(addr: SocketAddr, source: io::Error) -> SpawnError {
        let hint = match source.kind() {
            io::ErrorKind::AddrInUse => " (another process uses it; pick another port or 0)",
            io::ErrorKind::AddrNotAvailable => {
                " (no interface has this address; 127.0.0.0/8 always works, ::1 needs IPv6)"
            }
            _ if source.raw_os_error() == Some(24) => {
                " (too many open files: each server needs a socket; raise the limit with `ulimit -n`)"
            }
            _ => "",
        };
        SpawnError { addr, source, hint }
    }
}

/// Requests seen and replies sent by one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// NTP client requests received (other datagrams are not counted).
    pub received: u64,
    /// Datagrams sent back (including malformed and misdirected ones).
    pub answered: u64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    answered: AtomicU64,
}

/// A running server: its bound address and counters.
#[derive(Debug)]
pub struct RunningServer {
    pub name: Option<String>,
    /// The address actually bound (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Where misdirected replies come from, for `reply_from`.
    pub reply_addr: Option<SocketAddr>,
    pub behaviour: Behaviour,
    counters: Arc<Counters>,
}

impl RunningServer {
    pub fn stats(&self) -> Stats {
        Stats {
            received: self.counters.received.load(Ordering::Relaxed),
            answered: self.counters.answered.load(Ordering::Relaxed),
        }
    }
}

/// A fleet whose servers are answering. Dropping it stops them too.
#[derive(Debug)]
pub struct RunningFleet {
    servers: Vec<RunningServer>,
    tasks: JoinSet<()>,
}

impl RunningFleet {
    pub fn servers(&self) -> &[RunningServer] {
        &self.servers
    }

    /// The bound addresses, in fleet order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.addr).collect()
    }

    /// Counters summed over the fleet.
    pub fn totals(&self) -> Stats {
        self.servers.iter().fold(Stats::default(), |t, s| {
            let s = s.stats();
            Stats {
                received: t.received + s.received,
                answered: t.answered + s.answered,
            }
        })
    }

    /// Stop every server and wait until its socket is closed.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

impl Fleet {
    /// Bind every server's socket and start answering. Fails, with nothing
    /// left running, if any address cannot be bound. Needs a tokio runtime.
    pub async fn spawn(&self) -> Result<RunningFleet, SpawnError> {
        let base_seed = self.seed.unwrap_or_else(rand::random);
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        let mut servers = Vec::with_capacity(self.servers.len());
        for (i, spec) in self.servers.iter().enumerate() {
            // Distinct, reproducible streams per server from one fleet seed.
            let seed = base_seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let (server, task) = start(spec, seed, started)?;
            tasks.spawn(task);
            servers.push(server);
        }
        Ok(RunningFleet { servers, tasks })
    }
}

fn bind(addr: SocketAddr) -> Result<UdpSocket, SpawnError> {
    let std_sock = std::net::UdpSocket::bind(addr).map_err(|e| SpawnError::new(addr, e))?;
    std_sock
        .set_nonblocking(true)
        .map_err(|e| SpawnError::new(addr, e))?;
    UdpSocket::from_std(std_sock).map_err(|e| SpawnError::new(addr, e))
}

type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

fn start(
    spec: &ServerSpec,
    seed: u64,
    started: Instant,
) -> Result<(RunningServer, Task), SpawnError> {
    let sock = bind(spec.addr)?;
    let addr = sock
        .local_addr()
        .map_err(|e| SpawnError::new(spec.addr, e))?;
    let other = match spec.behaviour.reply_from {
        Some(from) => {
            let other_addr = SocketAddr::new(from.bind_ip(addr.ip()), 0);
            Some(Arc::new(bind(other_addr)?))
        }
        None => None,
    };
    let reply_addr = other.as_ref().and_then(|s| s.local_addr().ok());
    let counters = Arc::new(Counters::default());
    let responder = Responder::new(spec.behaviour.clone(), seed);
    let task = Box::pin(serve(
        Arc::new(sock),
        other,
        responder,
        counters.clone(),
        started,
    ));
    let server = RunningServer {
        name: spec.name.clone(),
        addr,
        reply_addr,
        behaviour: spec.behaviour.clone(),
        counters,
    };
    Ok((server, task))
}

async fn serve(
    sock: Arc<UdpSocket>,
    other: Option<Arc<UdpSocket>>,
    mut responder: Responder,
    counters: Arc<Counters>,
    started: Instant,
) {
    let mut buf = [0u8; RECV_BUF];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(v) => v,
            // Transient (e.g. a queued ICMP error): keep serving.
            Err(_) => {
                tokio::task::yield_now().await;
                continue;
            }
        };
        let now = SystemTime::now();
        let (bytes, delay, from_other) =
            match responder.respond(&buf[..n], peer.ip(), now, started.elapsed()) {
                Action::Ignore => continue,
                Action::Drop => {
                    counters.received.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Action::Reply {
                    bytes,
                    delay,
                    from_other,
                } => (bytes, delay, from_other),
            };
        counters.received.fetch_add(1, Ordering::Relaxed);
        let out = match (&other, from_other) {
            (Some(o), true) => o.clone(),
            _ => sock.clone(),
        };
        if delay.is_zero() {
            send(&out, &bytes, peer, &counters).await;
        } else {
            // Later, without holding up the next request.
            let counters = counters.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                send(&out, &bytes, peer, &counters).await;
            });
        }
    }
}

async fn send(sock: &UdpSocket, bytes: &[u8], peer: SocketAddr, counters: &Counters) {
    if sock.send_to(bytes, peer).await.is_ok() {
        counters.answered.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::ReplyFrom;
    use std::time::Duration;

    fn fleet(behaviours: Vec<Behaviour>) -> Fleet {
        Fleet {
            seed: Some(1),
            servers: behaviours
                .into_iter()
                .map(|behaviour| ServerSpec {
                    name: None,
                    addr: "127.0.0.1:0".parse().unwrap(),
                    behaviour,
                })
                .collect(),
        }
    }

    const T: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn answers_over_udp() {
        let good = Behaviour::default();
        let f = fleet(vec![
            good.clone(),
            Behaviour {
                offset: 0.25,
                ..good.clone()
            },
            Behaviour {
                silent: true,
                ..good.clone()
            },
            Behaviour {
                reply_from: Some(ReplyFrom::Other),
                ..good.clone()
            },
            Behaviour {
                delay: Duration::from_millis(50),
                ..good.clone()
            },
        ])
        .spawn()
        .await
        .unwrap();
        let a = f.addrs();
        assert!(a.iter().all(|a| a.port() != 0));
        // NTP's error bound: half the round trip the machine (not the
        // simulation) added, never stricter than 10 ms.
        let near = |s: &ntp::Sample, want: f64, simulated: f64| {
            let (off, rtt) = (s.offset.unwrap(), s.rtt.unwrap());
            let slack = 0.01f64.max((rtt - simulated).max(0.0) / 2.0 + 0.001);
            assert!((off - want).abs() <= slack, "{s:?}, want {want} ± {slack}");
        };
        let s = ntp::query(a[0], T).await;
        assert_eq!(s.error, None);
        near(&s, 0.0, 0.0);
        let s = ntp::query(a[1], T).await;
        near(&s, 0.25, 0.0);
        let s = ntp::query(a[2], T).await;
        assert_eq!(s.error, Some(ntp::ErrorCode::Timeout));
        let s = ntp::query(a[3], T).await;
        assert_eq!(s.error, Some(ntp::ErrorCode::Timeout));
        assert_eq!(
            f.servers()[3].reply_addr.unwrap().ip().to_string(),
            "127.0.0.2"
        );
        let s = ntp::query(a[4], T).await;
        assert!(s.rtt.unwrap() >= 0.05, "{s:?}");
        near(&s, 0.0, 0.05);
        let stats: Vec<Stats> = f.servers().iter().map(|s| s.stats()).collect();
        assert_eq!(
            stats[0],
            Stats {
                received: 1,
                answered: 1
            }
        );
        assert_eq!(
            stats[2],
            Stats {
                received: 1,
                answered: 0
            }
        );
        assert_eq!(
            stats[3],
            Stats {
                received: 1,
                answered: 1
            }
        );
        assert_eq!(
            f.totals(),
            Stats {
                received: 5,
                answered: 4
            }
        );
        f.shutdown().await;
    }

    #[tokio::test]
    async fn garbage_does_not_stop_a_server() {
        let f = fleet(vec![Behaviour::default()]).spawn().await.unwrap();
        let addr = f.addrs()[0];
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for junk in [&[][..], &[0xff; 7], &[0x1b; 47], &[0x24; 48], &[0u8; 300]] {
            c.send_to(junk, addr).await.unwrap();
        }
        assert_eq!(ntp::query(addr, T).await.error, None);
        assert_eq!(
            f.servers()[0].stats(),
            Stats {
                received: 1,
                answered: 1
            }
        );
    }

    #[tokio::test]
    async fn ipv6_loopback() {
        if std::net::UdpSocket::bind("[::1]:0").is_err() {
            eprintln!("skipped: ::1 is not available");
            return;
        }
        let mut f = fleet(vec![Behaviour {
            stratum: 4,
            ..Behaviour::default()
        }]);
        f.servers[0].addr = "[::1]:0".parse().unwrap();
        let f = f.spawn().await.unwrap();
        let s = ntp::query(f.addrs()[0], T).await;
        assert_eq!((s.error, s.stratum), (None, Some(4)));
    }

    #[tokio::test]
    async fn busy_address_is_a_clear_error() {
        let f = fleet(vec![Behaviour::default()]).spawn().await.unwrap();
        let mut again = fleet(vec![Behaviour::default(), Behaviour::default()]);
        again.servers[1].addr = f.addrs()[0];
        let e = again.spawn().await.unwrap_err();
        assert_eq!(e.addr, f.addrs()[0]);
        assert!(e.to_string().contains("another process uses it"), "{e}");
    }

    #[tokio::test]
    async fn shutdown_closes_sockets() {
        let f = fleet(vec![Behaviour::default()]).spawn().await.unwrap();
        let addr = f.addrs()[0];
        f.shutdown().await;
        assert!(std::net::UdpSocket::bind(addr).is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn five_hundred_servers_on_many_addresses() {
        let g = crate::fleet::Generate {
            count: 500,
            base: "127.3.0.1".parse().unwrap(),
            port: 0,
            per_address: 1,
            behaviour: Behaviour::default(),
        };
        let f = Fleet::new(g.servers().unwrap()).spawn().await.unwrap();
        let addrs = f.addrs();
        let mut set = JoinSet::new();
        for a in addrs.iter().step_by(7).copied() {
            set.spawn(async move { ntp::query(a, Duration::from_secs(2)).await });
        }
        while let Some(s) = set.join_next().await {
            assert_eq!(s.unwrap().error, None);
        }
        // A reply is counted once `send_to` returned, which may be just
        // after the client read it: wait for the count to catch up.
        let want = addrs.iter().step_by(7).count() as u64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while f.totals().answered < want && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(f.totals().answered, want);
    }
}
