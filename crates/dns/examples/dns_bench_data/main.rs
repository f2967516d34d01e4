//! Writes the data for `bench/dns.sh`: a pool zone of N servers (GeoDNS
//! JSON, made by `dns::build_zone`), the same names as a static zone file
//! for NSD (4 A/AAAA records per name), and a dnsperf query file in its
//! binary (`-B`) format mixing apex, numbered, country and continent names,
//! half of them with an EDNS Client Subnet from MaxMind's test networks,
//! and a gdnsd configuration handing out the same servers with the same
//! weights (its `geoip` plugin over `weighted` resources; see `gdnsd`).
//!
//! Usage: dns_bench_data OUT_DIR [SERVERS] [QUERIES]

use dns::{DnsServer, ZoneOptions, build_zone};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

mod gdnsd;

const ORIGIN: &str = "pool.example.org";

/// Countries with servers, and how many of every 100 servers are there.
const COUNTRIES: &[(&str, u32)] = &[
    ("de", 20),
    ("us", 18),
    ("uk", 8),
    ("fr", 7),
    ("nl", 6),
    ("se", 4),
    ("jp", 4),
    ("ca", 3),
    ("au", 3),
    ("ch", 3),
    ("pl", 3),
    ("cz", 2),
    ("fi", 2),
    ("br", 2),
    ("sg", 2),
    ("at", 2),
    ("it", 2),
    ("es", 2),
    ("in", 1),
    ("za", 1),
    ("ar", 1),
    ("cn", 1),
    ("ru", 1),
    ("kr", 1),
    ("nz", 1),
];

/// ECS subnets that the test Country database places (country in comment).
const ECS: &[(&str, u8)] = &[
    ("81.2.69.142", 32),   // uk
    ("89.160.20.112", 28), // se
    ("216.160.83.56", 29), // us
    ("67.43.156.0", 24),   // bt (asia, no servers)
    ("202.196.224.0", 20), // ph
    ("111.235.160.0", 22), // cn
    ("2001:218::", 32),    // jp
    ("2a02:d180::", 32),   // de
    ("2a02:e700::", 32),   // ly (africa)
    ("175.16.199.0", 24),  // (not in the Country DB: falls back)
];

