//! Decode + classify one reply: the per-packet cost of the measuring core.
use criterion::{Criterion, criterion_group, criterion_main};
use ntp::classify::{evaluate, match_reply};
use ntp::{NtpTimestamp, Packet};
use std::hint::black_box;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let nonce = NtpTimestamp(0xdead_beef_0000_0001);
    let t1 = NtpTimestamp::from_unix(1_800_000_000, 0);
    let mut p = Packet::client_request(NtpTimestamp::ZERO);
    p.mode = 4;
    p.stratum = 2;
    p.reference_id = [127, 127, 1, 1];
    p.origin_ts = nonce;
    p.receive_ts = t1 + Duration::from_micros(150);
    p.transmit_ts = t1 + Duration::from_micros(160);
    let bytes = p.encode();
    c.bench_function("decode+classify", |b| {
        b.iter(|| {
            let p = match_reply(black_box(&bytes), nonce).unwrap();
            black_box(evaluate(&p, t1, Duration::from_micros(310)))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
