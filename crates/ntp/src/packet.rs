//! The 48-byte NTPv4 header (RFC 5905 §7.3): decode and encode every field.
//! Pure: bytes in, values out. Extension fields and MACs after byte 48 are
//! counted, not interpreted.

use crate::time::{NtpTimestamp, short_to_seconds};
use serde::{Deserialize, Serialize};

/// Length of the NTP header without extension fields.
pub const HEADER_LEN: usize = 48;

/// Association mode (RFC 5905 figure 10).
pub mod mode {
    pub const SYMMETRIC_ACTIVE: u8 = 1;
    pub const SYMMETRIC_PASSIVE: u8 = 2;
    pub const CLIENT: u8 = 3;
    pub const SERVER: u8 = 4;
    pub const BROADCAST: u8 = 5;
}

/// Why a byte string is not an NTP header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("short packet ({0} bytes, need 48)")]
    TooShort(usize),
}

/// Every field of an NTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    /// Leap indicator: 0 none, 1 +1 s, 2 −1 s, 3 unsynchronised.
    pub leap: u8,
    pub version: u8,
    pub mode: u8,
    pub stratum: u8,
    /// log2 seconds.
    pub poll: i8,
    /// log2 seconds.
    pub precision: i8,
    /// 16.16 fixed point seconds.
    pub root_delay: u32,
    /// 16.16 fixed point seconds.
    pub root_dispersion: u32,
    pub reference_id: [u8; 4],
    pub reference_ts: NtpTimestamp,
    pub origin_ts: NtpTimestamp,
    pub receive_ts: NtpTimestamp,
    pub transmit_ts: NtpTimestamp,
}

impl Packet {
    /// An NTPv4 client request whose transmit timestamp is `nonce`.
    pub fn client_request(nonce: NtpTimestamp) -> Self {
        Packet {
            leap: 0,
            version: 4,
            mode: mode::CLIENT,
            stratum: 0,
            poll: 0,
            precision: 0,
            root_delay: 0,
            root_dispersion: 0,
            reference_id: [0; 4],
            reference_ts: NtpTimestamp::ZERO,
            origin_ts: NtpTimestamp::ZERO,
            receive_ts: NtpTimestamp::ZERO,
            transmit_ts: nonce,
        }
    }

