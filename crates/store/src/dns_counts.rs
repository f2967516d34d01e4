//! Client distribution (issue 17 item 3): the DNS processes' answer counts
//! (`api::dns_counts::CountReport`), kept in hourly buckets (migration
//! `0014_dns_counts`). A report is stored whole in one transaction, once
//! per `report_id`; the reads sum the buckets of a window. Each report's
//! rows go in as one JSON text per table (`json_each` on SQLite,
//! `jsonb_array_elements` on PostgreSQL): a report of 2000 servers is a
//! handful of statements, not tens of thousands of round trips.

use crate::conn::Sql;
use crate::{Store, StoreError};
use api::dns_counts::{CountReport, CountsStored};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// Seconds in a bucket.
pub const DNS_COUNT_BUCKET_S: i64 = 3600;

/// The bucket (start of the UTC hour) that holds unix second `t`.
pub fn dns_count_hour(t: i64) -> i64 {
    t - t.rem_euclid(DNS_COUNT_BUCKET_S)
}

/// One server's counts summed over a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsServerCounts {
    /// Answers that held the server.
    pub answers: i64,
    /// Answers of its family from its zones (its share's denominator).
    pub zone_answers: i64,
    /// Its netspeed share of the records sent.
    pub expected: f64,
    /// Its answers by client country, most first (ties by country).
    pub countries: Vec<DnsCountryCount>,
}

/// A server's answers to one client country, beside every answer sent to
/// that country over the same window.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DnsCountryCount {
    pub country: String,
    pub answers: i64,
    pub country_answers: i64,
}

/// A server's totals over a window, for the share-vs-netspeed flag.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DnsShareRow {
    pub server_id: i64,
    pub ip: String,
    pub answers: i64,
    pub zone_answers: i64,
    pub expected: f64,
}

#[derive(sqlx::FromRow)]
struct Totals {
    answers: i64,
    zone_answers: i64,
    expected: f64,
}

/// One server's part of a report, its entries summed.
#[derive(Default)]
struct Merged<'a> {
    answers: i64,
    zone_answers: i64,
    expected: f64,
    by_country: BTreeMap<&'a str, i64>,
}

#[derive(sqlx::FromRow)]
struct IdIp {
    id: i64,
    ip: String,
}

const TAKE_REPORT: &str = "INSERT INTO dns_count_reports (report_id, instance, hour, received_on) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (report_id) DO NOTHING";

/// By id: every report then upserts its rows in one order (servers by id,
/// countries by code), so two reports of one hour stored at once on
/// PostgreSQL wait for each other instead of deadlocking.
const SERVER_IDS: Sql = Sql {
    sqlite: "SELECT id, ip FROM servers WHERE ip IN (SELECT value FROM json_each($1)) ORDER BY id",
    pg: "SELECT id, ip FROM servers WHERE ip IN (SELECT jsonb_array_elements_text($1::jsonb)) \
         ORDER BY id",
};

/// `$1`: `[[server_id, answers, zone_answers, expected], …]`, `$2` the hour.
const ADD_SERVER_HOURS: Sql = Sql {
    sqlite: "INSERT INTO dns_server_hours (server_id, hour, answers, zone_answers, expected) \
         SELECT json_extract(value, '$[0]'), $2, json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each($1) WHERE true \
         ON CONFLICT (server_id, hour) DO UPDATE SET \
         answers = dns_server_hours.answers + excluded.answers, \
         zone_answers = dns_server_hours.zone_answers + excluded.zone_answers, \
         expected = dns_server_hours.expected + excluded.expected",
    pg: "INSERT INTO dns_server_hours (server_id, hour, answers, zone_answers, expected) \
         SELECT (e ->> 0)::bigint, $2, (e ->> 1)::bigint, (e ->> 2)::bigint, \
         (e ->> 3)::double precision FROM jsonb_array_elements($1::jsonb) e \
         ON CONFLICT (server_id, hour) DO UPDATE SET \
         answers = dns_server_hours.answers + excluded.answers, \
         zone_answers = dns_server_hours.zone_answers + excluded.zone_answers, \
         expected = dns_server_hours.expected + excluded.expected",
};

