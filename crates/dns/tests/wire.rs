//! The server on the wire with a raw client: weighting with a fixed seed,
//! robustness against random and mutated packets, EDNS corner cases, and
//! zone refreshes while answering.

mod common;

use common::*;
use dns::{RrlConfig, ZoneData, ZoneStore, refresh_loop};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const WEIGHTS: [(&str, u32); 6] = [
    ("192.0.2.1", 3000),
    ("192.0.2.2", 2000),
    ("192.0.2.3", 1000),
    ("192.0.2.4", 1000),
    ("192.0.2.5", 500),
    ("192.0.2.6", 250),
];

fn weighted_zone() -> ZoneData {
    let a: Vec<String> = WEIGHTS
        .iter()
        .map(|(ip, w)| format!("[\"{ip}\", {w}]"))
        .collect();
    let a = a.join(",");
    ZoneData::from_json(
        format!(
            r#"{{"serial": 1, "data": {{
                "": {{"a": [{a}]}},
                "1": {{"a": [{a}], "max_hosts": 1}}
            }}}}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

/// Share of each server over `answers`, counting only the first record of
/// each answer (drawn from all servers, so it follows the weights).
fn first_record_shares(
    addr: std::net::SocketAddr,
    name: &str,
    answers: usize,
) -> HashMap<IpAddr, f64> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut count: HashMap<IpAddr, usize> = HashMap::new();
    let bytes = query(name, RecordType::A, None).to_vec().unwrap();
    for _ in 0..answers {
        let reply = Message::from_vec(&udp_raw(&sock, addr, &bytes).expect("reply")).unwrap();
        let got = addresses(&reply);
        assert!(!got.is_empty());
        *count.entry(got[0]).or_default() += 1;
    }
    count
        .into_iter()
        .map(|(ip, c)| (ip, c as f64 / answers as f64))
        .collect()
}

#[test]
fn weighting_through_the_handler_follows_netspeed() {
    // 40,000 queries from one address: more than rate limiting allows.
    let srv = TestServer::start_with(&weighted_zone(), Some(20_000), &RrlConfig::off());
    let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
    // 20,000 answers of 4 (first record) and 20,000 answers of 1.
    for name in [ORIGIN.to_string(), format!("1.{ORIGIN}")] {
        let shares = first_record_shares(srv.addr, &name, 20_000);
        for (ip, w) in WEIGHTS {
            let want = f64::from(w) / f64::from(total);
            let got = shares
                .get(&ip.parse::<IpAddr>().unwrap())
                .copied()
                .unwrap_or(0.0);
            assert!(
                (got - want).abs() <= 0.1 * want,
                "{name} {ip}: share {got:.4}, netspeed share {want:.4}"
            );
        }
    }
}

