//! Turning what came back (or did not) into a measurement and a stable
//! *error code*, the words the pool's CSV logs use: a kiss code such as
//! `RATE`, or `i/o timeout`, `connection refused`, `network unreachable`,
//! `host unreachable`, `bad reply: <why>`. Pure functions.

use crate::packet::{Packet, mode};
use crate::time::NtpTimestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// Why a check or sample failed. Displayed as the stable code stored in logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Kiss-o'-Death: the reference id of a stratum-0 reply, e.g. `RATE`.
    Kiss(String),
    /// No acceptable reply before the timeout.
    Timeout,
    /// ICMP port unreachable.
    ConnectionRefused,
    NetworkUnreachable,
    HostUnreachable,
    /// A reply came but cannot be used; the text says why.
    BadReply(String),
    /// Any other socket error, with the system's message.
    Socket(String),
}

impl ErrorCode {
    /// Parse a stored code back (the inverse of `Display`).
    pub fn parse(s: &str) -> ErrorCode {
        match s {
            "i/o timeout" => ErrorCode::Timeout,
            "connection refused" => ErrorCode::ConnectionRefused,
            "network unreachable" => ErrorCode::NetworkUnreachable,
            "host unreachable" => ErrorCode::HostUnreachable,
            _ => {
                if let Some(r) = s.strip_prefix("bad reply: ") {
                    ErrorCode::BadReply(r.to_string())
                } else if let Some(r) = s.strip_prefix("socket: ") {
                    ErrorCode::Socket(r.to_string())
                } else {
                    ErrorCode::Kiss(s.to_string())
                }
            }
        }
    }

    /// True for a kiss code after which a monitor must stop querying (`DENY`, `RSTR`).
    pub fn is_access_denied(&self) -> bool {
        matches!(self, ErrorCode::Kiss(c) if c == "DENY" || c == "RSTR")
    }

    /// True for the `RATE` kiss code.
    pub fn is_rate(&self) -> bool {
        matches!(self, ErrorCode::Kiss(c) if c == "RATE")
    }

    /// Map a socket error from sending or receiving.
    pub fn from_io(e: &std::io::Error) -> ErrorCode {
        use std::io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => ErrorCode::ConnectionRefused,
            NetworkUnreachable => ErrorCode::NetworkUnreachable,
            HostUnreachable => ErrorCode::HostUnreachable,
            TimedOut => ErrorCode::Timeout,
            _ => ErrorCode::Socket(e.to_string()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Kiss(c) => f.write_str(c),
            ErrorCode::Timeout => f.write_str("i/o timeout"),
            ErrorCode::ConnectionRefused => f.write_str("connection refused"),
            ErrorCode::NetworkUnreachable => f.write_str("network unreachable"),
            ErrorCode::HostUnreachable => f.write_str("host unreachable"),
            ErrorCode::BadReply(r) => write!(f, "bad reply: {r}"),
            ErrorCode::Socket(r) => write!(f, "socket: {r}"),
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ErrorCode::parse(&String::deserialize(d)?))
    }
}

/// Check that `buf` is a reply to the request whose transmit timestamp was
/// `nonce`: at least 48 bytes, origin timestamp equal to the nonce, mode 4,
/// version 3 or 4. `Err` carries the reason; such datagrams are ignored while
/// the query keeps waiting. The origin check comes first so that a spoofed
/// packet, even a spoofed KoD, is never believed.
pub fn match_reply(buf: &[u8], nonce: NtpTimestamp) -> Result<Packet, String> {
    let p = Packet::decode(buf).map_err(|e| e.to_string())?;
    if p.origin_ts != nonce {
        return Err("origin timestamp does not match".into());
    }
    if p.mode != mode::SERVER {
        return Err(format!("mode {} is not server", p.mode));
    }
    if p.version != 3 && p.version != 4 {
        return Err(format!("version {}", p.version));
    }
    Ok(p)
}

/// What an accepted reply tells us.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Clock offset of the server relative to ours, seconds (RFC 5905 θ).
    pub offset: Option<f64>,
    /// Round-trip delay, seconds (RFC 5905 δ); network time only when the
    /// server's timestamps are usable, else the whole elapsed time.
    pub rtt: f64,
    pub error: Option<ErrorCode>,
}