/// `$1`: `[[server_id, country, answers], …]`, `$2` the hour.
const ADD_SERVER_COUNTRIES: Sql = Sql {
    sqlite: "INSERT INTO dns_server_countries (server_id, hour, country, answers) \
         SELECT json_extract(value, '$[0]'), $2, json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each($1) WHERE true \
         ON CONFLICT (server_id, hour, country) DO UPDATE SET \
         answers = dns_server_countries.answers + excluded.answers",
    pg: "INSERT INTO dns_server_countries (server_id, hour, country, answers) \
         SELECT (e ->> 0)::bigint, $2, e ->> 1, (e ->> 2)::bigint \
         FROM jsonb_array_elements($1::jsonb) e \
         ON CONFLICT (server_id, hour, country) DO UPDATE SET \
         answers = dns_server_countries.answers + excluded.answers",
};

/// `$1`: `[[country, answers], …]`, `$2` the hour.
const ADD_COUNTRY_HOURS: Sql = Sql {
    sqlite: "INSERT INTO dns_country_hours (hour, country, answers) \
         SELECT $2, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($1) WHERE true \
         ON CONFLICT (hour, country) DO UPDATE SET \
         answers = dns_country_hours.answers + excluded.answers",
    pg: "INSERT INTO dns_country_hours (hour, country, answers) \
         SELECT $2, e ->> 0, (e ->> 1)::bigint FROM jsonb_array_elements($1::jsonb) e \
         ON CONFLICT (hour, country) DO UPDATE SET \
         answers = dns_country_hours.answers + excluded.answers",
};

// SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
const SERVER_TOTALS: &str = "SELECT CAST(COALESCE(SUM(answers), 0) AS BIGINT) AS answers, \
     CAST(COALESCE(SUM(zone_answers), 0) AS BIGINT) AS zone_answers, \
     CAST(COALESCE(SUM(expected), 0) AS DOUBLE PRECISION) AS expected \
     FROM dns_server_hours WHERE server_id = $1 AND hour >= $2";

const SERVER_COUNTRIES: &str = "SELECT c.country AS country, \
     CAST(SUM(c.answers) AS BIGINT) AS answers, \
     CAST(COALESCE((SELECT SUM(t.answers) FROM dns_country_hours t \
        WHERE t.country = c.country AND t.hour >= $2), 0) AS BIGINT) AS country_answers \
     FROM dns_server_countries c WHERE c.server_id = $1 AND c.hour >= $2 \
     GROUP BY c.country ORDER BY 2 DESC, 1";

const SHARE_OUTLIERS: &str = "SELECT h.server_id AS server_id, s.ip AS ip, \
     CAST(SUM(h.answers) AS BIGINT) AS answers, \
     CAST(SUM(h.zone_answers) AS BIGINT) AS zone_answers, \
     CAST(SUM(h.expected) AS DOUBLE PRECISION) AS expected \
     FROM dns_server_hours h JOIN servers s ON s.id = h.server_id WHERE h.hour >= $1 \
     GROUP BY h.server_id, s.ip \
     HAVING SUM(h.answers) >= $2 AND SUM(h.answers) >= $3 * SUM(h.expected) \
     ORDER BY h.server_id";

const PRUNE: [&str; 4] = [
    "DELETE FROM dns_server_countries WHERE hour < $1",
    "DELETE FROM dns_server_hours WHERE hour < $1",
    "DELETE FROM dns_country_hours WHERE hour < $1",
    "DELETE FROM dns_count_reports WHERE hour < $1",
];

/// A count as stored (SQLite and PostgreSQL integers are signed).
fn count(what: &str, n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Invalid(format!("{what}: {n} is too large")))
}

fn json(v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(format!("count rows: {e}")))
}

