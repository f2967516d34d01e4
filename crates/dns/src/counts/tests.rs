use super::*;
use crate::generate::{ZoneOptions, build_zone};
use crate::handler::GeoDnsHandler;
use crate::live_zone::ZoneStore;
use crate::model::{LabelData, ZoneData};
use crate::rrl::RrlConfig;
use crate::sockets::respond;
use crate::test_support;
use crate::zone::Lookup;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_server::net::xfer::Protocol;
use std::net::SocketAddr;

const ORIGIN: &str = "pool.example.org";

/// Per server, per country: addresses the client got.
type Got = BTreeMap<IpAddr, BTreeMap<String, u64>>;

/// Servers in the UK, Sweden, the US and Germany, IPv4 and IPv6, with
/// the given netspeed offset (so two zones can differ), and a label `big`
/// with 40 AAAA: more than fits in 512 bytes.
fn zone(first: u32, count: u32) -> ZoneData {
    let servers = test_support::servers(&["uk", "se", "us", "de"], first..first + count);
    let mut z = build_zone(ORIGIN, &servers, &ZoneOptions::default(), 7);
    z.data.insert(
        "big".into(),
        LabelData {
            aaaa: (1..=40)
                .map(|i| (format!("2001:db8:b::{i}").parse().unwrap(), 1))
                .collect(),
            max_hosts: Some(40),
            ..Default::default()
        },
    );
    z
}

fn handler(store: &ZoneStore, rrl: &RrlConfig) -> GeoDnsHandler {
    test_support::handler(store, rrl)
}

/// A query for `name` with an optional ECS address (/32 or /48).
fn query(name: &str, qtype: RecordType, ecs: Option<&str>) -> Vec<u8> {
    let ecs = ecs.map(|ip| (ip, if ip.contains(':') { 48 } else { 32 }));
    test_support::query(0x4321, name, qtype, ecs.map(|e| (1232, Some(e))))
}

/// The clients asked as (ECS address, the country the test database puts
/// it in): the UK, Sweden, the US, a private address (not used: the peer,
/// loopback, is not located either) and none.
const CLIENTS: [(Option<&str>, &str); 5] = [
    (Some("81.2.69.142"), "uk"),
    (Some("89.160.20.112"), "se"),
    (Some("216.160.83.56"), "us"),
    (Some("10.1.2.3"), UNKNOWN_COUNTRY),
    (None, UNKNOWN_COUNTRY),
];

/// Asks `q` over `protocol`; adds the addresses received to `got` under
/// `country`; whether an answer came back.
fn ask(h: &GeoDnsHandler, q: &[u8], protocol: Protocol, country: &str, got: &mut Got) -> bool {
    let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let mut out = Vec::new();
    if !respond(h, q, src, protocol, &mut out) {
        return false;
    }
    let m = Message::from_vec(&out).unwrap();
    for r in &m.answers {
        let ip = match r.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        *got.entry(ip)
            .or_default()
            .entry(country.to_string())
            .or_default() += 1;
    }
    true
}

/// The per-server answers of the reports (servers with none left out).
fn reported(reports: &[CountReport]) -> Got {
    let mut out = Got::new();
    for r in reports {
        for s in r.servers.iter().filter(|s| !s.answers.is_empty()) {
            assert!(
                out.insert(s.ip, s.answers.clone()).is_none(),
                "{} twice",
                s.ip
            );
        }
    }
    out
}

fn answers_sent(got: &Got) -> u64 {
    got.values().flat_map(|c| c.values()).sum()
}

