-- Issue 15: every sample of a check, kept as evidence beside its log row.
-- One row per check; `data` packs the samples (crates/store/src/samples.rs,
-- crates/store/API.md "Check samples"). WITHOUT ROWID: the key is the
-- table, no second index, so a row costs its key and blob only. The key
-- order serves both the per-server window read and the per-server prune.
CREATE TABLE check_samples (
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    ts INTEGER NOT NULL,
    monitor_id INTEGER NOT NULL REFERENCES monitors (id),
    data BLOB NOT NULL,
    PRIMARY KEY (server_id, ts, monitor_id)
) WITHOUT ROWID;
