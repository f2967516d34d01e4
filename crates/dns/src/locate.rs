//! Where a client is: the EDNS Client Subnet address when it is global
//! unicast, else the resolver's address; GeoIP turns it into the targets
//! to try, e.g. `["de", "europe", "@"]`.

use geo::GeoIp;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An EDNS Client Subnet option as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: IpAddr,
    pub source_prefix: u8,
}

/// How a client was located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The address the query came from (the resolver).
    pub peer: IpAddr,
    /// The address that was looked up.
    pub used: IpAddr,
    /// Whether `used` came from the ECS option.
    pub via_ecs: bool,
    /// The ECS scope prefix to answer with (0 when the option was not used).
    pub scope: u8,
    /// Zones to try, most specific first; always ends with `"@"`.
    pub targets: Vec<String>,
}

/// Locates a client from the peer address and an optional ECS option.
///
/// An ECS address is used when its prefix is non-zero and the address is
/// global unicast; when GeoIP knows nothing of it, the peer address is
/// tried (as GeoDNS does since 3.3.1). The scope echoed is the source
/// prefix whenever the ECS address was consulted.
pub fn locate(geo: Option<&GeoIp>, peer: IpAddr, ecs: Option<Subnet>) -> Located {
    let peer = canonical(peer);
    let ecs = ecs
        .filter(|s| s.source_prefix > 0)
        .map(|s| (masked(canonical(s.addr), s.source_prefix), s.source_prefix))
        .filter(|(ip, _)| is_global_unicast(*ip));
    let lookup = |ip: IpAddr| geo.and_then(|g| g.lookup(ip));
    let (used, via_ecs, location) = match ecs {
        Some((ip, _)) => match lookup(ip) {
            Some(loc) => (ip, true, Some(loc)),
            None => (peer, false, lookup(peer)),
        },
        None => (peer, false, lookup(peer)),
    };
    let targets = match location {
        Some(loc) => loc.zones(),
        None => vec!["@".to_string()],
    };
    Located {
        peer,
        used,
        via_ecs,
        scope: ecs.map_or(0, |(_, prefix)| prefix),
        targets,
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address with the bits past `prefix` cleared.
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let p = u32::from(prefix.min(32));
            let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let p = u32::from(prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - p).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// Global unicast: not private, loopback, link-local, shared, multicast,
/// documentation, benchmarking, reserved or unspecified.
pub fn is_global_unicast(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // Global unicast is 2000::/3, less documentation (2001:db8::/32),
            // benchmarking (2001:2::/48) and ORCHID/Teredo-style specials in
            // 2001::/23 that are not routed.
            (s[0] & 0xe000) == 0x2000
                && !(s[0] == 0x2001 && s[1] == 0x0db8)
                && !(s[0] == 0x2001 && s[1] < 0x0200)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo() -> GeoIp {
        GeoIp::open(std::path::Path::new(geo::fixtures::COUNTRY_MMDB)).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ecs(s: &str, source_prefix: u8) -> Option<Subnet> {
        Some(Subnet {
            addr: ip(s),
            source_prefix,
        })
    }

    #[test]
    fn location_table() {
        let g = geo();
        // (peer, ecs, used, via_ecs, scope, targets)
        type Case = (
            &'static str,
            Option<Subnet>,
            &'static str,
            bool,
            u8,
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            (
                "81.2.69.142",
                None,
                "81.2.69.142",
                false,
                0,
                &["uk", "europe", "@"],
            ),
            ("127.0.0.1", None, "127.0.0.1", false, 0, &["@"]),
            (
                "127.0.0.1",
                ecs("89.160.20.112", 28),
                "89.160.20.112",
                true,
                28,
                &["se", "europe", "@"],
            ),
            // Bits past the prefix are ignored.
            (
                "127.0.0.1",
                ecs("89.160.20.127", 28),
                "89.160.20.112",
                true,
                28,
                &["se", "europe", "@"],
            ),
            (
                "127.0.0.1",
                ecs("2001:218::1", 48),
                "2001:218::",
                true,
                48,
                &["jp", "asia", "@"],
            ),
            (
                "::ffff:127.0.0.1",
                ecs("::ffff:216.160.83.56", 32),
                "216.160.83.56",
                true,
                32,
                &["us", "north-america", "@"],
            ),
            // Not global unicast: the peer is used.
            (
                "81.2.69.142",
                ecs("10.1.2.0", 24),
                "81.2.69.142",
                false,
                0,
                &["uk", "europe", "@"],
            ),
            (
                "81.2.69.142",
                ecs("192.0.2.0", 24),
                "81.2.69.142",
                false,
                0,
                &["uk", "europe", "@"],
            ),
            (
                "81.2.69.142",
                ecs("2001:db8::", 48),
                "81.2.69.142",
                false,
                0,
                &["uk", "europe", "@"],
            ),
            // Prefix 0: the client asked not to be located by subnet.
            (
                "81.2.69.142",
                ecs("89.160.20.112", 0),
                "81.2.69.142",
                false,
                0,
                &["uk", "europe", "@"],
            ),
            // Global but unknown to GeoIP: fall back to the peer, keep the scope.
            (
                "81.2.69.142",
                ecs("8.8.8.0", 24),
                "81.2.69.142",
                false,
                24,
                &["uk", "europe", "@"],
            ),
            (
                "127.0.0.1",
                ecs("8.8.8.0", 24),
                "127.0.0.1",
                false,
                24,
                &["@"],
            ),
        ];
        for (peer, e, used, via, scope, targets) in cases {
            let got = locate(Some(&g), ip(peer), *e);
            assert_eq!(got.used, ip(used), "{peer} {e:?}");
            assert_eq!(got.via_ecs, *via, "{peer} {e:?}");
            assert_eq!(got.scope, *scope, "{peer} {e:?}");
            assert_eq!(got.targets, *targets, "{peer} {e:?}");
        }
        // Without a database everyone is "@".
        let got = locate(None, ip("81.2.69.142"), ecs("89.160.20.112", 24));
        assert_eq!(got.targets, ["@"]);
    }

    #[test]
    fn global_unicast() {
        for g in ["81.2.69.142", "8.8.8.8", "2001:218::1", "2a02:e700::1"] {
            assert!(is_global_unicast(ip(g)), "{g}");
        }
        for n in [
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_global_unicast(ip(n)), "{n}");
        }
        assert_eq!(masked(ip("255.255.255.255"), 0), ip("0.0.0.0"));
        assert_eq!(masked(ip("1.2.3.4"), 40), ip("1.2.3.4"));
        assert_eq!(masked(ip("ffff::1"), 200), ip("ffff::1"));
    }
}
