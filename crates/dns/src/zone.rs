//! A loaded zone and the answer to "which records for this name, type and
//! client location": pure lookups, no sockets and no randomness.

use crate::counts::{LabelIds, Shared, ZoneTally};
use crate::metrics::{ZoneCounters, ZoneMetrics};
use crate::model::{LabelData, ZoneData};
use crate::pick::Weighted;
use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Most addresses one answer may carry, whatever the zone says.
pub const MAX_HOSTS_LIMIT: u32 = 64;
/// TTL of NS records (GeoDNS's default).
const NS_TTL: u32 = 86_400;

/// Why zone data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    #[error("zone name {name:?} is not a domain name: {reason}")]
    Origin { name: String, reason: String },
    #[error("label {label:?} is not a valid name in the zone")]
    Label { label: String },
    #[error("name server {name:?} is not a domain name")]
    NameServer { name: String },
    #[error("contact {name:?} is not a domain name")]
    Contact { name: String },
    #[error("label {label:?}: alias {target:?} {reason}")]
    Alias {
        label: String,
        target: String,
        reason: &'static str,
    },
    #[error("no zone name given")]
    NoOrigin,
    #[error("zone name {name:?} is given twice")]
    SameOrigin { name: String },
}

/// One label of the zone, ready to answer from.
#[derive(Debug)]
pub struct Label {
    /// The pool zone it belongs to (`"de"`, `"europe"`, `"@"`), for metrics.
    pub zone: Arc<str>,
    pub a: Weighted<Ipv4Addr>,
    pub aaaa: Weighted<Ipv6Addr>,
    pub ttl: u32,
    pub max_hosts: usize,
    pub(crate) counters: Arc<ZoneCounters>,
    /// Its servers' indexes in the answer counts.
    pub(crate) ids: LabelIds,
}

impl Label {
    fn has(&self, qtype: RecordType) -> bool {
        match qtype {
            RecordType::A => !self.a.is_empty(),
            RecordType::AAAA => !self.aaaa.is_empty(),
            RecordType::ANY => !self.a.is_empty() || !self.aaaa.is_empty(),
            _ => false,
        }
    }
}

/// What a query resolves to.
#[derive(Debug)]
pub enum Lookup<'z> {
    /// The name is not in this zone.
    Refused,
    /// No such name in the zone.
    NxDomain,
    /// The name exists but has no records of the type.
    NoData,
    /// The apex SOA.
    Soa,
    /// The apex NS set.
    Ns,
    /// Addresses from this label (A, AAAA, or both for ANY).
    Addresses(&'z Label),
    /// The `_country` TXT debug answer.
    CountryDebug,
    /// The `_status` TXT debug answer.
    StatusDebug,
}

impl Lookup<'_> {
    /// The metrics label for the zone that answered: `"de"`, `"europe"`,
    /// `"@"`, or `"-"` when no address label did.
    pub fn zone_label(&self) -> &str {
        match self {
            Lookup::Addresses(l) => &l.zone,
            _ => "-",
        }
    }
}

/// One name the zone answers under, with its own SOA and NS records.
#[derive(Debug)]
pub struct Apex {
    name: Name,
    /// The name in wire format, lower-case (the fast path's suffix).
    wire: Vec<u8>,
    soa: Record,
    ns: Vec<Record>,
}

impl Apex {
    /// The origin (fully qualified, lower-case).
    pub fn name(&self) -> &Name {
        &self.name
    }

    pub(crate) fn wire(&self) -> &[u8] {
        &self.wire
    }

    pub fn soa(&self) -> &Record {
        &self.soa
    }

    pub fn ns(&self) -> &[Record] {
        &self.ns
    }
}

/// A zone loaded from [`ZoneData`]: immutable, shared by all queries.
///
/// One zone may answer under several origins (`pool.example.org` and
/// `pool.example.net`): the labels and their pickers are shared, each
/// origin has its own SOA and NS records.
#[derive(Debug)]
pub struct Zone {
    /// The origins, longest first, so that the first one a name is under
    /// is the most specific when origins nest.
    apexes: Vec<Apex>,
    /// The index in `apexes` of the first origin given (`origin`, `soa`, `ns`).
    first: usize,
    serial: u32,
    labels: HashMap<String, Label>,
    /// Names that answer as another label (vendor names): name → target,
    /// both relative and lower-case; every target is in `labels`.
    aliases: HashMap<String, String>,
    /// Distinct IPv4 and IPv6 addresses.
    servers: (usize, usize),
    /// When this process loaded the zone, unix seconds (0: not said);
    /// set by [`crate::ZoneStore::load`], shown by `_status`.
    pub(crate) loaded_at: i64,
    metrics: ZoneMetrics,
    tally: Arc<ZoneTally>,
}

