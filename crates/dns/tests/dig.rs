//! The server as `dig` sees it: every behaviour of the pool's GeoDNS that a
//! client or resolver can observe, over real UDP and TCP on loopback.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::net::IpAddr;

fn ips(out: &str) -> Vec<IpAddr> {
    answers(out).iter().map(|a| a.parse().unwrap()).collect()
}

#[test]
fn apex_gives_one_to_four_in_dns_servers_and_never_a_low_score() {
    let srv = TestServer::start(&test_zone(), None);
    let allowed: BTreeSet<IpAddr> = servers_in("@").into_iter().collect();
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let out = dig(srv.addr, &[ORIGIN]);
        assert_eq!(status(&out), "NOERROR", "{out}");
        assert!(flags(&out).contains(&"aa".to_string()), "{out}");
        let got = ips(&out);
        assert!((1..=4).contains(&got.len()), "{out}");
        assert_eq!(
            got.iter().collect::<BTreeSet<_>>().len(),
            got.len(),
            "duplicates: {out}"
        );
        for ip in &got {
            assert!(allowed.contains(ip), "{ip} is not in DNS: {out}");
        }
        assert!(
            section(&out, "ANSWER")
                .iter()
                .all(|l| l.contains("\t150\t")),
            "{out}"
        );
        seen.extend(got);
    }
    for excluded in ["198.51.100.99", "203.0.113.99", "198.51.100.98"] {
        assert!(!seen.contains(&excluded.parse::<IpAddr>().unwrap()));
    }
    // 40 answers of 4 from 15 IPv4 servers reach most of them.
    assert!(seen.len() >= 10, "{seen:?}");
}

#[test]
fn ecs_picks_country_then_continent_then_apex() {
    let srv = TestServer::start(&test_zone(), None);
    let set = |z: &str| {
        servers_in(z)
            .into_iter()
            .filter(IpAddr::is_ipv4)
            .collect::<BTreeSet<_>>()
    };
    // (ECS, expected zone): the test database's documented networks.
    let cases = [
        ("81.2.69.142/32", "uk"),       // GB → uk has servers
        ("216.160.83.56/29", "us"),     // US
        ("89.160.20.112/28", "europe"), // SE has none → Europe
        ("2a02:e700::/32", "@"),        // LY: Africa has none → apex
        ("67.43.156.0/24", "@"),        // BT: Asia has IPv6 only → apex for A
        ("10.1.2.0/24", "@"),           // private: the resolver (127.0.0.1) → apex
        ("192.0.2.0/24", "@"),          // documentation: not global unicast
    ];
    for (subnet, zone) in cases {
        let want = set(zone);
        for _ in 0..8 {
            let out = dig(srv.addr, &[ORIGIN, &format!("+subnet={subnet}")]);
            let got = ips(&out);
            assert!(!got.is_empty(), "{subnet}: {out}");
            for ip in got {
                assert!(want.contains(&ip), "{subnet} → {ip}, want {zone}: {out}");
            }
        }
    }
    // The ECS option is echoed with a scope.
    let out = dig(srv.addr, &[ORIGIN, "+subnet=81.2.69.142/32"]);
    assert!(out.contains("CLIENT-SUBNET: 81.2.69.142/32/32"), "{out}");
    let out = dig(srv.addr, &[ORIGIN, "+subnet=10.1.2.0/24"]);
    assert!(out.contains("CLIENT-SUBNET: 10.1.2.0/24/0"), "{out}");
    // No ECS: located by the resolver address (loopback: no country).
    for _ in 0..5 {
        for ip in ips(&dig(srv.addr, &[ORIGIN])) {
            assert!(set("@").contains(&ip));
        }
    }
}

