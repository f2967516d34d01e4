//! The zone generator: in-DNS servers → [`ZoneData`], as the pool builds its
//! GeoDNS zone. Pure: same servers, options and seed give the same zone.

use crate::model::{DEFAULT_MAX_HOSTS, DEFAULT_TTL, LabelData, ZoneData};
use crate::vendor::{Vendor, add_aliases};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A zone with fewer IPv4 servers than this puts all of them in each of its
/// numbered labels `0`–`3`; from this many on, each gets a distinct quarter.
pub const SPLIT_MIN_SERVERS: usize = 8;

/// One server that is in DNS (the caller has applied `scoring::in_dns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsServer {
    pub ip: IpAddr,
    /// The weight of the server in answers; 0 keeps it out of the zone.
    pub netspeed: u32,
    /// Zones it serves, e.g. `["de", "europe", "@"]`.
    pub zones: Vec<String>,
}

/// Zone-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneOptions {
    pub ttl: u32,
    pub max_hosts: u32,
    /// Name servers of the zone; names without a final `.` are relative to
    /// the origin.
    pub ns: Vec<String>,
    pub serial: u32,
    /// AAAA in every name (the apex, continents, countries and their
    /// `0`–`3`), not only in the `2.` names as the pool has it.
    pub ipv6_everywhere: bool,
    /// Vendor zones: `<name>` and `0`–`3.<name>` as aliases of their zone's
    /// labels (see [`crate::vendor`]).
    pub vendors: Vec<Vendor>,
}

impl Default for ZoneOptions {
    fn default() -> Self {
        ZoneOptions {
            ttl: DEFAULT_TTL,
            max_hosts: DEFAULT_MAX_HOSTS,
            ns: Vec::new(),
            serial: 0,
            ipv6_everywhere: false,
            vendors: Vec::new(),
        }
    }
}

/// A zone's IPv4 and IPv6 servers with their weights.
type ZoneServers = (Vec<(Ipv4Addr, u32)>, Vec<(Ipv6Addr, u32)>);

/// Builds the zone for `origin` (e.g. `pool.example.org`).
///
/// Every zone (`@`, each continent, each country, and any other zone a
/// server names) gets its unnumbered label with all its IPv4 servers, and the
/// numbered labels `0`–`3`: with at least [`SPLIT_MIN_SERVERS`] IPv4
/// servers, a shuffle (seeded by `rng_seed`) dealt into four disjoint
/// quarters, else all servers in each. IPv6 servers appear only in the `2.`
/// labels (AAAA), or with [`ZoneOptions::ipv6_everywhere`] in every label,
/// dealt into the `0`–`3` quarters as the IPv4 ones. Weights are netspeeds. Zones without servers still get
/// their (empty) labels, so their names answer NODATA rather than NXDOMAIN.
/// Vendors come last, as aliases; one whose names are taken (by a pool
/// label or a name server inside the zone) is left out.
pub fn build_zone(
    origin: &str,
    servers: &[DnsServer],
    opts: &ZoneOptions,
    rng_seed: u64,
) -> ZoneData {
    let mut zones: BTreeMap<String, ZoneServers> = geo::zone_tree()
        .into_iter()
        .map(|z| (z.name, Default::default()))
        .collect();
    for s in servers.iter().filter(|s| s.netspeed > 0) {
        let mut names: Vec<String> = s.zones.iter().filter_map(|z| zone_name(z)).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let (v4, v6) = zones.entry(name).or_default();
            match s.ip {
                IpAddr::V4(ip) => v4.push((ip, s.netspeed)),
                IpAddr::V6(ip) => v6.push((ip, s.netspeed)),
            }
        }
    }

    let mut rng = StdRng::seed_from_u64(rng_seed);
    let mut data = BTreeMap::new();
    for (zone, (mut v4, mut v6)) in zones {
        // Input order must not change the output.
        v4.sort_unstable();
        v4.dedup_by_key(|(ip, _)| *ip);
        v6.sort_unstable();
        v6.dedup_by_key(|(ip, _)| *ip);
        let quarters = split(&v4, &mut rng);
        // Without ipv6_everywhere, `2.` has every IPv6 server and the other
        // names none.
        let mut v6_quarters: [Vec<(Ipv6Addr, u32)>; 4] = Default::default();
        if opts.ipv6_everywhere {
            v6_quarters = split(&v6, &mut rng);
        } else {
            v6_quarters[2] = v6.clone();
        }
        for (n, (a, aaaa)) in quarters.into_iter().zip(v6_quarters).enumerate() {
            let label = LabelData {
                a,
                aaaa,
                ..LabelData::default()
            };
            data.insert(numbered_label(n, &zone), label);
        }
        data.insert(
            base_label(&zone),
            LabelData {
                a: v4,
                aaaa: if opts.ipv6_everywhere { v6 } else { Vec::new() },
                ..LabelData::default()
            },
        );
    }
    let ns: Vec<String> = opts.ns.iter().map(|n| absolute_name(n, origin)).collect();
    // A vendor named like an in-zone name server would answer its address
    // queries with pool servers.
    let in_zone_ns: Vec<String> = ns
        .iter()
        .filter_map(|n| {
            let n = n.to_ascii_lowercase();
            let origin = format!(".{}.", origin.trim_end_matches('.').to_ascii_lowercase());
            n.strip_suffix(&origin).map(str::to_string)
        })
        .collect();
    if let Some(apex) = data.get_mut("") {
        apex.ns = ns;
    }
    add_aliases(&mut data, &opts.vendors, &in_zone_ns);
    ZoneData {
        serial: opts.serial,
        ttl: opts.ttl,
        max_hosts: opts.max_hosts,
        contact: None,
        data,
    }
}