impl Zone {
    /// Loads `data` as the zone `origin` (e.g. `pool.example.org`).
    pub fn new(origin: &str, data: &ZoneData) -> Result<Zone, ZoneError> {
        Zone::with_origins(&[origin], data)
    }

    /// Loads `data` as one zone answering under each of `origins` (NS and
    /// contact names in the data are relative to each origin unless they
    /// end with a dot).
    pub fn with_origins<S: AsRef<str>>(origins: &[S], data: &ZoneData) -> Result<Zone, ZoneError> {
        Zone::counted(origins, data, &Shared::default())
    }

    /// [`Zone::with_origins`], counting its answers into `counts`.
    pub(crate) fn counted<S: AsRef<str>>(
        origins: &[S],
        data: &ZoneData,
        counts: &Shared,
    ) -> Result<Zone, ZoneError> {
        let mut apexes: Vec<Apex> = Vec::with_capacity(origins.len());
        for origin in origins {
            let apex = apex(parse_origin(origin.as_ref())?, data)?;
            if apexes.iter().any(|a| a.name == apex.name) {
                return Err(ZoneError::SameOrigin {
                    name: origin.as_ref().to_string(),
                });
            }
            apexes.push(apex);
        }
        if apexes.is_empty() {
            return Err(ZoneError::NoOrigin);
        }
        let first_name = apexes[0].name.clone();
        // Stable: among origins of one length the given order stays.
        apexes.sort_by_key(|a| std::cmp::Reverse(a.wire.len()));
        let first = apexes
            .iter()
            .position(|a| a.name == first_name)
            .unwrap_or(0);
        let ttl = data.ttl;
        let max_hosts = data.max_hosts.clamp(1, MAX_HOSTS_LIMIT);
        let mut labels = HashMap::with_capacity(data.data.len());
        let mut metrics = ZoneMetrics::new();
        let mut aliases = HashMap::new();
        for (key, l) in &data.data {
            let key = key.trim_end_matches('.').to_ascii_lowercase();
            if !key.is_empty() && !key.split('.').all(is_label) {
                return Err(ZoneError::Label { label: key });
            }
            if let Some(target) = &l.alias {
                let target = target.trim_end_matches('.').to_ascii_lowercase();
                let has_records = !(l.a.is_empty() && l.aaaa.is_empty() && l.ns.is_empty());
                let reason = if key.is_empty() {
                    Some("is refused at the apex (its SOA and NS are its own)")
                } else if has_records {
                    Some("is refused on a label with records of its own")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(ZoneError::Alias {
                        label: key,
                        target,
                        reason,
                    });
                }
                aliases.insert(key, target);
                continue;
            }
            labels.insert(
                key.clone(),
                compile_label(&key, l, ttl, max_hosts, &mut metrics),
            );
        }
        labels.entry(String::new()).or_insert_with(|| {
            compile_label("", &LabelData::default(), ttl, max_hosts, &mut metrics)
        });
        // One step to a real label: an alias to a missing name or to another
        // alias would answer NXDOMAIN (or loop), so such data is refused
        // whole and the previous zone keeps answering.
        for (label, target) in &aliases {
            if !labels.contains_key(target) {
                return Err(ZoneError::Alias {
                    label: label.clone(),
                    target: target.clone(),
                    reason: if aliases.contains_key(target) {
                        "points at another alias (no chains)"
                    } else {
                        "points at no label of the zone"
                    },
                });
            }
        }
        let tally = counts.index(&mut labels);
        Ok(Zone {
            apexes,
            first,
            serial: data.serial,
            labels,
            aliases,
            servers: data.server_counts(),
            loaded_at: 0,
            metrics,
            tally,
        })
    }

    /// The zone's (first) name (fully qualified).
    pub fn origin(&self) -> &Name {
        &self.apexes[self.first].name
    }

