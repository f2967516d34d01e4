-- Issue 11: /metrics reported COUNT(*) over the whole score log at every
-- scrape (linear in a log kept forever). The count is kept here instead:
-- the insert that bumps next_id adds its rows (the same row it already
-- writes, so ingest pays nothing more), and housekeeping, the only delete
-- of log rows, takes its chunks off in the same transaction (a per-row
-- delete trigger made its deletes ~75 % slower; see BENCHMARKS.md).
ALTER TABLE log_seq ADD COLUMN log_rows INTEGER NOT NULL DEFAULT 0;
UPDATE log_seq SET log_rows = (SELECT COUNT(*) FROM log_scores) WHERE id = 1;
