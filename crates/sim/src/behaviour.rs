//! What a simulated server does with a request: the `behaviour` value of the
//! fleet file, its validation and its one-line description.

use crate::rate_limit::RateLimit;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// How a server answers. Every field composes with the others (an offset
/// server may also lose packets and be slow); `Behaviour::default()` is a
/// good server: stratum 2, leap 0, no offset, answers every request at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Fixed clock offset in seconds (server clock minus true time).
    pub offset: f64,
    /// Clock drift in parts per million: the offset grows by
    /// `drift_ppm × 1e-6` seconds per second since the fleet started.
    pub drift_ppm: f64,
    /// Stratum of normal replies.
    pub stratum: u8,
    /// Leap indicator; `None` = 0 for normal replies, 3 for kiss-o'-death.
    pub leap: Option<u8>,
    /// Reference id: an IPv4 address or up to 4 ASCII characters. `None` =
    /// `SIM` at stratum 1, 127.127.1.1 above, zeros at stratum 0.
    pub refid: Option<String>,
    /// Answer every request with a kiss-o'-death carrying this code.
    pub kod: Option<String>,
    /// Never answer.
    pub silent: bool,
    /// Probability (0..=1) that a request is dropped.
    pub loss: f64,
    /// Drop the first N requests, then behave as configured.
    pub drop_first: u32,
    /// Drop every request from these client addresses (a path that is
    /// broken for some monitors only).
    pub drop_from: Vec<IpAddr>,
    /// Loss on the path from these clients only (probability 0..=1 each):
    /// a lossy link between one monitor and the server.
    pub path_loss: Vec<(IpAddr, f64)>,
    /// Network delay added to every reply; the server's timestamps sit in the
    /// middle, so offsets stay right and the round trip grows by this much.
    pub delay: Duration,
    /// Send a broken datagram instead of the reply.
    pub malformed: Option<Malformed>,
    /// Put a wrong origin timestamp in the reply.
    pub wrong_origin: bool,
    /// Send the reply from a second socket on another address.
    pub reply_from: Option<ReplyFrom>,
    /// Refuse clients that ask too often (RATE kiss-o'-death or silence),
    /// like ntpd's `discard` with `restrict … limited`.
    pub rate_limit: Option<RateLimit>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            offset: 0.0,
            drift_ppm: 0.0,
            stratum: 2,
            leap: None,
            refid: None,
            kod: None,
            silent: false,
            loss: 0.0,
            drop_first: 0,
            drop_from: Vec::new(),
            path_loss: Vec::new(),
            delay: Duration::ZERO,
            malformed: None,
            wrong_origin: false,
            reply_from: None,
            rate_limit: None,
        }
    }
}

/// Kinds of broken reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Malformed {
    /// The first 20 bytes of a good reply.
    Short,
    /// 48 random bytes.
    Garbage,
    /// A datagram with no payload.
    Empty,
}

/// Where a misdirected reply comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyFrom {
    /// The next loopback address for 127.0.0.0/8 servers (127.0.0.1 →
    /// 127.0.0.2); the same address but another port otherwise (`::1` has
    /// no second loopback address).
    Other,
    /// This address, ephemeral port.
    Addr(IpAddr),
}

impl ReplyFrom {
    /// The address of the second socket for a server bound at `server`.
    pub fn bind_ip(self, server: IpAddr) -> IpAddr {
        match (self, server) {
            (ReplyFrom::Addr(ip), _) => ip,
            (ReplyFrom::Other, IpAddr::V4(v4)) if v4.is_loopback() => {
                let [a, b, c, d] = v4.octets();
                let d = if d < 254 { d + 1 } else { d - 1 };
                IpAddr::V4(Ipv4Addr::new(a, b, c, d))
            }
            (ReplyFrom::Other, ip) => ip,
        }
    }
}

/// Named shorthands accepted where a behaviour table may stand.
pub const PRESETS: &[&str] = &[
    "good",
    "silent",
    "malformed",
    "wrong-origin",
    "other-address",
    "rate-limited",
];

