use super::*;
use crate::generate::{ZoneOptions, build_zone};
use crate::live_zone::ZoneStore;
use crate::rrl::RrlConfig;
use crate::sockets::respond_generic;
use crate::test_support;
use hickory_proto::op::Message;
use hickory_server::net::xfer::Protocol;
use std::net::SocketAddr;

const ORIGIN: &str = "pool.example.org";
/// More names the zone answers under: another, and one nested in it.
const MORE_ORIGINS: [&str; 2] = ["pool.example.net", "ntp.pool.example.net"];

/// Servers in the UK, Germany and the US, IPv4 and IPv6, various weights.
fn store() -> ZoneStore {
    let servers = test_support::servers(&["uk", "de", "us"], 0..12);
    let vendor = |name: &str, zone: &str| crate::Vendor {
        name: name.into(),
        zone: zone.into(),
    };
    let opts = ZoneOptions {
        vendors: vec![vendor("debian", "@"), vendor("acme", "de")],
        ..ZoneOptions::default()
    };
    let zone = build_zone(ORIGIN, &servers, &opts, 7);
    let store = ZoneStore::with_origins(&[ORIGIN, MORE_ORIGINS[0], MORE_ORIGINS[1]]).unwrap();
    store.load(&zone).unwrap();
    store
}

fn handler(store: &ZoneStore, rrl: &RrlConfig, seed: u64) -> GeoDnsHandler {
    test_support::handler(store, rrl).with_seed(seed)
}

/// A query; `edns`: the payload size and an optional ECS (address, prefix).
fn query(name: &str, qtype: RecordType, edns: Option<(u16, Option<(&str, u8)>)>) -> Vec<u8> {
    test_support::query(0x1234, name, qtype, edns)
}

fn src() -> SocketAddr {
    "127.0.0.1:5353".parse().unwrap()
}

/// Queries the fast path answers, in several shapes.
fn plain_queries() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for name in [
        "pool.example.org.",
        "Pool.EXAMPLE.org.",
        "0.pool.example.org.",
        "2.pool.example.org.",
        "de.pool.example.org.",
        "1.uk.pool.example.org.",
        "europe.pool.example.org.",
        "gb.pool.example.org.",
        "debian.pool.example.org.",
        "0.Debian.pool.example.org.",
        "2.debian.pool.example.org.",
        "3.acme.pool.example.org.",
        // Under the other origins (the longest when they nest).
        "pool.example.net.",
        "2.Pool.Example.NET.",
        "1.uk.pool.example.net.",
        "ntp.pool.example.net.",
        "de.ntp.pool.example.net.",
    ] {
        for qtype in [RecordType::A, RecordType::AAAA] {
            for edns in [
                None,
                Some((1232, None)),
                Some((4096, Some(("81.2.69.142", 32)))),
                Some((100, Some(("89.160.20.112", 28)))),
                Some((1232, Some(("2001:218::", 48)))),
                Some((1232, Some(("175.16.199.0", 24)))),
                Some((1232, Some(("10.0.0.0", 8)))),
                Some((1232, Some(("0.0.0.0", 0)))),
            ] {
                out.push(query(name, qtype, edns));
            }
        }
    }
    out
}

#[test]
fn fast_and_generic_answer_alike() {
    let store = store();
    for rrl in [RrlConfig::off(), RrlConfig::default()] {
        let (fast, generic) = (handler(&store, &rrl, 9), handler(&store, &rrl, 9));
        let mut answered = 0;
        for q in plain_queries() {
            for protocol in [Protocol::Udp, Protocol::Tcp] {
                let udp = protocol == Protocol::Udp;
                let mut a = Vec::new();
                let mut b = Vec::new();
                let got = fast.answer_fast(&q, src().ip(), udp, &mut a);
                let sent = respond_generic(&generic, &q, src(), protocol, &mut b);
                match got {
                    Fast::Answer => {
                        answered += 1;
                        assert_eq!(a, b, "{:?}", Message::from_vec(&q).unwrap());
                    }
                    Fast::Drop => assert!(!sent),
                    // NODATA (AAAA outside `2.`): the generic path's; keep
                    // the two generators in step.
                    Fast::Generic => assert!(respond_generic(&fast, &q, src(), protocol, &mut a)),
                }
            }
        }
        // Every A query and the AAAA ones for `2.` and `2.debian` (with and
        // without ECS).
        assert!(answered >= 2 * 8 * 9, "{answered} answered");
    }
}