#[test]
fn every_address_sent_is_counted_once_by_country() {
    let store = ZoneStore::new(ORIGIN).unwrap();
    store.load(&zone(0, 12)).unwrap();
    let h = handler(&store, &RrlConfig::off());
    let counts = h.counts();
    let mut got = Got::new();
    let mut by_country: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..3 {
        for (ecs, country) in CLIENTS {
            for name in [
                "pool.example.org.",
                "2.pool.example.org.",
                "1.de.pool.example.org.",
                "big.pool.example.org.",
            ] {
                // A and AAAA take the fast path; ANY the generic one; big
                // over UDP without EDNS is truncated by the generic path.
                for qtype in [RecordType::A, RecordType::AAAA, RecordType::ANY] {
                    for protocol in [Protocol::Udp, Protocol::Tcp] {
                        let q = query(name, qtype, if round == 2 { None } else { ecs });
                        let country = if round == 2 { UNKNOWN_COUNTRY } else { country };
                        let before = answers_sent(&got);
                        assert!(ask(&h, &q, protocol, country, &mut got));
                        if answers_sent(&got) > before {
                            *by_country.entry(country.to_string()).or_default() += 1;
                        }
                    }
                }
            }
        }
    }
    let reports = counts.harvest(1000);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(reported(&reports), got);
    assert_eq!(r.answers_by_country, by_country);
    assert_eq!(r.to, 1000);
    // Truncated answers counted what fitted: fewer than all 40 of `big`
    // in each AAAA and ANY answer (over TCP all fit).
    let big: u64 = got
        .iter()
        .filter(|(ip, _)| ip.to_string().starts_with("2001:db8:b::"))
        .flat_map(|(_, c)| c.values())
        .sum();
    assert!(big > 40 * 5 * 3 && big < 40 * 2 * 2 * 5 * 3, "{big}");
    // Everything was harvested: nothing the next time.
    assert!(counts.harvest(1060).is_empty());
}

#[test]
fn dropped_and_slipped_answers_are_not_counted() {
    let store = ZoneStore::new(ORIGIN).unwrap();
    store.load(&zone(0, 12)).unwrap();
    let rrl = RrlConfig {
        rate: 1,
        slip: 2,
        ..RrlConfig::default()
    };
    let h = handler(&store, &rrl);
    let counts = h.counts();
    let mut got = Got::new();
    let (mut sent, mut silent) = (0, 0);
    for i in 0..40 {
        // Fast path (A) and generic path (ANY), over UDP where RRL applies.
        let qtype = if i % 2 == 0 {
            RecordType::A
        } else {
            RecordType::ANY
        };
        let q = query("pool.example.org.", qtype, None);
        if ask(&h, &q, Protocol::Udp, UNKNOWN_COUNTRY, &mut got) {
            sent += 1;
        } else {
            silent += 1;
        }
    }
    let addresses = answers_sent(&got);
    assert!(silent > 0 && sent > 0, "drops {silent}, sent {sent}");
    assert!(addresses < 40 * 4, "slips carry no addresses: {addresses}");
    let reports = counts.harvest(10);
    assert_eq!(reported(&reports), got);
    let answers: u64 = reports[0].answers_by_country.values().sum();
    assert!(
        answers < sent,
        "{answers} answers counted, {sent} messages sent"
    );
}

#[test]
fn a_refresh_between_answers_loses_nothing() {
    let store = ZoneStore::new(ORIGIN).unwrap();
    store.load(&zone(0, 12)).unwrap();
    let h = handler(&store, &RrlConfig::off());
    let counts = h.counts();
    let mut got = Got::new();
    let ask_all = |got: &mut Got| {
        for (ecs, country) in CLIENTS {
            for qtype in [RecordType::A, RecordType::ANY] {
                let q = query("pool.example.org.", qtype, ecs);
                assert!(ask(&h, &q, Protocol::Udp, country, got));
            }
        }
    };
    ask_all(&mut got);
    // A query in flight holds the old zone across the refresh.
    let old = store.current().unwrap();
    // Half the servers leave, new ones come.
    store.load(&zone(6, 12)).unwrap();
    ask_all(&mut got);
    let mut first = reported(&counts.harvest(100));
    // Counted into the old zone after the harvest: kept for the next.
    let label = match old.resolve(
        &Name::from_ascii("0.pool.example.org.").unwrap(),
        RecordType::A,
        &[],
    ) {
        crate::zone::Lookup::Addresses(l) => l,
        other => panic!("{other:?}"),
    };
    old.tally()
        .answered(label, Family::V4, &[0], country_slot_of("se"));
    let late = *label.a.get(0);
    drop(old);
    ask_all(&mut got);
    for (ip, c) in reported(&counts.harvest(200)) {
        for (country, n) in c {
            *first.entry(ip).or_default().entry(country).or_default() += n;
        }
    }
    *got.entry(IpAddr::V4(late))
        .or_default()
        .entry("se".into())
        .or_default() += 1;
    assert_eq!(first, got);
    // The old zone is forgotten and its leavers' indexes freed.
    let ix = store.counts().lock();
    assert_eq!(ix.tallies.len(), 1);
    assert_eq!(
        ix.of.len(),
        zone(6, 12).server_count(),
        "only the current zone's servers keep an index"
    );
}