    /// Every origin, longest first.
    pub fn apexes(&self) -> &[Apex] {
        &self.apexes
    }

    /// The origin `qname` is in (the longest when origins nest), if any.
    pub fn apex(&self, qname: &Name) -> Option<&Apex> {
        self.apexes.iter().find(|a| a.name.zone_of(qname))
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Distinct server addresses in the zone.
    pub fn server_count(&self) -> usize {
        self.servers.0 + self.servers.1
    }

    /// Distinct IPv4 and IPv6 server addresses in the zone.
    pub fn server_counts(&self) -> (usize, usize) {
        self.servers
    }

    /// When this process loaded the zone, unix seconds (0: not said).
    pub fn loaded_at(&self) -> i64 {
        self.loaded_at
    }

    pub(crate) fn metrics(&self) -> &ZoneMetrics {
        &self.metrics
    }

    /// Where its answers are counted.
    pub(crate) fn tally(&self) -> &ZoneTally {
        &self.tally
    }

    /// The first origin's SOA record.
    pub fn soa(&self) -> &Record {
        self.apexes[self.first].soa()
    }

    /// The first origin's NS records.
    pub fn ns(&self) -> &[Record] {
        self.apexes[self.first].ns()
    }

    /// Resolves `qname` (any case) for a client located at `targets`
    /// (most specific first, e.g. `["de", "europe", "@"]`; `"@"` is
    /// always tried last even when missing).
    ///
    /// Address queries try `name.target` for each target (`name` alone for
    /// `@`) and take the first label with records of the asked type.
    pub fn resolve(&self, qname: &Name, qtype: RecordType, targets: &[String]) -> Lookup<'_> {
        let Some(apex) = self.apex(qname) else {
            return Lookup::Refused;
        };
        let Some(rel) = relative_label(qname, &apex.name) else {
            // Bytes no label of ours can hold.
            return Lookup::NxDomain;
        };
        self.resolve_relative(rel, qtype, targets)
    }

    /// [`Zone::resolve`] for a name in the zone, given as its labels below
    /// the origin (lower-case, joined by dots; `""` for the apex).
    pub(crate) fn resolve_relative(
        &self,
        mut rel: String,
        qtype: RecordType,
        targets: &[String],
    ) -> Lookup<'_> {
        // ISO's `GB` is the pool's zone `uk`: `gb` and `N.gb` answer as
        // `uk` and `N.uk` (unless the zone data has a `gb` of its own).
        if (rel == "gb" || rel.ends_with(".gb")) && !self.labels.contains_key(&rel) {
            rel.replace_range(rel.len() - 2.., "uk");
        }
        let debug = match rel.split('.').next() {
            Some("_country") => Some(Lookup::CountryDebug),
            Some("_status") => Some(Lookup::StatusDebug),
            _ => None,
        };
        if let Some(debug) = debug {
            return match qtype {
                RecordType::TXT | RecordType::ANY => debug,
                _ => Lookup::NoData,
            };
        }
        if rel.is_empty() {
            match qtype {
                RecordType::SOA => return Lookup::Soa,
                RecordType::NS => return Lookup::Ns,
                _ => {}
            }
        }
        // A vendor name answers as its target, located as that name would
        // be (no allocation; a map without aliases returns before hashing).
        let rel = self.aliases.get(&rel).map_or(rel.as_str(), String::as_str);
        if matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY) {
            let mut key = String::with_capacity(rel.len() + 16);
            for target in targets.iter().map(String::as_str).chain(["@"]) {
                key.clear();
                key.push_str(rel);
                if target != "@" {
                    if !key.is_empty() {
                        key.push('.');
                    }
                    key.push_str(target);
                }
                if let Some(label) = self.labels.get(&key).filter(|l| l.has(qtype)) {
                    return Lookup::Addresses(label);
                }
            }
        }
        if rel.is_empty() || self.labels.contains_key(rel) {
            Lookup::NoData
        } else {
            Lookup::NxDomain
        }
    }
}