#[test]
fn ipv6_only_in_the_2_names() {
    let srv = TestServer::start(&test_zone(), None);
    let uk = "+subnet=81.2.69.142/32";
    let out = dig(srv.addr, &[&format!("2.{ORIGIN}"), "AAAA", uk]);
    assert_eq!(
        ips(&out),
        vec!["2001:db8:1::1".parse::<IpAddr>().unwrap()],
        "{out}"
    );
    // Japan has only IPv6: A falls back, AAAA does not.
    let jp = "+subnet=2001:218::/32";
    let out = dig(srv.addr, &[&format!("2.{ORIGIN}"), "AAAA", jp]);
    assert_eq!(
        ips(&out),
        vec!["2001:db8:3::1".parse::<IpAddr>().unwrap()],
        "{out}"
    );
    // Germany has no IPv6: Europe's.
    let de = "+subnet=2a02:d180::/32";
    let out = dig(srv.addr, &[&format!("2.{ORIGIN}"), "AAAA", de]);
    assert_eq!(
        ips(&out),
        vec!["2001:db8:1::1".parse::<IpAddr>().unwrap()],
        "{out}"
    );
    // The apex and 0, 1, 3 have no AAAA: NODATA with the SOA.
    for name in [
        ORIGIN.to_string(),
        format!("0.{ORIGIN}"),
        format!("3.uk.{ORIGIN}"),
    ] {
        let out = dig(srv.addr, &[&name, "AAAA", uk]);
        assert_eq!(status(&out), "NOERROR", "{out}");
        assert!(answers(&out).is_empty(), "{out}");
        assert!(
            section(&out, "AUTHORITY").iter().any(|l| l.contains("SOA")),
            "{out}"
        );
    }
    // Explicit AAAA in 2.<cc>.
    let out = dig(srv.addr, &[&format!("2.us.{ORIGIN}"), "AAAA"]);
    assert_eq!(
        ips(&out),
        vec!["2001:db8:2::1".parse::<IpAddr>().unwrap()],
        "{out}"
    );
}

#[test]
fn ipv6_everywhere_puts_aaaa_in_every_name() {
    let opts = dns::ZoneOptions {
        ns: vec!["ns1".into(), "ns2".into()],
        serial: 42,
        ipv6_everywhere: true,
        ..dns::ZoneOptions::default()
    };
    let zone = dns::build_zone(ORIGIN, &in_dns(), &opts, 7);
    let srv = TestServer::start(&zone, None);
    let uk = "+subnet=81.2.69.142/32";
    let v6 = |z: &str| -> BTreeSet<IpAddr> {
        servers_in(z).into_iter().filter(IpAddr::is_ipv6).collect()
    };
    // The names without AAAA in the pool's default now have it: the
    // apex, a continent, a country and their numbered names.
    for (name, zone_of) in [
        (ORIGIN.to_string(), "uk"),
        (format!("0.{ORIGIN}"), "uk"),
        (format!("3.uk.{ORIGIN}"), "uk"),
        (format!("europe.{ORIGIN}"), "europe"),
        (format!("us.{ORIGIN}"), "us"),
    ] {
        let out = dig(srv.addr, &[&name, "AAAA", uk]);
        let got = ips(&out);
        assert!(!got.is_empty(), "{name}: {out}");
        let want = v6(zone_of);
        assert!(got.iter().all(|ip| want.contains(ip)), "{name}: {out}");
    }
    // And A answers are as before.
    let out = dig(srv.addr, &[ORIGIN, "A", uk]);
    assert!(
        ips(&out).iter().all(IpAddr::is_ipv4) && !ips(&out).is_empty(),
        "{out}"
    );
}

#[test]
fn numbered_names_are_disjoint_quarters() {
    let srv = TestServer::start(&test_zone(), None);
    for (zone, ecs) in [
        ("", None),
        ("uk.", None),
        ("", Some("+subnet=81.2.69.142/32")),
    ] {
        let mut quarters: Vec<BTreeSet<IpAddr>> = Vec::new();
        for n in 0..4 {
            let name = format!("{n}.{zone}{ORIGIN}");
            let mut seen = BTreeSet::new();
            for _ in 0..12 {
                let mut args = vec![name.as_str()];
                args.extend(ecs);
                let got = ips(&dig(srv.addr, &args));
                assert!((1..=4).contains(&got.len()), "{name}");
                seen.extend(got);
            }
            quarters.push(seen);
        }
        for a in 0..4 {
            for b in a + 1..4 {
                assert!(
                    quarters[a].is_disjoint(&quarters[b]),
                    "{zone:?} {ecs:?}: {a} {:?} and {b} {:?} overlap",
                    quarters[a],
                    quarters[b]
                );
            }
        }
    }
    // With fewer than 8 servers every number has all of them: the US has 3.
    for n in 0..4 {
        let got: BTreeSet<IpAddr> = ips(&dig(srv.addr, &[&format!("{n}.us.{ORIGIN}")]))
            .into_iter()
            .collect();
        assert_eq!(got.len(), 3);
    }
}

