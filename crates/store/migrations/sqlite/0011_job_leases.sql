-- Issue 16: several `serve` processes on one database. Each background
-- job that must run once (selector, housekeeping, alerts, zone counts,
-- zone guard) runs only on the instance holding its lease: taken or
-- renewed by one upsert while free, expired or already its own; times are
-- the database's clock in unix seconds, so instances never disagree.
CREATE TABLE job_leases (
    job TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_on INTEGER NOT NULL,
    renewed_on INTEGER NOT NULL,
    expires_on INTEGER NOT NULL
);

-- The `serve` instances seen (each writes its row every few seconds), for
-- the admin status page. Rows not seen for a week are dropped.
CREATE TABLE serve_instances (
    name TEXT PRIMARY KEY,
    started_on INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    version TEXT NOT NULL,
    draining INTEGER NOT NULL DEFAULT 0
);

-- Secrets every instance must share (the ticket secret on PostgreSQL when
-- no --ticket-secret-file is given): the first instance writes it, the
-- others read it.
CREATE TABLE service_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    created_on INTEGER NOT NULL
);
