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

/// An IPv6 form that carries an IPv4 address inside it. A packet to such an
/// address is routed as IPv6 (to a relay, a NAT64 gateway, a tunnel), yet
/// where it ends up is decided by the IPv4 inside: `2002:7f00:1::1` is
/// "6to4 for 127.0.0.1". So these are judged by the IPv4 they embed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// 6to4, `2002:V4HI:V4LO::/48` (RFC 3056).
    SixToFour,
    /// NAT64 well-known prefix, `64:ff9b::V4/96` (RFC 6052).
    Nat64,
    /// Teredo, `2001:0:SERVER:…:~CLIENT` (RFC 4380): the client's IPv4 is
    /// the last 32 bits inverted.
    TeredoClient,
    /// Teredo's server IPv4, bits 32–63.
    TeredoServer,
}

impl fmt::Display for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Embedding::SixToFour => "6to4",
            Embedding::Nat64 => "NAT64",
            Embedding::TeredoClient => "Teredo client",
            Embedding::TeredoServer => "Teredo server",
        })
    }
}

/// The IPv4 addresses an IPv6 address embeds, with the form of each
/// (Teredo has two). IPv4-mapped addresses are not here: the socket sends
/// those as plain IPv4, so [`classify`] judges them as IPv4 directly.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Vec<(Embedding, Ipv4Addr)> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[0] == 0x2002 {
        vec![(Embedding::SixToFour, v4(s[1], s[2]))]
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        vec![(Embedding::Nat64, v4(s[6], s[7]))]
    } else if s[0] == 0x2001 && s[1] == 0 {
        vec![
            (Embedding::TeredoClient, v4(!s[6], !s[7])),
            (Embedding::TeredoServer, v4(s[2], s[3])),
        ]
    } else {
        Vec::new()
    }
}

/// A target the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to query {ip}: {}{hint}", describe(*class, *via))]
pub struct Refused {
    pub ip: IpAddr,
    pub class: AddrClass,
    /// The embedded IPv4 that decided the class, when there is one.
    pub via: Option<(Embedding, Ipv4Addr)>,
    hint: &'static str,
}

fn describe(class: AddrClass, via: Option<(Embedding, Ipv4Addr)>) -> String {
    match via {
        None => format!("{class} address"),
        Some((form, v4)) => format!("{form} address embedding the {class} address {v4}"),
    }
}

/// Classify an address. IPv4-mapped IPv6 addresses are judged as IPv4; an
/// IPv6 form that embeds an IPv4 (see [`embedded_ipv4`]) takes the class
/// of the first embedded IPv4 that is not public.
pub fn classify(ip: IpAddr) -> AddrClass {
    judge(ip).0
}

/// The class, and the embedded IPv4 that decided it (if any).
fn judge(ip: IpAddr) -> (AddrClass, Option<(Embedding, Ipv4Addr)>) {
    match ip {
        IpAddr::V4(v4) => (classify_v4(v4), None),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (classify_v4(v4), None),
            None => {
                let worst = embedded_ipv4(v6)
                    .into_iter()
                    .map(|(form, v4)| (classify_v4(v4), Some((form, v4))))
                    .find(|(class, _)| *class != AddrClass::Public);
                worst.unwrap_or((classify_v6(v6), None))
            }
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
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64's well-known prefix embedding a public IPv4 (a non-public
        // one was judged by `judge`): how an IPv6-only monitor behind
        // DNS64 reaches an IPv4 server. The local-use 64:ff9b:1::/48 stays
        // reserved below: where the IPv4 sits in it is the operator's
        // choice, so it cannot be judged.
        AddrClass::Public
    } else if (s[0] & 0xe000) != 0x2000 {
        // Outside 2000::/3 nothing is globally routed unicast today; this
        // includes the deprecated IPv4-compatible ::a.b.c.d (RFC 4291),
        // refused in every mode (:: and ::1 were judged above).
        AddrClass::Reserved
    } else {
        AddrClass::Public
    }
}