fn main() {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .expect("usage: dns_bench_data OUT_DIR [SERVERS] [QUERIES]"),
    );
    let servers: usize = args.next().map_or(5000, |s| s.parse().expect("SERVERS"));
    let queries: usize = args.next().map_or(100_000, |s| s.parse().expect("QUERIES"));
    std::fs::create_dir_all(&out).unwrap();
    let mut rng = StdRng::seed_from_u64(5000);

    let total: u32 = COUNTRIES.iter().map(|(_, n)| n).sum();
    let fleet: Vec<DnsServer> = (0..servers)
        .map(|i| {
            let mut r = rng.random_range(0..total);
            let cc = COUNTRIES
                .iter()
                .find(|(_, n)| {
                    if r < *n {
                        true
                    } else {
                        r -= n;
                        false
                    }
                })
                .map_or("de", |(c, _)| c);
            // Benchmarking ranges: 198.18.0.0/15 and 2001:2::/48.
            let ip = if i % 5 == 4 {
                IpAddr::V6(Ipv6Addr::from(
                    0x2001_0002_0000_0000_0000_0000_0000_0000u128 + i as u128,
                ))
            } else {
                IpAddr::V4(Ipv4Addr::from(0xc612_0000u32 + i as u32))
            };
            let netspeed = [1_000, 10_000, 25_000, 100_000, 250_000][rng.random_range(0..5)];
            DnsServer {
                ip,
                netspeed,
                zones: vec![
                    cc.to_string(),
                    geo::continent_of_country(cc).unwrap().to_string(),
                    "@".to_string(),
                ],
            }
        })
        .collect();
    let opts = ZoneOptions {
        ns: vec!["ns1".into()],
        serial: 1,
        ..ZoneOptions::default()
    };
    let t = std::time::Instant::now();
    let zone = build_zone(ORIGIN, &fleet, &opts, 1);
    let built = t.elapsed();
    let json = zone.to_json();
    // What a refresh costs the server: parse the JSON, load the zone.
    let t = std::time::Instant::now();
    let parsed = dns::ZoneData::from_json(json.as_bytes()).unwrap();
    let store = dns::ZoneStore::new(ORIGIN).unwrap();
    store.load(&parsed).unwrap();
    let loaded = t.elapsed();
    println!(
        "build_zone: {:.1} ms; parse + load ({} KB JSON): {:.1} ms",
        built.as_secs_f64() * 1000.0,
        json.len() / 1024,
        loaded.as_secs_f64() * 1000.0
    );
    // What each query pays to get the current zone (read lock + Arc clone),
    // alone and with a second thread doing the same.
    let per_call = |store: &dns::ZoneStore| {
        let t = std::time::Instant::now();
        for _ in 0..2_000_000 {
            std::hint::black_box(store.current());
        }
        t.elapsed().as_nanos() as f64 / 2e6
    };
    let alone = per_call(&store);
    let other = store.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let busy = std::thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            std::hint::black_box(other.current());
        }
    });
    let contended = per_call(&store);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().unwrap();
    println!(
        "ZoneStore::current(): {alone:.0} ns alone, {contended:.0} ns with another thread reading"
    );
    std::fs::write(out.join("zone.json"), json).unwrap();

    // NSD: the same names, each with the first 4 of its addresses.
    let mut nsd = format!(
        "$ORIGIN {ORIGIN}.\n$TTL 150\n@ 1500 IN SOA ns1 hostmaster 1 5400 5400 1209600 3600\n@ 86400 IN NS ns1\n"
    );
    let mut names = Vec::new();
    for (label, data) in &zone.data {
        let owner = if label.is_empty() {
            "@".to_string()
        } else {
            label.clone()
        };
        for (ip, _) in data.a.iter().take(4) {
            writeln!(nsd, "{owner} IN A {ip}").unwrap();
        }
        for (ip, _) in data.aaaa.iter().take(4) {
            writeln!(nsd, "{owner} IN AAAA {ip}").unwrap();
        }
        if !data.a.is_empty() {
            names.push((label.clone(), data.aaaa.is_empty()));
        }
    }
    std::fs::write(out.join("zone.nsd"), nsd).unwrap();
    gdnsd::write(&out.join("gdnsd"), ORIGIN, &zone);

    // Query mix: 30 % apex, 30 % 0-3 (2. asks AAAA half the time), 25 %
    // countries (plain and numbered), 15 % continents; half with ECS.
    let country_names: Vec<&String> = names
        .iter()
        .map(|(l, _)| l)
        .filter(|l| {
            let base = l.rsplit('.').next().unwrap_or("");
            base.len() == 2
        })
        .collect();
    let continent_names: Vec<&String> = names
        .iter()
        .map(|(l, _)| l)
        .filter(|l| geo::CONTINENTS.contains(&l.rsplit('.').next().unwrap_or("")))
        .collect();
    let mut bin = Vec::new();
    let mut text = String::new();
    for i in 0..queries {
        let roll = rng.random_range(0..100);
        let (label, qtype) = if roll < 30 {
            (String::new(), RecordType::A)
        } else if roll < 60 {
            let n = rng.random_range(0..4);
            let t = if n == 2 && rng.random_bool(0.5) {
                RecordType::AAAA
            } else {
                RecordType::A
            };
            (n.to_string(), t)
        } else if roll < 85 {
            (
                country_names[rng.random_range(0..country_names.len())].clone(),
                RecordType::A,
            )
        } else {
            (
                continent_names[rng.random_range(0..continent_names.len())].clone(),
                RecordType::A,
            )
        };
        let fqdn = if label.is_empty() {
            format!("{ORIGIN}.")
        } else {
            format!("{label}.{ORIGIN}.")
        };
        let mut m = Message::new(i as u16, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(&fqdn).unwrap(), qtype));
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        if rng.random_bool(0.5) {
            let (ip, prefix) = ECS[rng.random_range(0..ECS.len())];
            edns.options_mut()
                .insert(EdnsOption::Subnet(ClientSubnet::new(
                    ip.parse().unwrap(),
                    prefix,
                    0,
                )));
        }
        m.set_edns(edns);
        let wire = m.to_vec().unwrap();
        bin.extend((wire.len() as u16).to_be_bytes());
        bin.extend(wire);
        writeln!(text, "{fqdn} {qtype}").unwrap();
    }
    std::fs::write(out.join("queries.bin"), bin).unwrap();
    std::fs::write(out.join("queries.txt"), text).unwrap();
    println!(
        "{} servers, {} labels, {} queries in {}",
        zone.server_count(),
        zone.data.len(),
        queries,
        out.display()
    );
}
