-- Issue 7: selector statistics and change log, zone guard state and events,
-- traceroutes and alerts. Times are unix seconds.

-- 24 h statistics per (server, monitor) pair for the selector, kept on
-- ingest in two UTC-day buckets (see scoring::window): the current day and
-- the one before it. rtt sums are milliseconds over answered results only.
ALTER TABLE server_scores ADD COLUMN stats_day BIGINT;
ALTER TABLE server_scores ADD COLUMN cur_n BIGINT NOT NULL DEFAULT 0;
ALTER TABLE server_scores ADD COLUMN cur_step REAL NOT NULL DEFAULT 0;
ALTER TABLE server_scores ADD COLUMN cur_rtt_n BIGINT NOT NULL DEFAULT 0;
ALTER TABLE server_scores ADD COLUMN cur_rtt REAL NOT NULL DEFAULT 0;
ALTER TABLE server_scores ADD COLUMN prev_n BIGINT NOT NULL DEFAULT 0;
ALTER TABLE server_scores ADD COLUMN prev_step REAL NOT NULL DEFAULT 0;
ALTER TABLE server_scores ADD COLUMN prev_rtt_n BIGINT NOT NULL DEFAULT 0;
ALTER TABLE server_scores ADD COLUMN prev_rtt REAL NOT NULL DEFAULT 0;
-- This monitor's last error code for the server since it was last healthy
-- (score ≥ 10); '' once healthy, or before any error.
ALTER TABLE server_scores ADD COLUMN last_error TEXT;
-- The pairs that count or are on trial (and paused ones): a selector pass
-- reads these for every server through this small index, and candidates
-- only for the servers that need them (see server::selector). Status
-- changes only in the selector, so ingest never touches it.
CREATE INDEX server_scores_counted ON server_scores (server_id, monitor_id)
    WHERE status <> 'candidate';

-- Every selector change, with the reason shown on the server page.
CREATE TABLE selector_log (
    id          INTEGER PRIMARY KEY,
    server_id   BIGINT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    monitor_id  BIGINT NOT NULL REFERENCES monitors (id),
    ts          BIGINT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX selector_log_server ON selector_log (server_id, ts);

-- Per server: whether it is in DNS (by score or held by the zone guard),
-- since when, and when it last left.
CREATE TABLE server_dns (
    server_id BIGINT PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    in_dns    BOOLEAN NOT NULL,
    held      BOOLEAN NOT NULL DEFAULT FALSE,
    in_since  BIGINT,
    left_at   BIGINT
);

-- What the zone guard did: one row per zone and run in which a zone would
-- have lost more than its allowance. detail is JSON (held servers and what
-- each monitor saw).
CREATE TABLE guard_events (
    id       INTEGER PRIMARY KEY,
    zone_id  BIGINT NOT NULL REFERENCES zones (id),
    ts       BIGINT NOT NULL,
    held     BIGINT NOT NULL,
    dropped  BIGINT NOT NULL,
    allowed  BIGINT NOT NULL,
    baseline BIGINT NOT NULL,
    detail   TEXT NOT NULL
);
CREATE INDEX guard_events_zone ON guard_events (zone_id, ts);

-- Traceroutes asked of a monitor (delivered with its next work batch) and
-- the ones it sent back. hops is JSON.
CREATE TABLE traceroute_requests (
    server_id    BIGINT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    monitor_id   BIGINT NOT NULL REFERENCES monitors (id),
    requested_at BIGINT NOT NULL,
    reason       TEXT NOT NULL,
    taken_at     BIGINT,
    PRIMARY KEY (server_id, monitor_id)
);
CREATE INDEX traceroute_requests_monitor ON traceroute_requests (monitor_id, taken_at);

CREATE TABLE traceroutes (
    id         INTEGER PRIMARY KEY,
    server_id  BIGINT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    monitor_id BIGINT NOT NULL REFERENCES monitors (id),
    ts         BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    tool       TEXT NOT NULL,
    hops       TEXT NOT NULL,
    error      TEXT
);
CREATE INDEX traceroutes_server ON traceroutes (server_id, ts);

-- Alerts to a server's account: state per server and every message sent.
CREATE TABLE alert_state (
    server_id    BIGINT PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    down_since   BIGINT,
    last_sent_at BIGINT,
    last_kind    TEXT,
    reminders    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE alerts (
    id        INTEGER PRIMARY KEY,
    server_id BIGINT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    ts        BIGINT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('down', 'reminder', 'recovered')),
    channel   TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    target    TEXT NOT NULL,
    ok        BOOLEAN NOT NULL,
    error     TEXT,
    body      TEXT NOT NULL
);
CREATE INDEX alerts_server ON alerts (server_id, ts);
