-- Issue 13: operators join by themselves. People (users) sign in by an
-- e-mailed one-time link and belong to accounts (owner or member); a
-- session or an account's API token acts for one account; every change is
-- in the audit log. Servers they add get a live check by monitors first
-- and are verified from their own address. Times are unix seconds; every
-- secret (link, session id, CSRF seed, token) is stored as its hex SHA-256.

ALTER TABLE accounts ADD COLUMN created_on BIGINT NOT NULL DEFAULT 0;
-- Pool admins: every member of an admin account may use the admin pages.
ALTER TABLE accounts ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE;
-- A disabled account's servers leave DNS and its tokens stop working.
ALTER TABLE accounts ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    -- Lower-cased; the one identity of a person.
    email      TEXT NOT NULL UNIQUE,
    created_on BIGINT NOT NULL,
    last_login BIGINT
);

CREATE TABLE memberships (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    created_on BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- One-time links sent by e-mail: sign-in (15 minutes) and invitations to
-- an account (7 days). Used once: used_on is set in the transaction that
-- honours it.
CREATE TABLE email_links (
    token_hash TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL CHECK (purpose IN ('signin', 'invite')),
    email      TEXT NOT NULL,
    account_id BIGINT REFERENCES accounts (id) ON DELETE CASCADE,
    role       TEXT CHECK (role IN ('owner', 'member')),
    invited_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_on BIGINT NOT NULL,
    expires    BIGINT NOT NULL,
    used_on    BIGINT
);
CREATE INDEX email_links_email ON email_links (email, created_on);
CREATE INDEX email_links_expires ON email_links (expires);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The account the person picked (one of theirs); NULL until they pick.
    account_id BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    -- Hash of the session's CSRF secret (forms carry the secret).
    csrf_hash  TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_on BIGINT NOT NULL,
    last_used  BIGINT,
    revoked_on BIGINT
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

-- Who changed what. actor: 'user:<email>', 'token:<name>', 'admin:<email>'
-- or 'system'; action from a closed set (server.add, member.invite, …).
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    account_id BIGINT REFERENCES accounts (id) ON DELETE CASCADE,
    ts         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_account ON audit_log (account_id, id);

-- The name the operator added the server by, when it was a hostname.
ALTER TABLE servers ADD COLUMN hostname TEXT;
ALTER TABLE servers ADD COLUMN verified_on BIGINT;
-- The operator's own note about the server (shown on their pages only).
ALTER TABLE servers ADD COLUMN note TEXT NOT NULL DEFAULT '';
-- Per-server alert setting: FALSE mutes alerts about this server.
ALTER TABLE servers ADD COLUMN alerts_on BOOLEAN NOT NULL DEFAULT TRUE;
CREATE INDEX servers_account ON servers (account_id);

-- One-time verification URLs handed out by /verify to a request from the
-- server's own address.
CREATE TABLE server_verifications (
    token_hash TEXT PRIMARY KEY,
    server_id  BIGINT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    created_on BIGINT NOT NULL,
    expires    BIGINT NOT NULL,
    used_on    BIGINT
);

-- A live check of an address an operator wants to add: up to three
-- monitors are asked at their next work call; each answer is a row of
-- live_check_results.
CREATE TABLE live_checks (
    id         INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    ip         TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    expires    BIGINT NOT NULL
);
CREATE TABLE live_check_results (
    check_id    BIGINT NOT NULL REFERENCES live_checks (id) ON DELETE CASCADE,
    monitor_id  BIGINT NOT NULL REFERENCES monitors (id),
    -- When the monitor took the request; the answer fields stay NULL
    -- until it reports.
    handed_out  BIGINT,
    ts          BIGINT,
    "offset"    REAL,
    rtt         BIGINT,
    stratum     BIGINT,
    leap        BIGINT,
    refid       TEXT,
    error       TEXT,
    no_response BOOLEAN,
    PRIMARY KEY (check_id, monitor_id)
);
CREATE INDEX live_check_results_monitor ON live_check_results (monitor_id, handed_out);
