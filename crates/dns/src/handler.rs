//! The hickory `RequestHandler`: one DNS message in, one out. It reads the
//! current zone, locates the client, resolves and picks addresses.

use crate::locate::{Located, Subnet, locate};
use crate::metrics::ZoneCounters;
use crate::metrics::{count, qtype_name};
use crate::store::ZoneStore;
use crate::zone::{Label, Lookup, Zone};
use geo::GeoIp;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::{Arc, Mutex};

/// The UDP payload size we advertise and answer within (DNS flag day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// TTL of the `_country` debug answer.
const DEBUG_TTL: u32 = 1;

/// Answers queries for the zone in a [`ZoneStore`].
pub struct GeoDnsHandler {
    store: ZoneStore,
    geo: Option<GeoIp>,
    rng: RngSource,
}

enum RngSource {
    Thread,
    /// One shared generator, for reproducible tests.
    Seeded(Box<Mutex<StdRng>>),
}

impl GeoDnsHandler {
    /// A handler for the zone in `store`, locating clients with `geo`
    /// (without a database every client gets the global zone).
    pub fn new(store: ZoneStore, geo: Option<GeoIp>) -> Self {
        GeoDnsHandler {
            store,
            geo,
            rng: RngSource::Thread,
        }
    }

    /// Picks addresses from one generator seeded with `seed`: the same
    /// queries in the same order get the same answers (tests).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = RngSource::Seeded(Box::new(Mutex::new(StdRng::seed_from_u64(seed))));
        self
    }

    /// The zone store the handler answers from.
    pub fn store(&self) -> &ZoneStore {
        &self.store
    }

    fn pick(&self, label: &Label, qname: &Name, qtype: RecordType) -> Vec<Record> {
        let mut out = Vec::with_capacity(label.max_hosts * 2);
        let mut idx = Vec::with_capacity(label.max_hosts);
        let mut draw = |rng: &mut dyn rand::RngCore| {
            if matches!(qtype, RecordType::A | RecordType::ANY) {
                label.a.pick(label.max_hosts, rng, &mut idx);
                out.extend(idx.drain(..).map(|i| {
                    Record::from_rdata(qname.clone(), label.ttl, RData::A(A(*label.a.get(i))))
                }));
            }
            if matches!(qtype, RecordType::AAAA | RecordType::ANY) {
                label.aaaa.pick(label.max_hosts, rng, &mut idx);
                out.extend(idx.drain(..).map(|i| {
                    Record::from_rdata(
                        qname.clone(),
                        label.ttl,
                        RData::AAAA(AAAA(*label.aaaa.get(i))),
                    )
                }));
            }
        };
        match &self.rng {
            RngSource::Thread => draw(&mut rand::rng()),
            RngSource::Seeded(m) => match m.lock() {
                Ok(mut g) => draw(&mut *g),
                Err(poisoned) => draw(&mut *poisoned.into_inner()),
            },
        }
        out
    }
}

/// What one query produced, before encoding.
struct Reply {
    rcode: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authority: Vec<Record>,
    zone: Arc<str>,
    /// Set for address answers: counted through the zone's handles.
    counted: Option<(Arc<Zone>, Arc<ZoneCounters>)>,
}

impl Reply {
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
        let ecs = req_edns.and_then(|e| match e.option(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => Some(Subnet {
                addr: s.addr(),
                source_prefix: s.source_prefix(),
            }),
            _ => None,
        });
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
            let soa = || vec![zone.soa().clone()];
            let ok = |answers: Vec<Record>, zone: Arc<str>| Reply {
                rcode: ResponseCode::NoError,
                authoritative: true,
                answers,
                authority: Vec::new(),
                zone,
                counted: None,
            };
            match zone.resolve(q.name(), q.query_type(), &loc.targets) {
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
                Lookup::Ns => ok(zone.ns().to_vec(), "@".into()),
                Lookup::CountryDebug => {
                    let txt = country_debug(&loc, ecs, &zone);
                    let rec =
                        Record::from_rdata(qname.clone(), DEBUG_TTL, RData::TXT(TXT::new(txt)));
                    ok(vec![rec], "-".into())
                }
                Lookup::Addresses(label) => Reply {
                    counted: Some((zone.clone(), label.counters.clone())),
                    ..ok(self.pick(label, qname, q.query_type()), label.zone.clone())
                },
            }
        } else {
            // No zone loaded yet: let resolvers try another server.
            Reply::error(ResponseCode::ServFail)
        };

        match &reply.counted {
            Some((zone, counters)) => {
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
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(e) = resp_edns.as_ref() {
            builder.edns(e);
        }
        let response = builder.build(
            metadata,
            reply.answers.iter(),
            std::iter::empty(),
            reply.authority.iter(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
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
