//! A GeoDNS server on loopback for tests, and clients: `dig` (the real
//! client; `scripts/test` installs bind9-dnsutils) and raw UDP/TCP with
//! hickory-proto's codec.

#![allow(dead_code)] // each test file uses its own subset

use dns::{DnsListener, GeoDnsHandler, RrlConfig, ZoneData, ZoneStore};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub const ORIGIN: &str = "pool.example.org";

/// A server answering for [`ORIGIN`]; stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: ZoneStore,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Serves `zone`, locating clients with MaxMind's test Country database,
    /// with response rate limiting at its defaults (as operators run it).
    /// With a seed, picks are reproducible.
    pub fn start(zone: &ZoneData, seed: Option<u64>) -> TestServer {
        TestServer::start_with(zone, seed, &RrlConfig::default())
    }

    /// As [`TestServer::start`] with other rate limiting (tests that send
    /// thousands of queries on purpose turn it off).
    pub fn start_with(zone: &ZoneData, seed: Option<u64>, rrl: &RrlConfig) -> TestServer {
        let store = ZoneStore::new(ORIGIN).unwrap();
        store.load(zone).unwrap();
        let geo = geo::GeoIp::open(Path::new(geo::fixtures::COUNTRY_MMDB)).unwrap();
        let mut handler = GeoDnsHandler::new(store.clone(), Some(geo)).with_rrl(rrl);
        if let Some(seed) = seed {
            handler = handler.with_seed(seed);
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, bound) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = DnsListener::bind("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                listener
                    .serve(handler, async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = bound.recv_timeout(Duration::from_secs(10)).unwrap();
        TestServer {
            addr,
            store,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `dig @127.0.0.1 -p PORT +norec +time=2 +tries=1 ARGS…` and returns
/// its output.
pub fn dig(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args([
            "-p",
            &addr.port().to_string(),
            "+norec",
            "+time=2",
            "+tries=1",
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run dig ({e}): run scripts/test (it installs bind9-dnsutils)")
        });
    assert!(out.status.success(), "dig {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The records of the ANSWER section of `dig +short`-style output: the last
/// field of each answer line of a full `dig` output.
pub fn answers(dig_output: &str) -> Vec<String> {
    section(dig_output, "ANSWER")
        .iter()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

/// The lines of one section (`ANSWER`, `AUTHORITY`) of a full `dig` output.
pub fn section(dig_output: &str, name: &str) -> Vec<String> {
    let head = format!(";; {name} SECTION:");
    dig_output
        .lines()
        .skip_while(|l| !l.starts_with(&head))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The `status:` of a full `dig` output.
pub fn status(dig_output: &str) -> String {
    dig_output
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("")
        .to_string()
}

/// The `flags:` of a full `dig` output.
pub fn flags(dig_output: &str) -> Vec<String> {
    dig_output
        .lines()
        .find(|l| l.starts_with(";; flags:"))
        .map(|l| {
            l[";; flags:".len()..]
                .split(';')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A query message for `name`, with EDNS and optionally an ECS subnet.
pub fn query(name: &str, qtype: RecordType, ecs: Option<(&str, u8)>) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    if let Some((ip, prefix)) = ecs {
        let ip: IpAddr = ip.parse().unwrap();
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(ip, prefix, 0)));
    }
    m.set_edns(edns);
    m
}

fn rand_id() -> u16 {
    rand::random()
}

/// Sends `m` over UDP and returns the decoded reply.
pub fn udp(addr: SocketAddr, m: &Message) -> Message {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(&m.to_vec().unwrap(), addr).unwrap();
    let mut buf = [0u8; 65535];
    let (n, _) = sock.recv_from(&mut buf).expect("no UDP reply");
    Message::from_vec(&buf[..n]).unwrap()
}

/// Sends raw bytes over UDP with a reused socket; the reply, if any.
pub fn udp_raw(sock: &UdpSocket, addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    sock.send_to(bytes, addr).ok()?;
    let mut buf = [0u8; 65535];
    sock.recv_from(&mut buf)
        .ok()
        .map(|(n, _)| buf[..n].to_vec())
}

/// Sends `m` over TCP and returns the decoded reply.
pub fn tcp(addr: SocketAddr, m: &Message) -> Message {
    Message::from_vec(&tcp_raw(addr, &m.to_vec().unwrap())).unwrap()
}

/// Sends raw bytes over TCP; the reply's bytes.
pub fn tcp_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(&(bytes.len() as u16).to_be_bytes()).unwrap();
    s.write_all(bytes).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// The A and AAAA addresses in a reply, in order.
pub fn addresses(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// A candidate server as the service sees it.
pub struct Candidate {
    pub ip: &'static str,
    pub score: f64,
    pub netspeed: i64,
    pub zones: &'static [&'static str],
}

const UK: &[&str] = &["uk", "europe", "@"];
const DE: &[&str] = &["de", "europe", "@"];
const US: &[&str] = &["us", "north-america", "@"];
const JP: &[&str] = &["jp", "asia", "@"];

/// The fleet: 10 UK servers (enough to split), 2 German, 3 US, IPv6 in UK,
/// US and Japan (Japan has no IPv4), and servers the in-DNS rule excludes.
pub const CANDIDATES: &[Candidate] = &[
    Candidate {
        ip: "198.51.100.1",
        score: 19.5,
        netspeed: 1000,
        zones: UK,
    },
    Candidate {
        ip: "198.51.100.2",
        score: 18.0,
        netspeed: 1000,
        zones: UK,
    },
    Candidate {
        ip: "198.51.100.3",
        score: 17.0,
        netspeed: 2000,
        zones: UK,
    },
    Candidate {
        ip: "198.51.100.4",
        score: 16.0,
        netspeed: 2000,
        zones: UK,
    },
    Candidate {
        ip: "198.51.100.5",
        score: 15.0,
        netspeed: 3000,
        zones: UK,
    },
    Candidate {
        ip: "198.51.100.6",
        score: 14.0,
        netspeed: 3000,
        zones: UK,
    },
    Candidate {
        ip: "198.51.100.7",
        score: 13.0,
        netspeed: 500,
        zones: UK,
    },
    Candidate {
        ip: "198.51.100.8",
        score: 12.0,
        netspeed: 500,
        zones: UK,
    },
    Candidate {
        ip: "198.51.100.9",
        score: 11.0,
        netspeed: 250,
        zones: UK,
    },
    Candidate {
        ip: "198.51.100.10",
        score: 10.0,
        netspeed: 250,
        zones: UK,
    },
    Candidate {
        ip: "198.51.100.21",
        score: 20.0,
        netspeed: 1000,
        zones: DE,
    },
    Candidate {
        ip: "198.51.100.22",
        score: 20.0,
        netspeed: 1000,
        zones: DE,
    },
    Candidate {
        ip: "203.0.113.1",
        score: 20.0,
        netspeed: 1000,
        zones: US,
    },
    Candidate {
        ip: "203.0.113.2",
        score: 20.0,
        netspeed: 1000,
        zones: US,
    },
    Candidate {
        ip: "203.0.113.3",
        score: 20.0,
        netspeed: 1000,
        zones: US,
    },
    Candidate {
        ip: "2001:db8:1::1",
        score: 20.0,
        netspeed: 1000,
        zones: UK,
    },
    Candidate {
        ip: "2001:db8:2::1",
        score: 20.0,
        netspeed: 1000,
        zones: US,
    },
    Candidate {
        ip: "2001:db8:3::1",
        score: 20.0,
        netspeed: 1000,
        zones: JP,
    },
    // Excluded: score below 10, no netspeed.
    Candidate {
        ip: "198.51.100.99",
        score: 9.9,
        netspeed: 100_000,
        zones: UK,
    },
    Candidate {
        ip: "203.0.113.99",
        score: -50.0,
        netspeed: 100_000,
        zones: US,
    },
    Candidate {
        ip: "2001:db8:1::99",
        score: 5.0,
        netspeed: 100_000,
        zones: UK,
    },
    Candidate {
        ip: "198.51.100.98",
        score: 20.0,
        netspeed: 0,
        zones: UK,
    },
];

/// The candidates the in-DNS rule keeps.
pub fn in_dns() -> Vec<dns::DnsServer> {
    CANDIDATES
        .iter()
        .filter(|c| scoring::in_dns(c.score, c.netspeed, None, 0))
        .map(|c| dns::DnsServer {
            ip: c.ip.parse().unwrap(),
            netspeed: u32::try_from(c.netspeed).unwrap(),
            zones: c.zones.iter().map(|z| z.to_string()).collect(),
        })
        .collect()
}

/// Addresses of in-DNS servers in zone `z` ("uk", "europe", "@", …).
pub fn servers_in(z: &str) -> Vec<IpAddr> {
    in_dns()
        .into_iter()
        .filter(|s| s.zones.iter().any(|x| x == z))
        .map(|s| s.ip)
        .collect()
}

/// The zone of [`in_dns`] servers, with NS names.
pub fn test_zone() -> ZoneData {
    let opts = dns::ZoneOptions {
        ns: vec!["ns1".into(), "ns2".into()],
        serial: 42,
        ..dns::ZoneOptions::default()
    };
    dns::build_zone(ORIGIN, &in_dns(), &opts, 7)
}
