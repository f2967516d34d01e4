use super::*;

#[test]
fn vendor_names() {
    for ok in ["debian", "ubuntu", "openwrt", "centos-7", "rhel9", "x-1a"] {
        assert_eq!(check_vendor_name(ok), Ok(()), "{ok}");
    }
    for (bad, why) in [
        ("", "empty"),
        ("0", "number"),
        ("3", "number"),
        ("12", "number"),
        ("de", "two letters"),
        ("gb", "two letters"),
        ("zz", "two letters"),
        ("europe", "own names"),
        ("north-america", "own names"),
        ("_status", "debug"),
        ("_vendor", "debug"),
        ("www", "web site"),
        ("Debian", "lower case"),
        ("deb.ian", "one DNS label"),
        ("deb ian", "one DNS label"),
        ("-debian", "'-'"),
        ("debian-", "'-'"),
        ("déb", "one DNS label"),
    ] {
        let e = check_vendor_name(bad).unwrap_err();
        assert!(e.contains(why), "{bad:?}: {e}");
        assert!(e.contains(&format!("'{bad}'")), "{e}");
    }
    assert!(check_vendor_name(&"a".repeat(63)).is_ok());
    assert!(
        check_vendor_name(&"a".repeat(64))
            .unwrap_err()
            .contains("63")
    );
}

#[test]
fn vendor_zones() {
    for (given, zone) in [
        ("", "@"),
        ("@", "@"),
        ("de", "de"),
        (" DE ", "de"),
        ("gb", "uk"),
        ("europe", "europe"),
    ] {
        assert_eq!(vendor_zone(given).as_deref(), Ok(zone), "{given:?}");
    }
    for bad in ["xx", "mars", "0", "de.europe", "debian"] {
        let e = vendor_zone(bad).unwrap_err();
        assert!(e.contains(&format!("'{bad}'")) && e.contains("@"), "{e}");
    }
}

#[test]
fn labels_point_at_the_zone_and_its_numbers() {
    let v = |name: &str, zone: &str| Vendor {
        name: name.into(),
        zone: zone.into(),
    };
    let pairs = |v: &Vendor| alias_labels(v).map(|(l, t)| format!("{l}>{t}")).join(" ");
    assert_eq!(
        pairs(&v("debian", "@")),
        "debian> 0.debian>0 1.debian>1 2.debian>2 3.debian>3"
    );
    assert_eq!(
        pairs(&v("acme", "de")),
        "acme>de 0.acme>0.de 1.acme>1.de 2.acme>2.de 3.acme>3.de"
    );
}

// ---------------------------------------------------------------- answers

use crate::generate::{DnsServer, ZoneOptions, build_zone};
use crate::model::ZoneData;
use crate::zone::{Label, Lookup, Zone, ZoneError};
use hickory_proto::rr::{Name, RecordType};

const ORIGIN: &str = "pool.example.org";

/// Servers in Germany (IPv4 and IPv6) and the US; vendors `debian` (the
/// apex) and `acme` (Germany's zone).
fn zone_data() -> ZoneData {
    let server = |ip: &str, cc: &str| DnsServer {
        ip: ip.parse().unwrap(),
        netspeed: 1000,
        zones: geo::zones_for_country(cc).unwrap(),
    };
    let servers = [
        server("192.0.2.1", "de"),
        server("192.0.2.2", "de"),
        server("2001:db8::1", "de"),
        server("198.51.100.1", "us"),
    ];
    let opts = ZoneOptions {
        vendors: vec![
            Vendor {
                name: "debian".into(),
                zone: "@".into(),
            },
            Vendor {
                name: "acme".into(),
                zone: "de".into(),
            },
        ],
        ..ZoneOptions::default()
    };
    build_zone(ORIGIN, &servers, &opts, 1)
}

fn resolve<'z>(z: &'z Zone, name: &str, qtype: RecordType, targets: &[&str]) -> Lookup<'z> {
    let name = Name::from_ascii(format!("{name}{ORIGIN}.")).unwrap();
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    z.resolve(&name, qtype, &targets)
}

/// The label an address lookup answered from.
fn label<'z>(l: Lookup<'z>) -> &'z Label {
    match l {
        Lookup::Addresses(label) => label,
        other => panic!("no addresses: {other:?}"),
    }
}

