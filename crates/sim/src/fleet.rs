//! The fleet file: which servers to run, where, and how each behaves.
//! Parsing and expansion only; `server` runs them.

use crate::behaviour::Behaviour;
use ntp::TargetPolicy;
use ntp::target::{AddrClass, classify};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// Most servers one fleet may hold (sockets are file descriptors).
pub const MAX_SERVERS: usize = 200_000;

/// One simulated server: where it listens and how it behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec {
    /// Optional label, printed by `poolwatch sim`.
    pub name: Option<String>,
    /// Address to bind; port 0 picks a free port.
    pub addr: SocketAddr,
    pub behaviour: Behaviour,
}

/// A set of simulated servers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fleet {
    /// Seed for the random parts of behaviours (loss, garbage); `None` =
    /// different every run.
    pub seed: Option<u64>,
    pub servers: Vec<ServerSpec>,
}

/// Why a fleet description cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// `count` servers with the same behaviour on consecutive addresses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// How many servers.
    pub count: u32,
    /// First address; the next ones count up from it, skipping addresses
    /// ending in .0 and .255.
    #[serde(default = "default_base", deserialize_with = "lab_ip")]
    pub base: IpAddr,
    /// First port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Servers per address, on consecutive ports from `port`.
    #[serde(default = "one")]
    pub per_address: u16,
    #[serde(default, alias = "behavior")]
    pub behaviour: Behaviour,
}

fn default_base() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1, 0, 1))
}

fn default_port() -> u16 {
    11123
}

fn one() -> u16 {
    1
}

impl Generate {
    /// The servers this block stands for.
    pub fn servers(&self) -> Result<Vec<ServerSpec>, FleetError> {
        let count = self.count as usize;
        if count == 0 || count > MAX_SERVERS {
            return Err(FleetError::Invalid(format!(
                "generate: count {count} is out of range (1 to {MAX_SERVERS})"
            )));
        }
        let per = self.per_address.max(1);
        if self.port != 0 && self.port as u32 + per as u32 - 1 > u16::MAX as u32 {
            return Err(FleetError::Invalid(format!(
                "generate: ports {}+{per} run past 65535",
                self.port
            )));
        }
        let addresses = count.div_ceil(per as usize);
        let ips = consecutive_ips(self.base, addresses)?;
        let mut out = Vec::with_capacity(count);
        'outer: for ip in ips {
            for k in 0..per {
                if out.len() == count {
                    break 'outer;
                }
                let port = if self.port == 0 { 0 } else { self.port + k };
                out.push(ServerSpec {
                    name: None,
                    addr: SocketAddr::new(ip, port),
                    behaviour: self.behaviour.clone(),
                });
            }
        }
        Ok(out)
    }
}

/// `n` addresses counting up from `base`, skipping IPv4 host parts .0 and
/// .255, never leaving the base's /8 (IPv4) or class (IPv6).
fn consecutive_ips(base: IpAddr, n: usize) -> Result<Vec<IpAddr>, FleetError> {
    let mut out = Vec::with_capacity(n);
    match base {
        IpAddr::V4(b) => {
            let start = u32::from(b);
            let mut v = start;
            while out.len() < n {
                let ip = Ipv4Addr::from(v);
                if ip.octets()[0] != b.octets()[0] {
                    return Err(FleetError::Invalid(format!(
                        "generate: {n} addresses from {base} run past {}.255.255.254",
                        b.octets()[0]
                    )));
                }
                let last = ip.octets()[3];
                if last != 0 && last != 255 {
                    out.push(IpAddr::V4(ip));
                }
                v = v.wrapping_add(1);
            }
        }
        IpAddr::V6(b) => {
            let start = u128::from(b);
            for i in 0..n as u128 {
                let ip = IpAddr::V6(start.wrapping_add(i).into());
                if classify(ip) != classify(base) {
                    return Err(FleetError::Invalid(format!(
                        "generate: {n} addresses from {base} leave its range (use per_address for several servers on one address)"
                    )));
                }
                out.push(ip);
            }
        }
    }
    Ok(out)
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRaw {
    seed: Option<u64>,
    #[serde(default, deserialize_with = "one_or_many")]
    server: Vec<ServerRaw>,
    #[serde(default, deserialize_with = "one_or_many")]
    generate: Vec<Generate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerRaw {
    name: Option<String>,
    #[serde(deserialize_with = "lab_socket_addr")]
    addr: SocketAddr,
    #[serde(default, alias = "behavior")]
    behaviour: Behaviour,
}

/// Simulated servers may only listen where no real client can be misled:
/// loopback, private and link-local addresses, exactly where a `--lab`
/// agent may send (its rule, so the two never drift apart).
fn lab_only(ip: IpAddr) -> Result<(), String> {
    TargetPolicy::Lab.check(ip).map_err(|_| {
        let class = classify(ip);
        // Lab mode refuses these classes only inside an embedding IPv6 form.
        let embedded = matches!(
            class,
            AddrClass::Loopback | AddrClass::Private | AddrClass::LinkLocal
        );
        format!(
            "{ip} is a {class} address{}; simulated servers listen only on loopback, private or link-local addresses",
            if embedded { " inside an IPv6 form" } else { "" }
        )
    })
}

fn lab_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    let addr: SocketAddr = s.parse().map_err(|_| {
        de::Error::custom(format!(
            "'{s}' is not IP:PORT (e.g. 127.0.0.1:11123 or [::1]:11123; port 0 picks a free port)"
        ))
    })?;
    lab_only(addr.ip()).map_err(de::Error::custom)?;
    Ok(addr)
}

fn lab_ip<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    let s = String::deserialize(d)?;
    let ip: IpAddr = s
        .parse()
        .map_err(|_| de::Error::custom(format!("'{s}' is not an IP address")))?;
    lab_only(ip).map_err(de::Error::custom)?;
    Ok(ip)
}

