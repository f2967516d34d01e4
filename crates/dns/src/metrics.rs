//! The DNS counters. The per-query hot path (an address answer) increments
//! handles registered when a zone loads, so a query costs one atomic add per
//! counter instead of a registry lookup with freshly built labels.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use metrics::Counter;
use std::collections::HashMap;
use std::sync::Arc;

const QUERIES: &str = "poolwatch_dns_queries_total";
const ANSWER_RECORDS: &str = "poolwatch_dns_answer_records_total";

/// `poolwatch_dns_queries_total{zone, qtype, rcode="NOERROR"}` for the
/// address types of one pool zone.
#[derive(Debug)]
pub(crate) struct ZoneCounters {
    a: Counter,
    aaaa: Counter,
    any: Counter,
}

impl ZoneCounters {
    fn new(zone: &str) -> ZoneCounters {
        let c = |qtype: &'static str| metrics::counter!(QUERIES, "zone" => zone.to_string(), "qtype" => qtype, "rcode" => "NOERROR");
        ZoneCounters {
            a: c("A"),
            aaaa: c("AAAA"),
            any: c("ANY"),
        }
    }
}

/// Counter handles of one loaded zone.
#[derive(Debug)]
pub(crate) struct ZoneMetrics {
    zones: HashMap<String, Arc<ZoneCounters>>,
    /// `poolwatch_dns_answer_records_total{qtype}` for A, AAAA, ANY.
    records: [Counter; 3],
}

impl ZoneMetrics {
    pub(crate) fn new() -> ZoneMetrics {
        let r = |qtype: &'static str| metrics::counter!(ANSWER_RECORDS, "qtype" => qtype);
        ZoneMetrics {
            zones: HashMap::new(),
            records: [r("A"), r("AAAA"), r("ANY")],
        }
    }

    /// The counters of `zone`, registered on first use.
    pub(crate) fn zone(&mut self, zone: &str) -> Arc<ZoneCounters> {
        self.zones
            .entry(zone.to_string())
            .or_insert_with(|| Arc::new(ZoneCounters::new(zone)))
            .clone()
    }

    /// Counts an address answer (NOERROR) from `zone`.
    pub(crate) fn answered(&self, zone: &ZoneCounters, qtype: RecordType, records: usize) {
        let (q, r) = match qtype {
            RecordType::A => (&zone.a, &self.records[0]),
            RecordType::AAAA => (&zone.aaaa, &self.records[1]),
            _ => (&zone.any, &self.records[2]),
        };
        q.increment(1);
        r.increment(records as u64);
    }
}

/// Counts any other query (errors, NODATA, SOA/NS, debug): the slow path.
pub(crate) fn count(zone: &str, qtype: &'static str, rcode: ResponseCode, answers: usize) {
    metrics::counter!(
        QUERIES,
        "zone" => zone.to_string(),
        "qtype" => qtype,
        "rcode" => rcode_name(rcode)
    )
    .increment(1);
    if answers > 0 {
        metrics::counter!(ANSWER_RECORDS, "qtype" => qtype).increment(answers as u64);
    }
}

fn rcode_name(r: ResponseCode) -> &'static str {
    match r {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::BADVERS => "BADVERS",
        _ => "OTHER",
    }
}

/// The `zone` label from a closed set: the apex (`@`), a continent or a
/// known country; any other label name of the zone data counts as `other`,
/// so zone data cannot make series without bound.
pub(crate) fn zone_label(zone: &str) -> &str {
    if zone == "@" || geo::CONTINENTS.contains(&zone) || geo::continent_of_country(zone).is_some() {
        zone
    } else {
        "other"
    }
}

/// The `qtype` label: common types by name, the rest as "other" (bounded
/// label values).
pub(crate) fn qtype_name(t: RecordType) -> &'static str {
    match t {
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::ANY => "ANY",
        RecordType::SOA => "SOA",
        RecordType::NS => "NS",
        RecordType::TXT => "TXT",
        RecordType::MX => "MX",
        RecordType::CNAME => "CNAME",
        RecordType::HTTPS => "HTTPS",
        RecordType::SVCB => "SVCB",
        RecordType::PTR => "PTR",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_labels_come_from_a_closed_set() {
        for z in ["@", "europe", "de", "uk", "north-america"] {
            assert_eq!(zone_label(z), z);
        }
        for z in ["x1", "zz", "foo-bar", "de.extra"] {
            assert_eq!(zone_label(z), "other", "{z}");
        }
    }
}