    /// Decode the header at the start of `buf`. Trailing bytes (extension
    /// fields, MAC) are allowed and ignored.
    pub fn decode(buf: &[u8]) -> Result<Packet, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::TooShort(buf.len()));
        }
        let u32_at = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let ts_at = |i: usize| NtpTimestamp(((u32_at(i) as u64) << 32) | u32_at(i + 4) as u64);
        Ok(Packet {
            leap: buf[0] >> 6,
            version: (buf[0] >> 3) & 0x7,
            mode: buf[0] & 0x7,
            stratum: buf[1],
            poll: buf[2] as i8,
            precision: buf[3] as i8,
            root_delay: u32_at(4),
            root_dispersion: u32_at(8),
            reference_id: [buf[12], buf[13], buf[14], buf[15]],
            reference_ts: ts_at(16),
            origin_ts: ts_at(24),
            receive_ts: ts_at(32),
            transmit_ts: ts_at(40),
        })
    }

    /// Encode to the 48-byte wire form. Leap, version and mode are masked to
    /// their 2, 3 and 3 bits.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = ((self.leap & 0x3) << 6) | ((self.version & 0x7) << 3) | (self.mode & 0x7);
        b[1] = self.stratum;
        b[2] = self.poll as u8;
        b[3] = self.precision as u8;
        b[4..8].copy_from_slice(&self.root_delay.to_be_bytes());
        b[8..12].copy_from_slice(&self.root_dispersion.to_be_bytes());
        b[12..16].copy_from_slice(&self.reference_id);
        for (i, ts) in [
            self.reference_ts,
            self.origin_ts,
            self.receive_ts,
            self.transmit_ts,
        ]
        .iter()
        .enumerate()
        {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&ts.0.to_be_bytes());
        }
        b
    }

    pub fn root_delay_seconds(&self) -> f64 {
        short_to_seconds(self.root_delay)
    }

    pub fn root_dispersion_seconds(&self) -> f64 {
        short_to_seconds(self.root_dispersion)
    }

    /// The kiss code when this is a Kiss-o'-Death packet: stratum 0 and a
    /// reference id of printable ASCII (RFC 5905 §7.4), e.g. `RATE`.
    /// Trailing spaces or NULs are trimmed.
    pub fn kiss_code(&self) -> Option<String> {
        if self.stratum != 0 {
            return None;
        }
        let id = &self.reference_id;
        let end = id
            .iter()
            .rposition(|&c| c != 0 && c != b' ')
            .map(|p| p + 1)?;
        let code = &id[..end];
        if code.iter().all(|&c| (0x21..=0x7e).contains(&c)) {
            Some(String::from_utf8_lossy(code).into_owned())
        } else {
            None
        }
    }

    /// The reference id as pool users read it: ASCII for stratum 0 and 1
    /// (kiss code or clock source such as `GPS`), dotted quad for IPv4 peers,
    /// hex otherwise.
    pub fn refid_string(&self) -> String {
        let id = self.reference_id;
        if self.stratum <= 1 {
            let end = id.iter().rposition(|&c| c != 0).map_or(0, |p| p + 1);
            if end > 0 && id[..end].iter().all(|&c| (0x20..=0x7e).contains(&c)) {
                return String::from_utf8_lossy(&id[..end]).into_owned();
            }
            return format!("0x{:02x}{:02x}{:02x}{:02x}", id[0], id[1], id[2], id[3]);
        }
        format!("{}.{}.{}.{}", id[0], id[1], id[2], id[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_bytes() -> [u8; 48] {
        // A reply as chrony sends it: LI 0, VN 4, mode 4, stratum 2, poll 6, precision -24.
        let mut b = [0u8; 48];
        b[0] = 0b00_100_100;
        b[1] = 2;
        b[2] = 6;
        b[3] = 0xe8;
        b[4..8].copy_from_slice(&0x0000_0800u32.to_be_bytes());
        b[8..12].copy_from_slice(&0x0001_8000u32.to_be_bytes());
        b[12..16].copy_from_slice(&[127, 127, 1, 1]);
        for (i, v) in [1u64, 2, 3, 4].iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&(v << 32 | 0x8000_0000).to_be_bytes());
        }
        b
    }

    #[test]
    fn decode_every_field() {
        let p = Packet::decode(&sample_bytes()).unwrap();
        assert_eq!((p.leap, p.version, p.mode), (0, 4, 4));
        assert_eq!((p.stratum, p.poll, p.precision), (2, 6, -24));
        assert_eq!(p.root_delay_seconds(), 0.03125);
        assert_eq!(p.root_dispersion_seconds(), 1.5);
        assert_eq!(p.refid_string(), "127.127.1.1");
        assert_eq!(p.reference_ts, NtpTimestamp(1 << 32 | 0x8000_0000));
        assert_eq!(p.origin_ts, NtpTimestamp(2 << 32 | 0x8000_0000));
        assert_eq!(p.receive_ts, NtpTimestamp(3 << 32 | 0x8000_0000));
        assert_eq!(p.transmit_ts, NtpTimestamp(4 << 32 | 0x8000_0000));
        assert_eq!(p.encode(), sample_bytes());
    }

    #[test]
    fn short_packets_are_errors() {
        for n in [0, 1, 47] {
            assert_eq!(Packet::decode(&vec![0u8; n]), Err(DecodeError::TooShort(n)));
        }
        // Extension fields after the header are allowed.
        let mut long = sample_bytes().to_vec();
        long.extend_from_slice(&[0u8; 20]);
        assert!(Packet::decode(&long).is_ok());
    }

    #[test]
    fn kiss_codes() {
        let mut p = Packet::decode(&sample_bytes()).unwrap();
        let cases: &[(u8, [u8; 4], Option<&str>)] = &[
            (0, *b"RATE", Some("RATE")),
            (0, *b"DENY", Some("DENY")),
            (0, *b"RSTR", Some("RSTR")),
            (0, *b"NTSN", Some("NTSN")),
            (0, *b"AB12", Some("AB12")),
            (0, *b"GPS\0", Some("GPS")),
            (0, [0, 0, 0, 0], None), // chrony unsynchronised: not a KoD
            (0, [0xff, b'A', b'B', b'C'], None),
            (0, [b'A', 0, b'B', b'C'], None),
            (1, *b"RATE", None), // only stratum 0 carries kiss codes
            (2, *b"DENY", None),
        ];
        for (stratum, id, want) in cases {
            p.stratum = *stratum;
            p.reference_id = *id;
            assert_eq!(
                p.kiss_code().as_deref(),
                *want,
                "stratum {stratum} id {id:?}"
            );
        }
    }

    #[test]
    fn refid_strings() {
        let mut p = Packet::decode(&sample_bytes()).unwrap();
        p.stratum = 1;
        p.reference_id = *b"GPS\0";
        assert_eq!(p.refid_string(), "GPS");
        p.reference_id = [0, 0, 0, 0];
        assert_eq!(p.refid_string(), "0x00000000");
        p.stratum = 3;
        p.reference_id = [10, 0, 0, 1];
        assert_eq!(p.refid_string(), "10.0.0.1");
    }

    proptest! {
        #[test]
        fn roundtrip_bytes(bytes in proptest::collection::vec(any::<u8>(), 48..=48)) {
            let p = Packet::decode(&bytes).unwrap();
            prop_assert_eq!(p.encode().to_vec(), bytes);
        }

        #[test]
        fn roundtrip_fields(leap in 0u8..4, version in 0u8..8, mode in 0u8..8, stratum: u8,
                            poll: i8, precision: i8, rd: u32, rdisp: u32, id: [u8; 4],
                            t in proptest::array::uniform4(any::<u64>())) {
            let p = Packet { leap, version, mode, stratum, poll, precision, root_delay: rd,
                root_dispersion: rdisp, reference_id: id, reference_ts: NtpTimestamp(t[0]),
                origin_ts: NtpTimestamp(t[1]), receive_ts: NtpTimestamp(t[2]), transmit_ts: NtpTimestamp(t[3]) };
            prop_assert_eq!(Packet::decode(&p.encode()).unwrap(), p);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            match Packet::decode(&bytes) {
                Ok(p) => { let _ = (p.kiss_code(), p.refid_string()); prop_assert!(bytes.len() >= 48) }
                Err(DecodeError::TooShort(n)) => prop_assert!(n < 48),
            }
        }
    }
}
