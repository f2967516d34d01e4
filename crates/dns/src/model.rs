//! The zone as GeoDNS-compatible JSON: what `GET /api/dns-zone` serves and
//! what `poolwatch dns` loads. Plain serde types; no DNS wire format here.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Default TTL of the pool's A/AAAA answers, seconds.
pub const DEFAULT_TTL: u32 = 150;
/// Default number of addresses in one answer.
pub const DEFAULT_MAX_HOSTS: u32 = 4;

/// A whole zone: `{serial, ttl, max_hosts, data: {label: {...}}}`.
///
/// Labels are relative to the zone origin: `""` (apex), `"0"`–`"3"`,
/// `"<cc>"`, `"N.<cc>"`, `"<continent>"`, `"N.<continent>"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneData {
    /// SOA serial (also shown in `_country` answers).
    #[serde(default)]
    pub serial: u32,
    /// TTL of address records, seconds.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// Most addresses in one answer.
    #[serde(default = "default_max_hosts")]
    pub max_hosts: u32,
    /// SOA RNAME (mailbox); `hostmaster.<zone>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Records by label.
    #[serde(default)]
    pub data: BTreeMap<String, LabelData>,
}

fn default_ttl() -> u32 {
    DEFAULT_TTL
}

fn default_max_hosts() -> u32 {
    DEFAULT_MAX_HOSTS
}

/// The records of one label. `a`/`aaaa` entries are `[address, weight]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelData {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub a: Vec<(Ipv4Addr, u32)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aaaa: Vec<(Ipv6Addr, u32)>,
    /// Name servers (only meaningful at the apex). A name ending in `.` is
    /// absolute; any other is relative to the zone origin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ns: Vec<String>,
    /// Overrides the zone's `ttl` for this label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// Overrides the zone's `max_hosts` for this label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hosts: Option<u32>,
    /// GeoDNS's alias: this name answers as the label named here (relative
    /// to the origin, `""` for the apex), with the client's location
    /// applied there. A vendor name's labels are aliases
    /// (`"0.debian": {"alias": "0"}`); an alias has no records of its own
    /// and never points at another alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

impl ZoneData {
    /// Parses the JSON text of a zone.
    pub fn from_json(text: &[u8]) -> Result<ZoneData, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// The zone as compact JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain maps, strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Number of distinct addresses in the zone (A and AAAA).
    pub fn server_count(&self) -> usize {
        let (v4, v6) = self.server_counts();
        v4 + v6
    }

    /// Distinct IPv4 and IPv6 addresses in the zone.
    pub fn server_counts(&self) -> (usize, usize) {
        let mut v4: Vec<Ipv4Addr> = self
            .data
            .values()
            .flat_map(|l| l.a.iter().map(|(ip, _)| *ip))
            .collect();
        let mut v6: Vec<Ipv6Addr> = self
            .data
            .values()
            .flat_map(|l| l.aaaa.iter().map(|(ip, _)| *ip))
            .collect();
        v4.sort_unstable();
        v4.dedup();
        v6.sort_unstable();
        v6.dedup();
        (v4.len(), v6.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geodns_shape_round_trips() {
        let text = r#"{"serial": 7, "ttl": 150, "max_hosts": 4, "data": {
            "": {"a": [["192.0.2.1", 100]], "ns": ["ns1.example.org."]},
            "2.de": {"a": [["192.0.2.1", 100]], "aaaa": [["2001:db8::1", 50]]},
            "de": {}
        }}"#;
        let z = ZoneData::from_json(text.as_bytes()).unwrap();
        assert_eq!(z.serial, 7);
        assert_eq!(z.data[""].a, vec![("192.0.2.1".parse().unwrap(), 100)]);
        assert_eq!(z.data["2.de"].aaaa[0].1, 50);
        assert!(z.data["de"].a.is_empty());
        assert_eq!(z.server_count(), 2);
        assert_eq!(z.data["de"].alias, None);
        let back = ZoneData::from_json(z.to_json().as_bytes()).unwrap();
        assert_eq!(back, z);
        // The wire shape is GeoDNS's: [["ip", weight], ...].
        assert!(z.to_json().contains(r#""a":[["192.0.2.1",100]]"#));
    }

    #[test]
    fn aliases_in_geodns_form() {
        let text =
            r#"{"data": {"": {}, "0": {}, "debian": {"alias": ""}, "0.debian": {"alias": "0"}}}"#;
        let z = ZoneData::from_json(text.as_bytes()).unwrap();
        assert_eq!(z.data["debian"].alias.as_deref(), Some(""));
        assert_eq!(z.data["0.debian"].alias.as_deref(), Some("0"));
        let json = z.to_json();
        assert!(json.contains(r#""0.debian":{"alias":"0"}"#), "{json}");
        // Labels without an alias do not grow the field.
        assert!(json.contains(r#""0":{}"#), "{json}");
        assert!(ZoneData::from_json(br#"{"data": {"x": {"alias": 0}}}"#).is_err());
    }

    #[test]
    fn defaults_and_bad_input() {
        let z = ZoneData::from_json(br#"{"data": {}}"#).unwrap();
        assert_eq!((z.ttl, z.max_hosts, z.serial), (150, 4, 0));
        for bad in [
            &br#"{"data": {"": {"a": [["not an ip", 1]]}}}"#[..],
            br#"{"data": {"": {"a": [["192.0.2.1", -1]]}}}"#,
            br#"{"data": {"": {"aaaa": [["192.0.2.1", 1]]}}}"#,
            br#""zone""#,
            br#"{"data": [1]}"#,
            b"",
        ] {
            assert!(ZoneData::from_json(bad).is_err(), "{:?}", bad);
        }
    }
}