impl Store {
    /// Stores one report of a DNS process in its bucket (the hour of its
    /// `to`), all in one transaction. A `report_id` stored before adds
    /// nothing (`new: false`); addresses that are not servers are skipped
    /// and counted in `unknown`. The caller checks the report's shape
    /// (the service's `POST /api/dns-counts` does); here only what the
    /// database cannot hold (a count over `i64::MAX`, a non-finite
    /// `expected`) is refused, as `Invalid`, nothing stored.
    pub async fn record_dns_counts(
        &self,
        report: &CountReport,
        now: i64,
    ) -> Result<CountsStored, StoreError> {
        let hour = dns_count_hour(report.to);
        // Checked and merged before the transaction: a bad count holds no
        // lock, and an address given twice is one row.
        let mut by_ip: HashMap<String, Merged> = HashMap::new();
        for s in &report.servers {
            if !s.expected.is_finite() || s.expected < 0.0 {
                return Err(StoreError::Invalid(format!(
                    "server {}: expected {} must be finite and not negative",
                    s.ip, s.expected
                )));
            }
            let e = by_ip.entry(canonical(s.ip)).or_default();
            e.zone_answers = e
                .zone_answers
                .saturating_add(count("zone_answers", s.zone_answers)?);
            e.expected += s.expected;
            for (country, n) in &s.answers {
                let n = count("answers", *n)?;
                e.answers = e.answers.saturating_add(n);
                let c = e.by_country.entry(country.as_str()).or_insert(0);
                *c = c.saturating_add(n);
            }
        }
        let countries: Vec<(&str, i64)> = report
            .answers_by_country
            .iter()
            .map(|(c, n)| Ok((c.as_str(), count("answers_by_country", *n)?)))
            .collect::<Result<_, StoreError>>()?;
        let ips: Vec<&String> = by_ip.keys().collect();
        let ips = json(&ips)?;
        let countries = json(&countries)?;
        self.write(async |c| {
            let taken = c
                .query(TAKE_REPORT)
                .bind(&report.report_id)
                .bind(&report.instance)
                .bind(hour)
                .bind(now)
                .execute()
                .await?;
            if taken == 0 {
                return Ok(CountsStored {
                    new: false,
                    servers: 0,
                    unknown: 0,
                });
            }
            let known: Vec<IdIp> = c.query(SERVER_IDS).bind(&ips).fetch_all().await?;
            let mut hours = Vec::with_capacity(known.len());
            let mut per_country = Vec::new();
            for IdIp { id, ip } in &known {
                let Some(m) = by_ip.get(ip) else {
                    continue;
                };
                hours.push((id, m.answers, m.zone_answers, m.expected));
                per_country.extend(m.by_country.iter().map(|(k, n)| (id, k, n)));
            }
            if !hours.is_empty() {
                c.query(ADD_SERVER_HOURS)
                    .bind(json(&hours)?)
                    .bind(hour)
                    .execute()
                    .await?;
            }
            if !per_country.is_empty() {
                c.query(ADD_SERVER_COUNTRIES)
                    .bind(json(&per_country)?)
                    .bind(hour)
                    .execute()
                    .await?;
            }
            if !report.answers_by_country.is_empty() {
                c.query(ADD_COUNTRY_HOURS)
                    .bind(&countries)
                    .bind(hour)
                    .execute()
                    .await?;
            }
            Ok(CountsStored {
                new: true,
                servers: known.len(),
                unknown: by_ip.len() - known.len(),
            })
        })
        .await
    }

    /// One server's counts over the buckets from the one holding `since`
    /// on, with every country's total beside its answers there.
    pub async fn dns_counts_for_server(
        &self,
        server_id: i64,
        since: i64,
    ) -> Result<DnsServerCounts, StoreError> {
        let since = dns_count_hour(since);
        self.read(async |c| {
            let t: Totals = c
                .query(SERVER_TOTALS)
                .bind(server_id)
                .bind(since)
                .fetch_one()
                .await?;
            let countries = c
                .query(SERVER_COUNTRIES)
                .bind(server_id)
                .bind(since)
                .fetch_all()
                .await?;
            Ok(DnsServerCounts {
                answers: t.answers,
                zone_answers: t.zone_answers,
                expected: t.expected,
                countries,
            })
        })
        .await
    }

    /// Servers whose answers over the buckets from `since` on are at least
    /// `min_answers` and at least `min_ratio` × their netspeed share
    /// (`expected`), by server id.
    pub async fn dns_share_outliers(
        &self,
        since: i64,
        min_answers: i64,
        min_ratio: f64,
    ) -> Result<Vec<DnsShareRow>, StoreError> {
        let since = dns_count_hour(since);
        self.read(async |c| {
            Ok(c.query(SHARE_OUTLIERS)
                .bind(since)
                .bind(min_answers)
                .bind(min_ratio)
                .fetch_all()
                .await?)
        })
        .await
    }

    /// Deletes the buckets (and the report ids) of hours that started
    /// before `before`; the rows deleted.
    pub async fn prune_dns_counts(&self, before: i64) -> Result<u64, StoreError> {
        self.write(async |c| {
            let mut n = 0;
            for sql in PRUNE {
                n += c.query(sql).bind(before).execute().await?;
            }
            Ok(n)
        })
        .await
    }
}

/// How `servers.ip` holds an address.
fn canonical(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}