impl TargetPolicy {
    /// `Ok` when a packet may be sent to `ip`.
    ///
    /// An IPv6 form embedding an IPv4 is allowed as that IPv4 would be,
    /// except in lab mode, which refuses every such form: the packet is
    /// routed as IPv6 by its outer address (a default route, a relay), not
    /// to the loopback or private IPv4 inside, so it could leave the lab.
    pub fn check(self, ip: IpAddr) -> Result<(), Refused> {
        let (class, via) = judge(ip);
        let embeds = match ip {
            IpAddr::V6(v6) => !embedded_ipv4(v6).is_empty(),
            IpAddr::V4(_) => false,
        };
        let allowed = match self {
            TargetPolicy::Public => class == AddrClass::Public,
            TargetPolicy::AllowPrivate => matches!(
                class,
                AddrClass::Public | AddrClass::Loopback | AddrClass::Private | AddrClass::LinkLocal
            ),
            TargetPolicy::Lab => {
                !embeds
                    && matches!(
                        class,
                        AddrClass::Loopback | AddrClass::Private | AddrClass::LinkLocal
                    )
            }
        };
        if allowed {
            return Ok(());
        }
        let hint = match (self, class) {
            (TargetPolicy::Lab, _) if embeds => {
                " (lab mode refuses IPv6 addresses that embed an IPv4: they are routed off this machine)"
            }
            (TargetPolicy::Lab, _) => " (lab mode only allows loopback and private addresses)",
            (_, AddrClass::Loopback | AddrClass::Private | AddrClass::LinkLocal) if embeds => {
                " (pass --allow-private to allow it)"
            }
            (_, AddrClass::Loopback | AddrClass::Private | AddrClass::LinkLocal) => {
                " (pass --allow-private or --lab to allow it)"
            }
            _ => "",
        };
        Err(Refused {
            ip,
            class,
            via,
            hint,
        })
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

    /// Every IPv6 form that embeds an IPv4, under every policy: P = public
    /// (default), A = --allow-private, L = --lab; true = a packet may go.
    #[test]
    fn embedded_ipv4_forms() {
        use AddrClass::*;
        #[rustfmt::skip]
        let table: &[(&str, AddrClass, bool, bool, bool)] = &[
            // 6to4 (2002::/16): the IPv4 is bits 16-47.
            ("2002:7f00:1::1", Loopback, false, true, false),     // 127.0.0.1
            ("2002:a00:1::1", Private, false, true, false),       // 10.0.0.1
            ("2002:a9fe:a9fe::1", LinkLocal, false, true, false), // 169.254.169.254
            ("2002:c0a8:101::1", Private, false, true, false),    // 192.168.1.1
            ("2002:6440:1::1", Private, false, true, false),      // 100.64.0.1 (CGN)
            ("2002::1", Unspecified, false, false, false),        // 0.0.0.0
            ("2002:0:1::1", Reserved, false, false, false),       // 0.0.0.1, "this network"
            ("2002:e000:1::1", Multicast, false, false, false),   // 224.0.0.1
            ("2002:c000:201::1", Documentation, false, false, false), // 192.0.2.1
            ("2002:ffff:ffff::1", Reserved, false, false, false), // 255.255.255.255
            ("2002:808:808::1", Public, true, true, false),       // 8.8.8.8: stays allowed
            ("2002:5db8:d822::1", Public, true, true, false),     // 93.184.216.34
            // NAT64 well-known prefix 64:ff9b::/96: the IPv4 is the last 32 bits.
            ("64:ff9b::7f00:1", Loopback, false, true, false),
            ("64:ff9b::10.1.2.3", Private, false, true, false),
            ("64:ff9b::169.254.0.1", LinkLocal, false, true, false),
            ("64:ff9b::8.8.8.8", Public, true, true, false),
            // Local-use NAT64 64:ff9b:1::/48: where the IPv4 sits is the
            // operator's choice, so it is reserved in every mode.
            ("64:ff9b:1::808:808", Reserved, false, false, false),
            ("64:ff9b:1:7f00:1::", Reserved, false, false, false),
            // IPv4-compatible ::a.b.c.d: deprecated, reserved in every mode;
            // :: and ::1 keep their own classes.
            ("::127.0.0.2", Reserved, false, false, false),
            ("::10.0.0.1", Reserved, false, false, false),
            ("::8.8.8.8", Reserved, false, false, false),
            ("::", Unspecified, false, false, false),
            ("::1", Loopback, false, true, true),
            // IPv4-mapped: sent as plain IPv4, judged as the IPv4 itself.
            ("::ffff:127.0.0.1", Loopback, false, true, true),
            ("::ffff:10.0.0.1", Private, false, true, true),
            ("::ffff:169.254.1.1", LinkLocal, false, true, true),
            ("::ffff:8.8.8.8", Public, true, true, false),
            // Teredo 2001:0::/32: server IPv4 in bits 32-63, client IPv4 is
            // the last 32 bits inverted.
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Loopback, false, true, false), // client 127.0.0.1
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", Private, false, true, false),  // client 10.0.0.1
            ("2001:0:4136:e378:8000:63bf:5601:fefe", LinkLocal, false, true, false), // client 169.254.1.1
            ("2001:0:a00:1:8000:63bf:f7f7:f7f7", Private, false, true, false),      // server 10.0.0.1
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", Public, true, true, false),    // 65.54.227.120 / 8.8.8.8
            // Plain addresses around these ranges are unaffected.
            ("2001:1::1", Public, true, true, false),
            ("2003::1", Public, true, true, false),
            ("2a01:4f8::1", Public, true, true, false),
            ("fd00::1", Private, false, true, true),
        ];
        for &(text, class, public, allow_private, lab) in table {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(classify(ip), class, "{text}: class");
            for (policy, want) in [
                (TargetPolicy::Public, public),
                (TargetPolicy::AllowPrivate, allow_private),
                (TargetPolicy::Lab, lab),
            ] {
                assert_eq!(policy.check(ip).is_ok(), want, "{text} under {policy:?}");
            }
        }
    }

    #[test]
    fn embedded_refusals_say_what_is_inside() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let e = TargetPolicy::Public
            .check(ip("2002:7f00:1::1"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "refusing to query 2002:7f00:1::1: 6to4 address embedding the loopback address 127.0.0.1 (pass --allow-private to allow it)"
        );
        let e = TargetPolicy::Lab.check(ip("2002:a00:1::1")).unwrap_err();
        assert!(
            e.to_string()
                .contains("lab mode refuses IPv6 addresses that embed an IPv4"),
            "{e}"
        );
        let e = TargetPolicy::Public
            .check(ip("2001:0:4136:e378:8000:63bf:f5ff:fffe"))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("Teredo client address embedding the private address 10.0.0.1"),
            "{e}"
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
