//! IP address → country → continent → pool zone names, read from a MaxMind
//! `.mmdb` file (GeoIP2/GeoLite2 Country or City), plus the static country
//! table that names every zone (`@`, 7 continents, every ISO 3166-1 country).
//!
//! It must not touch the network (no downloads, no web GeoIP service), write
//! files, keep global state, or panic on any input: a bad database is an error
//! at open, an unknown or undecodable address is `None`. It knows nothing of
//! servers, scores or DNS records.

mod countries;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

/// The continent zone names, in the order the pool lists them.
pub const CONTINENTS: [&str; 7] = [
    "africa",
    "asia",
    "europe",
    "north-america",
    "oceania",
    "south-america",
    "antarctica",
];

/// MaxMind continent code, zone name, English name.
const CONTINENT_TABLE: [(&str, &str, &str); 7] = [
    ("AF", "africa", "Africa"),
    ("AS", "asia", "Asia"),
    ("EU", "europe", "Europe"),
    ("NA", "north-america", "North America"),
    ("OC", "oceania", "Oceania"),
    ("SA", "south-america", "South America"),
    ("AN", "antarctica", "Antarctica"),
];

/// Paths of MaxMind's test databases shipped in `crates/geo/testdata/`, for
/// tests anywhere in this workspace. `testdata/README.md` lists which
/// addresses resolve to which country.
pub mod fixtures {
    /// GeoLite2-Country test database (IPv4 and IPv6).
    pub const COUNTRY_MMDB: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/GeoLite2-Country-Test.mmdb"
    );
    /// GeoIP2-City test database (IPv4 and IPv6; adds AU/Oceania and SG).
    pub const CITY_MMDB: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/GeoIP2-City-Test.mmdb"
    );
    /// A valid `.mmdb` without country data (database type "Test", IPv4 only):
    /// opening it must fail.
    pub const NOT_COUNTRY_MMDB: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/MaxMind-DB-test-ipv4-24.mmdb"
    );
}

/// Why a GeoIP database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be read.
    #[error("cannot read GeoIP database {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file was read but is not a usable MaxMind country/city database.
    #[error("GeoIP database {}: {reason}", path.display())]
    InvalidFile { path: PathBuf, reason: String },
    /// The bytes given to [`GeoIp::from_bytes`] are not a usable database.
    #[error("GeoIP database (from bytes): {reason}")]
    Invalid { reason: String },
}

/// Where an address is: the country and continent zone names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Pool zone name of the country: lower-case ISO 3166-1 alpha-2, `gb` as `uk`.
    pub country: String,
    /// Zone name of the continent, one of [`CONTINENTS`].
    pub continent: &'static str,
}

impl Location {
    /// The zones to try for this location, most specific first:
    /// `[country, continent, "@"]`.
    pub fn zones(&self) -> Vec<String> {
        vec![
            self.country.clone(),
            self.continent.to_string(),
            "@".to_string(),
        ]
    }
}

/// An opened MaxMind database. Cheap to clone (shared), `Send + Sync`.
#[derive(Clone)]
pub struct GeoIp {
    inner: Arc<Inner>,
}

struct Inner {
    reader: maxminddb::Reader<Vec<u8>>,
    /// The file it came from, if any (for `Debug`).
    path: Option<PathBuf>,
}

/// The only fields we decode from a record; everything else is skipped.
#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: CountryRecord<'a>,
    #[serde(borrow, default)]
    continent: ContinentRecord<'a>,
}

#[derive(Deserialize, Default)]
struct CountryRecord<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct ContinentRecord<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

