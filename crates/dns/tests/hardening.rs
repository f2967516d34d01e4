//! What an outside attacker tried (issue 11, item 7), on real sockets:
//! `ANY` for amplification, floods from one source, and malformed EDNS
//! Client Subnet options.

mod common;

use common::*;
use dns::RrlConfig;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The raw reply to `m` over UDP, sent from `bind` (any 127/8 address).
fn udp_bytes_from(bind: &str, addr: SocketAddr, m: &Message) -> Vec<u8> {
    let sock = UdpSocket::bind((bind, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    udp_raw(&sock, addr, &m.to_vec().unwrap()).expect("no UDP reply")
}

fn types(m: &Message) -> Vec<RecordType> {
    m.answers.iter().map(|r| r.record_type()).collect()
}

#[test]
fn any_gets_one_rrset_no_larger_than_an_a_answer() {
    let srv = TestServer::start(&test_zone(), None);
    let two = format!("2.{ORIGIN}");
    // A client in the UK: 2.uk has IPv4 and IPv6 servers.
    let uk = Some(("81.2.69.142", 32));
    let size = |qtype| udp_bytes_from("127.0.0.1", srv.addr, &query(&two, qtype, uk)).len();
    let a = udp(srv.addr, &query(&two, RecordType::A, uk));
    let aaaa = udp(srv.addr, &query(&two, RecordType::AAAA, uk));
    assert!(!a.answers.is_empty() && !aaaa.answers.is_empty());
    let a_len = size(RecordType::A);

    let any_udp = udp_bytes_from("127.0.0.1", srv.addr, &query(&two, RecordType::ANY, uk));
    let any_tcp = tcp_raw(
        srv.addr,
        &query(&two, RecordType::ANY, uk).to_vec().unwrap(),
    );
    for (how, bytes) in [("udp", &any_udp), ("tcp", &any_tcp)] {
        let any = Message::from_vec(bytes).unwrap();
        assert_eq!(any.metadata.response_code, ResponseCode::NoError, "{how}");
        // The A RRset alone (RFC 8482 §4.1), as many records as for A.
        assert_eq!(types(&any), types(&a), "{how}");
        assert!(!any.metadata.truncation, "{how}");
        // So exactly the size of the A answer: no larger than what any
        // A query gets (the full answer also held the AAAA records).
        assert_eq!(bytes.len(), a_len, "{how}");
    }

    // A client in Japan: 2.jp has IPv6 servers only, so ANY gets those.
    let jp = Some(("2001:218::", 48));
    let any = udp(srv.addr, &query(&two, RecordType::ANY, jp));
    assert!(!any.answers.is_empty());
    assert!(types(&any).iter().all(|t| *t == RecordType::AAAA));
}

/// Replies to `n` queries for `name` sent back to back in bursts of 25
/// from `sock` (a burst is drained before the next, so the kernel's socket
/// buffers lose nothing): (answered, slipped, other, time the sending took).
fn blast(
    sock: &UdpSocket,
    addr: SocketAddr,
    name: &str,
    n: u16,
) -> (usize, usize, usize, Duration) {
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut replies: HashMap<u16, Message> = HashMap::new();
    let drain = |replies: &mut HashMap<u16, Message>| {
        let mut buf = [0u8; 4096];
        while let Ok((len, _)) = sock.recv_from(&mut buf) {
            let m = Message::from_vec(&buf[..len]).unwrap();
            replies.insert(m.metadata.id, m);
        }
    };
    let started = Instant::now();
    for id in 0..n {
        let mut q = query(name, RecordType::A, None);
        q.metadata.id = id;
        sock.send_to(&q.to_vec().unwrap(), addr).unwrap();
        if id % 25 == 24 {
            drain(&mut replies);
        }
    }
    let took = started.elapsed();
    drain(&mut replies);
    let (mut answered, mut slipped, mut other) = (0, 0, 0);
    for m in replies.values() {
        let t = m.metadata.truncation;
        let rcode = m.metadata.response_code;
        match (t, m.answers.len(), rcode) {
            (false, 1.., ResponseCode::NoError) => answered += 1,
            (true, 0, ResponseCode::NoError) if m.additionals.is_empty() => slipped += 1,
            _ => other += 1,
        }
    }
    (answered, slipped, other, took)
}

#[test]
fn a_flood_from_one_prefix_is_limited_with_slip_and_others_are_not() {
    let srv = TestServer::start(&test_zone(), None);
    let rate = RrlConfig::default().rate as usize;
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    let n = 5000;
    let (answered, slipped, other, took) = blast(&flood, srv.addr, ORIGIN, n);
    eprintln!("{n} queries in {took:?}: {answered} answered, {slipped} slipped, {other} other");
    assert_eq!(other, 0);
    // At most twice the rate in a client's first second, the rate after
    // (and nothing while it keeps flooding), whichever seconds the burst
    // spans; before RRL all 5000 were answered.
    let seconds = took.as_secs() as usize + 2;
    assert!(answered >= rate, "{answered} answered");
    assert!(
        answered <= 2 * rate * seconds,
        "{answered} answered in {took:?}"
    );
    // Every second response over the limit is a TC=1 answer; the rest is
    // dropped.
    let limited = usize::from(n) - answered;
    assert!(
        slipped.abs_diff(limited / 2) <= limited / 50,
        "{slipped} slipped of {limited} limited"
    );

    // The flooding /24 is still limited from another of its addresses...
    let same = UdpSocket::bind("127.0.0.2:0").unwrap();
    let (a2, s2, o2, _) = blast(&same, srv.addr, ORIGIN, 20);
    assert_eq!((a2, o2), (0, 0), "{s2} slipped");
    assert!(s2 >= 9, "{s2} slipped");
    // ...but another /24 is answered in full,
    let other_prefix = Message::from_vec(&udp_bytes_from(
        "127.1.0.1",
        srv.addr,
        &query(ORIGIN, RecordType::A, None),
    ))
    .unwrap();
    assert!(!other_prefix.metadata.truncation);
    assert!(!addresses(&other_prefix).is_empty());
    // and so is TCP from the flooding address.
    let over_tcp = tcp(srv.addr, &query(ORIGIN, RecordType::A, None));
    assert!(!over_tcp.metadata.truncation);
    assert!(!addresses(&over_tcp).is_empty());
}

#[test]
fn rate_limiting_off_answers_every_query() {
    let srv = TestServer::start_with(&test_zone(), None, &RrlConfig::off());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (answered, slipped, other, _) = blast(&sock, srv.addr, ORIGIN, 2000);
    assert_eq!((answered, slipped, other), (2000, 0, 0));
}

/// A query for the apex carrying one ECS option with exactly these bytes
/// (FAMILY, SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH, ADDRESS).
fn ecs_query(option: &[u8]) -> Vec<u8> {
    let mut q = query(ORIGIN, RecordType::A, None).to_vec().unwrap();
    // The OPT record is last, with empty RDATA: replace its RDLENGTH.
    q.truncate(q.len() - 2);
    let len = option.len() as u16;
    q.extend((4 + len).to_be_bytes());
    q.extend(8u16.to_be_bytes());
    q.extend(len.to_be_bytes());
    q.extend(option);
    q
}

fn rcode(reply: &[u8]) -> u8 {
    reply[3] & 0x0f
}

#[test]
fn malformed_client_subnet_is_formerr_and_good_ones_locate() {
    let srv = TestServer::start(&test_zone(), None);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let formerr = ResponseCode::FormErr.low();
    let bad: &[(&str, &[u8])] = &[
        ("scope not 0", &[0, 1, 24, 16, 81, 2, 69]),
        ("an extra address byte", &[0, 1, 24, 0, 81, 2, 69, 0]),
        ("a missing address byte", &[0, 1, 24, 0, 81, 2]),
        ("an address with prefix 0", &[0, 1, 0, 0, 81]),
        ("bits past the prefix", &[0, 1, 28, 0, 89, 160, 20, 127]),
        ("unknown family", &[0, 3, 8, 0, 1]),
        ("IPv4 prefix over 32", &[0, 1, 33, 0, 81, 2, 69, 142, 0]),
        ("IPv6 prefix over 128", &[0, 2, 129, 0]),
        ("shorter than the fixed part", &[0, 1, 24]),
    ];
    for (what, option) in bad {
        let q = ecs_query(option);
        let reply = udp_raw(&sock, srv.addr, &q).expect("no UDP reply");
        assert_eq!(rcode(&reply), formerr, "udp, {what}");
        assert_eq!(rcode(&tcp_raw(srv.addr, &q)), formerr, "tcp, {what}");
    }

    let good: &[(&[u8], &str)] = &[
        (&[0, 1, 32, 0, 81, 2, 69, 142], "uk"),
        (&[0, 1, 27, 0, 81, 2, 69, 160], "uk"),
        (&[0, 1, 28, 0, 89, 160, 20, 112], "europe"),
        (&[0, 2, 48, 0, 0x20, 0x01, 0x02, 0x18, 0, 0], "@"),
        // Prefix 0: "do not locate me by subnet" (loopback peer: apex).
        (&[0, 1, 0, 0], "@"),
    ];
    for (option, zone) in good {
        let reply = udp_raw(&sock, srv.addr, &ecs_query(option)).expect("no UDP reply");
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{option:?}"
        );
        let got = addresses(&m);
        let zone_servers: Vec<IpAddr> = servers_in(zone);
        assert!(!got.is_empty(), "{option:?}");
        assert!(
            got.iter().all(|ip| zone_servers.contains(ip)),
            "{option:?}: {got:?} not all in {zone}"
        );
        // The option is echoed with the scope the answer holds for.
        let echoed = m
            .edns
            .as_ref()
            .and_then(|e| e.option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet))
            .is_some();
        assert!(echoed, "{option:?}");
    }
}
