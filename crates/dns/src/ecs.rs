//! The EDNS Client Subnet option read from the query's own bytes and
//! checked as RFC 7871 §6 and §7.1.2 ask (anything else is FORMERR).
//!
//! hickory-proto decodes the option leniently: it reads as many address
//! bytes as the source prefix needs and ignores any more, keeps bits past
//! the prefix, and accepts any scope. So the option is found again in the
//! raw message and judged here.

use crate::locate::Subnet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The OPT pseudo-record's type.
const OPT: u16 = 41;
/// The ECS option's code.
const SUBNET: u16 = 8;

/// Why an ECS option is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcsError {
    #[error("ECS option shorter than its 4 fixed bytes")]
    Short,
    #[error("ECS FAMILY {0} is neither 1 (IPv4) nor 2 (IPv6)")]
    Family(u16),
    #[error("ECS SOURCE PREFIX-LENGTH {prefix} is longer than the family's {max} bits")]
    SourcePrefix { prefix: u8, max: u8 },
    #[error("ECS SCOPE PREFIX-LENGTH is {0} in a query (must be 0)")]
    Scope(u8),
    #[error("ECS ADDRESS has {got} bytes; SOURCE PREFIX-LENGTH {prefix} needs {want}")]
    AddressLength { got: usize, want: usize, prefix: u8 },
    #[error("ECS ADDRESS has bits set past SOURCE PREFIX-LENGTH {0}")]
    BitsPastPrefix(u8),
    #[error("the message's records cannot be walked to the OPT record")]
    Message,
}

/// The first ECS option of a DNS message (`None` without one), checked.
pub fn client_subnet(message: &[u8]) -> Result<Option<Subnet>, EcsError> {
    match find_option(message, SUBNET)? {
        Some(data) => parse(data).map(Some),
        None => Ok(None),
    }
}

/// Checks one ECS option's data (FAMILY, SOURCE PREFIX-LENGTH, SCOPE
/// PREFIX-LENGTH, ADDRESS).
pub fn parse(data: &[u8]) -> Result<Subnet, EcsError> {
    let [f0, f1, source, scope, address @ ..] = data else {
        return Err(EcsError::Short);
    };
    let family = u16::from_be_bytes([*f0, *f1]);
    let max = match family {
        1 => 32,
        2 => 128,
        other => return Err(EcsError::Family(other)),
    };
    if *source > max {
        return Err(EcsError::SourcePrefix {
            prefix: *source,
            max,
        });
    }
    if *scope != 0 {
        return Err(EcsError::Scope(*scope));
    }
    let want = usize::from(source.div_ceil(8));
    if address.len() != want {
        return Err(EcsError::AddressLength {
            got: address.len(),
            want,
            prefix: *source,
        });
    }
    let spare = source % 8;
    if spare != 0 && address[want - 1] & (0xff >> spare) != 0 {
        return Err(EcsError::BitsPastPrefix(*source));
    }
    let addr = if family == 1 {
        let mut o = [0u8; 4];
        o[..want].copy_from_slice(address);
        IpAddr::V4(Ipv4Addr::from(o))
    } else {
        let mut o = [0u8; 16];
        o[..want].copy_from_slice(address);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    Ok(Subnet {
        addr,
        source_prefix: *source,
    })
}

/// The data of the first EDNS option `code` in the OPT record of
/// `message`. Walks header, questions and records by their lengths only.
fn find_option(message: &[u8], code: u16) -> Result<Option<&[u8]>, EcsError> {
    let u16_at = |i: usize| -> Result<u16, EcsError> {
        match message.get(i..i + 2) {
            Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
            None => Err(EcsError::Message),
        }
    };
    let questions = u16_at(4)?;
    let records = u32::from(u16_at(6)?) + u32::from(u16_at(8)?) + u32::from(u16_at(10)?);
    let mut pos = 12;
    for _ in 0..questions {
        pos = skip_name(message, pos)? + 4;
    }
    for _ in 0..records {
        pos = skip_name(message, pos)?;
        let rtype = u16_at(pos)?;
        let len = usize::from(u16_at(pos + 8)?);
        let start = pos + 10;
        let rdata = message.get(start..start + len).ok_or(EcsError::Message)?;
        pos = start + len;
        if rtype != OPT {
            continue;
        }
        let mut rest = rdata;
        while let [c0, c1, l0, l1, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*l0, *l1]));
            let data = tail.get(..len).ok_or(EcsError::Message)?;
            if u16::from_be_bytes([*c0, *c1]) == code {
                return Ok(Some(data));
            }
            rest = &tail[len..];
        }
        return Ok(None);
    }
    Ok(None)
}