impl Behaviour {
    /// A behaviour by preset name (`good`, `silent`, …), `_` and `-` alike.
    pub fn preset(name: &str) -> Option<Behaviour> {
        let good = Behaviour::default();
        Some(match name.replace('_', "-").as_str() {
            "good" => good,
            "silent" => Behaviour {
                silent: true,
                ..good
            },
            "malformed" => Behaviour {
                malformed: Some(Malformed::Short),
                ..good
            },
            "wrong-origin" => Behaviour {
                wrong_origin: true,
                ..good
            },
            "other-address" => Behaviour {
                reply_from: Some(ReplyFrom::Other),
                ..good
            },
            // ntpd's `discard average 3 minimum 2` with `restrict … kod limited`.
            "rate-limited" => Behaviour {
                rate_limit: Some(RateLimit::default()),
                ..good
            },
            _ => return None,
        })
    }

    /// True when replies need random numbers (loss, garbage).
    pub fn needs_rng(&self) -> bool {
        self.loss > 0.0 || !self.path_loss.is_empty() || self.malformed == Some(Malformed::Garbage)
    }

    /// The 4 reference-id bytes of a normal reply.
    pub fn refid_bytes(&self) -> [u8; 4] {
        match &self.refid {
            Some(s) => refid_to_bytes(s).unwrap_or([0; 4]),
            None if self.stratum == 0 => [0; 4],
            None if self.stratum == 1 => *b"SIM\0",
            None => [127, 127, 1, 1],
        }
    }

    /// The server's offset `elapsed` after the fleet started, seconds.
    pub fn offset_at(&self, elapsed: Duration) -> f64 {
        self.offset + self.drift_ppm * 1e-6 * elapsed.as_secs_f64()
    }
}

/// 4 bytes for a refid given as an IPv4 address or 1–4 printable ASCII
/// characters (padded with NULs).
fn refid_to_bytes(s: &str) -> Result<[u8; 4], String> {
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Ok(ip.octets());
    }
    ascii_code(s).map_err(|why| {
        format!("refid '{s}' {why}; use an IPv4 address or up to 4 ASCII characters")
    })
}

/// 1–4 printable ASCII characters, padded with NULs.
fn ascii_code(s: &str) -> Result<[u8; 4], &'static str> {
    if s.is_empty() || s.len() > 4 {
        return Err("must be 1 to 4 characters");
    }
    if !s.bytes().all(|c| (0x21..=0x7e).contains(&c)) {
        return Err("must be printable ASCII without spaces");
    }
    let mut b = [0u8; 4];
    b[..s.len()].copy_from_slice(s.as_bytes());
    Ok(b)
}

/// The table form as written in the file, before validation.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Table {
    offset: Option<f64>,
    drift_ppm: Option<f64>,
    stratum: Option<u8>,
    leap: Option<u8>,
    refid: Option<String>,
    kod: Option<String>,
    silent: Option<bool>,
    loss: Option<f64>,
    drop_first: Option<u32>,
    drop_from: Option<Vec<String>>,
    path_loss: Option<std::collections::BTreeMap<String, f64>>,
    delay_ms: Option<f64>,
    malformed: Option<Malformed>,
    wrong_origin: Option<bool>,
    reply_from: Option<String>,
    rate_limit: Option<RateLimit>,
}

impl TryFrom<Table> for Behaviour {
    type Error = String;

