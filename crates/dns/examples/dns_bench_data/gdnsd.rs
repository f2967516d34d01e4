//! gdnsd 3.x configuration for the same zone: the GeoDNS choice poolwatch
//! makes per query, in gdnsd's plugins, so that `bench/dns.sh` compares
//! like with like.
//!
//! - Every label with servers is a `weighted` resource holding its servers
//!   with their netspeeds as weights. gdnsd returns one address per group
//!   (grouped-multi mode), so the servers are dealt by weight into
//!   `max_hosts` (4) groups: each answer holds 4 servers, each drawn by
//!   weight, as poolwatch's. gdnsd allows at most 64 addresses per group,
//!   so a label with more than 256 servers of a family keeps its 256
//!   heaviest (the apex, the continents and the big countries).
//! - The apex and `0`–`3` are `geoip` resources over one map: the client's
//!   country if it has servers, else its continent, else the apex, as
//!   poolwatch's `[country, continent, "@"]`; ECS is used (gdnsd's default).
//! - Country and continent names (plain and numbered) are plain `weighted`
//!   names: poolwatch answers them the same wherever the client is.
//!
//! `@PORT@`, `@DIR@` and `@MMDB@` in the config are filled in by the script.

use dns::{LabelData, ZoneData};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// gdnsd's limit of addresses per group (and of groups per resource).
const PER_GROUP: usize = 64;
/// Addresses per answer (poolwatch's `max_hosts`).
const GROUPS: usize = dns::DEFAULT_MAX_HOSTS as usize;

/// MaxMind continent code of a continent zone name.
fn continent_code(zone: &str) -> &'static str {
    match zone {
        "africa" => "AF",
        "asia" => "AS",
        "europe" => "EU",
        "north-america" => "NA",
        "oceania" => "OC",
        "south-america" => "SA",
        _ => "AN",
    }
}

/// The weighted resource name of a label ("" → `r_apex`, "0.de" → `r_0_de`).
fn resource(label: &str) -> String {
    if label.is_empty() {
        "r_apex".to_string()
    } else {
        format!("r_{}", label.replace(['.', '-'], "_"))
    }
}

/// `{ g0 => { a0 => [ip, w], … }, g1 => … }`: servers by weight, dealt
/// round-robin into the groups (so each group's total weight is close).
fn groups<T: std::fmt::Display + Copy>(servers: &[(T, u32)]) -> String {
    let mut sorted: Vec<(T, u32)> = servers.to_vec();
    sorted.sort_by_key(|&(_, w)| std::cmp::Reverse(w));
    sorted.truncate(GROUPS * PER_GROUP);
    let n = GROUPS.min(sorted.len());
    let mut out = String::from("{ multi => true\n");
    for g in 0..n {
        write!(out, "      g{g} => {{").unwrap();
        for (i, (ip, w)) in sorted.iter().skip(g).step_by(n).enumerate() {
            write!(out, " a{i} => [ {ip}, {} ]", (*w).clamp(1, (1 << 20) - 1)).unwrap();
        }
        out.push_str(" }\n");
    }
    out.push_str("    }");
    out
}

fn weighted(label: &str, l: &LabelData) -> String {
    let mut out = format!("  {} => {{\n", resource(label));
    if !l.a.is_empty() {
        writeln!(out, "    addrs_v4 => {}", groups(&l.a)).unwrap();
    }
    if !l.aaaa.is_empty() {
        writeln!(out, "    addrs_v6 => {}", groups(&l.aaaa)).unwrap();
    }
    out.push_str("  }\n");
    out
}

/// Writes `dir/config` and `dir/zones/<origin>`.
pub fn write(dir: &Path, origin: &str, zone: &ZoneData) {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    let has = |label: &str| {
        zone.data
            .get(label)
            .is_some_and(|l| !l.a.is_empty() || !l.aaaa.is_empty())
    };
    // Datacenters: the countries and continents that have servers.
    let countries: Vec<&str> = zone
        .data
        .keys()
        .map(String::as_str)
        .filter(|l| l.len() == 2 && has(l))
        .collect();
    let continents: Vec<&str> = geo::CONTINENTS.into_iter().filter(|c| has(c)).collect();
    let mut map = String::from("        default => [ world ]\n");
    for continent in geo::CONTINENTS {
        let tail = if has(continent) {
            format!("{continent}, world")
        } else {
            "world".to_string()
        };
        write!(
            map,
            "        {} => {{ default => [ {tail} ]",
            continent_code(continent)
        )
        .unwrap();
        for cc in countries
            .iter()
            .filter(|cc| geo::continent_of_country(cc) == Some(continent))
        {
            let iso = if *cc == "uk" {
                "GB".to_string()
            } else {
                cc.to_ascii_uppercase()
            };
            write!(map, ", {iso} => [ {cc}, {tail} ]").unwrap();
        }
        map.push_str(" }\n");
    }
    let dcs: Vec<&str> = std::iter::once("world")
        .chain(countries.iter().copied())
        .chain(continents.iter().copied())
        .collect();
    let mut geo_resources = String::new();
    for prefix in ["", "0", "1", "2", "3"] {
        let label_for = |dc: &str| match (prefix, dc) {
            (p, "world") => p.to_string(),
            ("", dc) => dc.to_string(),
            (p, dc) => format!("{p}.{dc}"),
        };
        let name = if prefix.is_empty() { "apex" } else { prefix };
        write!(
            geo_resources,
            "      g_{name} => {{ map => pool, dcmap => {{"
        )
        .unwrap();
        for dc in &dcs {
            write!(
                geo_resources,
                " {dc} => %weighted!{}",
                resource(&label_for(dc))
            )
            .unwrap();
        }
        geo_resources.push_str(" } }\n");
    }
    let mut weighted_resources = String::new();
    let mut names = BTreeSet::new();
    for (label, data) in &zone.data {
        if has(label) {
            weighted_resources.push_str(&weighted(label, data));
            names.insert(label.as_str());
        }
    }
    let config = format!(
        "options => {{\n  listen => [ 127.0.0.1 ]\n  dns_port => @PORT@\n  \
         run_dir => @DIR@/gdnsd-run\n  state_dir => @DIR@/gdnsd-state\n}}\n\
         plugins => {{\n weighted => {{\n{weighted_resources} }}\n \
         geoip => {{\n  maps => {{\n    pool => {{\n      geoip2_db => @MMDB@\n      \
         datacenters => [ {} ]\n      map => {{\n{map}      }}\n    }}\n  }}\n  \
         resources => {{\n{geo_resources}  }}\n }}\n}}\n",
        dcs.join(", ")
    );
    std::fs::write(dir.join("config"), config).unwrap();

    let mut z = String::from(
        "$TTL 150\n@ 1500 SOA ns1 hostmaster 1 5400 5400 1209600 3600\n@ 86400 NS ns1\nns1 A 192.0.2.53\n",
    );
    for prefix in ["", "0", "1", "2", "3"] {
        let owner = if prefix.is_empty() { "@" } else { prefix };
        let name = if prefix.is_empty() { "apex" } else { prefix };
        writeln!(z, "{owner} DYNA geoip!g_{name}").unwrap();
    }
    for label in names {
        if !matches!(label, "" | "0" | "1" | "2" | "3") {
            writeln!(z, "{label} DYNA weighted!{}", resource(label)).unwrap();
        }
    }
    std::fs::write(dir.join("zones").join(origin), z).unwrap();
}
