//! The hickory `RequestHandler`: one DNS message in, one out (or none, when
//! response rate limiting drops it). It reads the current zone, locates the
//! client, resolves and picks addresses.

use crate::counts::{AnswerCounts, Family, Pending, country_slot};
use crate::ecs::client_subnet;
use crate::live_zone::ZoneStore;
use crate::locate::{Located, Subnet, locate};
use crate::metrics::ZoneCounters;
use crate::metrics::{count, qtype_name};
use crate::rrl::{ResponseKind, Rrl, RrlConfig, Verdict};
use crate::zone::{Label, Lookup, Zone};
use geo::GeoIp;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The UDP payload size we advertise and answer within (DNS flag day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// TTL of the `_country` and `_status` debug answers.
const DEBUG_TTL: u32 = 1;

/// Answers queries for the zone in a [`ZoneStore`].
pub struct GeoDnsHandler {
    store: ZoneStore,
    geo: Option<GeoIp>,
    rng: RngSource,
    /// Response rate limiting over UDP; `None` when off.
    rrl: Option<Rrl>,
    /// This process's name in `_status` answers (the host name).
    instance: Arc<str>,
}

enum RngSource {
    Thread,
    /// One shared generator, for reproducible tests.
    Seeded(Box<Mutex<StdRng>>),
}

impl GeoDnsHandler {
    /// A handler for the zone in `store`, locating clients with `geo`
    /// (without a database every client gets the global zone), with
    /// response rate limiting at [`RrlConfig::default`].
    pub fn new(store: ZoneStore, geo: Option<GeoIp>) -> Self {
        GeoDnsHandler {
            store,
            geo,
            rng: RngSource::Thread,
            rrl: Rrl::new(&RrlConfig::default()),
            instance: Arc::from(host_name().as_str()),
        }
    }

    /// Limits UDP responses with `cfg` (rate 0: not at all).
    pub fn with_rrl(mut self, cfg: &RrlConfig) -> Self {
        self.rrl = Rrl::new(cfg);
        self
    }

    /// Whether a bare FORMERR may go to `src` (a UDP query that did not
    /// parse): counted with the other errors to that prefix. A slip is
    /// sent as is, the FORMERR being no longer than the TC answer would be.
    pub(crate) fn may_send_formerr(&self, src: IpAddr) -> bool {
        self.rrl
            .as_ref()
            .is_none_or(|r| r.check(src, ResponseKind::Error, None, 0) != Verdict::Drop)
    }

    /// Picks addresses from one generator seeded with `seed`: the same
    /// queries in the same order get the same answers (tests).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = RngSource::Seeded(Box::new(Mutex::new(StdRng::seed_from_u64(seed))));
        self
    }

    /// A handle on the answers this handler sends, counted per server and
    /// client country, for [`AnswerCounts::harvest`]. Take it before
    /// [`crate::DnsListener::serve`] consumes the handler.
    pub fn counts(&self) -> AnswerCounts {
        AnswerCounts::new(self.store.counts().clone(), self.instance.clone())
    }

    /// The zone store the handler answers from.
    pub fn store(&self) -> &ZoneStore {
        &self.store
    }

    pub(crate) fn geo(&self) -> Option<&GeoIp> {
        self.geo.as_ref()
    }

    pub(crate) fn rrl(&self) -> Option<&Rrl> {
        self.rrl.as_ref()
    }

    /// Runs `f` with the handler's random source (the thread's, or the
    /// shared seeded one).
    pub(crate) fn draw<T>(&self, f: impl FnOnce(&mut dyn rand::RngCore) -> T) -> T {
        match &self.rng {
            RngSource::Thread => f(&mut rand::rng()),
            RngSource::Seeded(m) => match m.lock() {
                Ok(mut g) => f(&mut *g),
                Err(poisoned) => f(&mut *poisoned.into_inner()),
            },
        }
    }

    /// Picks the answer's records, and what to count once it is sent.
    fn pick(
        &self,
        label: &Label,
        qname: &Name,
        qtype: RecordType,
        slot: usize,
    ) -> (Vec<Record>, Pending) {
        let mut idx = Vec::with_capacity(label.max_hosts);
        // ANY gets one RRset (RFC 8482 §4.1): the A set, else the AAAA set.
        // It is then no larger than the answer to an A query, so ANY
        // amplifies no more than A; and unlike a synthesized HINFO (§4.2)
        // it still gives an old ANY-asking client addresses it can use.
        let any_a = qtype == RecordType::ANY && !label.a.is_empty();
        let family = if qtype == RecordType::A || any_a {
            Family::V4
        } else {
            Family::V6
        };
        let out = self.draw(|rng| match family {
            Family::V4 => {
                label.a.pick(label.max_hosts, rng, &mut idx);
                idx.iter()
                    .map(|&i| {
                        Record::from_rdata(qname.clone(), label.ttl, RData::A(A(*label.a.get(i))))
                    })
                    .collect()
            }
            Family::V6 => {
                label.aaaa.pick(label.max_hosts, rng, &mut idx);
                idx.iter()
                    .map(|&i| {
                        Record::from_rdata(
                            qname.clone(),
                            label.ttl,
                            RData::AAAA(AAAA(*label.aaaa.get(i))),
                        )
                    })
                    .collect()
            }
        });
        (out, Pending::new(label, family, &idx, slot))
    }
}

