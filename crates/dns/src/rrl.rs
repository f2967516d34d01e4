//! Response rate limiting (RRL) over UDP, as NSD does it: a reflector that
//! answers spoofed queries at any rate amplifies attacks on the address
//! they claim to come from. Each response is counted in a bucket keyed by
//! the client's prefix (/24 for IPv4, /64 for IPv6 by default) and the kind
//! of response (a positive answer per name and type, NODATA per name, every
//! NXDOMAIN together, every error together). Over the rate a response is
//! dropped, except every `slip`-th drop, which is answered empty with TC=1
//! so that a real resolver behind that prefix retries over TCP (which is
//! not limited: a spoofed source cannot finish a TCP handshake).
//!
//! The rate is smoothed as NSD's is: at each new second a bucket's rate
//! becomes half the old rate plus the last second's count, and a response
//! is limited once `this second's count + rate / 2` reaches twice the
//! limit. A steady client gets `rate` answers per second; a new one may
//! burst to twice that in its first second; one that keeps asking faster
//! stays limited until it slows down.
//!
//! Memory is fixed: `size` buckets, allocated once (zeroed pages the kernel
//! maps as they are first touched) and addressed by a keyed hash, so a
//! bucket whose slot another key takes simply starts over (as in NSD); an
//! attacker with many source addresses cannot grow the table.

use hickory_proto::rr::LowerName;
use hickory_proto::serialize::binary::BinEncodable;
use metrics::Counter;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Shards of the table, each behind its own lock (the UDP workers rarely
/// meet on one).
const SHARDS: usize = 64;

/// RRL settings; [`RrlConfig::default`] is NSD's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrlConfig {
    /// Responses per second per prefix and kind; 0 turns RRL off.
    pub rate: u32,
    /// Every `slip`-th dropped response is sent truncated instead (0: none,
    /// 1: all of them).
    pub slip: u32,
    /// Prefix length that groups IPv4 clients.
    pub ipv4_prefix: u8,
    /// Prefix length that groups IPv6 clients.
    pub ipv6_prefix: u8,
    /// Buckets in the table (24 bytes each).
    pub size: usize,
}

impl Default for RrlConfig {
    fn default() -> Self {
        RrlConfig {
            rate: 200,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 64,
            size: 1_000_000,
        }
    }
}

impl RrlConfig {
    /// No rate limiting.
    pub fn off() -> RrlConfig {
        RrlConfig {
            rate: 0,
            ..RrlConfig::default()
        }
    }

    /// Checks the ranges; the error is the setting's key (in `[dns_rrl]`)
    /// and a line naming it and its flag.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.ipv4_prefix > 32 {
            return Err((
                "ipv4_prefix",
                format!(
                    "ipv4_prefix (--dns-rrl-ipv4-prefix) {} is longer than 32 bits",
                    self.ipv4_prefix
                ),
            ));
        }
        if self.ipv6_prefix > 128 {
            return Err((
                "ipv6_prefix",
                format!(
                    "ipv6_prefix (--dns-rrl-ipv6-prefix) {} is longer than 128 bits",
                    self.ipv6_prefix
                ),
            ));
        }
        if self.rate > 1_000_000_000 {
            return Err((
                "rate",
                format!(
                    "rate (--dns-rrl-rate) {} is above 1000000000 per second",
                    self.rate
                ),
            ));
        }
        if !(SHARDS..=100_000_000).contains(&self.size) {
            return Err((
                "size",
                format!(
                    "size (--dns-rrl-size) {} is not between {SHARDS} and 100000000 buckets",
                    self.size
                ),
            ));
        }
        Ok(())
    }
}

/// What a response is, for the bucket it counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseKind {
    /// Records answer the question: one bucket per name and type.
    Positive,
    /// The name exists without records of the type: one per name.
    NoData,
    /// No such name: one bucket for all (random names must not escape).
    NxDomain,
    /// REFUSED, FORMERR, SERVFAIL, …: one bucket for all.
    Error,
}

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    /// Send it empty with TC=1.
    Slip,
    Drop,
}

