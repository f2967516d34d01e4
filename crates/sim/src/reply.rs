//! What a simulated server sends back for one datagram. Pure: the wall
//! clock, the time since start and the random numbers come in as arguments,
//! bytes and a decision come out.

use crate::behaviour::{Behaviour, Malformed};
use crate::rate_limit::{Decision, Limiter};
use ntp::packet::{HEADER_LEN, mode};
use ntp::{NtpTimestamp, Packet};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// How long the simulated server "works" between receive and transmit.
const PROCESSING: f64 = 20e-6;
/// Length of the truncated reply of `malformed = "short"`.
pub const SHORT_LEN: usize = 20;

/// The decision for one datagram.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Not an NTP client request: no answer, not counted as a request.
    Ignore,
    /// A request this server does not answer (silent, lost).
    Drop,
    /// Send `bytes` after `delay`, from the second socket when `from_other`.
    Reply {
        bytes: Vec<u8>,
        delay: Duration,
        from_other: bool,
    },
}

/// The state of one server's answering: its behaviour, how many requests it
/// has seen, and its random numbers.
#[derive(Debug)]
pub struct Responder {
    behaviour: Behaviour,
    requests: u64,
    rng: Option<SmallRng>,
    limiter: Option<Limiter>,
}

/// Move a timestamp by a signed number of seconds.
fn shift(ts: NtpTimestamp, secs: f64) -> NtpTimestamp {
    NtpTimestamp(ts.0.wrapping_add((secs * 4_294_967_296.0).round() as i64 as u64))
}

/// Seconds to the NTP short format (16.16).
fn short(secs: f64) -> u32 {
    (secs * 65536.0) as u32
}

/// The request if `buf` is one a server answers: at least 48 bytes, client
/// mode, version 1 to 4.
pub fn parse_request(buf: &[u8]) -> Option<Packet> {
    let p = Packet::decode(buf).ok()?;
    (p.mode == mode::CLIENT && (1..=4).contains(&p.version)).then_some(p)
}