impl GeoIp {
    /// Reads a `.mmdb` file into memory. The error names the file.
    pub fn open(path: &Path) -> Result<GeoIp, GeoError> {
        let bytes = std::fs::read(path).map_err(|error| GeoError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::build(bytes, Some(path)).map_err(|reason| GeoError::InvalidFile {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Uses the bytes of a `.mmdb` file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GeoIp, GeoError> {
        Self::build(bytes, None).map_err(|reason| GeoError::Invalid { reason })
    }

    fn build(bytes: Vec<u8>, path: Option<&Path>) -> Result<GeoIp, String> {
        let reader = maxminddb::Reader::from_source(bytes)
            .map_err(|e| format!("not a MaxMind DB (.mmdb) file: {e}"))?;
        let kind = &reader.metadata().database_type;
        let lower = kind.to_ascii_lowercase();
        if !["country", "city", "enterprise"]
            .iter()
            .any(|k| lower.contains(k))
        {
            return Err(format!(
                "database type {kind:?} holds no country data; \
                 use a GeoIP2/GeoLite2 Country or City database"
            ));
        }
        Ok(GeoIp {
            inner: Arc::new(Inner {
                reader,
                path: path.map(Path::to_path_buf),
            }),
        })
    }

    /// The country and continent of `ip`; `None` when the database has no
    /// country for it (or its record cannot be read). IPv4-mapped IPv6
    /// addresses (`::ffff:a.b.c.d`) are looked up as IPv4.
    pub fn lookup(&self, ip: IpAddr) -> Option<Location> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let found = self.inner.reader.lookup(ip).ok()?;
        let record: Record<'_> = found.decode().ok()??;
        location_from_codes(record.country.iso_code, record.continent.code)
    }

    /// The database's `database_type` metadata, e.g. "GeoLite2-Country".
    pub fn database_type(&self) -> &str {
        &self.inner.reader.metadata().database_type
    }

    /// When the database was built (seconds since the Unix epoch).
    pub fn build_epoch(&self) -> u64 {
        self.inner.reader.metadata().build_epoch
    }
}

impl fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoIp")
            .field("path", &self.inner.path)
            .field("database_type", &self.database_type())
            .field("build_epoch", &self.build_epoch())
            .finish()
    }
}

/// A location from the codes in a record: the country must be known; the
/// record's continent wins, else the table's.
fn location_from_codes(country: Option<&str>, continent: Option<&str>) -> Option<Location> {
    let country = country_zone(country?)?;
    let continent = continent
        .and_then(continent_zone)
        .or_else(|| continent_of_country(&country))?;
    Some(Location { country, continent })
}

/// Continent zone name for a MaxMind continent code (AF AS EU NA OC SA AN),
/// case-insensitive.
pub fn continent_zone(code: &str) -> Option<&'static str> {
    let code = code.trim();
    CONTINENT_TABLE
        .iter()
        .find(|(c, _, _)| c.eq_ignore_ascii_case(code))
        .map(|(_, zone, _)| *zone)
}

/// The table row for a user- or database-given code ("de", " DE ", "uk", "gb").
fn country_row(cc: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    let cc = cc.trim();
    if cc.len() != 2 || !cc.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let upper = cc.to_ascii_uppercase();
    let iso = if upper == "UK" { "GB" } else { upper.as_str() };
    countries::lookup(iso)
}

/// Zone name for an upper-case ISO code from the table.
fn zone_name(iso: &str) -> String {
    if iso == "GB" {
        "uk".to_string()
    } else {
        iso.to_ascii_lowercase()
    }
}

/// Continent zone for a country zone name ("de" → "europe", "uk" → "europe",
/// "us" → "north-america"); `None` if the country is unknown. Accepts the same
/// spellings as [`country_zone`].
pub fn continent_of_country(cc: &str) -> Option<&'static str> {
    country_row(cc).map(|row| row.1)
}

/// Normalises a user-given country code: trims, lower-cases, `gb` → `uk`.
/// `None` unless it is a known country (ISO 3166-1 alpha-2, or `xk`).
pub fn country_zone(cc: &str) -> Option<String> {
    country_row(cc).map(|row| zone_name(row.0))
}

/// The zones a server in this country belongs to, most specific first:
/// `["de", "europe", "@"]`. `None` if the country is unknown.
pub fn zones_for_country(cc: &str) -> Option<Vec<String>> {
    let row = country_row(cc)?;
    Some(vec![zone_name(row.0), row.1.to_string(), "@".to_string()])
}

/// One zone of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDef {
    pub name: String,
    pub parent: Option<String>,
    pub description: String,
}

/// The whole zone tree to seed a store: `@` ("Global", no parent), the 7
/// continents (parent `@`), then every country (parent its continent, English
/// name as description), sorted by zone name.
pub fn zone_tree() -> Vec<ZoneDef> {
    let mut zones = Vec::with_capacity(1 + CONTINENT_TABLE.len() + countries::COUNTRIES.len());
    zones.push(ZoneDef {
        name: "@".to_string(),
        parent: None,
        description: "Global".to_string(),
    });
    for (_, zone, name) in CONTINENT_TABLE {
        zones.push(ZoneDef {
            name: zone.to_string(),
            parent: Some("@".to_string()),
            description: name.to_string(),
        });
    }
    let mut country_zones: Vec<ZoneDef> = countries::COUNTRIES
        .iter()
        .map(|(iso, continent, name)| ZoneDef {
            name: zone_name(iso),
            parent: Some(continent.to_string()),
            description: name.to_string(),
        })
        .collect();
    country_zones.sort_by(|a, b| a.name.cmp(&b.name));
    zones.extend(country_zones);
    zones
}

#[cfg(test)]
mod tests;