#[test]
fn refreshes_without_harvests_keep_the_registry_small_and_lose_nothing() {
    let store = ZoneStore::new(ORIGIN).unwrap();
    let h = handler(&store, &RrlConfig::off());
    let mut got = Got::new();
    for i in 0..50 {
        store.load(&zone(i % 7, 6)).unwrap();
        let q = query("pool.example.org.", RecordType::A, Some("81.2.69.142"));
        assert!(ask(&h, &q, Protocol::Udp, "uk", &mut got));
        assert!(store.counts().lock().tallies.len() <= 2);
    }
    let reports = h.counts().harvest(5);
    assert_eq!(reported(&reports), got);
    // Every answer was from the apex: its zone's answers, summed over the
    // zone versions a server was in, never exceed the 50 answers.
    let zone_answers: u64 = reports[0]
        .servers
        .iter()
        .map(|s| s.zone_answers)
        .max()
        .unwrap();
    assert!(zone_answers > 0 && zone_answers <= 50, "{zone_answers}");
    let expected: f64 = reports[0].servers.iter().map(|s| s.expected).sum();
    assert!(
        (expected - answers_sent(&got) as f64).abs() < 1e-6,
        "{expected}"
    );
}

fn country_slot_of(cc: &str) -> usize {
    usize::from(COUNTRIES.by_code[code_index(cc).unwrap()])
}

#[test]
fn zone_answers_and_expected_by_hand() {
    // de: .1 (weight 3) and .2 (1); europe: .2 and .3 (1 each); apex: .3.
    let label = |a: &[(u8, u32)]| LabelData {
        a: a.iter()
            .map(|&(i, w)| (std::net::Ipv4Addr::new(192, 0, 2, i), w))
            .collect(),
        ..Default::default()
    };
    let mut data = ZoneData::from_json(b"{}").unwrap();
    data.data.insert("de".into(), label(&[(1, 3), (2, 1)]));
    data.data.insert("europe".into(), label(&[(2, 1), (3, 1)]));
    data.data.insert("".into(), label(&[(3, 2)]));
    let store = ZoneStore::new(ORIGIN).unwrap();
    store.load(&data).unwrap();
    let h = handler(&store, &RrlConfig::off());
    let counts = h.counts();
    let mut got = Got::new();
    let (n, m, k) = (7u64, 5u64, 3u64);
    for (name, times, ecs, country) in [
        ("de.pool.example.org.", n, Some("81.2.69.142"), "uk"),
        ("europe.pool.example.org.", m, Some("89.160.20.112"), "se"),
        ("pool.example.org.", k, None, UNKNOWN_COUNTRY),
    ] {
        for _ in 0..times {
            assert!(ask(
                &h,
                &query(name, RecordType::A, ecs),
                Protocol::Tcp,
                country,
                &mut got
            ));
        }
    }
    let reports = counts.harvest(60);
    let by_ip: BTreeMap<IpAddr, &ServerCount> =
        reports[0].servers.iter().map(|s| (s.ip, s)).collect();
    let s = |i: u8| by_ip[&IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, i))];
    // Each answer holds every server of its label (max_hosts 4).
    let c = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(c, n)| (c.to_string(), *n)).collect()
    };
    assert_eq!(s(1).answers, c(&[("uk", n)]));
    assert_eq!(s(2).answers, c(&[("uk", n), ("se", m)]));
    assert_eq!(s(3).answers, c(&[("se", m), (UNKNOWN_COUNTRY, k)]));
    assert_eq!(reported(&reports), got);
    // zone_answers: the answers of the zones it is in.
    assert_eq!(s(1).zone_answers, n);
    assert_eq!(s(2).zone_answers, n + m);
    assert_eq!(s(3).zone_answers, m + k);
    // expected: records of each label × weight / total weight.
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    close(s(1).expected, (2 * n) as f64 * 3.0 / 4.0);
    close(s(2).expected, (2 * n) as f64 / 4.0 + (2 * m) as f64 / 2.0);
    close(s(3).expected, (2 * m) as f64 / 2.0 + k as f64);
    assert_eq!(
        reports[0].answers_by_country,
        c(&[("uk", n), ("se", m), (UNKNOWN_COUNTRY, k)])
    );
}