#[test]
fn same_seed_same_answers() {
    let run = || {
        let srv = TestServer::start(&weighted_zone(), Some(5));
        (0..50)
            .map(|_| addresses(&udp(srv.addr, &query(ORIGIN, RecordType::A, None))))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

/// Valid queries with their bytes mutated, random bytes, and hand-made
/// nasties (compression loops, huge counts, bad EDNS options).
fn nasty_packets(rng: &mut StdRng, n: usize) -> Vec<Vec<u8>> {
    let valid: Vec<Vec<u8>> = [
        query(ORIGIN, RecordType::A, None),
        query(
            &format!("2.{ORIGIN}"),
            RecordType::AAAA,
            Some(("2001:218::", 48)),
        ),
        query(
            &format!("_country.{ORIGIN}"),
            RecordType::TXT,
            Some(("81.2.69.142", 32)),
        ),
        query(
            &format!("0.uk.{ORIGIN}"),
            RecordType::ANY,
            Some(("89.160.20.112", 28)),
        ),
    ]
    .iter()
    .map(|m| m.to_vec().unwrap())
    .collect();
    let mut crafted: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; 11],
        vec![0; 12],
        // One question whose name is a pointer to itself.
        vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1],
        // 65535 questions announced, one present.
        {
            let mut q = valid[0].clone();
            q[4] = 0xff;
            q[5] = 0xff;
            q
        },
        // Label length past the end.
        vec![0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, b'a'],
        // A response (QR set) must be ignored.
        {
            let mut q = valid[0].clone();
            q[2] |= 0x80;
            q
        },
    ];
    // ECS options with impossible families and prefixes, appended as OPT.
    for (family, source) in [(1u16, 33u8), (1, 255), (2, 129), (3, 8), (0, 0), (1, 0)] {
        let mut q = query(ORIGIN, RecordType::A, None).to_vec().unwrap();
        // Replace the empty OPT RDATA (last 2 bytes: rdlength 0) with one ECS.
        q.truncate(q.len() - 2);
        let addr = [81u8, 2, 69, 142, 0, 0];
        let option_len = 4 + addr.len() as u16;
        q.extend((4 + option_len).to_be_bytes());
        q.extend(8u16.to_be_bytes());
        q.extend(option_len.to_be_bytes());
        q.extend(family.to_be_bytes());
        q.extend([source, 0]);
        q.extend(addr);
        crafted.push(q);
    }
    let mut out = crafted;
    while out.len() < n {
        let mut p = valid[rng.random_range(0..valid.len())].clone();
        match rng.random_range(0..4) {
            0 => {
                let len = rng.random_range(0..600);
                p = (0..len).map(|_| rng.random()).collect();
            }
            1 => {
                for _ in 0..rng.random_range(1..6) {
                    let i = rng.random_range(0..p.len());
                    p[i] = rng.random();
                }
            }
            2 => {
                let keep = rng.random_range(0..p.len());
                p.truncate(keep);
            }
            _ => {
                let i = rng.random_range(0..p.len());
                p[i] ^= 1 << rng.random_range(0..8);
                p.extend((0..rng.random_range(0..40)).map(|_| rng.random::<u8>()));
            }
        }
        out.push(p);
    }
    out
}

fn assert_still_answers(srv: &TestServer) {
    let uk: Vec<IpAddr> = servers_in("uk");
    let reply = udp(
        srv.addr,
        &query(ORIGIN, RecordType::A, Some(("81.2.69.142", 32))),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(addresses(&reply).iter().all(|ip| uk.contains(ip)));
    let reply = tcp(srv.addr, &query(ORIGIN, RecordType::A, None));
    assert!(!addresses(&reply).is_empty());
}

#[test]
fn random_and_mutated_packets_over_udp() {
    // A flood from one address: rate limiting would drop most replies.
    let srv = TestServer::start_with(&test_zone(), None, &RrlConfig::off());
    let mut rng = StdRng::seed_from_u64(1);
    let packets = nasty_packets(&mut rng, 4000);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut replies = 0;
    for (i, p) in packets.iter().enumerate() {
        sock.send_to(p, srv.addr).unwrap();
        // Read what came back now and then; every reply must decode.
        if i % 8 == 7 {
            let mut buf = [0u8; 65535];
            while let Ok((n, _)) = sock.recv_from(&mut buf) {
                replies += 1;
                assert!(n >= 12, "short reply");
                assert!(Message::from_vec(&buf[..n]).is_ok() || buf[2] & 0x80 != 0);
            }
        }
    }
    assert!(replies > 100, "only {replies} replies");
    assert_still_answers(&srv);
}

#[test]
fn random_and_mutated_packets_over_tcp() {
    let srv = TestServer::start(&test_zone(), None);
    let mut rng = StdRng::seed_from_u64(2);
    let packets = nasty_packets(&mut rng, 3000);
    for chunk in packets.chunks(15) {
        let Ok(mut s) = TcpStream::connect(srv.addr) else {
            panic!("connect failed");
        };
        let mut bytes = Vec::new();
        for p in chunk {
            // Mostly honest framing, sometimes a lying length.
            let len = if rng.random_ratio(1, 10) {
                rng.random::<u16>()
            } else {
                p.len() as u16
            };
            bytes.extend(len.to_be_bytes());
            bytes.extend(p);
        }
        // The server may close on garbage; that is fine.
        let _ = s.write_all(&bytes);
    }
    // A connection that sends half a frame and stays silent does not block others.
    let mut idle = TcpStream::connect(srv.addr).unwrap();
    idle.write_all(&[0, 40, 1, 2]).unwrap();
    assert_still_answers(&srv);
}

#[test]
fn other_opcodes_and_question_counts() {
    let srv = TestServer::start(&test_zone(), None);
    let mut m = query(ORIGIN, RecordType::A, None);
    m.metadata.op_code = hickory_proto::op::OpCode::Status;
    assert_eq!(
        udp(srv.addr, &m).metadata.response_code,
        ResponseCode::NotImp
    );
    let mut m = query(ORIGIN, RecordType::A, None);
    m.queries.clear();
    assert_eq!(
        udp(srv.addr, &m).metadata.response_code,
        ResponseCode::FormErr
    );
    let mut m = query(ORIGIN, RecordType::A, None);
    m.add_query(hickory_proto::op::Query::query(
        hickory_proto::rr::Name::from_ascii(ORIGIN).unwrap(),
        RecordType::AAAA,
    ));
    assert_eq!(
        udp(srv.addr, &m).metadata.response_code,
        ResponseCode::FormErr
    );
    // No zone transfers: the zone is made per query.
    for qtype in [RecordType::AXFR, RecordType::IXFR] {
        let reply = tcp(srv.addr, &query(ORIGIN, qtype, None));
        assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    }
}

#[test]
fn no_zone_yet_is_servfail() {
    // A store with nothing loaded (the service was never reached).
    let empty = ZoneStore::new(ORIGIN).unwrap();
    assert!(empty.current().is_none());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let listener = dns::DnsListener::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = dns::GeoDnsHandler::new(empty, None);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(listener.serve(handler, async {
            let _ = rx.await;
        }));
        let reply =
            tokio::task::spawn_blocking(move || udp(addr, &query(ORIGIN, RecordType::A, None)))
                .await
                .unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
        let _ = tx.send(());
        task.await.unwrap().unwrap();
    });
}