#[test]
fn a_vendor_name_answers_as_its_target_for_the_clients_location() {
    use RecordType::*;
    let z = Zone::new(ORIGIN, &zone_data()).unwrap();
    let de = &["de", "europe", "@"][..];
    let fr = &["fr", "europe", "@"][..];
    let us = &["us", "north-america", "@"][..];
    let none: &[&str] = &[];
    // (vendor name, the name it must answer as), each from several places.
    let cases: &[(&str, &str, RecordType)] = &[
        ("debian.", "", A),
        ("0.debian.", "0.", A),
        ("3.debian.", "3.", A),
        ("0.DEBIAN.", "0.", A),
        ("Debian.", "", A),
        ("2.debian.", "2.", AAAA),
        ("acme.", "de.", A),
        ("1.acme.", "1.de.", A),
        ("2.acme.", "2.de.", AAAA),
    ];
    for (vendor, pool, qtype) in cases {
        for targets in [de, fr, us, none] {
            let got = label(resolve(&z, vendor, *qtype, targets));
            let want = label(resolve(&z, pool, *qtype, targets));
            // The very same label: same servers, weights, TTL and metrics.
            assert!(std::ptr::eq(got, want), "{vendor} {qtype} from {targets:?}");
        }
    }
    // Located as `0` is: Germany's servers in Germany, the global zone's
    // in France (no French servers, Europe's are Germany's), US ones there.
    assert_eq!(&*label(resolve(&z, "0.debian.", A, de)).zone, "de");
    assert_eq!(&*label(resolve(&z, "0.debian.", A, fr)).zone, "europe");
    assert_eq!(&*label(resolve(&z, "debian.", A, us)).zone, "us");
    // A vendor on `de` answers Germany's servers everywhere.
    assert_eq!(&*label(resolve(&z, "acme.", A, us)).zone, "de");
    assert_eq!(label(resolve(&z, "acme.", A, us)).a.len(), 2);
    // The zone label for metrics is the target's, from the closed set.
    assert_eq!(resolve(&z, "3.acme.", A, none).zone_label(), "de");
}

#[test]
fn a_vendor_name_is_no_apex_and_has_no_other_names() {
    use RecordType::*;
    let z = Zone::new(ORIGIN, &zone_data()).unwrap();
    let de = &["de", "europe", "@"][..];
    let nodata = |l: Lookup<'_>| matches!(l, Lookup::NoData);
    let nx = |l: Lookup<'_>| matches!(l, Lookup::NxDomain);
    // The apex's SOA and NS are the apex's alone.
    assert!(nodata(resolve(&z, "debian.", SOA, de)));
    assert!(nodata(resolve(&z, "debian.", NS, de)));
    assert!(nodata(resolve(&z, "acme.", SOA, de)));
    // `0.` has no AAAA (only `2.` has), so neither has `0.debian`.
    assert!(nodata(resolve(&z, "0.debian.", AAAA, de)));
    assert!(nodata(resolve(&z, "debian.", TXT, de)));
    for name in [
        "4.debian.",
        "x.debian.",
        "0.0.debian.",
        "debian.de.",
        "other.",
    ] {
        assert!(nx(resolve(&z, name, A, de)), "{name}");
    }
    // The debug names stay the zone's.
    assert!(matches!(
        resolve(&z, "_status.", TXT, de),
        Lookup::StatusDebug
    ));
}

#[test]
fn bad_aliases_are_refused_when_the_zone_loads() {
    let with = |label: &str, data: crate::model::LabelData| {
        let mut z = zone_data();
        z.data.insert(label.into(), data);
        Zone::new(ORIGIN, &z)
    };
    let alias = |t: &str| crate::model::LabelData {
        alias: Some(t.into()),
        ..Default::default()
    };
    for (label, data, why) in [
        ("gone", alias("nowhere"), "points at no label"),
        ("0.gone", alias("0.xx"), "points at no label"),
        ("chain", alias("debian"), "another alias"),
        ("chain", alias("0.DEBIAN"), "another alias"),
        ("", alias("de"), "apex"),
        (
            "mixed",
            crate::model::LabelData {
                a: vec![("192.0.2.9".parse().unwrap(), 1)],
                ..alias("de")
            },
            "records of its own",
        ),
    ] {
        match with(label, data) {
            Err(e @ ZoneError::Alias { .. }) => {
                let e = e.to_string();
                assert!(e.contains(why) && e.contains(&format!("{label:?}")), "{e}");
            }
            other => panic!("{label}: {other:?}"),
        }
    }
    // Targets are relative names in any case, with or without a final dot.
    let z = Zone::new(ORIGIN, &{
        let mut z = zone_data();
        z.data.insert("fine".into(), alias("0.DE."));
        z
    })
    .unwrap();
    assert_eq!(&*label(resolve(&z, "fine.", RecordType::A, &[])).zone, "de");
}
