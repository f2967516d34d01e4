//! Which addresses a monitor may send packets to. Public pool monitors must
//! never probe loopback, private, link-local, multicast, unspecified or
//! documentation addresses; labs may opt in. Pure.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which targets are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetPolicy {
    /// Only globally reachable unicast addresses (the default).
    #[default]
    Public,
    /// Public addresses plus loopback, private and link-local (`--allow-private`).
    AllowPrivate,
    /// Only loopback, private and link-local addresses (`--lab`): nothing
    /// ever leaves the machine or the lab network.
    Lab,
}

/// The class of an address, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    Public,
    Loopback,
    Private,
    LinkLocal,
    Multicast,
    Unspecified,
    Documentation,
    /// Broadcast, "this network", reserved 240/4, benchmarking and similar.
    Reserved,
}

impl fmt::Display for AddrClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrClass::Public => "public",
            AddrClass::Loopback => "loopback",
            AddrClass::Private => "private",
            AddrClass::LinkLocal => "link-local",
            AddrClass::Multicast => "multicast",
            AddrClass::Unspecified => "unspecified",
            AddrClass::Documentation => "documentation",
            AddrClass::Reserved => "reserved",
        })
    }
}

/// A target the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to query {ip}: {class} address{hint}")]
pub struct Refused {
    pub ip: IpAddr,
    pub class: AddrClass,
    hint: &'static str,
}

/// Classify an address (IPv4-mapped IPv6 addresses are judged as IPv4).
pub fn classify(ip: IpAddr) -> AddrClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddrClass {
    let o = ip.octets();
    if ip.is_unspecified() {
        AddrClass::Unspecified
    } else if ip.is_loopback() {
        AddrClass::Loopback
    } else if ip.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
        // RFC 1918 and the RFC 6598 shared (carrier-grade NAT) space.
        AddrClass::Private
    } else if ip.is_link_local() {
        AddrClass::LinkLocal
    } else if ip.is_multicast() {
        AddrClass::Multicast
    } else if ip.is_documentation() {
        AddrClass::Documentation
    } else if ip.is_broadcast()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
    {
        AddrClass::Reserved
    } else {
        AddrClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddrClass {
    let s = ip.segments();
    if ip.is_unspecified() {
        AddrClass::Unspecified
    } else if ip.is_loopback() {
        AddrClass::Loopback
    } else if (s[0] & 0xfe00) == 0xfc00 {
        AddrClass::Private
    } else if (s[0] & 0xffc0) == 0xfe80 {
        AddrClass::LinkLocal
    } else if ip.is_multicast() {
        AddrClass::Multicast
    } else if s[0] == 0x2001 && s[1] == 0x0db8 || (s[0] & 0xfff0) == 0x3ff0 {
        AddrClass::Documentation
    } else if (s[0] & 0xe000) != 0x2000 {
        // Outside 2000::/3 nothing is globally routed unicast today.
        AddrClass::Reserved
    } else {
        AddrClass::Public
    }
}

impl TargetPolicy {
    /// `Ok` when a packet may be sent to `ip`.
    pub fn check(self, ip: IpAddr) -> Result<(), Refused> {
        let class = classify(ip);
        let allowed = match self {
            TargetPolicy::Public => class == AddrClass::Public,
            TargetPolicy::AllowPrivate => matches!(
                class,
                AddrClass::Public | AddrClass::Loopback | AddrClass::Private | AddrClass::LinkLocal
            ),
            TargetPolicy::Lab => {
                matches!(
                    class,
                    AddrClass::Loopback | AddrClass::Private | AddrClass::LinkLocal
                )
            }
        };
        if allowed {
            return Ok(());
        }
        let hint = match (self, class) {
            (TargetPolicy::Lab, _) => " (lab mode only allows loopback and private addresses)",
            (_, AddrClass::Loopback | AddrClass::Private | AddrClass::LinkLocal) => {
                " (pass --allow-private or --lab to allow it)"
            }
            _ => "",
        };
        Err(Refused { ip, class, hint })
    }
}

/// Split `HOST[:PORT]` into host and port. Accepts `1.2.3.4`, `1.2.3.4:123`,
/// `::1`, `[::1]`, `[::1]:123`, `name`, `name:123`.
pub fn parse_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let s = s.trim();
    let bad = |why: &str| format!("cannot parse server '{s}': {why}");
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let port_of = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("bad port"))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address inside []"))?;
        let port = match after {
            "" => default_port,
            p => port_of(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("expected ':' after ']'"))?,
            )?,
        };
        return Ok((host.to_string(), port));
    }
    if s.matches(':').count() > 1 {
        s.parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address (use [addr]:port)"))?;
        return Ok((s.to_string(), default_port));
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h, port_of(p)?),
        None => (s, default_port),
    };
    if host.parse::<IpAddr>().is_err() && !is_hostname(host) {
        return Err(bad("not an IP address or host name"));
    }
    Ok((host.to_string(), port))
}

