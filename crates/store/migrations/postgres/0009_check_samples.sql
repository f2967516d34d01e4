-- Issue 15: every sample of a check, kept as evidence beside its log row.
-- One row per check; `data` packs the samples (crates/store/src/samples.rs,
-- crates/store/API.md "Check samples"). The key order serves both the
-- per-server window read and the per-server prune.
CREATE TABLE check_samples (
    server_id BIGINT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    ts BIGINT NOT NULL,
    monitor_id BIGINT NOT NULL REFERENCES monitors (id),
    data BYTEA NOT NULL,
    PRIMARY KEY (server_id, ts, monitor_id)
);
