use super::*;
use crate::generate::{DnsServer, ZoneOptions, build_zone};

fn server(ip: &str, zones: &[&str]) -> DnsServer {
    DnsServer {
        ip: ip.parse().unwrap(),
        netspeed: 1000,
        zones: zones.iter().map(|z| z.to_string()).collect(),
    }
}

fn zone() -> Zone {
    let servers = [
        server("192.0.2.1", &["de", "europe", "@"]),
        server("192.0.2.2", &["de", "europe", "@"]),
        server("2001:db8::1", &["de", "europe", "@"]),
        server("198.51.100.1", &["us", "north-america", "@"]),
        server("2001:db8::2", &["jp", "asia", "@"]),
    ];
    let opts = ZoneOptions {
        ns: vec!["ns1".into(), "ns2.example.net.".into()],
        serial: 5,
        ..ZoneOptions::default()
    };
    Zone::new(
        "pool.example.org",
        &build_zone("pool.example.org", &servers, &opts, 1),
    )
    .unwrap()
}

#[derive(Debug, PartialEq)]
enum Want {
    Refused,
    NxDomain,
    NoData,
    Soa,
    Ns,
    Addr(&'static str),
    Country,
    Status,
}

fn kind(l: &Lookup<'_>) -> Want {
    match l {
        Lookup::Refused => Want::Refused,
        Lookup::NxDomain => Want::NxDomain,
        Lookup::NoData => Want::NoData,
        Lookup::Soa => Want::Soa,
        Lookup::Ns => Want::Ns,
        Lookup::CountryDebug => Want::Country,
        Lookup::StatusDebug => Want::Status,
        Lookup::Addresses(label) => Want::Addr(match &*label.zone {
            "de" => "de",
            "europe" => "europe",
            "us" => "us",
            "jp" => "jp",
            "asia" => "asia",
            "north-america" => "north-america",
            "@" => "@",
            other => panic!("unexpected zone {other}"),
        }),
    }
}

#[test]
fn fallback_table() {
    use RecordType::*;
    let de = &["de", "europe", "@"][..];
    let uk = &["uk", "europe", "@"][..];
    let br = &["br", "south-america", "@"][..];
    let jp = &["jp", "asia", "@"][..];
    let us = &["us", "north-america", "@"][..];
    let none: &[&str] = &[];
    let cases: &[(&str, RecordType, &[&str], Want)] = &[
        // The apex: country, else continent, else the global zone.
        ("pool.example.org.", A, de, Want::Addr("de")),
        ("pool.example.org.", A, uk, Want::Addr("europe")),
        ("pool.example.org.", A, br, Want::Addr("@")),
        ("pool.example.org.", A, none, Want::Addr("@")),
        ("POOL.Example.ORG.", A, us, Want::Addr("us")),
        // IPv6 only in 2.: AAAA elsewhere is NODATA.
        ("pool.example.org.", AAAA, de, Want::NoData),
        ("2.pool.example.org.", AAAA, de, Want::Addr("de")),
        ("2.pool.example.org.", AAAA, jp, Want::Addr("jp")),
        ("2.pool.example.org.", AAAA, us, Want::Addr("@")),
        ("2.pool.example.org.", AAAA, br, Want::Addr("@")),
        ("2.pool.example.org.", A, jp, Want::Addr("@")),
        ("2.pool.example.org.", ANY, jp, Want::Addr("jp")),
        ("1.pool.example.org.", AAAA, de, Want::NoData),
        // First level with records *of the asked type*: jp has AAAA only.
        ("0.pool.example.org.", A, jp, Want::Addr("@")),
        ("0.pool.example.org.", A, us, Want::Addr("us")),
        ("3.pool.example.org.", A, uk, Want::Addr("europe")),
        // Explicit zone names answer from that zone wherever the client is.
        ("de.pool.example.org.", A, us, Want::Addr("de")),
        ("0.de.pool.example.org.", A, us, Want::Addr("de")),
        ("2.de.pool.example.org.", AAAA, us, Want::Addr("de")),
        ("europe.pool.example.org.", A, br, Want::Addr("europe")),
        (
            "1.north-america.pool.example.org.",
            A,
            de,
            Want::Addr("north-america"),
        ),
        // Known zones without servers: NODATA, not NXDOMAIN.
        ("fr.pool.example.org.", A, de, Want::NoData),
        ("0.fr.pool.example.org.", A, de, Want::NoData),
        ("antarctica.pool.example.org.", A, de, Want::NoData),
        // Unknown names.
        ("xx.pool.example.org.", A, de, Want::NxDomain),
        ("4.pool.example.org.", A, de, Want::NxDomain),
        ("0.xx.pool.example.org.", A, de, Want::NxDomain),
        ("www.0.de.pool.example.org.", A, de, Want::NxDomain),
        ("xx.pool.example.org.", TXT, de, Want::NxDomain),
        // Apex SOA and NS; other types NODATA.
        ("pool.example.org.", SOA, de, Want::Soa),
        ("pool.example.org.", NS, de, Want::Ns),
        ("de.pool.example.org.", NS, de, Want::NoData),
        ("de.pool.example.org.", SOA, de, Want::NoData),
        ("pool.example.org.", MX, de, Want::NoData),
        ("pool.example.org.", TXT, de, Want::NoData),
        // Debug names.
        ("_country.pool.example.org.", TXT, de, Want::Country),
        (
            "_country.anything.pool.example.org.",
            TXT,
            de,
            Want::Country,
        ),
        ("_country.pool.example.org.", A, de, Want::NoData),
        ("_status.pool.example.org.", TXT, de, Want::Status),
        ("_STATUS.pool.example.org.", ANY, de, Want::Status),
        ("_status.pool.example.org.", AAAA, de, Want::NoData),
        // `gb` is `uk` (a country without servers here).
        ("uk.pool.example.org.", A, de, Want::NoData),
        ("gb.pool.example.org.", A, de, Want::NoData),
        ("1.gb.pool.example.org.", A, de, Want::NoData),
        ("xgb.pool.example.org.", A, de, Want::NxDomain),
        // Outside the zone.
        ("example.org.", A, de, Want::Refused),
        ("org.", SOA, de, Want::Refused),
        (".", NS, de, Want::Refused),
        ("pool.example.com.", A, de, Want::Refused),
        ("xpool.example.org.", A, de, Want::Refused),
    ];
    let z = zone();
    for (qname, qtype, targets, want) in cases {
        let name = Name::from_ascii(qname).unwrap();
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        let got = z.resolve(&name, *qtype, &targets);
        assert_eq!(kind(&got), *want, "{qname} {qtype} from {targets:?}");
    }
    // Labels with bytes no zone label holds.
    for label in [&b"a b"[..], b"a.b", b"\xff", b"\x00"] {
        let name = Name::from_labels([label, b"pool", b"example", b"org"]).unwrap();
        assert!(
            matches!(z.resolve(&name, A, &[]), Lookup::NxDomain),
            "{name}"
        );
    }
}

#[test]
fn soa_ns_and_metrics_zone() {
    let z = zone();
    assert_eq!(z.origin().to_ascii(), "pool.example.org.");
    assert_eq!(z.serial(), 5);
    assert_eq!(z.server_count(), 5);
    let RData::SOA(soa) = &z.soa().data else {
        panic!()
    };
    assert_eq!(soa.mname.to_ascii(), "ns1.pool.example.org.");
    assert_eq!(soa.rname.to_ascii(), "hostmaster.pool.example.org.");
    assert_eq!(soa.serial, 5);
    assert_eq!(z.soa().ttl, 1500);
    let ns: Vec<String> = z
        .ns()
        .iter()
        .map(|r| match &r.data {
            RData::NS(n) => n.0.to_ascii(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(ns, ["ns1.pool.example.org.", "ns2.example.net."]);
    let name = Name::from_ascii("0.pool.example.org.").unwrap();
    let targets = ["de".to_string(), "europe".to_string()];
    assert_eq!(z.resolve(&name, RecordType::A, &targets).zone_label(), "de");
    assert_eq!(z.resolve(&name, RecordType::MX, &targets).zone_label(), "-");
}

#[test]
fn bad_zone_data_is_an_error() {
    let ok = ZoneData::from_json(br#"{"data": {}}"#).unwrap();
    assert!(Zone::new("pool.example.org", &ok).is_ok());
    // No NS given: ns.<zone>.
    let z = Zone::new("Pool.Example.Org.", &ok).unwrap();
    assert_eq!(z.origin().to_ascii(), "pool.example.org.");
    let RData::NS(ns) = &z.ns()[0].data else {
        panic!()
    };
    assert_eq!(ns.0.to_ascii(), "ns.pool.example.org.");
    for origin in ["", ".", "a..b", "bad name.org", "x/y"] {
        assert!(Zone::new(origin, &ok).is_err(), "{origin:?}");
    }
    let bad_label = ZoneData::from_json(br#"{"data": {"a b": {}}}"#).unwrap();
    assert!(Zone::new("pool.example.org", &bad_label).is_err());
    let bad_ns = ZoneData::from_json(br#"{"data": {"": {"ns": [""]}}}"#).unwrap();
    assert!(Zone::new("pool.example.org", &bad_ns).is_err());
}

/// Some servers under several origins, with NS names as a zone file may
/// give them: `ns1` relative to each origin, `ns2.example.net.` absolute.
fn zone_under(origins: &[&str]) -> Zone {
    let mut data = zone_data(origins[0]);
    data.data.get_mut("").unwrap().ns = vec!["ns1".into(), "ns2.example.net.".into()];
    Zone::with_origins(origins, &data).unwrap()
}

/// The zone JSON as the service makes it (NS names absolute, under `origin`).
fn zone_data(origin: &str) -> ZoneData {
    let servers = [
        server("192.0.2.1", &["de", "europe", "@"]),
        server("2001:db8::1", &["de", "europe", "@"]),
        server("198.51.100.1", &["us", "north-america", "@"]),
    ];
    let opts = ZoneOptions {
        ns: vec!["ns1".into(), "ns2.example.net.".into()],
        serial: 6,
        ..ZoneOptions::default()
    };
    build_zone(origin, &servers, &opts, 1)
}

fn names(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| match &r.data {
            RData::NS(n) => n.0.to_ascii(),
            RData::SOA(s) => format!("{} {} {}", s.mname, s.rname, s.serial),
            _ => panic!("{r:?}"),
        })
        .collect()
}

#[test]
fn several_origins_share_the_labels_each_with_its_soa_and_ns() {
    use RecordType::*;
    let z = zone_under(&["pool.example.org", "Pool.Example.NET.", "time.vendor.test"]);
    assert_eq!(z.origin().to_ascii(), "pool.example.org.");
    let de = ["de".to_string(), "europe".to_string()];
    for origin in [
        "pool.example.org.",
        "pool.example.net.",
        "time.vendor.test.",
    ] {
        let at = |rel: &str| Name::from_ascii(format!("{rel}{origin}")).unwrap();
        // The same label (and picker) under every origin.
        let (Lookup::Addresses(a), Lookup::Addresses(b)) = (
            z.resolve(&at(""), A, &de),
            z.resolve(&Name::from_ascii("pool.example.org.").unwrap(), A, &de),
        ) else {
            panic!("{origin}: no addresses");
        };
        assert!(std::ptr::eq(a, b), "{origin}");
        assert_eq!(&*a.zone, "de");
        let cases = [
            ("2.", AAAA, Want::Addr("de")),
            ("us.", A, Want::Addr("us")),
            ("1.north-america.", A, Want::Addr("north-america")),
            ("", AAAA, Want::NoData),
            ("xx.", A, Want::NxDomain),
            ("", SOA, Want::Soa),
            ("", NS, Want::Ns),
            ("_status.", TXT, Want::Status),
            ("_country.", TXT, Want::Country),
        ];
        for (rel, qtype, want) in cases {
            assert_eq!(
                kind(&z.resolve(&at(rel), qtype, &de)),
                want,
                "{rel}{origin}"
            );
        }
        // Its own SOA and NS: relative names under it, absolute ones as given.
        let apex = z.apex(&at("0.de.")).unwrap();
        assert_eq!(apex.name().to_ascii(), origin);
        assert_eq!(
            names(std::slice::from_ref(apex.soa())),
            [format!("ns1.{origin} hostmaster.{origin} 6")]
        );
        assert_eq!(apex.soa().name.to_ascii(), origin);
        assert_eq!(
            names(apex.ns()),
            [format!("ns1.{origin}"), "ns2.example.net.".to_string()]
        );
        assert!(apex.ns().iter().all(|r| r.name.to_ascii() == origin));
    }
    for outside in [
        "example.net.",
        "pool.example.com.",
        "vendor.test.",
        "xtime.vendor.test.",
    ] {
        let name = Name::from_ascii(outside).unwrap();
        assert!(
            matches!(z.resolve(&name, A, &de), Lookup::Refused),
            "{outside}"
        );
        assert!(z.apex(&name).is_none(), "{outside}");
    }
    // The service's JSON names its servers in full: every origin lists
    // the same machines.
    let z = Zone::with_origins(
        &["pool.example.org", "pool.example.net"],
        &zone_data("pool.example.org"),
    )
    .unwrap();
    for apex in z.apexes() {
        assert_eq!(
            names(apex.ns()),
            ["ns1.pool.example.org.", "ns2.example.net."]
        );
    }
}

#[test]
fn nested_origins_answer_under_the_longest() {
    use RecordType::*;
    let de = ["de".to_string(), "europe".to_string()];
    // Whichever order they are given in.
    for origins in [
        ["example.org", "pool.example.org"],
        ["pool.example.org", "example.org"],
    ] {
        let z = zone_under(&origins);
        assert_eq!(z.origin().to_ascii(), format!("{}.", origins[0]));
        let cases = [
            ("pool.example.org.", A, Want::Addr("de")),
            ("pool.example.org.", SOA, Want::Soa),
            ("0.de.pool.example.org.", A, Want::Addr("de")),
            ("example.org.", A, Want::Addr("de")),
            ("us.example.org.", A, Want::Addr("us")),
            ("_status.pool.example.org.", TXT, Want::Status),
            // `de.pool` is no label of the zone under `example.org`.
            ("de.pool.example.org.", A, Want::Addr("de")),
            ("xx.pool.example.org.", A, Want::NxDomain),
            ("org.", A, Want::Refused),
        ];
        for (qname, qtype, want) in cases {
            let name = Name::from_ascii(qname).unwrap();
            assert_eq!(
                kind(&z.resolve(&name, qtype, &de)),
                want,
                "{qname} {origins:?}"
            );
        }
        let apex = |n: &str| z.apex(&Name::from_ascii(n).unwrap()).unwrap();
        assert_eq!(
            apex("0.pool.example.org.").name().to_ascii(),
            "pool.example.org."
        );
        assert_eq!(apex("0.example.org.").name().to_ascii(), "example.org.");
        assert_eq!(
            names(apex("pool.example.org.").ns())[0],
            "ns1.pool.example.org."
        );
        assert_eq!(names(apex("example.org.").ns())[0], "ns1.example.org.");
    }
}

#[test]
fn origins_are_checked() {
    let ok = ZoneData::from_json(br#"{"data": {}}"#).unwrap();
    let none: [&str; 0] = [];
    assert!(matches!(
        Zone::with_origins(&none, &ok),
        Err(ZoneError::NoOrigin)
    ));
    let e = Zone::with_origins(&["pool.example.org", "POOL.example.org."], &ok).unwrap_err();
    assert!(matches!(e, ZoneError::SameOrigin { .. }), "{e}");
    assert!(e.to_string().contains("POOL.example.org."), "{e}");
    let e = Zone::with_origins(&["pool.example.org", "bad name"], &ok).unwrap_err();
    assert!(e.to_string().contains("bad name"), "{e}");
}