/// Four lists for the labels `0`–`3`.
fn split<T: Clone>(servers: &[T], rng: &mut StdRng) -> [Vec<T>; 4] {
    if servers.len() < SPLIT_MIN_SERVERS {
        return std::array::from_fn(|_| servers.to_vec());
    }
    let mut shuffled = servers.to_vec();
    shuffled.shuffle(rng);
    // Dealt round-robin: every server is in exactly one quarter and the
    // quarters differ in size by at most one.
    let mut quarters: [Vec<T>; 4] = Default::default();
    for (i, s) in shuffled.into_iter().enumerate() {
        quarters[i % 4].push(s);
    }
    quarters
}

/// `"@"` → `""`, `"de"` → `"de"`.
fn base_label(zone: &str) -> String {
    if zone == "@" {
        String::new()
    } else {
        zone.to_string()
    }
}

/// `(2, "@")` → `"2"`, `(2, "de")` → `"2.de"`.
fn numbered_label(n: usize, zone: &str) -> String {
    if zone == "@" {
        n.to_string()
    } else {
        format!("{n}.{zone}")
    }
}

/// A server's zone name as a label: lower case, `@` (or empty) for the
/// apex, `gb` as `uk`; `None` for anything that is not one DNS label.
fn zone_name(z: &str) -> Option<String> {
    let z = z.trim().to_ascii_lowercase();
    if z.is_empty() || z == "@" {
        return Some("@".to_string());
    }
    if z == "gb" {
        return Some("uk".to_string());
    }
    let ok = z.len() <= 63
        && z.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !z.starts_with('-')
        // A numeric zone would collide with the numbered labels.
        && !z.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(z)
}