/// `[x]` (one table) or `[[x]]` (an array of tables).
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a table or an array of tables")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            Ok(vec![T::deserialize(
                de::value::MapAccessDeserializer::new(map),
            )?])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element()? {
                out.push(v);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V(PhantomData))
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Fleet {
    /// A fleet of the given servers.
    pub fn new(servers: Vec<ServerSpec>) -> Fleet {
        Fleet {
            seed: None,
            servers,
        }
    }

    /// Parse a fleet file's text.
    pub fn from_toml(text: &str) -> Result<Fleet, FleetError> {
        let raw: FileRaw = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            FleetError::Syntax {
                line,
                column,
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        let mut servers: Vec<ServerSpec> = raw
            .server
            .into_iter()
            .map(|s| ServerSpec {
                name: s.name,
                addr: s.addr,
                behaviour: s.behaviour,
            })
            .collect();
        for g in &raw.generate {
            servers.extend(g.servers()?);
        }
        let fleet = Fleet {
            seed: raw.seed,
            servers,
        };
        fleet.validate()?;
        Ok(fleet)
    }

    /// Read and parse a fleet file.
    pub fn load(path: &Path) -> Result<Fleet, FleetError> {
        let text = std::fs::read_to_string(path)?;
        Fleet::from_toml(&text)
    }

    /// At least one server, not too many, no address listed twice.
    pub fn validate(&self) -> Result<(), FleetError> {
        if self.servers.is_empty() {
            return Err(FleetError::Invalid(
                "no servers (add [[server]] or [generate] entries)".into(),
            ));
        }
        if self.servers.len() > MAX_SERVERS {
            return Err(FleetError::Invalid(format!(
                "{} servers is more than the {MAX_SERVERS} allowed",
                self.servers.len()
            )));
        }
        let mut seen = HashSet::with_capacity(self.servers.len());
        for s in &self.servers {
            if s.addr.port() != 0 && !seen.insert(s.addr) {
                return Err(FleetError::Invalid(format!(
                    "server {} is listed twice",
                    s.addr
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn example_file() {
        let f = Fleet::from_toml(
            r#"
seed = 7

[[server]]
name = "ok"
addr = "127.0.0.1:11123"
behaviour = "good"

[[server]]
addr = "[::1]:0"
behavior = { offset = 0.25, loss = 0.5, delay_ms = 100 }

[[server]]
addr = "127.0.0.3:11123"

[generate]
count = 5
base = "127.1.0.254"
port = 12000
behaviour = { kod = "RATE" }
"#,
        )
        .unwrap();
        assert_eq!(f.seed, Some(7));
        assert_eq!(f.servers.len(), 8);
        assert_eq!(f.servers[0].name.as_deref(), Some("ok"));
        assert_eq!(f.servers[1].addr, "[::1]:0".parse().unwrap());
        assert_eq!(f.servers[1].behaviour.delay, Duration::from_millis(100));
        assert_eq!(f.servers[2].behaviour, Behaviour::default());
        let gen_addrs: Vec<String> = f.servers[3..].iter().map(|s| s.addr.to_string()).collect();
        assert_eq!(
            gen_addrs,
            [
                "127.1.0.254:12000",
                "127.1.1.1:12000",
                "127.1.1.2:12000",
                "127.1.1.3:12000",
                "127.1.1.4:12000"
            ]
        );
        assert!(
            f.servers[3..]
                .iter()
                .all(|s| s.behaviour.kod.as_deref() == Some("RATE"))
        );
    }

    #[test]
    fn the_example_fleet_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fleet.toml");
        let f = Fleet::load(Path::new(path)).unwrap();
        assert_eq!(f.servers.len(), 38);
        assert!(f.servers.iter().any(|s| s.behaviour.rate_limit.is_some()));
    }

    #[test]
    fn generate_many_ports_and_arrays() {
        let f = Fleet::from_toml(
            r#"
[[generate]]
count = 5
base = "127.2.0.1"
port = 11123
per_address = 2

[[generate]]
count = 2
base = "::1"
port = 0
per_address = 2
behaviour = "silent"
"#,
        )
        .unwrap();
        let addrs: Vec<String> = f.servers.iter().map(|s| s.addr.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "127.2.0.1:11123",
                "127.2.0.1:11124",
                "127.2.0.2:11123",
                "127.2.0.2:11124",
                "127.2.0.3:11123",
                "[::1]:0",
                "[::1]:0"
            ]
        );
    }

    #[test]
    fn ten_thousand() {
        let g = Generate {
            count: 10_000,
            base: default_base(),
            port: 11123,
            per_address: 1,
            behaviour: Behaviour::default(),
        };
        let s = g.servers().unwrap();
        assert_eq!(s.len(), 10_000);
        assert_eq!(s[9_999].addr.to_string(), "127.1.39.94:11123");
        Fleet::new(s).validate().unwrap();
    }

    #[test]
    fn bad_files() {
        let cases = [
            ("", "no servers"),
            (
                "[[server]]\naddr = \"127.0.0.1\"",
                "line 2, column 8: '127.0.0.1' is not IP:PORT",
            ),
            (
                "[[server]]\naddr = \"8.8.8.8:123\"",
                "8.8.8.8 is a public address",
            ),
            ("[[server]]\naddr = \"0.0.0.0:123\"", "unspecified address"),
            (
                "[[server]]\naddr = \"[2002:7f00:1::1]:123\"",
                "2002:7f00:1::1 is a loopback address inside an IPv6 form",
            ),
            (
                "[[server]]\naddr = \"127.0.0.1:1\"\nbehaviour = \"fast\"",
                "line 3, column 13: unknown behaviour 'fast'",
            ),
            (
                "[[server]]\naddr = \"127.0.0.1:1\"\ncolour = 1",
                "unknown field `colour`",
            ),
            (
                "[[server]]\naddr = \"127.0.0.1:1\"\n[[server]]\naddr = \"127.0.0.1:1\"",
                "server 127.0.0.1:1 is listed twice",
            ),
            ("[[server]\naddr = 1", "line 1"),
            ("sed = 1", "unknown field `sed`"),
            (
                "[[server]]\naddr = \"127.0.0.1:1\"\nbehaviour = { rate_limit = { average = 0 } }",
                "rate_limit.average: seconds, more than 0",
            ),
            (
                "[[server]]\naddr = \"127.0.0.1:1\"\nbehaviour = { rate_limit = { every = 8 } }",
                "unknown field `every`",
            ),
            ("[generate]\ncount = 0", "count 0 is out of range"),
            (
                "[generate]\ncount = 10\nbase = \"127.255.255.250\"",
                "run past 127.255.255.254",
            ),
            (
                "[generate]\ncount = 3\nport = 65535\nper_address = 2",
                "run past 65535",
            ),
            (
                "[generate]\ncount = 3\nbase = \"1.2.3.4\"",
                "public address",
            ),
            (
                "[generate]\ncount = 2\nbase = \"::1\"",
                "leave its range (use per_address",
            ),
        ];
        for (text, want) in cases {
            let e = Fleet::from_toml(text).expect_err(text).to_string();
            assert!(e.contains(want), "{text:?}: got {e:?}, want {want:?}");
            assert!(!e.contains('\n'), "{text:?}: error is not one line: {e:?}");
        }
    }
}