/// The SOA and NS records of `data` under `origin`.
fn apex(origin: Name, data: &ZoneData) -> Result<Apex, ZoneError> {
    let mut ns_names = Vec::new();
    for n in data
        .data
        .get("")
        .map(|l| l.ns.as_slice())
        .unwrap_or_default()
    {
        ns_names.push(
            relative_to(n, &origin).ok_or_else(|| ZoneError::NameServer { name: n.clone() })?,
        );
    }
    if ns_names.is_empty() {
        // A zone needs a name server; GeoDNS's default MNAME.
        ns_names.push(prefixed("ns", &origin));
    }
    let ns_ttl = data.data.get("").and_then(|l| l.ttl).unwrap_or(NS_TTL);
    let ns = ns_names
        .iter()
        .map(|n| Record::from_rdata(origin.clone(), ns_ttl, RData::NS(NS(n.clone()))))
        .collect();
    let rname = match &data.contact {
        Some(c) => relative_to(&c.replacen('@', ".", 1), &origin)
            .ok_or_else(|| ZoneError::Contact { name: c.clone() })?,
        None => prefixed("hostmaster", &origin),
    };
    // GeoDNS's SOA: TTL ten times the zone's (at most an hour).
    let soa_ttl = if data.ttl == 0 {
        600
    } else {
        data.ttl.saturating_mul(10).min(3600)
    };
    let soa = Record::from_rdata(
        origin.clone(),
        soa_ttl,
        RData::SOA(SOA::new(
            ns_names[0].clone(),
            rname,
            data.serial,
            5400,
            5400,
            1_209_600,
            3600,
        )),
    );
    Ok(Apex {
        wire: origin.to_bytes().unwrap_or_default(),
        name: origin,
        soa,
        ns,
    })
}

fn compile_label(
    key: &str,
    l: &LabelData,
    ttl: u32,
    max_hosts: u32,
    metrics: &mut ZoneMetrics,
) -> Label {
    // "0.de" → "de", "2" → "@", "de" → "de", "" → "@".
    let zone = match key.split_once('.') {
        Some((n, z)) if n.bytes().all(|b| b.is_ascii_digit()) => z,
        None if key.bytes().all(|b| b.is_ascii_digit()) => "@",
        _ => key,
    };
    let zone = crate::metrics::zone_label(if zone.is_empty() { "@" } else { zone });
    Label {
        counters: metrics.zone(zone),
        zone: Arc::from(zone),
        a: Weighted::new(l.a.iter().copied()),
        aaaa: Weighted::new(l.aaaa.iter().copied()),
        ttl: l.ttl.unwrap_or(ttl),
        max_hosts: l.max_hosts.unwrap_or(max_hosts).clamp(1, MAX_HOSTS_LIMIT) as usize,
        ids: LabelIds::default(),
    }
}

/// One label as the zone data writes it: letters, digits, `-`, `_`.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The labels of `qname` below `origin`, lower-cased and joined by dots
/// (`""` for the apex); `None` if one holds other bytes than [`is_label`].
fn relative_label(qname: &Name, origin: &Name) -> Option<String> {
    let extra = usize::from(qname.num_labels().saturating_sub(origin.num_labels()));
    let mut out = String::new();
    for (i, label) in qname.iter().take(extra).enumerate() {
        if label.is_empty()
            || !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return None;
        }
        if i > 0 {
            out.push('.');
        }
        out.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
    }
    Some(out)
}

fn parse_origin(origin: &str) -> Result<Name, ZoneError> {
    let err = |reason: String| ZoneError::Origin {
        name: origin.to_string(),
        reason,
    };
    let text = origin.trim().trim_end_matches('.');
    if text.is_empty() {
        return Err(err("empty".into()));
    }
    if !text.split('.').all(is_label) {
        return Err(err(
            "use letters, digits and '-' in dot-separated labels".into()
        ));
    }
    let mut name = Name::from_ascii(text).map_err(|e| err(e.to_string()))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// `ns1` → `ns1.<origin>.`, `ns.example.net.` as is.
fn relative_to(name: &str, origin: &Name) -> Option<Name> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    if name.ends_with('.') {
        let mut n = Name::from_ascii(name).ok()?;
        n.set_fqdn(true);
        Some(n)
    } else {
        Name::from_ascii(name).ok()?.append_domain(origin).ok()
    }
}

fn prefixed(label: &str, origin: &Name) -> Name {
    relative_to(label, origin).unwrap_or_else(|| origin.clone())
}

#[cfg(test)]
mod tests;
