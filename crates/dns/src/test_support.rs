//! What the crate's unit tests share: a pool of test servers, queries in
//! wire format and a handler locating with MaxMind's test database.

use crate::generate::DnsServer;
use crate::handler::GeoDnsHandler;
use crate::live_zone::ZoneStore;
use crate::rrl::RrlConfig;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use std::net::IpAddr;
use std::ops::Range;

/// Servers numbered `ids` in each of `countries` (the `i`-th country's
/// are `192.0.i.j`, every third `2001:db8:i::j` instead), with netspeed
/// `1000 × (j + 1)`: both families, various weights.
pub(crate) fn servers(countries: &[&str], ids: Range<u32>) -> Vec<DnsServer> {
    let mut out = Vec::new();
    for (i, cc) in countries.iter().enumerate() {
        for j in ids.clone() {
            let ip = if j % 3 == 2 {
                IpAddr::V6(format!("2001:db8:{i}::{j}").parse().unwrap())
            } else {
                IpAddr::V4(format!("192.0.{i}.{j}").parse().unwrap())
            };
            out.push(DnsServer {
                ip,
                netspeed: 1000 * (j + 1),
                zones: geo::zones_for_country(cc).unwrap(),
            });
        }
    }
    out
}

/// A query for `name` with message id `id`, RD set; with `edns`, an OPT
/// of that payload size and optionally an ECS option (address, prefix).
pub(crate) fn query(
    id: u16,
    name: &str,
    qtype: RecordType,
    edns: Option<(u16, Option<(&str, u8)>)>,
) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m.metadata.recursion_desired = true;
    if let Some((payload, ecs)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        if let Some((ip, prefix)) = ecs {
            e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                ip.parse().unwrap(),
                prefix,
                0,
            )));
        }
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// A handler for `store` locating clients with the test Country database.
pub(crate) fn handler(store: &ZoneStore, rrl: &RrlConfig) -> GeoDnsHandler {
    let geo = geo::GeoIp::open(std::path::Path::new(geo::fixtures::COUNTRY_MMDB)).unwrap();
    GeoDnsHandler::new(store.clone(), Some(geo)).with_rrl(rrl)
}
