-- Issue 17 item 3, client distribution: what the DNS processes answered,
-- in hourly buckets (`hour` = unix seconds at the start of the UTC hour
-- of a report's `to`). Housekeeping drops buckets older than
-- --dns-count-retention, the report ids with them.

-- Every report stored, so a report resent after its response was lost
-- adds nothing (its id is taken first, in the same transaction).
CREATE TABLE dns_count_reports (
    report_id   TEXT PRIMARY KEY,
    instance    TEXT NOT NULL,
    hour        INTEGER NOT NULL,
    received_on INTEGER NOT NULL
);
CREATE INDEX dns_count_reports_hour ON dns_count_reports (hour);

-- Per server and hour: the answers that held it, the answers of its
-- family from its zones (its share's denominator) and its netspeed share
-- of the records sent (what its weight asks for).
CREATE TABLE dns_server_hours (
    server_id    INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    hour         INTEGER NOT NULL,
    answers      INTEGER NOT NULL,
    zone_answers INTEGER NOT NULL,
    expected     REAL NOT NULL,
    PRIMARY KEY (server_id, hour)
);
CREATE INDEX dns_server_hours_hour ON dns_server_hours (hour);

-- Per server, hour and client country (lower-case ISO code, or '-'):
-- the answers that held it.
CREATE TABLE dns_server_countries (
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    hour      INTEGER NOT NULL,
    country   TEXT NOT NULL,
    answers   INTEGER NOT NULL,
    PRIMARY KEY (server_id, hour, country)
);
CREATE INDEX dns_server_countries_hour ON dns_server_countries (hour);

-- Per hour and client country: every address answer sent, the
-- denominator of a country's permyriad.
CREATE TABLE dns_country_hours (
    hour    INTEGER NOT NULL,
    country TEXT NOT NULL,
    answers INTEGER NOT NULL,
    PRIMARY KEY (hour, country)
);
