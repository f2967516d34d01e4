//! Any datagram, whatever a hostile or broken server sends: decoding,
//! matching and classifying it must never panic, and an unusable reply must
//! never yield an offset.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ntp::classify::{evaluate, match_reply};
use ntp::{NtpTimestamp, Packet};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let decoded = Packet::decode(data);
    assert_eq!(decoded.is_ok(), data.len() >= 48);
    if let Ok(p) = &decoded {
        let _ = (p.kiss_code(), p.refid_string());
        // Encoding what was decoded gives the same header bytes back.
        assert_eq!(&p.encode()[..], &data[..48]);
    }

    // The nonce is taken from the input's origin field half of the time, so
    // the fuzzer reaches past the origin check as well as failing it.
    let nonce = match data.get(24..32) {
        Some(b) if data.len() % 2 == 0 => NtpTimestamp(u64::from_be_bytes(b.try_into().unwrap())),
        _ => NtpTimestamp(0x0123_4567_89ab_cdef),
    };
    let t1 = NtpTimestamp::from_unix(1_800_000_000, 0);
    let elapsed = Duration::from_micros(data.first().copied().unwrap_or(0) as u64 * 1000);
    match match_reply(data, nonce) {
        Ok(p) => {
            assert_eq!(p.origin_ts, nonce);
            assert_eq!(p.mode, 4);
            assert!(p.version == 3 || p.version == 4);
            let m = evaluate(&p, t1, elapsed);
            assert!(m.rtt >= 0.0 && m.rtt.is_finite());
            if m.offset.is_some() {
                // Only a clean reply yields an offset.
                assert!(m.error.is_none());
                assert!(p.stratum != 0 && p.leap != 3);
                assert!(!p.receive_ts.is_zero() && !p.transmit_ts.is_zero());
                assert!(m.offset.unwrap().is_finite());
            } else {
                assert!(m.error.is_some());
            }
            if p.stratum == 0 {
                assert!(m.offset.is_none());
            }
        }
        Err(why) => assert!(!why.is_empty()),
    }
});