#[test]
fn rate_limited_answers_match_too() {
    // Rate 1: after the first answers the prefix gets slips and drops, the
    // same from both paths.
    let store = store();
    let rrl = RrlConfig {
        rate: 1,
        ..RrlConfig::default()
    };
    let (fast, generic) = (handler(&store, &rrl, 3), handler(&store, &rrl, 3));
    let q = query("pool.example.org.", RecordType::A, Some((1232, None)));
    let mut kinds = Vec::new();
    for _ in 0..10 {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let got = fast.answer_fast(&q, src().ip(), true, &mut a);
        let sent = respond_generic(&generic, &q, src(), Protocol::Udp, &mut b);
        match got {
            Fast::Answer => assert_eq!(a, b),
            Fast::Drop => assert!(!sent),
            Fast::Generic => panic!("a plain query"),
        }
        kinds.push((got, a.get(2).map(|f| f & 0x02 != 0)));
    }
    assert!(kinds.contains(&(Fast::Answer, Some(true))), "{kinds:?}");
    assert!(kinds.contains(&(Fast::Drop, None)), "{kinds:?}");
}

#[test]
fn everything_else_goes_to_the_generic_path() {
    let store = store();
    let h = handler(&store, &RrlConfig::off(), 1);
    let plain = query("pool.example.org.", RecordType::A, Some((1232, None)));
    let ecs = query(
        "pool.example.org.",
        RecordType::A,
        Some((1232, Some(("81.2.69.142", 32)))),
    );
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("ANY", query("pool.example.org.", RecordType::ANY, None)),
        (
            "TXT",
            query("_status.pool.example.org.", RecordType::TXT, None),
        ),
        (
            "debug A",
            query("_country.pool.example.org.", RecordType::A, None),
        ),
        ("SOA", query("pool.example.org.", RecordType::SOA, None)),
        ("other zone", query("example.net.", RecordType::A, None)),
        (
            "no such name",
            query("xx.pool.example.org.", RecordType::A, None),
        ),
        (
            "NODATA",
            query("0.pool.example.org.", RecordType::AAAA, None),
        ),
        (
            "suffix only",
            query("xpool.example.org.", RecordType::A, None),
        ),
    ];
    let mut edit = |what: &'static str, base: &[u8], f: &dyn Fn(&mut Vec<u8>)| {
        let mut q = base.to_vec();
        f(&mut q);
        cases.push((what, q));
    };
    edit("a response", &plain, &|q| q[2] |= 0x80);
    edit("opcode STATUS", &plain, &|q| q[2] |= 2 << 3);
    edit("two questions", &plain, &|q| q[5] = 2);
    edit("an answer record", &plain, &|q| q[7] = 1);
    edit("a trailing byte", &plain, &|q| q.push(0));
    edit("cut short", &plain, &|q| {
        q.pop();
    });
    edit("EDNS version 1", &plain, &|q| {
        let n = q.len();
        q[n - 5] = 1;
    });
    edit("class CH", &plain, &|q| {
        let n = q.len();
        q[n - 12] = 3;
    });
    // ECS with bits past the prefix (FORMERR is the generic path's).
    edit("bad ECS", &ecs, &|q| {
        let n = q.len();
        q[n - 1] = 143;
        q[n - 6] = 31;
    });
    // A cookie option instead of ECS (same length, code 10).
    edit("a cookie", &ecs, &|q| {
        let n = q.len();
        q[n - 11] = 10;
    });
    for (what, q) in &cases {
        let mut out = Vec::new();
        assert_eq!(
            h.answer_fast(q, src().ip(), true, &mut out),
            Fast::Generic,
            "{what}"
        );
    }
    // The unedited queries are the fast path's, under every origin.
    let mut out = Vec::new();
    for name in ["0.de.pool.example.net.", "de.ntp.pool.example.net."] {
        let q = query(name, RecordType::A, None);
        assert_eq!(h.answer_fast(&q, src().ip(), true, &mut out), Fast::Answer);
    }
    assert_eq!(
        h.answer_fast(&plain, src().ip(), true, &mut out),
        Fast::Answer
    );
    assert_eq!(
        h.answer_fast(&ecs, src().ip(), true, &mut out),
        Fast::Answer
    );
    // Vendor names too: the alias is resolved inside resolve_relative.
    for name in ["debian.pool.example.org.", "1.ACME.pool.example.org."] {
        let q = query(name, RecordType::A, None);
        assert_eq!(h.answer_fast(&q, src().ip(), true, &mut out), Fast::Answer);
    }
    let q = query("2.debian.pool.example.org.", RecordType::AAAA, None);
    assert_eq!(h.answer_fast(&q, src().ip(), true, &mut out), Fast::Answer);
}

#[test]
fn relative_names() {
    let origin = b"\x04pool\x07example\x03org\x00";
    assert_eq!(relative(origin, origin).as_deref(), Some(""));
    assert_eq!(
        relative(b"\x01\x30\x02De\x04POOL\x07example\x03org\x00", origin).as_deref(),
        Some("0.de")
    );
    assert_eq!(relative(b"\x05xpool\x07example\x03org\x00", origin), None);
    assert_eq!(
        relative(b"\x03a.b\x04pool\x07example\x03org\x00", origin),
        None
    );
    assert_eq!(relative(b"\x03org\x00", origin), None);
    // A label that would straddle the origin.
    assert_eq!(
        relative(b"\x09ab\x04pool\x07example\x03org\x00", origin),
        None
    );
}