    fn try_from(t: Table) -> Result<Behaviour, String> {
        let d = Behaviour::default();
        let finite = |name: &str, v: f64, max: f64| {
            if v.is_finite() && v.abs() <= max {
                Ok(v)
            } else {
                Err(format!("{name} {v} is out of range (±{max})"))
            }
        };
        let offset = finite("offset", t.offset.unwrap_or(0.0), 1e9)?;
        let drift_ppm = finite("drift_ppm", t.drift_ppm.unwrap_or(0.0), 1e6)?;
        if let Some(l) = t.leap
            && l > 3
        {
            return Err(format!("leap {l} is out of range (0 to 3)"));
        }
        if let Some(code) = &t.kod {
            ascii_code(code)
                .map_err(|why| format!("kod code '{code}' {why} (e.g. RATE, DENY, RSTR)"))?;
        }
        if let Some(r) = &t.refid {
            refid_to_bytes(r)?;
        }
        let loss = t.loss.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&loss) {
            return Err(format!("loss {loss} is out of range (0 to 1)"));
        }
        let delay_ms = t.delay_ms.unwrap_or(0.0);
        if !(0.0..=60_000.0).contains(&delay_ms) {
            return Err(format!("delay_ms {delay_ms} is out of range (0 to 60000)"));
        }
        let reply_from = match t.reply_from.as_deref() {
            None => None,
            Some("other") => Some(ReplyFrom::Other),
            Some(s) => Some(ReplyFrom::Addr(s.parse().map_err(|_| {
                format!("reply_from '{s}' is neither \"other\" nor an IP address")
            })?)),
        };
        if let Some(l) = &t.rate_limit {
            l.validate()?;
        }
        let drop_from = t
            .drop_from
            .unwrap_or_default()
            .iter()
            .map(|s| {
                s.parse::<IpAddr>()
                    .map_err(|_| format!("drop_from: '{s}' is not an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let path_loss = t
            .path_loss
            .unwrap_or_default()
            .into_iter()
            .map(|(k, p)| {
                let ip = k
                    .parse::<IpAddr>()
                    .map_err(|_| format!("path_loss: '{k}' is not an IP address"))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("path_loss: {k} = {p} is out of range (0 to 1)"));
                }
                Ok((ip, p))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Behaviour {
            offset,
            drift_ppm,
            stratum: t.stratum.unwrap_or(d.stratum),
            leap: t.leap,
            refid: t.refid,
            kod: t.kod,
            silent: t.silent.unwrap_or(false),
            loss,
            drop_first: t.drop_first.unwrap_or(0),
            drop_from,
            path_loss,
            delay: Duration::from_secs_f64(delay_ms / 1000.0),
            malformed: t.malformed,
            wrong_origin: t.wrong_origin.unwrap_or(false),
            reply_from,
            rate_limit: t.rate_limit,
        })
    }
}

/// `behaviour = "preset"` or `behaviour = { field = value, … }`.
impl<'de> Deserialize<'de> for Behaviour {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Behaviour;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "a preset ({}) or a table such as {{ offset = 0.25 }}",
                    PRESETS.join(", ")
                )
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Behaviour, E> {
                Behaviour::preset(s).ok_or_else(|| {
                    E::custom(format!(
                        "unknown behaviour '{s}' (presets: {}; or a table such as {{ offset = 0.25 }})",
                        PRESETS.join(", ")
                    ))
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Behaviour, A::Error> {
                let table = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Behaviour::try_from(table).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A short description, e.g. `offset +0.250 s, loss 50%`; `good` for the default.
impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = Behaviour::default();
        let mut parts: Vec<String> = Vec::new();
        if self.silent {
            parts.push("silent".into());
        }
        if let Some(code) = &self.kod {
            parts.push(format!("kod {code}"));
        }
        if let Some(l) = &self.rate_limit {
            parts.push(format!(
                "rate-limited (average {} s, minimum {} s, burst {}, {})",
                l.average,
                l.minimum,
                l.burst,
                if l.kod { "RATE" } else { "silent" }
            ));
        }
        if self.offset != 0.0 {
            parts.push(format!("offset {:+.3} s", self.offset));
        }
        if self.drift_ppm != 0.0 {
            parts.push(format!("drift {:+} ppm", self.drift_ppm));
        }
        if self.stratum != d.stratum {
            parts.push(format!("stratum {}", self.stratum));
        }
        if let Some(l) = self.leap {
            parts.push(format!("leap {l}"));
        }
        if let Some(r) = &self.refid {
            parts.push(format!("refid {r}"));
        }
        if self.loss > 0.0 {
            parts.push(format!("loss {}%", self.loss * 100.0));
        }
        if self.drop_first > 0 {
            parts.push(format!("drop first {}", self.drop_first));
        }
        if !self.drop_from.is_empty() {
            let ips: Vec<String> = self.drop_from.iter().map(IpAddr::to_string).collect();
            parts.push(format!("drop from {}", ips.join(" ")));
        }
        for (ip, p) in &self.path_loss {
            parts.push(format!("loss {}% from {ip}", p * 100.0));
        }
        if !self.delay.is_zero() {
            parts.push(format!("delay {} ms", self.delay.as_secs_f64() * 1000.0));
        }
        if let Some(m) = self.malformed {
            parts.push(format!("malformed {}", format!("{m:?}").to_lowercase()));
        }
        if self.wrong_origin {
            parts.push("wrong origin".into());
        }
        match self.reply_from {
            Some(ReplyFrom::Other) => parts.push("reply from other address".into()),
            Some(ReplyFrom::Addr(ip)) => parts.push(format!("reply from {ip}")),
            None => {}
        }
        if parts.is_empty() {
            f.write_str("good")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct W {
        behaviour: Behaviour,
    }

    fn parse(s: &str) -> Result<Behaviour, String> {
        toml::from_str::<W>(&format!("behaviour = {s}"))
            .map(|w| w.behaviour)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn presets_and_tables() {
        let good = Behaviour::default();
        let cases: Vec<(&str, Behaviour, &str)> = vec![
            ("\"good\"", good.clone(), "good"),
            ("{}", good.clone(), "good"),
            (
                "\"silent\"",
                Behaviour {
                    silent: true,
                    ..good.clone()
                },
                "silent",
            ),
            (
                "\"malformed\"",
                Behaviour {
                    malformed: Some(Malformed::Short),
                    ..good.clone()
                },
                "malformed short",
            ),
            (
                "\"wrong_origin\"",
                Behaviour {
                    wrong_origin: true,
                    ..good.clone()
                },
                "wrong origin",
            ),
            (
                "\"other-address\"",
                Behaviour {
                    reply_from: Some(ReplyFrom::Other),
                    ..good.clone()
                },
                "reply from other address",
            ),
            (
                "{ offset = 0.25 }",
                Behaviour {
                    offset: 0.25,
                    ..good.clone()
                },
                "offset +0.250 s",
            ),
            (
                "{ offset = -1 }",
                Behaviour {
                    offset: -1.0,
                    ..good.clone()
                },
                "offset -1.000 s",
            ),
            (
                "{ offset = 0.05, drift_ppm = 100 }",
                Behaviour {
                    offset: 0.05,
                    drift_ppm: 100.0,
                    ..good.clone()
                },
                "offset +0.050 s, drift +100 ppm",
            ),
            (
                "{ stratum = 3 }",
                Behaviour {
                    stratum: 3,
                    ..good.clone()
                },
                "stratum 3",
            ),
            (
                "{ leap = 1 }",
                Behaviour {
                    leap: Some(1),
                    ..good.clone()
                },
                "leap 1",
            ),
            (
                "{ kod = \"RATE\" }",
                Behaviour {
                    kod: Some("RATE".into()),
                    ..good.clone()
                },
                "kod RATE",
            ),
            (
                "{ loss = 0.5, delay_ms = 100, offset = 0.1 }",
                Behaviour {
                    loss: 0.5,
                    delay: Duration::from_millis(100),
                    offset: 0.1,
                    ..good.clone()
                },
                "offset +0.100 s, loss 50%, delay 100 ms",
            ),
            (
                "{ malformed = \"garbage\" }",
                Behaviour {
                    malformed: Some(Malformed::Garbage),
                    ..good.clone()
                },
                "malformed garbage",
            ),
            (
                "{ reply_from = \"127.0.0.9\" }",
                Behaviour {
                    reply_from: Some(ReplyFrom::Addr("127.0.0.9".parse().unwrap())),
                    ..good.clone()
                },
                "reply from 127.0.0.9",
            ),
            (
                "{ drop_first = 3 }",
                Behaviour {
                    drop_first: 3,
                    ..good.clone()
                },
                "drop first 3",
            ),
            (
                "{ drop_from = [\"127.0.4.3\", \"::1\"] }",
                Behaviour {
                    drop_from: vec!["127.0.4.3".parse().unwrap(), "::1".parse().unwrap()],
                    ..good.clone()
                },
                "drop from 127.0.4.3 ::1",
            ),
            (
                "{ path_loss = { \"127.0.48.1\" = 0.5 } }",
                Behaviour {
                    path_loss: vec![("127.0.48.1".parse().unwrap(), 0.5)],
                    ..good.clone()
                },
                "loss 50% from 127.0.48.1",
            ),
            (
                "{ rate_limit = { average = 2, minimum = 1 } }",
                Behaviour {
                    rate_limit: Some(RateLimit {
                        average: 2.0,
                        minimum: 1.0,
                        ..RateLimit::default()
                    }),
                    ..good.clone()
                },
                "rate-limited (average 2 s, minimum 1 s, burst 1, RATE)",
            ),
            (
                "{ refid = \"GPS\", stratum = 1 }",
                Behaviour {
                    refid: Some("GPS".into()),
                    stratum: 1,
                    ..good.clone()
                },
                "stratum 1, refid GPS",
            ),
        ];
        for (text, want, shown) in cases {
            let b = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(b, want, "{text}");
            assert_eq!(b.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn bad_behaviours() {
        let cases = [
            ("\"fast\"", "unknown behaviour 'fast'"),
            ("{ offsett = 1 }", "unknown field `offsett`"),
            ("{ loss = 1.5 }", "loss 1.5 is out of range"),
            ("{ loss = -0.1 }", "loss -0.1 is out of range"),
            ("{ leap = 4 }", "leap 4 is out of range"),
            ("{ stratum = 300 }", "300"),
            (
                "{ kod = \"TOOLONG\" }",
                "kod code 'TOOLONG' must be 1 to 4 characters",
            ),
            ("{ kod = \"\" }", "kod code '' must be 1 to 4 characters"),
            ("{ kod = \"A B\" }", "printable ASCII"),
            ("{ delay_ms = -5 }", "delay_ms -5 is out of range"),
            ("{ offset = nan }", "offset NaN is out of range"),
            ("{ malformed = \"long\" }", "unknown variant `long`"),
            ("{ reply_from = \"elsewhere\" }", "reply_from 'elsewhere'"),
            (
                "{ drop_from = [\"10.0.0.0/8\"] }",
                "drop_from: '10.0.0.0/8' is not an IP address",
            ),
            (
                "{ path_loss = { \"127.0.48.1\" = 1.5 } }",
                "path_loss: 127.0.48.1 = 1.5 is out of range",
            ),
            (
                "{ path_loss = { \"somewhere\" = 0.5 } }",
                "path_loss: 'somewhere' is not an IP address",
            ),
            ("{ drop_from = \"127.0.0.1\" }", "invalid type"),
            ("{ refid = \"TOOLONG\" }", "refid 'TOOLONG'"),
            ("42", "a preset"),
        ];
        for (text, want) in cases {
            let e = parse(text).expect_err(text);
            assert!(e.contains(want), "{text}: got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn refids() {
        let b = |stratum: u8, refid: Option<&str>| Behaviour {
            stratum,
            refid: refid.map(str::to_string),
            ..Behaviour::default()
        };
        assert_eq!(b(2, None).refid_bytes(), [127, 127, 1, 1]);
        assert_eq!(b(1, None).refid_bytes(), *b"SIM\0");
        assert_eq!(b(0, None).refid_bytes(), [0; 4]);
        assert_eq!(b(3, Some("10.1.2.3")).refid_bytes(), [10, 1, 2, 3]);
        assert_eq!(b(1, Some("GPS")).refid_bytes(), *b"GPS\0");
    }

    #[test]
    fn other_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(ReplyFrom::Other.bind_ip(ip("127.0.0.1")), ip("127.0.0.2"));
        assert_eq!(
            ReplyFrom::Other.bind_ip(ip("127.1.2.254")),
            ip("127.1.2.253")
        );
        assert_eq!(ReplyFrom::Other.bind_ip(ip("::1")), ip("::1"));
        assert_eq!(
            ReplyFrom::Addr(ip("127.9.9.9")).bind_ip(ip("127.0.0.1")),
            ip("127.9.9.9")
        );
    }

    #[test]
    fn drift() {
        let b = Behaviour {
            offset: 0.5,
            drift_ppm: 100.0,
            ..Behaviour::default()
        };
        assert!((b.offset_at(Duration::from_secs(10)) - 0.501).abs() < 1e-12);
    }
}