#[test]
fn refresh_swaps_zones_and_keeps_the_last_good_one() {
    let srv = TestServer::start(&test_zone(), None);
    let store = srv.store.clone();
    let calls = Arc::new(AtomicU32::new(0));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let c = calls.clone();
    // Source: 1st call a zone with serial 100, then failures, then serial 200.
    let task = rt.spawn(refresh_loop(
        store.clone(),
        Duration::from_millis(50),
        move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => {
                        let mut z = test_zone();
                        z.serial = 100;
                        Ok(z)
                    }
                    1..=4 => Err("service down".to_string()),
                    5 => ZoneData::from_json(b"{\"data\": {\"bad label!\": {}}}")
                        .map_err(|e| e.to_string()),
                    _ => {
                        let mut z = test_zone();
                        z.serial = 200;
                        Ok(z)
                    }
                }
            }
        },
        async {
            let _ = stopped.await;
        },
    ));
    let serial = || store.current().unwrap().serial();
    let wait_for = |want: u32| {
        for _ in 0..200 {
            if serial() == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("serial {} never became {want}", serial());
    };
    wait_for(100);
    // While the source fails, queries are answered from serial 100.
    while calls.load(Ordering::SeqCst) < 5 {
        let reply = udp(srv.addr, &query(ORIGIN, RecordType::A, None));
        assert!(!addresses(&reply).is_empty());
        assert_eq!(serial(), 100);
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_for(200);
    let reply = udp(srv.addr, &query(ORIGIN, RecordType::SOA, None));
    let soa = match &reply.answers[0].data {
        hickory_proto::rr::RData::SOA(s) => Some(s.serial),
        _ => None,
    };
    assert_eq!(soa, Some(200));
    let _ = stop.send(());
    rt.block_on(task).unwrap();
}

#[test]
fn loads_do_not_stop_queries() {
    // Queries as fast as they are answered: rate limiting off.
    let srv = TestServer::start_with(&test_zone(), None, &RrlConfig::off());
    let store = srv.store.clone();
    let loader = std::thread::spawn(move || {
        for serial in 0..200 {
            let mut z = test_zone();
            z.serial = serial;
            store.load(&z).unwrap();
        }
    });
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let bytes = query(ORIGIN, RecordType::A, None).to_vec().unwrap();
    while !loader.is_finished() {
        let reply = Message::from_vec(&udp_raw(&sock, srv.addr, &bytes).expect("reply")).unwrap();
        assert!(!addresses(&reply).is_empty());
    }
    loader.join().unwrap();
}