/// One bucket, stored as three words so that the table can be allocated
/// zeroed (and so touched only where used).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    /// The hash of prefix and kind; 0 is an empty slot.
    key: u64,
    /// The smoothed rate (twice the per-second rate in a steady state).
    rate: u32,
    /// Responses counted in the second `stamp`.
    counter: u32,
    /// Seconds since the table was made.
    stamp: u32,
    /// Responses dropped while limited, for the slip.
    drops: u32,
}

impl Bucket {
    fn load(w: &[u64; 3]) -> Bucket {
        Bucket {
            key: w[0],
            rate: (w[1] >> 32) as u32,
            counter: w[1] as u32,
            stamp: (w[2] >> 32) as u32,
            drops: w[2] as u32,
        }
    }

    fn store(self) -> [u64; 3] {
        [
            self.key,
            (u64::from(self.rate) << 32) | u64::from(self.counter),
            (u64::from(self.stamp) << 32) | u64::from(self.drops),
        ]
    }

    /// Counts one response for `key` at second `now`; true when it is over
    /// `limit` per second.
    fn over(&mut self, key: u64, now: u32, limit: u32) -> bool {
        if self.key != key {
            // An empty slot, or another key's: start over.
            *self = Bucket {
                key,
                rate: 0,
                counter: 1,
                stamp: now,
                drops: 0,
            };
        } else if now <= self.stamp {
            // This second (or a thread that read the clock just before
            // another stored a newer second).
            self.counter = self.counter.saturating_add(1);
        } else {
            // A new second: fold the last one in, halving once more for
            // every second nothing was counted.
            let idle = now - self.stamp - 1;
            let rate = (self.rate / 2).saturating_add(self.counter);
            self.rate = rate.checked_shr(idle).unwrap_or(0);
            self.counter = 1;
            self.stamp = now;
        }
        let projected = self.counter.saturating_add(self.rate / 2);
        projected.max(self.rate) >= limit.saturating_mul(2)
    }
}

/// The rate limiter shared by the UDP workers.
pub struct Rrl {
    cfg: RrlConfig,
    shards: Box<[Mutex<Vec<[u64; 3]>>]>,
    shard_len: usize,
    /// Keyed so that nobody outside can aim keys at one slot.
    hasher: RandomState,
    start: Instant,
    dropped: Counter,
    slipped: Counter,
}