/// The position after the name at `pos` (labels, ending in a root label
/// or a compression pointer).
fn skip_name(message: &[u8], mut pos: usize) -> Result<usize, EcsError> {
    loop {
        let len = *message.get(pos).ok_or(EcsError::Message)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(pos + 1),
            0x00 => pos += 1 + usize::from(len),
            0xc0 => return Ok(pos + 2),
            _ => return Err(EcsError::Message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rfc7871_table() {
        // (option data, result)
        type Case = (&'static [u8], Result<(&'static str, u8), EcsError>);
        let cases: &[Case] = &[
            (&[0, 1, 24, 0, 81, 2, 69], Ok(("81.2.69.0", 24))),
            (&[0, 1, 32, 0, 81, 2, 69, 142], Ok(("81.2.69.142", 32))),
            (&[0, 1, 28, 0, 89, 160, 20, 112], Ok(("89.160.20.112", 28))),
            (&[0, 1, 0, 0], Ok(("0.0.0.0", 0))),
            (
                &[0, 2, 48, 0, 0x20, 1, 2, 0x18, 0, 0],
                Ok(("2001:218::", 48)),
            ),
            (&[0, 2, 0, 0], Ok(("::", 0))),
            (&[0, 1, 24], Err(EcsError::Short)),
            (&[0, 3, 8, 0, 1], Err(EcsError::Family(3))),
            (&[0, 0, 0, 0], Err(EcsError::Family(0))),
            (
                &[0, 1, 33, 0, 1, 2, 3, 4, 5],
                Err(EcsError::SourcePrefix {
                    prefix: 33,
                    max: 32,
                }),
            ),
            (
                &[0, 2, 129, 0],
                Err(EcsError::SourcePrefix {
                    prefix: 129,
                    max: 128,
                }),
            ),
            (&[0, 1, 24, 16, 81, 2, 69], Err(EcsError::Scope(16))),
            // Extra address bytes, too few, any with prefix 0.
            (
                &[0, 1, 24, 0, 81, 2, 69, 0],
                Err(EcsError::AddressLength {
                    got: 4,
                    want: 3,
                    prefix: 24,
                }),
            ),
            (
                &[0, 1, 24, 0, 81, 2],
                Err(EcsError::AddressLength {
                    got: 2,
                    want: 3,
                    prefix: 24,
                }),
            ),
            (
                &[0, 1, 0, 0, 81],
                Err(EcsError::AddressLength {
                    got: 1,
                    want: 0,
                    prefix: 0,
                }),
            ),
            // 89.160.20.127/28: the low 4 bits of the last byte are set.
            (
                &[0, 1, 28, 0, 89, 160, 20, 127],
                Err(EcsError::BitsPastPrefix(28)),
            ),
            (&[0, 1, 23, 0, 81, 2, 69], Err(EcsError::BitsPastPrefix(23))),
        ];
        for (data, want) in cases {
            let got = parse(data).map(|s| (s.addr, s.source_prefix));
            let want = want.clone().map(|(a, p)| (ip(a), p));
            assert_eq!(got, want, "{data:?}");
        }
    }

    /// A query for `example.` A with an OPT record holding `options`,
    /// optionally behind one answer record with a compressed name.
    fn message(options: &[u8], with_answer: bool) -> Vec<u8> {
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, u8::from(with_answer), 0, 0, 0, 1];
        m.extend(b"\x07example\x00\x00\x01\x00\x01");
        if with_answer {
            m.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        }
        m.extend([0, 0, 41, 4, 0xd0, 0, 0, 0, 0]);
        m.extend((options.len() as u16).to_be_bytes());
        m.extend(options);
        m
    }

    #[test]
    fn finds_the_option_in_the_message() {
        let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let ecs = [0, 8, 0, 7, 0, 1, 24, 0, 81, 2, 69];
        let both: Vec<u8> = cookie.iter().chain(&ecs).copied().collect();
        for with_answer in [false, true] {
            let got = client_subnet(&message(&both, with_answer))
                .unwrap()
                .unwrap();
            assert_eq!((got.addr, got.source_prefix), (ip("81.2.69.0"), 24));
            assert_eq!(client_subnet(&message(&cookie, with_answer)), Ok(None));
            assert_eq!(client_subnet(&message(&[], with_answer)), Ok(None));
        }
        // The option's own length is what counts: one extra byte.
        let long = [0, 8, 0, 8, 0, 1, 24, 0, 81, 2, 69, 0];
        assert!(matches!(
            client_subnet(&message(&long, false)),
            Err(EcsError::AddressLength { .. })
        ));
        // Cut messages never panic.
        let m = message(&ecs, true);
        for n in 0..m.len() {
            let _ = client_subnet(&m[..n]);
        }
    }
}