fn is_hostname(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
        && !h.bytes().all(|c| c.is_ascii_digit() || c == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let table = [
            ("8.8.8.8", AddrClass::Public),
            ("1.1.1.1", AddrClass::Public),
            ("127.0.0.1", AddrClass::Loopback),
            ("127.45.3.2", AddrClass::Loopback),
            ("10.1.2.3", AddrClass::Private),
            ("172.16.0.1", AddrClass::Private),
            ("172.31.255.255", AddrClass::Private),
            ("172.32.0.1", AddrClass::Public),
            ("192.168.1.1", AddrClass::Private),
            ("100.64.0.1", AddrClass::Private),
            ("169.254.1.1", AddrClass::LinkLocal),
            ("224.0.0.1", AddrClass::Multicast),
            ("0.0.0.0", AddrClass::Unspecified),
            ("192.0.2.1", AddrClass::Documentation),
            ("198.51.100.7", AddrClass::Documentation),
            ("203.0.113.9", AddrClass::Documentation),
            ("255.255.255.255", AddrClass::Reserved),
            ("240.0.0.1", AddrClass::Reserved),
            ("198.18.0.1", AddrClass::Reserved),
            ("::1", AddrClass::Loopback),
            ("::", AddrClass::Unspecified),
            ("fd00::1", AddrClass::Private),
            ("fe80::1", AddrClass::LinkLocal),
            ("ff02::1", AddrClass::Multicast),
            ("2001:db8::1", AddrClass::Documentation),
            ("2a01:4f8::1", AddrClass::Public),
            ("::ffff:10.0.0.1", AddrClass::Private),
            ("::ffff:8.8.8.8", AddrClass::Public),
        ];
        for (ip, class) in table {
            assert_eq!(classify(ip.parse().unwrap()), class, "{ip}");
        }
    }

    #[test]
    fn policies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(TargetPolicy::Public.check(ip("8.8.8.8")).is_ok());
        assert!(TargetPolicy::Public.check(ip("127.0.0.1")).is_err());
        assert!(TargetPolicy::Public.check(ip("2001:db8::1")).is_err());
        assert!(TargetPolicy::AllowPrivate.check(ip("127.0.0.1")).is_ok());
        assert!(TargetPolicy::AllowPrivate.check(ip("8.8.8.8")).is_ok());
        assert!(TargetPolicy::AllowPrivate.check(ip("224.0.0.1")).is_err());
        assert!(TargetPolicy::Lab.check(ip("127.0.0.1")).is_ok());
        assert!(TargetPolicy::Lab.check(ip("::1")).is_ok());
        assert!(TargetPolicy::Lab.check(ip("10.0.0.1")).is_ok());
        assert!(TargetPolicy::Lab.check(ip("8.8.8.8")).is_err());
        assert!(TargetPolicy::Lab.check(ip("192.0.2.1")).is_err());
        let e = TargetPolicy::Public.check(ip("127.0.0.1")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refusing to query 127.0.0.1: loopback address (pass --allow-private or --lab to allow it)"
        );
    }

    #[test]
    fn targets_parse() {
        let ok = [
            ("1.2.3.4", ("1.2.3.4", 123)),
            ("1.2.3.4:1123", ("1.2.3.4", 1123)),
            ("::1", ("::1", 123)),
            ("[::1]", ("::1", 123)),
            ("[2001:db8::1]:4123", ("2001:db8::1", 4123)),
            ("time.example.org", ("time.example.org", 123)),
            ("time.example.org.:124", ("time.example.org.", 124)),
            ("localhost", ("localhost", 123)),
        ];
        for (s, (h, p)) in ok {
            assert_eq!(parse_host_port(s, 123).unwrap(), (h.to_string(), p), "{s}");
        }
        for bad in [
            "",
            "[::1",
            "[::1]x",
            "[nothost]:1",
            "1.2.3.4:0",
            "1.2.3.4:99999",
            "host:port",
            "a..b",
            "-bad.example",
            "1.2.3.4.5",
            "under_score.org",
            "1:2:3",
            "999.1.1.1",
        ] {
            assert!(parse_host_port(bad, 123).is_err(), "{bad} should not parse");
        }
    }
}