#[test]
fn a_long_harvest_is_split_with_unique_ids() {
    let mut data = ZoneData::from_json(b"{}").unwrap();
    data.data.insert(
        "".into(),
        LabelData {
            a: (0..2500u32)
                .map(|i| (std::net::Ipv4Addr::from(0x0a00_0000 + i), 1))
                .collect(),
            ..Default::default()
        },
    );
    let store = ZoneStore::new(ORIGIN).unwrap();
    store.load(&data).unwrap();
    let h = handler(&store, &RrlConfig::off());
    let counts = h.counts();
    let mut got = Got::new();
    assert!(ask(
        &h,
        &query("pool.example.org.", RecordType::A, None),
        Protocol::Udp,
        UNKNOWN_COUNTRY,
        &mut got
    ));
    let reports = counts.harvest(42);
    // Every server of the answering zone is reported (its zone_answers).
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].servers.len(), MAX_SERVERS_PER_REPORT);
    assert_eq!(reports[1].servers.len(), 2500 - MAX_SERVERS_PER_REPORT);
    assert!(
        reports
            .iter()
            .flat_map(|r| &r.servers)
            .all(|s| s.zone_answers == 1)
    );
    assert_eq!(reports[0].answers_by_country.get(UNKNOWN_COUNTRY), Some(&1));
    assert!(reports[1].answers_by_country.is_empty());
    assert_ne!(reports[0].report_id, reports[1].report_id);
    assert_eq!((reports[1].from, reports[1].to), (reports[0].from, 42));
    assert_eq!(reports[0].instance, reports[1].instance);
    assert_eq!(reported(&reports), got);
    // The next harvest starts where this one ended, with new ids.
    ask(
        &h,
        &query("pool.example.org.", RecordType::A, None),
        Protocol::Udp,
        UNKNOWN_COUNTRY,
        &mut got,
    );
    let next = counts.harvest(100);
    assert_eq!(next[0].from, 42);
    assert!(
        next.iter()
            .all(|r| reports.iter().all(|o| o.report_id != r.report_id))
    );
}

#[test]
fn country_slots_cover_geo_countries() {
    for cc in ["uk", "se", "us", "de", "xk"] {
        assert_eq!(country_name(country_slot_of(cc)), cc);
    }
    // Not a country (a continent, "gb" which geo names "uk"): unknown.
    for cc in ["eu", "gb", "zz"] {
        assert_eq!(
            country_name(usize::from(COUNTRIES.by_code[code_index(cc).unwrap()])),
            UNKNOWN_COUNTRY
        );
    }
    assert_eq!(slots(), COUNTRIES.names.len() + 1);
}

/// Not a test: what counting adds to a query (BENCHMARKS.md, gdnsd
/// section). `cargo test --release -p dns --lib counts::tests::hot_path_cost -- --ignored --nocapture`
#[test]
#[ignore]
fn hot_path_cost() {
    use std::time::Instant;
    let store = ZoneStore::new(ORIGIN).unwrap();
    store.load(&zone(0, 12)).unwrap();
    let h = handler(&store, &RrlConfig::off());
    let q = query("pool.example.org.", RecordType::A, Some("81.2.69.142"));
    let zone = store.current().unwrap();
    let Lookup::Addresses(label) = zone.resolve(
        &Name::from_ascii("pool.example.org.").unwrap(),
        RecordType::A,
        &["uk".to_string(), "europe".to_string(), "@".to_string()],
    ) else {
        panic!("no label")
    };
    let loc = crate::locate::locate(h.geo(), "81.2.69.142".parse().unwrap(), None);
    let picked = [0usize, 1, 2, 3];
    let n = 2_000_000u32;
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let mut out = Vec::with_capacity(512);
    for round in 0..3 {
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(h.answer_fast(&q, ip, true, &mut out));
        }
        let query_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        let t = Instant::now();
        for _ in 0..n {
            let slot = country_slot(std::hint::black_box(&loc));
            zone.tally().answered(label, Family::V4, &picked, slot);
        }
        let count_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        // Two threads counting the same answer at once: the shared cells'
        // cache lines bounce (the worst case: one label, one country).
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..n {
                        let slot = country_slot(std::hint::black_box(&loc));
                        zone.tally().answered(label, Family::V4, &picked, slot);
                    }
                });
            }
        });
        let contended_ns = t.elapsed().as_nanos() as f64 / f64::from(2 * n);
        println!(
            "round {round}: answer_fast {query_ns:.0} ns/query; counting alone {count_ns:.1} ns, \
             2 threads on the same cells {contended_ns:.1} ns per answer (wall / answers)"
        );
    }
    drop(zone);
    assert!(!h.counts().harvest(1).is_empty());
}