/// What one query produced, before encoding.
struct Reply {
    rcode: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authority: Vec<Record>,
    zone: Arc<str>,
    /// Set for address answers: counted through the zone's handles, and
    /// in the answer counts once sent.
    counted: Option<(Arc<Zone>, Arc<ZoneCounters>, Pending)>,
}

impl Reply {
    /// How response rate limiting counts this reply.
    fn kind(&self) -> ResponseKind {
        match self.rcode {
            ResponseCode::NoError if self.answers.is_empty() => ResponseKind::NoData,
            ResponseCode::NoError => ResponseKind::Positive,
            ResponseCode::NXDomain => ResponseKind::NxDomain,
            _ => ResponseKind::Error,
        }
    }

    fn error(rcode: ResponseCode) -> Reply {
        Reply {
            rcode,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
            zone: "-".into(),
            counted: None,
        }
    }
}

/// The `_country` TXT strings: how the client was located.
fn country_debug(loc: &Located, ecs: Option<Subnet>, zone: &Zone) -> Vec<String> {
    let quoted: Vec<String> = loc.targets.iter().map(|t| format!("{t:?}")).collect();
    let via = match (ecs, loc.via_ecs) {
        (Some(s), true) => format!("ip {}/{} (ecs)", loc.used, s.source_prefix),
        (Some(s), false) => format!(
            "ip {} (peer; ecs {}/{} not used)",
            loc.used, s.addr, s.source_prefix
        ),
        (None, _) => format!("ip {} (peer)", loc.used),
    };
    vec![
        format!("peer {}", loc.peer),
        via,
        format!("targets [{}]", quoted.join(",")),
        format!("serial {}", zone.serial()),
    ]
}

/// The `_status` TXT strings: what this process serves and since when, so
/// an operator asking each of several DNS servers sees which one is stale.
fn status_debug(zone: &Zone, instance: &str) -> Vec<String> {
    let (v4, v6) = zone.server_counts();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let age = if zone.loaded_at() > 0 {
        format!("age {}s", (now - zone.loaded_at()).max(0))
    } else {
        "age unknown".to_string()
    };
    vec![
        format!("serial {}", zone.serial()),
        format!("servers ipv4 {v4} ipv6 {v6}"),
        age,
        format!("instance {instance}"),
    ]
}

/// The host's name (Linux), else "-": which DNS process answered.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.len() <= 200 && h.is_ascii())
        .unwrap_or_else(|| "-".to_string())
}

/// Counts a query that could not be parsed (answered FORMERR by the server).
pub(crate) fn count_formerr() {
    count("-", "-", ResponseCode::FormErr, 0);
}