impl Rrl {
    /// The limiter for `cfg`; `None` when `cfg.rate` is 0 (off).
    pub fn new(cfg: &RrlConfig) -> Option<Rrl> {
        if cfg.rate == 0 {
            return None;
        }
        let shard_len = cfg.size.div_ceil(SHARDS).max(1);
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(vec![[0u64; 3]; shard_len]))
            .collect();
        let c =
            |action: &'static str| metrics::counter!("poolwatch_dns_rrl_total", "action" => action);
        Some(Rrl {
            cfg: *cfg,
            shards,
            shard_len,
            hasher: RandomState::new(),
            start: Instant::now(),
            dropped: c("dropped"),
            slipped: c("slipped"),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &RrlConfig {
        &self.cfg
    }

    /// Counts a response of `kind` to `src` (for `qname` and `qtype` where
    /// the kind is per name) and says whether to send it.
    pub fn check(
        &self,
        src: IpAddr,
        kind: ResponseKind,
        qname: Option<&LowerName>,
        qtype: u16,
    ) -> Verdict {
        let wire = qname.map(|n| n.to_bytes().unwrap_or_default());
        self.check_wire(src, kind, wire.as_deref(), qtype)
    }

    /// As [`Rrl::check`] with the name in wire format as the query holds
    /// it (any case; uncompressed): the fast path's form, counted in the
    /// same bucket as the same name given to `check`.
    pub fn check_wire(
        &self,
        src: IpAddr,
        kind: ResponseKind,
        qname: Option<&[u8]>,
        qtype: u16,
    ) -> Verdict {
        let mut h = self.hasher.build_hasher();
        self.prefix(src).hash(&mut h);
        kind.hash(&mut h);
        let name = |h: &mut dyn Hasher| match qname {
            Some(n) => {
                h.write_usize(n.len());
                n.iter().for_each(|b| h.write_u8(b.to_ascii_lowercase()));
            }
            None => h.write_usize(usize::MAX),
        };
        match kind {
            ResponseKind::Positive => {
                name(&mut h);
                qtype.hash(&mut h);
            }
            ResponseKind::NoData => name(&mut h),
            ResponseKind::NxDomain | ResponseKind::Error => {}
        }
        let now = u32::try_from(self.start.elapsed().as_secs()).unwrap_or(u32::MAX);
        let verdict = self.check_key(h.finish(), now);
        match verdict {
            Verdict::Answer => {}
            Verdict::Slip => self.slipped.increment(1),
            Verdict::Drop => self.dropped.increment(1),
        }
        verdict
    }

    /// The verdict for a response counted under `key` at second `now`.
    fn check_key(&self, key: u64, now: u32) -> Verdict {
        // 0 marks an empty slot.
        let key = key.max(1);
        let shard = &self.shards[(key % SHARDS as u64) as usize];
        let slot = ((key / SHARDS as u64) % self.shard_len as u64) as usize;
        let mut table = match shard.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut b = Bucket::load(&table[slot]);
        let verdict = if !b.over(key, now, self.cfg.rate) {
            Verdict::Answer
        } else {
            b.drops = b.drops.wrapping_add(1);
            if self.cfg.slip > 0 && b.drops.is_multiple_of(self.cfg.slip) {
                Verdict::Slip
            } else {
                Verdict::Drop
            }
        };
        table[slot] = b.store();
        verdict
    }

    /// `src` cut to its prefix (IPv4-mapped IPv6 counts as IPv4).
    fn prefix(&self, src: IpAddr) -> (bool, u128) {
        match src {
            IpAddr::V4(v4) => (false, mask(u32::from(v4).into(), 32, self.cfg.ipv4_prefix)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (false, mask(u32::from(v4).into(), 32, self.cfg.ipv4_prefix)),
                None => (true, mask(u128::from(v6), 128, self.cfg.ipv6_prefix)),
            },
        }
    }
}

/// The top `prefix` of the `bits` low bits of `addr`.
fn mask(addr: u128, bits: u32, prefix: u8) -> u128 {
    let keep = u32::from(prefix).min(bits);
    if keep == 0 { 0 } else { addr >> (bits - keep) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrl(rate: u32, slip: u32) -> Rrl {
        Rrl::new(&RrlConfig {
            rate,
            slip,
            size: 1024,
            ..RrlConfig::default()
        })
        .unwrap()
    }

    /// Verdicts for `n` responses under one key at second `now`.
    fn run(r: &Rrl, key: u64, now: u32, n: usize) -> (usize, usize, usize) {
        let (mut a, mut s, mut d) = (0, 0, 0);
        for _ in 0..n {
            match r.check_key(key, now) {
                Verdict::Answer => a += 1,
                Verdict::Slip => s += 1,
                Verdict::Drop => d += 1,
            }
        }
        (a, s, d)
    }

    #[test]
    fn burst_then_steady_rate_then_recovery() {
        let r = rrl(10, 2);
        // A new client may burst to twice the rate in its first second;
        // every second drop is slipped.
        assert_eq!(run(&r, 7, 0, 100), (19, 40, 41));
        // It kept asking at 100/s: the next second it gets nothing.
        assert_eq!(run(&r, 7, 1, 100).0, 0);
        // A client that slows to just under the rate is answered again
        // once the smoothed rate has decayed.
        let answered: Vec<usize> = (2..12).map(|now| run(&r, 7, now, 9).0).collect();
        assert_eq!(answered[..2], [0, 0], "{answered:?}");
        assert_eq!(answered[9], 9, "{answered:?}");
        // Idle seconds halve the rate each: after a long pause, a full burst.
        assert_eq!(run(&r, 7, 100, 100).0, 19);
    }

    #[test]
    fn slip_settings() {
        for (slip, want) in [(0, (19, 0, 81)), (1, (19, 81, 0)), (3, (19, 27, 54))] {
            assert_eq!(run(&rrl(10, slip), 9, 5, 100), want, "slip {slip}");
        }
    }

    #[test]
    fn keys_are_independent_and_a_taken_slot_starts_over() {
        let r = rrl(10, 2);
        run(&r, 7, 0, 100);
        assert_ne!(r.check_key(7, 0), Verdict::Answer);
        // Another key is not limited.
        assert_eq!(run(&r, 8, 0, 5).0, 5);
        // Same shard and slot as 7 (the table is 64 shards × 16): 7's
        // bucket is taken over and starts fresh.
        let twin = 7 + 64 * 16;
        assert_eq!(run(&r, twin, 0, 5).0, 5);
        assert_eq!(r.check_key(7, 0), Verdict::Answer);
    }

    #[test]
    fn prefixes_group_clients() {
        let r = rrl(10, 2);
        let p = |s: &str| r.prefix(s.parse().unwrap());
        assert_eq!(p("192.0.2.1"), p("192.0.2.254"));
        assert_eq!(p("192.0.2.1"), p("::ffff:192.0.2.9"));
        assert_ne!(p("192.0.2.1"), p("192.0.3.1"));
        assert_eq!(p("2001:db8:1:2::1"), p("2001:db8:1:2:ffff::1"));
        assert_ne!(p("2001:db8:1:2::1"), p("2001:db8:1:3::1"));
        // An IPv4 prefix never equals an IPv6 one.
        assert_ne!(p("0.0.0.1"), p("::1"));
        assert_eq!(mask(u128::MAX, 128, 0), 0);
        assert_eq!(mask(0xc000_0201, 32, 40), 0xc000_0201);
    }

    #[test]
    fn kinds_and_names_have_their_own_buckets() {
        let r = rrl(1, 0);
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let a = LowerName::from(hickory_proto::rr::Name::from_ascii("a.example.").unwrap());
        let b = LowerName::from(hickory_proto::rr::Name::from_ascii("b.example.").unwrap());
        let check = |kind, name, qtype| r.check(src, kind, name, qtype);
        // The burst allowance for rate 1 is one response.
        assert_eq!(check(ResponseKind::Positive, Some(&a), 1), Verdict::Answer);
        assert_eq!(check(ResponseKind::Positive, Some(&a), 1), Verdict::Drop);
        assert_eq!(check(ResponseKind::Positive, Some(&a), 28), Verdict::Answer);
        assert_eq!(check(ResponseKind::Positive, Some(&b), 1), Verdict::Answer);
        assert_eq!(check(ResponseKind::NoData, Some(&a), 1), Verdict::Answer);
        // NXDOMAIN and errors share one bucket whatever the name.
        assert_eq!(check(ResponseKind::NxDomain, Some(&a), 1), Verdict::Answer);
        assert_eq!(check(ResponseKind::NxDomain, Some(&b), 1), Verdict::Drop);
        assert_eq!(check(ResponseKind::Error, None, 1), Verdict::Answer);
        assert_eq!(check(ResponseKind::Error, Some(&b), 6), Verdict::Drop);
        // The fast path's wire name, in any case, counts in the same bucket.
        let wire_a = b"\x01A\x07eXample\x00";
        assert_eq!(
            r.check_wire(src, ResponseKind::Positive, Some(wire_a), 1),
            Verdict::Drop
        );
        let wire_c = b"\x01c\x07example\x00";
        assert_eq!(
            r.check_wire(src, ResponseKind::Positive, Some(wire_c), 1),
            Verdict::Answer
        );
    }

    #[test]
    fn settings_are_checked() {
        assert!(RrlConfig::default().validate().is_ok());
        assert!(Rrl::new(&RrlConfig::off()).is_none());
        for (bad, field) in [
            (
                RrlConfig {
                    ipv4_prefix: 33,
                    ..RrlConfig::default()
                },
                "ipv4",
            ),
            (
                RrlConfig {
                    ipv6_prefix: 129,
                    ..RrlConfig::default()
                },
                "ipv6",
            ),
            (
                RrlConfig {
                    size: 10,
                    ..RrlConfig::default()
                },
                "size",
            ),
        ] {
            let (key, e) = bad.validate().unwrap_err();
            assert!(key.starts_with(field), "{key}");
            assert!(e.contains(field), "{e}");
        }
    }
}
