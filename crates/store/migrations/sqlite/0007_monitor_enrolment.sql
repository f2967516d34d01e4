-- Issue 14: monitor volunteers join by themselves. `agent setup` registers
-- once from each address family the host has; the volunteer accepts the
-- registration for their account on the manage pages; the agent collects
-- its credentials once; a pool admin approves the new monitor (pending →
-- testing). Times are unix seconds; secrets are stored as hex SHA-256.

CREATE TABLE monitor_registrations (
    id             INTEGER PRIMARY KEY,
    -- The agent's registration secret (it polls with it).
    secret_hash    TEXT NOT NULL UNIQUE,
    -- The short code the volunteer opens or types; used once.
    code_hash      TEXT NOT NULL UNIQUE,
    hostname       TEXT NOT NULL DEFAULT '',
    client_version TEXT NOT NULL DEFAULT '',
    name_hint      TEXT NOT NULL DEFAULT '',
    -- Source addresses the service saw, one per family.
    ipv4           TEXT,
    ipv6           TEXT,
    created_on     BIGINT NOT NULL,
    expires        BIGINT NOT NULL,
    -- Set when a volunteer accepts it for an account.
    account_id     BIGINT REFERENCES accounts (id) ON DELETE CASCADE,
    accepted_by    BIGINT REFERENCES users (id) ON DELETE SET NULL,
    accepted_on    BIGINT,
    monitor_name   TEXT,
    location       TEXT,
    -- When the agent collected its keys (once; never again).
    delivered_on   BIGINT
);
CREATE INDEX monitor_registrations_expires ON monitor_registrations (expires);

-- An account's own monitor limit; NULL: serve's --max-monitors-per-account.
ALTER TABLE accounts ADD COLUMN max_monitors BIGINT;
-- The registration a monitor came from (NULL: added by `admin monitor add`),
-- so both family rows of one agent are known as one.
ALTER TABLE monitors ADD COLUMN registration_id BIGINT REFERENCES monitor_registrations (id) ON DELETE SET NULL;