#[async_trait::async_trait]
impl RequestHandler for GeoDnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let req_edns = request.edns.as_ref();
        // hickory found an ECS option: judge it from the raw bytes, which
        // hickory's decoder reads leniently (see `ecs`).
        let ecs = match req_edns.and_then(|e| e.option(EdnsCode::Subnet)) {
            Some(_) => client_subnet(request.as_slice()),
            None => Ok(None),
        };
        if let Err(error) = &ecs {
            tracing::debug!(src = %request.src(), %error, "malformed ECS option: FORMERR");
        }
        let mut resp_edns = req_edns.map(|e| {
            let mut r = Edns::new();
            r.set_max_payload(e.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            r.set_version(0);
            r
        });
        let query = request.queries.queries().first();
        let qtype = query.map_or("-", |q| qtype_name(q.query_type()));

        let reply = if req_edns.is_some_and(|e| e.version() > 0) {
            Reply::error(ResponseCode::BADVERS)
        } else if ecs.is_err() {
            // RFC 7871 §7.1.2.
            Reply::error(ResponseCode::FormErr)
        } else if request.metadata.op_code != OpCode::Query {
            Reply::error(ResponseCode::NotImp)
        } else if request.queries.len() != 1 {
            Reply::error(ResponseCode::FormErr)
        } else if query.is_some_and(|q| {
            q.query_class() != DNSClass::IN
                || matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR)
        }) {
            // CHAOS and friends (version.bind) are not our zone; the zone is
            // made per query, so there is nothing to transfer.
            Reply::error(ResponseCode::Refused)
        } else if let (Some(q), Some(zone)) = (query, self.store.current()) {
            let ecs = ecs.ok().flatten();
            let loc = locate(self.geo.as_ref(), request.src().ip(), ecs);
            if let (Some(s), Some(e)) = (ecs, resp_edns.as_mut()) {
                // RFC 7871: echo family, source prefix and address, with
                // the scope the answer is valid for.
                e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                    s.addr,
                    s.source_prefix,
                    loc.scope,
                )));
            }
            let qname = q.original().name();
            // The origin asked under gives the SOA and NS (none: REFUSED).
            let apex = zone.apex(q.name());
            let soa = || apex.map(|a| a.soa().clone()).into_iter().collect();
            let ok = |answers: Vec<Record>, zone: Arc<str>| Reply {
                rcode: ResponseCode::NoError,
                authoritative: true,
                answers,
                authority: Vec::new(),
                zone,
                counted: None,
            };
            let found = zone.resolve(q.name(), q.query_type(), &loc.targets);
            match found {
                Lookup::Refused => Reply::error(ResponseCode::Refused),
                Lookup::NxDomain => Reply {
                    rcode: ResponseCode::NXDomain,
                    authority: soa(),
                    ..ok(Vec::new(), "-".into())
                },
                Lookup::NoData => Reply {
                    authority: soa(),
                    ..ok(Vec::new(), "-".into())
                },
                Lookup::Soa => ok(soa(), "@".into()),
                Lookup::Ns => ok(apex.map_or(Vec::new(), |a| a.ns().to_vec()), "@".into()),
                Lookup::CountryDebug | Lookup::StatusDebug => {
                    let txt = if matches!(found, Lookup::CountryDebug) {
                        country_debug(&loc, ecs, &zone)
                    } else {
                        status_debug(&zone, &self.instance)
                    };
                    let rec =
                        Record::from_rdata(qname.clone(), DEBUG_TTL, RData::TXT(TXT::new(txt)));
                    ok(vec![rec], "-".into())
                }
                Lookup::Addresses(label) => {
                    let slot = country_slot(&loc);
                    let (answers, pending) = self.pick(label, qname, q.query_type(), slot);
                    Reply {
                        counted: Some((zone.clone(), label.counters.clone(), pending)),
                        ..ok(answers, label.zone.clone())
                    }
                }
            }
        } else {
            // No zone loaded yet: let resolvers try another server.
            Reply::error(ResponseCode::ServFail)
        };

        match &reply.counted {
            Some((zone, counters, _)) => {
                zone.metrics().answered(
                    counters,
                    query.map_or(RecordType::A, |q| q.query_type()),
                    reply.answers.len(),
                );
            }
            None => count(&reply.zone, qtype, reply.rcode, reply.answers.len()),
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = reply.authoritative;
        metadata.response_code = reply.rcode;
        // Only UDP is limited: a TCP client has shown it owns its address.
        let verdict = match (&self.rrl, request.protocol()) {
            (Some(rrl), Protocol::Udp) => rrl.check(
                request.src().ip(),
                reply.kind(),
                query.map(|q| q.name()),
                query.map_or(0, |q| u16::from(q.query_type())),
            ),
            _ => Verdict::Answer,
        };
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        let (answers, authority): (&[Record], &[Record]) = match verdict {
            Verdict::Drop => {
                return ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                });
            }
            Verdict::Slip => {
                // As NSD: the question alone with TC=1, so that a real
                // resolver asks again over TCP.
                metadata.truncation = true;
                (&[], &[])
            }
            Verdict::Answer => {
                if let Some(e) = resp_edns.as_ref() {
                    builder.edns(e);
                }
                (&reply.answers, &reply.authority)
            }
        };
        let response = builder.build(
            metadata,
            answers.iter(),
            std::iter::empty(),
            authority.iter(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => {
                // Only an answer sent counts, with the records that fitted.
                if let (Verdict::Answer, Some((zone, _, pending))) = (verdict, &reply.counted) {
                    zone.tally()
                        .sent(pending, usize::from(info.counts().answers));
                }
                info
            }
            Err(error) => {
                tracing::debug!(%error, "could not send a DNS response");
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
