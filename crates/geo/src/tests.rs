use super::*;
use std::collections::HashSet;
use std::net::IpAddr;

fn country_db() -> GeoIp {
    GeoIp::open(Path::new(fixtures::COUNTRY_MMDB)).expect("country fixture opens")
}

fn city_db() -> GeoIp {
    GeoIp::open(Path::new(fixtures::CITY_MMDB)).expect("city fixture opens")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn loc(country: &str, continent: &'static str) -> Option<Location> {
    Some(Location {
        country: country.to_string(),
        continent,
    })
}

/// The table in testdata/README.md: (address, country zone, continent zone),
/// true in both shipped databases.
const BOTH: &[(&str, &str, &str)] = &[
    ("81.2.69.142", "uk", "europe"),
    ("89.160.20.112", "se", "europe"),
    ("216.160.83.56", "us", "north-america"),
    ("67.43.156.1", "bt", "asia"),
    ("202.196.224.1", "ph", "asia"),
    ("2001:218::1", "jp", "asia"),
    ("2a02:d180::1", "de", "europe"),
    ("2a02:d3c0::1", "uk", "europe"),
    ("2001:480:10::1", "us", "north-america"),
    ("2a02:e700::1", "ly", "africa"),
];

/// Addresses with no country in either shipped database.
const UNKNOWN: &[&str] = &[
    "192.0.2.1",
    "10.0.0.1",
    "127.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "2001:db8::1",
    "::1",
    "::",
    // continent EU but no country in the record
    "2a02:d500::1",
];

#[test]
fn fixture_addresses_resolve_in_both_databases() {
    for db in [country_db(), city_db()] {
        for (addr, country, continent) in BOTH {
            let got = db.lookup(ip(addr));
            assert_eq!(
                got,
                loc(country, continent),
                "{addr} in {}",
                db.database_type()
            );
        }
    }
}

#[test]
fn database_specific_fixture_addresses() {
    let country = country_db();
    assert_eq!(country.lookup(ip("111.235.160.1")), loc("cn", "asia"));
    assert_eq!(country.lookup(ip("217.65.48.1")), loc("gi", "europe"));
    assert_eq!(country.lookup(ip("214.0.1.1")), None);

    let city = city_db();
    assert_eq!(city.lookup(ip("214.0.1.1")), loc("au", "oceania"));
    assert_eq!(city.lookup(ip("214.0.0.1")), loc("sg", "asia"));
    assert_eq!(city.lookup(ip("175.16.199.1")), loc("cn", "asia"));
    // record with a continent and no country
    assert_eq!(city.lookup(ip("2.3.3.1")), None);
    // record with traits only
    assert_eq!(city.lookup(ip("214.1.1.1")), None);
}

#[test]
fn unknown_addresses_are_none() {
    for db in [country_db(), city_db()] {
        for addr in UNKNOWN {
            assert_eq!(db.lookup(ip(addr)), None, "{addr}");
        }
    }
}

#[test]
fn ipv4_mapped_ipv6_is_looked_up_as_ipv4() {
    let db = country_db();
    assert_eq!(db.lookup(ip("::ffff:81.2.69.142")), loc("uk", "europe"));
    assert_eq!(
        db.lookup(ip("::ffff:216.160.83.56")),
        loc("us", "north-america")
    );
    assert_eq!(db.lookup(ip("::ffff:192.0.2.1")), None);
}

#[test]
fn gb_is_uk_everywhere() {
    assert_eq!(
        country_db().lookup(ip("81.2.69.142")).unwrap().country,
        "uk"
    );
    assert_eq!(country_zone("gb").as_deref(), Some("uk"));
    assert_eq!(country_zone("GB").as_deref(), Some("uk"));
    assert_eq!(country_zone("uk").as_deref(), Some("uk"));
    assert_eq!(country_zone(" Uk ").as_deref(), Some("uk"));
    assert_eq!(continent_of_country("uk"), Some("europe"));
    assert_eq!(continent_of_country("gb"), Some("europe"));
    assert_eq!(
        zones_for_country("gb"),
        Some(vec!["uk".into(), "europe".into(), "@".into()])
    );
    let tree = zone_tree();
    assert!(tree.iter().any(|z| z.name == "uk"));
    assert!(!tree.iter().any(|z| z.name == "gb"));
}

#[test]
fn location_zones() {
    let l = country_db().lookup(ip("2a02:d180::1")).unwrap();
    assert_eq!(l.zones(), vec!["de", "europe", "@"]);
}

#[test]
fn record_continent_wins_and_table_is_the_fallback() {
    // country without continent → table
    assert_eq!(location_from_codes(Some("DE"), None), loc("de", "europe"));
    assert_eq!(location_from_codes(Some("GB"), None), loc("uk", "europe"));
    // unknown continent code → table
    assert_eq!(
        location_from_codes(Some("US"), Some("ZZ")),
        loc("us", "north-america")
    );
    // the record's continent is used when it is valid
    assert_eq!(
        location_from_codes(Some("TR"), Some("EU")),
        loc("tr", "europe")
    );
    // no country, or one we do not know → None
    assert_eq!(location_from_codes(None, Some("EU")), None);
    assert_eq!(location_from_codes(Some("EU"), Some("EU")), None);
    assert_eq!(location_from_codes(Some("A1"), None), None);
    assert_eq!(location_from_codes(Some(""), None), None);
}

/// Every ISO 3166-1 alpha-2 code assigned today (249), from the ISO 3166
/// Maintenance Agency list (as shipped in Debian's iso-codes); kept apart
/// from the table so a lost or mistyped row shows up.
const ISO_3166_1: &str = "\
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM \
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS \
GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN \
KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ \
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM \
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV \
SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI \
VN VU WF WS YE YT ZA ZM ZW";

#[test]
fn country_table_is_sorted_unique_and_complete() {
    let table = countries::COUNTRIES;
    for pair in table.windows(2) {
        assert!(
            pair[0].0 < pair[1].0,
            "not sorted: {:?} {:?}",
            pair[0],
            pair[1]
        );
    }
    let iso: Vec<&str> = ISO_3166_1.split_whitespace().collect();
    assert_eq!(iso.len(), 249);
    for code in &iso {
        assert!(countries::lookup(code).is_some(), "{code} missing");
    }
    let extra: Vec<&str> = table
        .iter()
        .map(|r| r.0)
        .filter(|c| !iso.contains(c))
        .collect();
    assert_eq!(extra, vec!["XK"]);
    for (code, continent, name) in table {
        assert_eq!(code.len(), 2);
        assert!(code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
        assert!(CONTINENTS.contains(continent), "{code}: {continent}");
        assert!(!name.trim().is_empty(), "{code}");
    }
}

#[test]
fn zone_tree_is_complete() {
    let tree = zone_tree();
    assert_eq!(tree.len(), 1 + 7 + 250);
    let names: HashSet<&str> = tree.iter().map(|z| z.name.as_str()).collect();
    assert_eq!(names.len(), tree.len(), "duplicate zone names");

    assert_eq!(
        tree[0],
        ZoneDef {
            name: "@".into(),
            parent: None,
            description: "Global".into()
        }
    );
    for c in CONTINENTS {
        let z = tree.iter().find(|z| z.name == c).unwrap();
        assert_eq!(z.parent.as_deref(), Some("@"));
        assert!(!z.description.is_empty());
    }
    let countries: Vec<&ZoneDef> = tree
        .iter()
        .filter(|z| z.name != "@" && !CONTINENTS.contains(&z.name.as_str()))
        .collect();
    assert_eq!(countries.len(), 250);
    let mut used = HashSet::new();
    for z in countries {
        let continent =
            continent_of_country(&z.name).unwrap_or_else(|| panic!("{} has no continent", z.name));
        assert_eq!(z.parent.as_deref(), Some(continent), "{}", z.name);
        assert_eq!(country_zone(&z.name).as_deref(), Some(z.name.as_str()));
        assert_eq!(z.name.len(), 2);
        assert!(z.name.bytes().all(|b| b.is_ascii_lowercase()));
        used.insert(continent);
    }
    assert_eq!(used.len(), 7, "every continent has a country");
    let de = tree.iter().find(|z| z.name == "de").unwrap();
    assert_eq!(de.description, "Germany");
}

#[test]
fn continent_assignments() {
    for (cc, continent) in [
        ("de", "europe"),
        ("uk", "europe"),
        ("us", "north-america"),
        ("ca", "north-america"),
        ("mx", "north-america"),
        ("pa", "north-america"),
        ("br", "south-america"),
        ("ar", "south-america"),
        ("au", "oceania"),
        ("nz", "oceania"),
        ("jp", "asia"),
        ("cn", "asia"),
        ("in", "asia"),
        ("tr", "asia"),
        ("am", "asia"),
        ("az", "asia"),
        ("ru", "europe"),
        ("za", "africa"),
        ("eg", "africa"),
        ("aq", "antarctica"),
        ("xk", "europe"),
    ] {
        assert_eq!(continent_of_country(cc), Some(continent), "{cc}");
    }
    assert_eq!(continent_of_country("xx"), None);
    assert_eq!(continent_of_country(""), None);
    assert_eq!(continent_of_country("europe"), None);
}

#[test]
fn continent_codes() {
    let all: Vec<&str> = ["AF", "AS", "EU", "NA", "OC", "SA", "AN"]
        .into_iter()
        .map(|c| continent_zone(c).unwrap())
        .collect();
    assert_eq!(all, CONTINENTS);
    assert_eq!(continent_zone("eu"), Some("europe"));
    assert_eq!(continent_zone("NA"), Some("north-america"));
    assert_eq!(continent_zone(""), None);
    assert_eq!(continent_zone("XX"), None);
    assert_eq!(continent_zone("europe"), None);
}

#[test]
fn zones_for_country_lists_country_continent_global() {
    assert_eq!(
        zones_for_country("de"),
        Some(vec!["de".into(), "europe".into(), "@".into()])
    );
    assert_eq!(
        zones_for_country(" US"),
        Some(vec!["us".into(), "north-america".into(), "@".into()])
    );
    assert_eq!(zones_for_country("xx"), None);
    assert_eq!(zones_for_country(""), None);
}

#[test]
fn country_zone_normalises_and_rejects_junk() {
    assert_eq!(country_zone("de").as_deref(), Some("de"));
    assert_eq!(country_zone("DE").as_deref(), Some("de"));
    assert_eq!(country_zone(" De\n").as_deref(), Some("de"));
    assert_eq!(country_zone("xk").as_deref(), Some("xk"));
    for junk in [
        "",
        " ",
        "x",
        "xx",
        "XX",
        "../",
        "..",
        "DEU",
        "deu",
        "d e",
        "de.",
        "d1",
        "a1",
        "eu",
        "ap",
        "zz",
        "@",
        "europe",
        "de\0",
        "ü",
        "üü",
        "--",
        "d\u{301}e",
        "\u{feff}de",
    ] {
        assert_eq!(country_zone(junk), None, "{junk:?}");
    }
}

#[test]
fn table_agrees_with_every_record_in_the_fixtures() {
    for db in [country_db(), city_db()] {
        let mut checked = 0;
        for item in db.inner.reader.networks(Default::default()).unwrap() {
            let item = item.unwrap();
            let Some(rec) = item.decode::<Record<'_>>().unwrap() else {
                continue;
            };
            if let (Some(cc), Some(code)) = (rec.country.iso_code, rec.continent.code) {
                assert_eq!(
                    continent_of_country(cc),
                    continent_zone(code),
                    "{cc} in {}",
                    db.database_type()
                );
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked}");
    }
}

#[test]
fn geoip_is_cheap_to_share() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<GeoIp>();
    let a = country_db();
    let b = a.clone();
    assert!(Arc::ptr_eq(&a.inner, &b.inner));
    let t = std::thread::spawn(move || b.lookup(ip("2001:218::1")));
    assert_eq!(t.join().unwrap(), loc("jp", "asia"));
    assert!(format!("{a:?}").contains("GeoLite2-Country"));
}

#[test]
fn metadata() {
    assert_eq!(country_db().database_type(), "GeoLite2-Country");
    assert_eq!(city_db().database_type(), "GeoIP2-City");
    assert!(country_db().build_epoch() > 0);
}

#[test]
fn from_bytes_matches_open() {
    let bytes = std::fs::read(fixtures::COUNTRY_MMDB).unwrap();
    let db = GeoIp::from_bytes(bytes).unwrap();
    assert_eq!(db.lookup(ip("2001:218::1")), loc("jp", "asia"));
}

#[test]
fn open_missing_file_names_it() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/no-such-file.mmdb");
    let err = GeoIp::open(&path).unwrap_err();
    assert!(matches!(err, GeoError::Read { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("no-such-file.mmdb"), "{msg}");
}

#[test]
fn open_non_mmdb_file_names_it() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/README.md");
    let err = GeoIp::open(&path).unwrap_err();
    assert!(matches!(err, GeoError::InvalidFile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("testdata/README.md"), "{msg}");
    assert!(msg.contains("not a MaxMind DB"), "{msg}");

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let msg = GeoIp::open(&dir).unwrap_err().to_string();
    assert!(msg.contains("testdata"), "{msg}");
}

#[test]
fn open_mmdb_without_country_data_is_refused() {
    let err = GeoIp::open(Path::new(fixtures::NOT_COUNTRY_MMDB)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("MaxMind-DB-test-ipv4-24.mmdb"), "{msg}");
    assert!(msg.contains("\"Test\""), "{msg}");
}

#[test]
fn from_bytes_rejects_empty_and_text() {
    assert!(matches!(
        GeoIp::from_bytes(Vec::new()),
        Err(GeoError::Invalid { .. })
    ));
    assert!(GeoIp::from_bytes(b"hello, world".to_vec()).is_err());
}

/// xorshift64*: deterministic, dependency-free noise for the tests below.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn ip(&mut self) -> IpAddr {
        if self.next() & 1 == 0 {
            IpAddr::from((self.next() as u32).to_be_bytes())
        } else {
            IpAddr::from((u128::from(self.next()) << 64 | u128::from(self.next())).to_be_bytes())
        }
    }
}

