-- poolwatch schema, SQLite dialect. Times are unix seconds (INTEGER);
-- rtt is integer microseconds; offset is seconds.

CREATE TABLE accounts (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    email   TEXT,
    webhook TEXT
);

CREATE TABLE zones (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    parent_id   INTEGER REFERENCES zones (id),
    description TEXT NOT NULL DEFAULT '',
    dns         BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE servers (
    id          INTEGER PRIMARY KEY,
    ip          TEXT NOT NULL UNIQUE,
    ip_version  INTEGER NOT NULL CHECK (ip_version IN (4, 6)),
    account_id  INTEGER REFERENCES accounts (id),
    netspeed    INTEGER NOT NULL DEFAULT 10000 CHECK (netspeed >= 0),
    score       REAL NOT NULL DEFAULT 0,
    score_ts    INTEGER,
    deletion_on INTEGER,
    created_on  INTEGER NOT NULL
);

CREATE TABLE server_zones (
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    zone_id   INTEGER NOT NULL REFERENCES zones (id),
    PRIMARY KEY (server_id, zone_id)
);
CREATE INDEX server_zones_zone ON server_zones (zone_id);

CREATE TABLE monitors (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    location          TEXT NOT NULL DEFAULT '',
    ip                TEXT NOT NULL,
    ip_version        INTEGER NOT NULL CHECK (ip_version IN (4, 6)),
    account_id        INTEGER REFERENCES accounts (id),
    status            TEXT NOT NULL
        CHECK (status IN ('pending', 'testing', 'active', 'paused', 'deleted')),
    key_hash          TEXT NOT NULL UNIQUE,
    config            TEXT,
    last_seen         INTEGER,
    last_submit_batch INTEGER,
    client_version    TEXT,
    created_on        INTEGER NOT NULL
);

CREATE TABLE server_scores (
    id         INTEGER PRIMARY KEY,
    monitor_id INTEGER NOT NULL REFERENCES monitors (id),
    server_id  INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    status     TEXT NOT NULL CHECK (status IN ('candidate', 'testing', 'active', 'paused')),
    score      REAL NOT NULL DEFAULT 0,
    score_ts   INTEGER,
    queue_ts   INTEGER,
    rtt        INTEGER,
    UNIQUE (server_id, monitor_id)
);
CREATE INDEX server_scores_queue ON server_scores (monitor_id, queue_ts);

-- Clustered by server and time (WITHOUT ROWID), so a server's log is one
-- contiguous range however the rows of many servers interleave on insert:
-- reading 10,000 rows of one server touches ~100 pages instead of ~10,000.
-- Ids come from log_seq (WITHOUT ROWID tables have no autoincrement).
CREATE TABLE log_scores (
    server_id   INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    ts          INTEGER NOT NULL,
    id          INTEGER NOT NULL,
    monitor_id  INTEGER REFERENCES monitors (id),
    step        REAL NOT NULL,
    score       REAL NOT NULL,
    "offset"    REAL,
    rtt         INTEGER,
    stratum     INTEGER,
    leap        INTEGER,
    refid       TEXT,
    error       TEXT,
    no_response BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (server_id, ts, id)
) WITHOUT ROWID;
-- Secondary index entries carry the primary key, so this one also serves
-- ORDER BY ts, id within one monitor (and monitor_id IS NULL).
CREATE INDEX log_scores_server_monitor_ts ON log_scores (server_id, monitor_id, ts);

CREATE TABLE log_seq (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    next_id INTEGER NOT NULL
);
INSERT INTO log_seq (id, next_id) VALUES (1, 0);

CREATE TABLE batches (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    monitor_id   INTEGER NOT NULL REFERENCES monitors (id),
    created      INTEGER NOT NULL,
    -- JSON [[server_id, "ip"], …] in issue order.
    servers      TEXT NOT NULL,
    submitted_at INTEGER
);
CREATE INDEX batches_monitor ON batches (monitor_id, seq);
CREATE INDEX batches_created ON batches (created);
