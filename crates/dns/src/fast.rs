//! The hot path: a plain A or AAAA question for an address name, read and
//! answered in wire format without hickory's message parser, record
//! objects or encoder. It answers byte for byte as the generic
//! [`RequestHandler`] path does (`tests::fast_and_generic_answer_alike`);
//! anything it does not recognise in full — another type or class, a
//! second record, an EDNS option other than one well-formed Client Subnet,
//! a name that is not an address label, an answer that would not fit — it
//! leaves to that path, which holds every other rule.
//!
//! [`RequestHandler`]: hickory_server::server::RequestHandler

use crate::counts::{Family, country_slot};
use crate::ecs;
use crate::handler::{GeoDnsHandler, MAX_UDP_PAYLOAD};
use crate::locate::{Subnet, locate};
use crate::rrl::{ResponseKind, Verdict};
use crate::zone::Lookup;
use hickory_proto::rr::RecordType;
use std::net::IpAddr;

/// What the fast path did with a query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fast {
    /// The response is in the output buffer.
    Answer,
    /// Response rate limiting dropped it: send nothing.
    Drop,
    /// Not a query it answers: use the generic path.
    Generic,
}

/// The OPT record's type.
const OPT: u16 = 41;
/// The EDNS Client Subnet option's code.
const SUBNET: u16 = 8;

/// A query the fast path can answer, as found in its bytes.
struct Plain<'q> {
    /// The question as sent (name, type, class).
    question: &'q [u8],
    qtype: RecordType,
    /// EDNS: the payload size the client offers, and its ECS option.
    edns: Option<(u16, Option<Subnet>)>,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    b.get(i..i + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// Reads `q` if it is a query with one A/AAAA IN question, no records but
/// at most one OPT (version 0, no option or one valid ECS option), and
/// nothing after them.
fn read(q: &[u8]) -> Option<Plain<'_>> {
    // QR=0 and OPCODE=QUERY; one question, no answer or authority records.
    if q.len() < 12 || q[2] & 0xf8 != 0 || q[4..10] != [0, 1, 0, 0, 0, 0] {
        return None;
    }
    let additional = u16_at(q, 10)?;
    let mut pos = 12;
    loop {
        let len = usize::from(*q.get(pos)?);
        // No compression pointers (nothing to point at yet) or long labels.
        if len > 63 {
            return None;
        }
        pos += 1 + len;
        if len == 0 {
            break;
        }
    }
    if pos - 12 > 255 {
        return None;
    }
    let qtype = match u16_at(q, pos)? {
        1 => RecordType::A,
        28 => RecordType::AAAA,
        _ => return None,
    };
    if u16_at(q, pos + 2)? != 1 {
        return None;
    }
    let question = &q[12..pos + 4];
    pos += 4;
    let edns = match additional {
        0 => None,
        1 => {
            // Root name, type OPT, class = payload, TTL = extended RCODE,
            // version, flags.
            if *q.get(pos)? != 0 || u16_at(q, pos + 1)? != OPT {
                return None;
            }
            let payload = u16_at(q, pos + 3)?;
            if *q.get(pos + 6)? != 0 {
                return None; // BADVERS: the generic path answers it.
            }
            let len = usize::from(u16_at(q, pos + 9)?);
            pos += 11;
            let options = q.get(pos..pos + len)?;
            pos += len;
            let subnet = match options {
                [] => None,
                [c0, c1, l0, l1, data @ ..]
                    if u16::from_be_bytes([*c0, *c1]) == SUBNET
                        && usize::from(u16::from_be_bytes([*l0, *l1])) == data.len() =>
                {
                    Some(ecs::parse(data).ok()?)
                }
                _ => return None,
            };
            Some((payload, subnet))
        }
        _ => return None,
    };
    (pos == q.len()).then_some(Plain {
        question,
        qtype,
        edns,
    })
}

/// The labels of the question name below `origin` (lower-case wire
/// format), lower-cased and joined by dots; `None` when the name is not
/// in the zone or holds other bytes than letters, digits, `-` and `_`.
fn relative(name: &[u8], origin: &[u8]) -> Option<String> {
    let cut = name.len().checked_sub(origin.len())?;
    if !name[cut..].eq_ignore_ascii_case(origin) {
        return None;
    }
    let mut rel = String::with_capacity(cut);
    let mut pos = 0;
    while pos < cut {
        let len = usize::from(name[pos]);
        let label = name.get(pos + 1..pos + 1 + len)?;
        if pos + 1 + len > cut
            || !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return None;
        }
        if pos > 0 {
            rel.push('.');
        }
        rel.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
        pos += 1 + len;
    }
    // The origin must start at a label boundary.
    (pos == cut).then_some(rel)
}