impl Responder {
    /// `seed` drives loss and garbage; only servers that need random numbers
    /// keep a generator.
    pub fn new(behaviour: Behaviour, seed: u64) -> Responder {
        let rng = behaviour.needs_rng().then(|| SmallRng::seed_from_u64(seed));
        let limiter = behaviour.rate_limit.map(Limiter::new);
        Responder {
            behaviour,
            requests: 0,
            rng,
            limiter,
        }
    }

    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    /// Decide what to do with datagram `buf` from `client`, received at
    /// wall-clock time `now`, `elapsed` after the fleet started (for drift).
    pub fn respond(
        &mut self,
        buf: &[u8],
        client: IpAddr,
        now: SystemTime,
        elapsed: Duration,
    ) -> Action {
        let Some(req) = parse_request(buf) else {
            return Action::Ignore;
        };
        let b = &self.behaviour;
        let n = self.requests;
        self.requests += 1;
        if b.silent || n < b.drop_first as u64 || b.drop_from.contains(&client) {
            return Action::Drop;
        }
        if b.loss > 0.0
            && let Some(rng) = self.rng.as_mut()
            && rng.random::<f64>() < b.loss
        {
            return Action::Drop;
        }
        if let Some((_, p)) = b.path_loss.iter().find(|(ip, _)| *ip == client)
            && let Some(rng) = self.rng.as_mut()
            && rng.random::<f64>() < *p
        {
            return Action::Drop;
        }
        // Only requests that arrive count against the client, as in ntpd.
        let limited = match self.limiter.as_mut() {
            Some(l) => l.check(client, elapsed.as_secs_f64()) == Decision::Limited,
            None => false,
        };
        if limited && !b.rate_limit.is_some_and(|l| l.kod) {
            return Action::Drop;
        }
        let kod = if limited {
            Some("RATE")
        } else {
            b.kod.as_deref()
        };
        // The server's clock reads the true time plus its offset; with an
        // added delay it stamps the packet half-way, like a symmetric path.
        let half_delay = b.delay.as_secs_f64() / 2.0;
        let receive = shift(
            NtpTimestamp::from_system_time(now),
            half_delay + b.offset_at(elapsed),
        );
        let transmit = shift(receive, PROCESSING);
        let mut p = Packet {
            leap: b.leap.unwrap_or(0),
            version: req.version,
            mode: mode::SERVER,
            stratum: b.stratum,
            poll: req.poll,
            precision: -20,
            root_delay: short(0.001),
            root_dispersion: short(0.004),
            reference_id: b.refid_bytes(),
            reference_ts: shift(receive, -16.0),
            origin_ts: req.transmit_ts,
            receive_ts: receive,
            transmit_ts: transmit,
        };
        if let Some(code) = kod {
            let mut id = [0u8; 4];
            id[..code.len()].copy_from_slice(code.as_bytes());
            p.leap = b.leap.unwrap_or(3);
            p.stratum = 0;
            p.reference_id = id;
            p.reference_ts = NtpTimestamp::ZERO;
            p.root_delay = 0;
            p.root_dispersion = 0;
        }
        if b.wrong_origin {
            // Off by one second: plausible-looking, but not our nonce.
            p.origin_ts = NtpTimestamp(p.origin_ts.0 ^ (1 << 32));
        }
        let bytes = match b.malformed {
            None => p.encode().to_vec(),
            Some(Malformed::Short) => p.encode()[..SHORT_LEN].to_vec(),
            Some(Malformed::Empty) => Vec::new(),
            Some(Malformed::Garbage) => {
                let mut g = vec![0u8; HEADER_LEN];
                if let Some(rng) = self.rng.as_mut() {
                    rng.fill(&mut g[..]);
                }
                g
            }
        };
        Action::Reply {
            bytes,
            delay: b.delay,
            from_other: b.reply_from.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::ReplyFrom;
    use ntp::classify::{evaluate, match_reply};
    use std::net::Ipv4Addr;

    const NONCE: NtpTimestamp = NtpTimestamp(0x0123_4567_89ab_cdef);
    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn request(version: u8) -> Vec<u8> {
        let mut p = Packet::client_request(NONCE);
        p.version = version;
        p.poll = 6;
        p.encode().to_vec()
    }

    /// Run one request through a server and through the checker's own
    /// classification: (packet, offset, error code).
    fn through(b: Behaviour) -> (Action, Option<Packet>, Option<f64>, Option<String>) {
        let now = SystemTime::now();
        let t1 = NtpTimestamp::from_system_time(now);
        let mut r = Responder::new(b, 1);
        let action = r.respond(&request(4), LO, now, Duration::from_secs(100));
        let Action::Reply { bytes, delay, .. } = &action else {
            return (action, None, None, None);
        };
        match match_reply(bytes, NONCE) {
            Ok(p) => {
                let m = evaluate(&p, t1, *delay + Duration::from_micros(50));
                let err = m.error.map(|e| e.to_string());
                (action.clone(), Some(p), m.offset, err)
            }
            Err(why) => (
                action.clone(),
                None,
                None,
                Some(format!("bad reply: {why}")),
            ),
        }
    }

    #[test]
    fn good_reply_fields() {
        let (_, p, offset, err) = through(Behaviour::default());
        let p = p.unwrap();
        assert_eq!(
            (p.leap, p.version, p.mode, p.stratum, p.poll),
            (0, 4, 4, 2, 6)
        );
        assert_eq!(p.refid_string(), "127.127.1.1");
        assert_eq!(p.origin_ts, NONCE);
        assert!(p.transmit_ts.diff(p.receive_ts) > 0.0);
        assert!(offset.unwrap().abs() < 1e-3, "{offset:?}");
        assert_eq!(err, None);
    }

    #[test]
    fn version_is_echoed() {
        for v in [1, 2, 3, 4] {
            let mut r = Responder::new(Behaviour::default(), 0);
            let Action::Reply { bytes, .. } =
                r.respond(&request(v), LO, SystemTime::now(), Duration::ZERO)
            else {
                panic!("no reply to version {v}")
            };
            assert_eq!(Packet::decode(&bytes).unwrap().version, v);
        }
    }

    #[test]
    fn ignores_what_is_not_a_request() {
        let mut r = Responder::new(Behaviour::default(), 0);
        let now = SystemTime::now();
        let mut server_mode = Packet::client_request(NONCE);
        server_mode.mode = 4;
        let mut v5 = Packet::client_request(NONCE);
        v5.version = 5;
        let mut v0 = Packet::client_request(NONCE);
        v0.version = 0;
        for bad in [
            vec![],
            vec![0x23; 47],
            server_mode.encode().to_vec(),
            v5.encode().to_vec(),
            v0.encode().to_vec(),
        ] {
            assert_eq!(
                r.respond(&bad, LO, now, Duration::ZERO),
                Action::Ignore,
                "{bad:?}"
            );
        }
        // Extension fields after the header are fine.
        let mut long = request(4);
        long.extend_from_slice(&[0u8; 28]);
        assert!(matches!(
            r.respond(&long, LO, now, Duration::ZERO),
            Action::Reply { .. }
        ));
    }

    #[test]
    fn behaviours_as_the_checker_sees_them() {
        let good = Behaviour::default();
        type Want = (Option<f64>, Option<&'static str>);
        let cases: Vec<(Behaviour, Want)> = vec![
            (
                Behaviour {
                    offset: 0.25,
                    ..good.clone()
                },
                (Some(0.25), None),
            ),
            (
                Behaviour {
                    offset: -3600.0,
                    ..good.clone()
                },
                (Some(-3600.0), None),
            ),
            (
                Behaviour {
                    offset: 0.5,
                    drift_ppm: 1000.0,
                    ..good.clone()
                },
                (Some(0.6), None),
            ),
            (
                Behaviour {
                    stratum: 3,
                    ..good.clone()
                },
                (Some(0.0), None),
            ),
            (
                Behaviour {
                    leap: Some(1),
                    ..good.clone()
                },
                (Some(0.0), None),
            ),
            (
                Behaviour {
                    leap: Some(3),
                    ..good.clone()
                },
                (None, Some("bad reply: unsynchronized (leap 3)")),
            ),
            (
                Behaviour {
                    kod: Some("RATE".into()),
                    ..good.clone()
                },
                (None, Some("RATE")),
            ),
            (
                Behaviour {
                    kod: Some("DENY".into()),
                    ..good.clone()
                },
                (None, Some("DENY")),
            ),
            (
                Behaviour {
                    kod: Some("RSTR".into()),
                    offset: 9.0,
                    ..good.clone()
                },
                (None, Some("RSTR")),
            ),
            (
                Behaviour {
                    kod: Some("X".into()),
                    ..good.clone()
                },
                (None, Some("X")),
            ),
            (
                Behaviour {
                    stratum: 0,
                    ..good.clone()
                },
                (None, Some("bad reply: stratum 0 without kiss code")),
            ),
            (
                Behaviour {
                    malformed: Some(Malformed::Short),
                    ..good.clone()
                },
                (None, Some("bad reply: short packet (20 bytes, need 48)")),
            ),
            (
                Behaviour {
                    malformed: Some(Malformed::Empty),
                    ..good.clone()
                },
                (None, Some("bad reply: short packet (0 bytes, need 48)")),
            ),
            (
                Behaviour {
                    wrong_origin: true,
                    ..good.clone()
                },
                (None, Some("bad reply: origin timestamp does not match")),
            ),
            (
                Behaviour {
                    delay: Duration::from_millis(100),
                    offset: 0.1,
                    ..good.clone()
                },
                (Some(0.1), None),
            ),
        ];
        for (b, (want_offset, want_err)) in cases {
            let name = b.to_string();
            let (_, _, offset, err) = through(b);
            assert_eq!(err.as_deref(), want_err, "{name}");
            match (offset, want_offset) {
                (Some(got), Some(want)) => assert!((got - want).abs() < 1e-3, "{name}: {got}"),
                (got, want) => assert_eq!(got, want, "{name}"),
            }
        }
    }

    #[test]
    fn kod_packet_shape() {
        let (_, p, _, _) = through(Behaviour {
            kod: Some("RATE".into()),
            ..Behaviour::default()
        });
        let p = p.unwrap();
        assert_eq!((p.stratum, p.leap, p.reference_id), (0, 3, *b"RATE"));
        assert_eq!(p.origin_ts, NONCE);
        let (_, p, _, _) = through(Behaviour {
            kod: Some("DENY".into()),
            leap: Some(0),
            ..Behaviour::default()
        });
        assert_eq!(p.unwrap().leap, 0);
    }

    /// The announcement's case: a check of 4 queries 2 s apart gets one
    /// answer; the rest are RATE (or nothing without `kod`), per client.
    #[test]
    fn rate_limited_answers_the_first_of_a_check() {
        let now = SystemTime::now();
        let other = IpAddr::V4(Ipv4Addr::new(127, 0, 4, 3));
        let kinds = |r: &mut Responder, client: IpAddr, t0: u64| -> Vec<String> {
            (0..4)
                .map(|i| {
                    match r.respond(&request(4), client, now, Duration::from_secs(t0 + 2 * i)) {
                        Action::Reply { bytes, .. } => match_reply(&bytes, NONCE)
                            .map(|p| {
                                if p.stratum == 0 {
                                    p.refid_string()
                                } else {
                                    "ok".into()
                                }
                            })
                            .unwrap_or_else(|e| e.to_string()),
                        Action::Drop => "drop".into(),
                        other => format!("{other:?}"),
                    }
                })
                .collect()
        };
        let mut r = Responder::new(Behaviour::preset("rate-limited").unwrap(), 1);
        assert_eq!(kinds(&mut r, LO, 100), ["ok", "RATE", "RATE", "RATE"]);
        assert_eq!(kinds(&mut r, other, 101), ["ok", "RATE", "RATE", "RATE"]);
        assert_eq!(kinds(&mut r, LO, 700), ["ok", "RATE", "RATE", "RATE"]);
        let silent: Behaviour =
            toml::from_str::<toml::Table>("b = { rate_limit = { kod = false } }").unwrap()["b"]
                .clone()
                .try_into()
                .unwrap();
        let mut r = Responder::new(silent, 1);
        assert_eq!(kinds(&mut r, LO, 100), ["ok", "drop", "drop", "drop"]);
    }

    #[test]
    fn silent_loss_and_drop_first() {
        let now = SystemTime::now();
        let count = |b: Behaviour, n: usize| {
            let mut r = Responder::new(b, 42);
            (0..n)
                .map(|_| r.respond(&request(4), LO, now, Duration::ZERO))
                .filter(|a| matches!(a, Action::Reply { .. }))
                .count()
        };
        let good = Behaviour::default();
        assert_eq!(
            count(
                Behaviour {
                    silent: true,
                    ..good.clone()
                },
                10
            ),
            0
        );
        assert_eq!(
            count(
                Behaviour {
                    drop_first: 3,
                    ..good.clone()
                },
                10
            ),
            7
        );
        assert_eq!(
            count(
                Behaviour {
                    loss: 1.0,
                    ..good.clone()
                },
                10
            ),
            0
        );
        let blocked = Behaviour {
            drop_from: vec![LO],
            ..good.clone()
        };
        assert_eq!(count(blocked, 10), 0);
        let elsewhere = Behaviour {
            drop_from: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 4, 3))],
            ..good.clone()
        };
        assert_eq!(count(elsewhere, 10), 10);
        let lossy_path = Behaviour {
            path_loss: vec![(LO, 1.0), (IpAddr::V4(Ipv4Addr::new(127, 0, 4, 3)), 0.0)],
            ..good.clone()
        };
        assert_eq!(count(lossy_path, 10), 0);
        let other_path = Behaviour {
            path_loss: vec![(IpAddr::V4(Ipv4Addr::new(127, 0, 4, 3)), 1.0)],
            ..good.clone()
        };
        assert_eq!(count(other_path, 10), 10);
        let half = count(
            Behaviour {
                loss: 0.5,
                ..good.clone()
            },
            1000,
        );
        assert!((400..600).contains(&half), "{half}");
        // Same seed, same losses.
        let b = Behaviour {
            loss: 0.5,
            ..good.clone()
        };
        assert_eq!(count(b.clone(), 64), count(b, 64));
    }

    #[test]
    fn delay_and_other_address_are_passed_on() {
        let b = Behaviour {
            delay: Duration::from_millis(100),
            reply_from: Some(ReplyFrom::Other),
            ..Behaviour::default()
        };
        let (action, ..) = through(b);
        let Action::Reply {
            delay, from_other, ..
        } = action
        else {
            panic!()
        };
        assert_eq!((delay, from_other), (Duration::from_millis(100), true));
    }

    #[test]
    fn garbage_is_random_and_never_accepted() {
        let mut r = Responder::new(
            Behaviour {
                malformed: Some(Malformed::Garbage),
                ..Behaviour::default()
            },
            5,
        );
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let Action::Reply { bytes, .. } =
                r.respond(&request(4), LO, SystemTime::now(), Duration::ZERO)
            else {
                panic!()
            };
            assert_eq!(bytes.len(), HEADER_LEN);
            assert!(match_reply(&bytes, NONCE).is_err());
            seen.insert(bytes);
        }
        assert_eq!(seen.len(), 50);
    }
}