fn probe(db: &GeoIp, noise: &mut Noise) {
    for (addr, _, _) in BOTH {
        let _ = db.lookup(ip(addr));
    }
    for _ in 0..16 {
        let _ = db.lookup(noise.ip());
    }
}

#[test]
fn from_bytes_on_random_bytes_never_panics() {
    const MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let len = noise.below(4096);
        let mut bytes = noise.bytes(len);
        // Half the time, make it look like a database: a metadata marker
        // followed by random metadata.
        if round % 2 == 1 {
            let at = noise.below(bytes.len() + 1);
            bytes.splice(at..at, MARKER.iter().copied());
        }
        if let Ok(db) = GeoIp::from_bytes(bytes) {
            probe(&db, &mut noise);
        }
    }
}

#[test]
fn damaged_databases_never_panic() {
    let good = std::fs::read(fixtures::COUNTRY_MMDB).unwrap();
    let mut noise = Noise(0x2545_f491_4f6c_dd1d);
    // truncated
    for _ in 0..300 {
        let cut = noise.below(good.len());
        if let Ok(db) = GeoIp::from_bytes(good[..cut].to_vec()) {
            probe(&db, &mut noise);
        }
    }
    // bytes overwritten anywhere (search tree, data section, metadata), then
    // only in the last 512 bytes (the metadata: node count, record size, ...)
    let mut opened = 0;
    for round in 0..3000 {
        let mut bad = good.clone();
        let from = if round % 2 == 0 { 0 } else { bad.len() - 512 };
        for _ in 0..1 + noise.below(8) {
            let at = from + noise.below(bad.len() - from);
            bad[at] = noise.next() as u8;
        }
        if let Ok(db) = GeoIp::from_bytes(bad) {
            opened += 1;
            probe(&db, &mut noise);
        }
    }
    assert!(opened > 1000, "only {opened} damaged databases opened");
}