impl GeoDnsHandler {
    /// Answers `q` from `src` into `out` when it is a plain address query
    /// (see the module doc); `udp` applies response rate limiting and the
    /// client's payload size.
    pub(crate) fn answer_fast(&self, q: &[u8], src: IpAddr, udp: bool, out: &mut Vec<u8>) -> Fast {
        let Some(plain) = read(q) else {
            return Fast::Generic;
        };
        let Some(zone) = self.store().current() else {
            return Fast::Generic;
        };
        let name = &plain.question[..plain.question.len() - 4];
        // Longest origin first: the first match is the most specific; a
        // mismatch costs a length check and one compare, no allocation.
        let Some(rel) = zone.apexes().iter().find_map(|a| relative(name, a.wire())) else {
            return Fast::Generic;
        };
        let ecs = plain.edns.and_then(|(_, s)| s);
        let loc = locate(self.geo(), src, ecs);
        let Lookup::Addresses(label) = zone.resolve_relative(rel, plain.qtype, &loc.targets) else {
            return Fast::Generic;
        };
        // The answer's size: header, question, records, OPT (with ECS).
        let rdlen = if plain.qtype == RecordType::A { 4 } else { 16 };
        let wanted = label.max_hosts.min(match plain.qtype {
            RecordType::A => label.a.len(),
            _ => label.aaaa.len(),
        });
        let opt_len = match plain.edns {
            None => 0,
            Some((_, None)) => 11,
            Some((_, Some(s))) => 11 + 8 + usize::from(s.source_prefix.div_ceil(8)),
        };
        let max = if udp {
            plain
                .edns
                .map_or(512, |(p, _)| p.clamp(512, MAX_UDP_PAYLOAD))
        } else {
            u16::MAX
        };
        let records = wanted * (12 + rdlen) + name.len().saturating_sub(2);
        if 12 + plain.question.len() + records + opt_len > usize::from(max) {
            // Truncation is the generic path's.
            return Fast::Generic;
        }

        let verdict = match (self.rrl(), udp) {
            (Some(rrl), true) => rrl.check_wire(
                src,
                ResponseKind::Positive,
                Some(name),
                u16::from(plain.qtype),
            ),
            _ => Verdict::Answer,
        };
        let mut picked = Vec::with_capacity(label.max_hosts);
        self.draw(|rng| match plain.qtype {
            RecordType::A => label.a.pick(label.max_hosts, rng, &mut picked),
            _ => label.aaaa.pick(label.max_hosts, rng, &mut picked),
        });
        zone.metrics()
            .answered(&label.counters, plain.qtype, picked.len());
        if verdict == Verdict::Drop {
            return Fast::Drop;
        }
        let slip = verdict == Verdict::Slip;
        let (answers, additional) = if slip {
            (0, 0)
        } else {
            (picked.len() as u16, u16::from(plain.edns.is_some()))
        };
        out.clear();
        // ID; QR, the opcode and RD, AA, TC on a slip; CD; NOERROR.
        out.extend_from_slice(&[
            q[0],
            q[1],
            0x84 | (q[2] & 0x79) | if slip { 0x02 } else { 0 },
            q[3] & 0x10,
            0,
            1,
        ]);
        out.extend_from_slice(&answers.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&additional.to_be_bytes());
        out.extend_from_slice(plain.question);
        if slip {
            return Fast::Answer;
        }
        // Sent in full from here on (the size was checked above).
        let family = match plain.qtype {
            RecordType::A => Family::V4,
            _ => Family::V6,
        };
        zone.tally()
            .answered(label, family, &picked, country_slot(&loc));
        let ttl = label.ttl.to_be_bytes();
        // As hickory's encoder writes it: the first record's name in full,
        // the others pointing at it (hickory does not point into the
        // question; answering alike keeps one size per answer whichever
        // path made it).
        let first = 12 + plain.question.len();
        let pointer = [0xc0 | (first >> 8) as u8, first as u8];
        for (n, &i) in picked.iter().enumerate() {
            if n == 0 {
                out.extend_from_slice(name);
            } else {
                out.extend_from_slice(&pointer);
            }
            out.extend_from_slice(&u16::from(plain.qtype).to_be_bytes());
            out.extend_from_slice(&[0, 1]);
            out.extend_from_slice(&ttl);
            out.extend_from_slice(&[0, rdlen as u8]);
            match plain.qtype {
                RecordType::A => out.extend_from_slice(&label.a.get(i).octets()),
                _ => out.extend_from_slice(&label.aaaa.get(i).octets()),
            }
        }
        if let Some((payload, subnet)) = plain.edns {
            out.extend_from_slice(&[0, 0, 41]);
            out.extend_from_slice(&payload.clamp(512, MAX_UDP_PAYLOAD).to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]);
            match subnet {
                None => out.extend_from_slice(&[0, 0]),
                Some(s) => {
                    // RFC 7871: family, source prefix and address as
                    // received, with the scope the answer holds for.
                    let bytes = usize::from(s.source_prefix.div_ceil(8));
                    let (family, addr): (u16, Vec<u8>) = match s.addr {
                        IpAddr::V4(a) => (1, a.octets().to_vec()),
                        IpAddr::V6(a) => (2, a.octets().to_vec()),
                    };
                    out.extend_from_slice(&(8 + bytes as u16).to_be_bytes());
                    out.extend_from_slice(&SUBNET.to_be_bytes());
                    out.extend_from_slice(&(4 + bytes as u16).to_be_bytes());
                    out.extend_from_slice(&family.to_be_bytes());
                    out.extend_from_slice(&[s.source_prefix, loc.scope]);
                    out.extend_from_slice(&addr[..bytes]);
                }
            }
        }
        Fast::Answer
    }
}

#[cfg(test)]
mod tests;