#[test]
fn nxdomain_refused_soa_ns() {
    let srv = TestServer::start(&test_zone(), None);
    let out = dig(srv.addr, &[&format!("nosuch.{ORIGIN}")]);
    assert_eq!(status(&out), "NXDOMAIN", "{out}");
    assert!(flags(&out).contains(&"aa".to_string()));
    let auth = section(&out, "AUTHORITY").join("\n");
    assert!(
        auth.contains("SOA\tns1.pool.example.org. hostmaster.pool.example.org. 42 "),
        "{out}"
    );
    for name in [
        format!("4.{ORIGIN}"),
        format!("0.xx.{ORIGIN}"),
        format!("www.de.{ORIGIN}"),
    ] {
        assert_eq!(status(&dig(srv.addr, &[&name])), "NXDOMAIN", "{name}");
    }
    // Countries without servers exist: NODATA.
    let out = dig(srv.addr, &[&format!("fr.{ORIGIN}")]);
    assert_eq!(status(&out), "NOERROR");
    assert!(answers(&out).is_empty());
    // Outside the zone.
    for name in ["example.com", "example.org", "org", "."] {
        let out = dig(srv.addr, &[name]);
        assert_eq!(status(&out), "REFUSED", "{name}: {out}");
        assert!(!flags(&out).contains(&"aa".to_string()));
    }
    assert_eq!(
        status(&dig(srv.addr, &["version.bind", "CH", "TXT"])),
        "REFUSED"
    );
    // SOA and NS at the apex.
    let out = dig(srv.addr, &[ORIGIN, "SOA"]);
    assert_eq!(answers(&out).len(), 1);
    assert!(
        section(&out, "ANSWER")[0].contains("SOA\tns1.pool.example.org."),
        "{out}"
    );
    let mut ns = answers(&dig(srv.addr, &[ORIGIN, "NS"]));
    ns.sort();
    assert_eq!(ns, ["ns1.pool.example.org.", "ns2.pool.example.org."]);
    // Other types at existing names: NODATA.
    let out = dig(srv.addr, &[ORIGIN, "MX"]);
    assert_eq!(status(&out), "NOERROR");
    assert!(answers(&out).is_empty());
    // `gb` is the pool's `uk`, the owner name stays as asked.
    for (gb, uk) in [("gb", "uk"), ("1.GB", "1.uk")] {
        let out = dig(srv.addr, &[&format!("{gb}.{ORIGIN}")]);
        assert_eq!(status(&out), "NOERROR", "{out}");
        assert!(
            section(&out, "ANSWER")[0].starts_with(&format!("{gb}.{ORIGIN}.")),
            "{out}"
        );
        let got: BTreeSet<IpAddr> = ips(&out).into_iter().collect();
        let want: BTreeSet<IpAddr> = ips(&dig(srv.addr, &[&format!("{uk}.{ORIGIN}")]))
            .into_iter()
            .collect();
        let uk_servers = servers_in("uk");
        assert!(
            !got.is_empty() && got.iter().all(|ip| uk_servers.contains(ip)),
            "{out}"
        );
        assert_eq!(got.len(), want.len(), "{out}");
    }
    // Case does not matter; the question's case is kept.
    let out = dig(srv.addr, &["UK.Pool.Example.ORG"]);
    assert_eq!(status(&out), "NOERROR");
    assert!(
        section(&out, "ANSWER")[0].starts_with("UK.Pool.Example.ORG."),
        "{out}"
    );
}

#[test]
fn tcp_and_edns_versions() {
    let srv = TestServer::start(&test_zone(), None);
    let out = dig(srv.addr, &["+tcp", ORIGIN, "+subnet=81.2.69.142/32"]);
    assert!(out.contains("(TCP)"), "{out}");
    let uk: BTreeSet<IpAddr> = servers_in("uk").into_iter().collect();
    let got = ips(&out);
    assert!((1..=4).contains(&got.len()));
    assert!(got.iter().all(|ip| uk.contains(ip)), "{out}");
    // Without EDNS: a plain answer without OPT.
    let out = dig(srv.addr, &["+noedns", ORIGIN]);
    assert_eq!(status(&out), "NOERROR");
    assert!(!out.contains("OPT PSEUDOSECTION"));
    // EDNS version 1: BADVERS (with an OPT of version 0).
    let out = dig(srv.addr, &["+edns=1", "+noednsnegotiation", ORIGIN]);
    assert_eq!(status(&out), "BADVERS", "{out}");
    assert!(out.contains("EDNS: version: 0"), "{out}");
}