/// `ns1` → `ns1.<origin>.`; `ns1.example.net.` stays.
fn absolute_name(name: &str, origin: &str) -> String {
    let name = name.trim();
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.{}.", origin.trim_end_matches('.'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn server(ip: &str, netspeed: u32, zones: &[&str]) -> DnsServer {
        DnsServer {
            ip: ip.parse().unwrap(),
            netspeed,
            zones: zones.iter().map(|z| z.to_string()).collect(),
        }
    }

    fn ips(l: &LabelData) -> BTreeSet<String> {
        l.a.iter().map(|(ip, _)| ip.to_string()).collect()
    }

    #[test]
    fn small_zone_puts_every_server_in_every_label() {
        let servers = vec![
            server("192.0.2.1", 1000, &["de", "europe", "@"]),
            server("192.0.2.2", 500, &["de", "europe", "@"]),
            server("2001:db8::1", 250, &["de", "europe", "@"]),
            server("192.0.2.3", 0, &["de", "europe", "@"]),
        ];
        let z = build_zone("pool.example.org", &servers, &ZoneOptions::default(), 1);
        for label in [
            "", "0", "1", "2", "3", "de", "0.de", "3.de", "europe", "1.europe",
        ] {
            assert_eq!(
                ips(&z.data[label]),
                ["192.0.2.1", "192.0.2.2"].map(String::from).into(),
                "label {label:?}"
            );
        }
        // Weights are netspeeds.
        assert!(
            z.data["de"]
                .a
                .contains(&("192.0.2.1".parse().unwrap(), 1000))
        );
        // IPv6 only in the 2. labels.
        for label in ["2", "2.de", "2.europe"] {
            assert_eq!(
                z.data[label].aaaa,
                vec![("2001:db8::1".parse().unwrap(), 250)]
            );
        }
        for label in ["", "0", "1", "3", "de", "0.de", "europe"] {
            assert!(z.data[label].aaaa.is_empty(), "label {label:?}");
        }
        // Zones without servers exist, empty; other countries have none.
        assert_eq!(z.data["fr"], LabelData::default());
        assert_eq!(z.data["2.asia"], LabelData::default());
        assert!(z.data["fr"].a.is_empty());
        assert_eq!((z.ttl, z.max_hosts), (150, 4));
    }

    #[test]
    fn eight_or_more_are_split_into_disjoint_quarters() {
        for n in [8usize, 9, 10, 11, 37] {
            let servers: Vec<DnsServer> = (0..n)
                .map(|i| server(&format!("198.51.100.{}", i + 1), 100, &["@", "se"]))
                .collect();
            let z = build_zone("pool.example.org", &servers, &ZoneOptions::default(), 42);
            for prefix in ["", ".se"] {
                let quarters: Vec<BTreeSet<String>> = (0..4)
                    .map(|q| ips(&z.data[&format!("{q}{prefix}")]))
                    .collect();
                let all: BTreeSet<String> = quarters.iter().flatten().cloned().collect();
                assert_eq!(all.len(), n, "every server in one quarter");
                assert_eq!(
                    quarters.iter().map(|q| q.len()).sum::<usize>(),
                    n,
                    "disjoint"
                );
                for q in &quarters {
                    assert!(q.len() == n / 4 || q.len() == n / 4 + 1);
                }
            }
            assert_eq!(z.data[""].a.len(), n);
        }
        // Just below the threshold: no split.
        let servers: Vec<DnsServer> = (0..7)
            .map(|i| server(&format!("198.51.100.{}", i + 1), 100, &["@"]))
            .collect();
        let z = build_zone("pool.example.org", &servers, &ZoneOptions::default(), 42);
        assert_eq!(z.data["0"].a.len(), 7);
    }

    #[test]
    fn deterministic_for_seed_and_input_order() {
        let mut servers: Vec<DnsServer> = (0..20)
            .map(|i| {
                server(
                    &format!("198.51.100.{}", i + 1),
                    100 + i,
                    &["@", "us", "north-america"],
                )
            })
            .collect();
        let a = build_zone("p.example", &servers, &ZoneOptions::default(), 7);
        servers.reverse();
        let b = build_zone("p.example", &servers, &ZoneOptions::default(), 7);
        assert_eq!(a, b);
        let c = build_zone("p.example", &servers, &ZoneOptions::default(), 8);
        assert_ne!(a.data["0"], c.data["0"]);
    }

    #[test]
    fn zone_names_and_ns() {
        let servers = vec![
            server(
                "192.0.2.1",
                10,
                &["GB", " @ ", "bad zone", "7", "Europe", "de", "de"],
            ),
            server("192.0.2.1", 10, &["de"]), // duplicate address
        ];
        let opts = ZoneOptions {
            ns: vec!["ns1".into(), "ns.example.net.".into()],
            serial: 99,
            ..ZoneOptions::default()
        };
        let z = build_zone("pool.example.org.", &servers, &opts, 0);
        assert_eq!(z.data["uk"].a.len(), 1);
        assert_eq!(z.data["europe"].a.len(), 1);
        assert_eq!(z.data[""].a.len(), 1);
        assert_eq!(z.data["de"].a.len(), 1);
        assert!(!z.data.contains_key("gb"));
        assert!(!z.data.contains_key("7"));
        assert!(!z.data.contains_key("bad zone"));
        assert_eq!(
            z.data[""].ns,
            vec!["ns1.pool.example.org.", "ns.example.net."]
        );
        assert_eq!(z.serial, 99);
    }

    #[test]
    fn vendors_are_aliases_and_never_overwrite() {
        let servers = vec![server("192.0.2.1", 10, &["de", "europe", "@"])];
        let vendor = |name: &str, zone: &str| Vendor {
            name: name.into(),
            zone: zone.into(),
        };
        let opts = ZoneOptions {
            ns: vec!["ns1".into(), "ns2.example.net.".into()],
            vendors: vec![
                vendor("debian", "@"),
                vendor("acme", "de"),
                // Clashes with a pool label, a name server in the zone, a
                // bad name, a zone without labels: all left out.
                vendor("europe", "@"),
                vendor("ns1", "@"),
                vendor("Bad.Name", "@"),
                vendor("lost", "atlantis"),
                // The second of two with one name: its labels are taken.
                vendor("acme", "@"),
            ],
            ..ZoneOptions::default()
        };
        let z = build_zone("pool.example.org", &servers, &opts, 1);
        let alias = |l: &str| z.data.get(l).and_then(|d| d.alias.clone());
        assert_eq!(alias("debian").as_deref(), Some(""));
        assert_eq!(alias("0.debian").as_deref(), Some("0"));
        assert_eq!(alias("3.debian").as_deref(), Some("3"));
        assert_eq!(alias("acme").as_deref(), Some("de"));
        assert_eq!(alias("2.acme").as_deref(), Some("2.de"));
        // Aliases carry no records; the pool labels are untouched.
        assert_eq!(z.data["debian"].a, vec![]);
        assert_eq!(z.data["europe"].alias, None);
        assert_eq!(z.data["europe"].a.len(), 1);
        for gone in ["ns1", "0.ns1", "bad.name", "Bad.Name", "lost", "0.lost"] {
            assert!(!z.data.contains_key(gone), "{gone}");
        }
        // Vendor labels hold no addresses, so the counts are the pool's.
        assert_eq!(z.server_count(), 1);
        // Without vendors the zone is as before.
        let plain = build_zone(
            "pool.example.org",
            &servers,
            &ZoneOptions {
                vendors: vec![],
                ..opts.clone()
            },
            1,
        );
        let mut without = z.clone();
        without.data.retain(|_, l| l.alias.is_none());
        assert_eq!(plain, without);
    }
}