/// Judge an accepted reply. `t1` is our clock when the request left,
/// `elapsed` the monotonic time until the reply arrived (so T4 = t1 + elapsed).
///
/// Kiss codes, stratum 0 without a code, leap 3 and zero timestamps are
/// recorded as errors and never produce an offset.
pub fn evaluate(p: &Packet, t1: NtpTimestamp, elapsed: Duration) -> Measurement {
    let whole = elapsed.as_secs_f64();
    let bad = |error: ErrorCode| Measurement {
        offset: None,
        rtt: whole,
        error: Some(error),
    };
    if p.stratum == 0 {
        return match p.kiss_code() {
            Some(code) => bad(ErrorCode::Kiss(code)),
            None => bad(ErrorCode::BadReply("stratum 0 without kiss code".into())),
        };
    }
    if p.leap == 3 {
        return bad(ErrorCode::BadReply("unsynchronized (leap 3)".into()));
    }
    if p.transmit_ts.is_zero() {
        return bad(ErrorCode::BadReply("zero transmit timestamp".into()));
    }
    if p.receive_ts.is_zero() {
        return bad(ErrorCode::BadReply("zero receive timestamp".into()));
    }
    let t4 = t1 + elapsed;
    let server_time = p.transmit_ts.diff(p.receive_ts);
    if server_time < 0.0 {
        return bad(ErrorCode::BadReply(
            "transmit timestamp before receive timestamp".into(),
        ));
    }
    let offset = (p.receive_ts.diff(t1) + p.transmit_ts.diff(t4)) / 2.0;
    let rtt = (whole - server_time).max(0.0);
    Measurement {
        offset: Some(offset),
        rtt,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;

    type Mutation = Box<dyn Fn(&mut Packet)>;

    fn reply(nonce: NtpTimestamp, t1: NtpTimestamp, server_offset: f64, rtt: f64) -> Packet {
        // Server receives at t1 + rtt/2 + offset, sends 1 ms later.
        let shift = |t: NtpTimestamp, s: f64| {
            NtpTimestamp(t.0.wrapping_add((s * 4294967296.0) as i64 as u64))
        };
        let t2 = shift(t1, rtt / 2.0 + server_offset);
        Packet {
            leap: 0,
            version: 4,
            mode: 4,
            stratum: 2,
            poll: 6,
            precision: -20,
            root_delay: 0,
            root_dispersion: 0,
            reference_id: [127, 127, 1, 1],
            reference_ts: t2,
            origin_ts: nonce,
            receive_ts: t2,
            transmit_ts: shift(t2, 0.001),
        }
    }

    #[test]
    fn error_codes_display_and_parse() {
        let cases = [
            (ErrorCode::Kiss("RATE".into()), "RATE"),
            (ErrorCode::Kiss("DENY".into()), "DENY"),
            (ErrorCode::Timeout, "i/o timeout"),
            (ErrorCode::ConnectionRefused, "connection refused"),
            (ErrorCode::NetworkUnreachable, "network unreachable"),
            (ErrorCode::HostUnreachable, "host unreachable"),
            (
                ErrorCode::BadReply("zero transmit timestamp".into()),
                "bad reply: zero transmit timestamp",
            ),
            (ErrorCode::Socket("boom".into()), "socket: boom"),
        ];
        for (code, text) in cases {
            assert_eq!(code.to_string(), text);
            assert_eq!(ErrorCode::parse(text), code);
        }
        assert!(ErrorCode::Kiss("DENY".into()).is_access_denied());
        assert!(ErrorCode::Kiss("RSTR".into()).is_access_denied());
        assert!(!ErrorCode::Kiss("RATE".into()).is_access_denied());
        assert!(ErrorCode::Kiss("RATE".into()).is_rate());
    }

    #[test]
    fn io_errors_map_to_codes() {
        use std::io::{Error, ErrorKind};
        assert_eq!(
            ErrorCode::from_io(&Error::from(ErrorKind::ConnectionRefused)),
            ErrorCode::ConnectionRefused
        );
        assert_eq!(
            ErrorCode::from_io(&Error::from(ErrorKind::NetworkUnreachable)),
            ErrorCode::NetworkUnreachable
        );
        assert_eq!(
            ErrorCode::from_io(&Error::from(ErrorKind::HostUnreachable)),
            ErrorCode::HostUnreachable
        );
    }

    #[test]
    fn match_reply_rules() {
        let nonce = NtpTimestamp(0x1234_5678_9abc_def0);
        let t1 = NtpTimestamp::from_unix(1_800_000_000, 0);
        let good = reply(nonce, t1, 0.0, 0.01);
        assert!(match_reply(&good.encode(), nonce).is_ok());
        let table: &[(&str, Mutation)] = &[
            (
                "origin timestamp does not match",
                Box::new(|p| p.origin_ts = NtpTimestamp(1)),
            ),
            ("mode 3 is not server", Box::new(|p| p.mode = 3)),
            ("mode 5 is not server", Box::new(|p| p.mode = 5)),
            ("version 2", Box::new(|p| p.version = 2)),
            ("version 5", Box::new(|p| p.version = 5)),
        ];
        for (want, mutate) in table {
            let mut p = good;
            mutate(&mut p);
            assert_eq!(match_reply(&p.encode(), nonce).unwrap_err(), *want);
        }
        let mut v3 = good;
        v3.version = 3;
        assert!(match_reply(&v3.encode(), nonce).is_ok());
        assert_eq!(
            match_reply(&[0u8; 12], nonce).unwrap_err(),
            "short packet (12 bytes, need 48)"
        );
        // A spoofed KoD with the wrong origin is not accepted.
        let mut kod = good;
        kod.stratum = 0;
        kod.reference_id = *b"DENY";
        kod.origin_ts = NtpTimestamp(99);
        assert!(match_reply(&kod.encode(), nonce).is_err());
    }

    #[test]
    fn offsets_and_rtt() {
        let nonce = NtpTimestamp(42);
        let t1 = NtpTimestamp::from_unix(1_800_000_000, 500_000_000);
        for (offset, rtt) in [(0.0, 0.010), (5.0, 0.0004), (-0.2, 0.150), (-3600.0, 0.05)] {
            let p = reply(nonce, t1, offset, rtt);
            let m = evaluate(&p, t1, Duration::from_secs_f64(rtt + 0.001));
            assert_eq!(m.error, None);
            assert!(
                (m.offset.unwrap() - offset).abs() < 1e-6,
                "offset {offset}: {m:?}"
            );
            assert!((m.rtt - rtt).abs() < 1e-6, "rtt {rtt}: {m:?}");
        }
    }

    #[test]
    fn classification_table() {
        let nonce = NtpTimestamp(42);
        let t1 = NtpTimestamp::from_unix(1_800_000_000, 0);
        let good = reply(nonce, t1, 0.0, 0.01);
        let el = Duration::from_millis(11);
        let table: &[(&str, Mutation)] = &[
            (
                "RATE",
                Box::new(|p| {
                    p.stratum = 0;
                    p.leap = 3;
                    p.reference_id = *b"RATE"
                }),
            ),
            (
                "DENY",
                Box::new(|p| {
                    p.stratum = 0;
                    p.reference_id = *b"DENY";
                    p.receive_ts = NtpTimestamp::ZERO;
                    p.transmit_ts = NtpTimestamp::ZERO
                }),
            ),
            (
                "RSTR",
                Box::new(|p| {
                    p.stratum = 0;
                    p.reference_id = *b"RSTR"
                }),
            ),
            (
                "XYZ9",
                Box::new(|p| {
                    p.stratum = 0;
                    p.reference_id = *b"XYZ9"
                }),
            ),
            (
                "bad reply: stratum 0 without kiss code",
                Box::new(|p| {
                    p.stratum = 0;
                    p.leap = 3;
                    p.reference_id = [0; 4]
                }),
            ),
            (
                "bad reply: unsynchronized (leap 3)",
                Box::new(|p| p.leap = 3),
            ),
            (
                "bad reply: zero transmit timestamp",
                Box::new(|p| p.transmit_ts = NtpTimestamp::ZERO),
            ),
            (
                "bad reply: zero receive timestamp",
                Box::new(|p| p.receive_ts = NtpTimestamp::ZERO),
            ),
            (
                "bad reply: transmit timestamp before receive timestamp",
                Box::new(|p| p.transmit_ts = NtpTimestamp(p.receive_ts.0 - (1 << 32))),
            ),
        ];
        for (want, mutate) in table {
            let mut p = good;
            mutate(&mut p);
            let m = evaluate(&p, t1, el);
            assert_eq!(
                m.error.as_ref().map(|e| e.to_string()).as_deref(),
                Some(*want)
            );
            assert_eq!(m.offset, None, "{want} must not give an offset");
        }
        // Leap 1 and 2 (pending leap second) are fine.
        for leap in [1, 2] {
            let mut p = good;
            p.leap = leap;
            assert!(evaluate(&p, t1, el).error.is_none());
        }
    }
}