#[test]
fn country_txt_shows_how_the_client_was_located() {
    let srv = TestServer::start(&test_zone(), None);
    let name = format!("_country.{ORIGIN}");
    let out = dig(srv.addr, &[&name, "TXT", "+subnet=89.160.20.112/28"]);
    let txt = section(&out, "ANSWER").join("\n");
    assert!(txt.contains("\"peer 127.0.0.1\""), "{out}");
    assert!(txt.contains("\"ip 89.160.20.112/28 (ecs)\""), "{out}");
    assert!(
        txt.contains(r#""targets [\"se\",\"europe\",\"@\"]""#),
        "{out}"
    );
    assert!(txt.contains("\"serial 42\""), "{out}");
    let out = dig(srv.addr, &[&format!("_country.anything.{ORIGIN}"), "TXT"]);
    let txt = section(&out, "ANSWER").join("\n");
    assert!(txt.contains("\"ip 127.0.0.1 (peer)\""), "{out}");
    assert!(txt.contains(r#""targets [\"@\"]""#), "{out}");
}

#[test]
fn status_txt_says_what_this_server_serves_and_since_when() {
    let zone = test_zone();
    let srv = TestServer::start(&zone, None);
    let (v4, v6) = zone.server_counts();
    assert!(v4 > 0 && v6 > 0);
    let out = dig(srv.addr, &[&format!("_status.{ORIGIN}"), "TXT"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
    let txt = section(&out, "ANSWER").join("\n");
    assert!(txt.contains("\"serial 42\""), "{out}");
    assert!(
        txt.contains(&format!("\"servers ipv4 {v4} ipv6 {v6}\"")),
        "{out}"
    );
    // Loaded when the server started, a moment ago.
    let age: u64 = txt
        .split("\"age ")
        .nth(1)
        .and_then(|t| t.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no age: {out}"));
    assert!(age < 120, "{out}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(
        txt.contains(&format!("\"instance {}\"", host.trim())),
        "{out}"
    );
    // Other types at the name: NODATA, as for _country.
    let out = dig(srv.addr, &[&format!("_status.{ORIGIN}"), "A"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
    assert!(answers(&out).is_empty(), "{out}");
}

#[test]
fn large_answers_truncate_over_udp_and_come_whole_over_tcp() {
    // A zone with 40 long NS names: the NS answer is about 2 KB.
    let mut zone = test_zone();
    zone.data.get_mut("").unwrap().ns = (0..40)
        .map(|i| format!("a-rather-long-name-server-name-number-{i:02}.dns.example.net."))
        .collect();
    let srv = TestServer::start(&zone, None);
    for args in [
        vec![ORIGIN, "NS", "+bufsize=512", "+ignore"],
        vec![ORIGIN, "NS", "+noedns", "+ignore"],
        vec![ORIGIN, "NS", "+bufsize=1232", "+ignore"],
    ] {
        let out = dig(srv.addr, &args);
        assert!(flags(&out).contains(&"tc".to_string()), "{args:?}: {out}");
        assert!(answers(&out).len() < 40, "{args:?}");
        let size: usize = out
            .split("MSG SIZE  rcvd: ")
            .nth(1)
            .and_then(|s| s.trim().parse().ok())
            .unwrap();
        let limit = if args.contains(&"+bufsize=1232") {
            1232
        } else {
            512
        };
        assert!(size <= limit, "{args:?}: {size} bytes");
    }
    // dig retries over TCP on TC by default and gets everything.
    let out = dig(srv.addr, &[ORIGIN, "NS", "+bufsize=512"]);
    assert_eq!(answers(&out).len(), 40, "{out}");
    assert!(!flags(&out).contains(&"tc".to_string()));
    // A small answer with a small buffer is whole.
    let out = dig(srv.addr, &[ORIGIN, "A", "+bufsize=512", "+ignore"]);
    assert!(!flags(&out).contains(&"tc".to_string()));
    assert!(!answers(&out).is_empty());
}
