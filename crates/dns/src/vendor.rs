//! Vendor zones, as the NTP Pool gives them to operating systems and
//! appliances (`0.debian.pool.ntp.org`): a vendor name `<vendor>` and its
//! `0.<vendor>`–`3.<vendor>` answer as the apex (or a chosen pool zone such
//! as `de` or `europe`) and its numbered labels do, for the client's own
//! location. In the zone data they are GeoDNS aliases
//! (`"0.debian": {"alias": "0"}`), so the answer rules stay in one place
//! (`Zone::resolve_relative`). Pure: the name rules and the labels; the
//! store keeps the list and [`crate::build_zone`] writes it.

use crate::model::LabelData;
use std::collections::BTreeMap;

/// One vendor zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendor {
    /// The vendor's label, e.g. `debian` (see [`check_vendor_name`]).
    pub name: String,
    /// The pool zone it answers from: `@` (the apex), a continent
    /// (`europe`) or a country (`de`); see [`vendor_zone`].
    pub zone: String,
}

/// Names a vendor may not take although they pass the label rules: `www`
/// is where operators put the pool's web site (the NTP Pool's
/// `www.pool.ntp.org`), and a vendor there would hand NTP servers to
/// browsers.
const RESERVED: &[&str] = &["www"];

/// Whether `name` may be a vendor's label: one lower-case DNS label
/// (letters, digits, `-`; not at either end; up to 63) that can never
/// clash with a name the zone itself answers for. Refused, with the
/// reason: numbers (the numbered labels `0`–`3`, and any future ones),
/// two-letter names (country codes, `gb` included, and codes ISO may
/// assign later), the zone's continents and other zones, names starting
/// with `_` (the debug names `_country` and `_status`) and [`RESERVED`].
pub fn check_vendor_name(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "is empty"
    } else if name.len() > 63 {
        "is longer than 63 characters (one DNS label)"
    } else if name.starts_with('_') {
        "starts with '_', which the zone keeps for its debug names (_country, _status)"
    } else if name.bytes().any(|b| b.is_ascii_uppercase()) {
        "has upper-case letters (DNS names are case-insensitive; write it in lower case)"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        "is not one DNS label (use a-z, 0-9 and '-', no dots)"
    } else if name.starts_with('-') || name.ends_with('-') {
        "starts or ends with '-'"
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        "is a number, like the zone's numbered names 0-3"
    } else if name.len() == 2 {
        "has two letters, like the zone's country codes (gb and codes not yet assigned too)"
    } else if geo::zone_tree().iter().any(|z| z.name == name) {
        "is one of the zone's own names (a continent or country)"
    } else if RESERVED.contains(&name) {
        "is reserved for the pool's web site"
    } else {
        return Ok(());
    };
    Err(format!("vendor name '{name}' {why}"))
}

/// The pool zone a vendor answers from, as the operator typed it: `@` or
/// empty for the apex, else a continent or country of the zone tree (any
/// case; `gb` is `uk`). `Err` names the value and what to use instead.
pub fn vendor_zone(zone: &str) -> Result<String, String> {
    let z = zone.trim().to_ascii_lowercase();
    if z.is_empty() || z == "@" {
        return Ok("@".to_string());
    }
    let z = if z == "gb" { "uk".to_string() } else { z };
    if geo::zone_tree().iter().any(|t| t.name == z) {
        Ok(z)
    } else {
        Err(format!(
            "'{zone}' is not a pool zone (use @ for the apex, a continent such as europe, \
             or a country code such as de)"
        ))
    }
}

/// The five alias labels of `v`: `(label, target)` for `<name>` and
/// `N.<name>`, N in 0..=3, targets relative to the origin (`""` the apex).
fn alias_labels(v: &Vendor) -> [(String, String); 5] {
    let (base, suffix) = if v.zone == "@" {
        (String::new(), String::new())
    } else {
        (v.zone.clone(), format!(".{}", v.zone))
    };
    let numbered = |n: u8| (format!("{n}.{}", v.name), format!("{n}{suffix}"));
    [
        (v.name.clone(), base),
        numbered(0),
        numbered(1),
        numbered(2),
        numbered(3),
    ]
}

/// Writes the vendors' aliases into `data`, in name order. A vendor is
/// skipped, never overwriting anything, when its name breaks
/// [`check_vendor_name`], one of its labels is already in the zone (a pool
/// label, an earlier vendor, or a name server of the zone given as
/// `reserved`), or its zone has no label to answer from.
pub(crate) fn add_aliases(
    data: &mut BTreeMap<String, LabelData>,
    vendors: &[Vendor],
    reserved: &[String],
) {
    let mut vendors: Vec<&Vendor> = vendors.iter().collect();
    vendors.sort_by(|a, b| a.name.cmp(&b.name));
    for v in vendors {
        let labels = alias_labels(v);
        let clash = labels
            .iter()
            .any(|(l, _)| data.contains_key(l) || reserved.contains(l));
        let target_missing = labels
            .iter()
            .any(|(_, t)| data.get(t).is_none_or(|l| l.alias.is_some()));
        if check_vendor_name(&v.name).is_err() || clash || target_missing {
            continue;
        }
        for (label, target) in labels {
            let alias = LabelData {
                alias: Some(target),
                ..LabelData::default()
            };
            data.insert(label, alias);
        }
    }
}

#[cfg(test)]
mod tests;
