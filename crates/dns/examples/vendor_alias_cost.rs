//! What vendor aliases cost a lookup (BENCHMARKS.md "Issue 17: vendor
//! zones"): `Zone::resolve` for pool names in a zone without and with 8
//! vendors, and for a vendor name. Five rounds of 5 million lookups each;
//! compare within a round (the machine is shared).
//!
//! `cargo run --release -p dns --example vendor_alias_cost`
use dns::{DnsServer, Vendor, Zone, ZoneOptions, build_zone};
use hickory_proto::rr::{Name, RecordType};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let mut servers = Vec::new();
    for (i, cc) in ["uk", "de", "us", "jp", "br"].iter().enumerate() {
        for j in 0..40u32 {
            servers.push(DnsServer {
                ip: format!("10.{i}.{}.{}", j / 200, j % 200 + 1)
                    .parse()
                    .unwrap(),
                netspeed: 1000,
                zones: geo::zones_for_country(cc).unwrap(),
            });
        }
    }
    let vendors: Vec<Vendor> = [
        "debian", "ubuntu", "centos", "openwrt", "android", "fedora", "freebsd", "pfsense",
    ]
    .iter()
    .map(|n| Vendor {
        name: n.to_string(),
        zone: "@".into(),
    })
    .collect();
    let plain = Zone::new(
        "pool.example.org",
        &build_zone("pool.example.org", &servers, &ZoneOptions::default(), 1),
    )
    .unwrap();
    let with = Zone::new(
        "pool.example.org",
        &build_zone(
            "pool.example.org",
            &servers,
            &ZoneOptions {
                vendors,
                ..Default::default()
            },
            1,
        ),
    )
    .unwrap();
    let targets: Vec<String> = ["de", "europe", "@"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let n = 5_000_000u32;
    let time = |z: &Zone, name: &str| {
        let q = Name::from_ascii(name).unwrap();
        let t = Instant::now();
        for _ in 0..n {
            black_box(z.resolve(black_box(&q), RecordType::A, &targets));
        }
        t.elapsed().as_nanos() as f64 / n as f64
    };
    for round in 0..5 {
        println!(
            "round {round}: 0.pool no-vendors {:.1} ns | 0.pool with-vendors {:.1} ns | 0.debian {:.1} ns | de.pool no-vendors {:.1} | de.pool with-vendors {:.1}",
            time(&plain, "0.pool.example.org."),
            time(&with, "0.pool.example.org."),
            time(&with, "0.debian.pool.example.org."),
            time(&plain, "de.pool.example.org."),
            time(&with, "de.pool.example.org."),
        );
    }
}
