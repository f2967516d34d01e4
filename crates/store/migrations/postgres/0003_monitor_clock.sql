-- The latest clock sanity check each monitor reported (shown on /monitors).
CREATE TABLE monitor_clock (
    monitor_id BIGINT PRIMARY KEY,
    ok BOOLEAN NOT NULL,
    detail TEXT NOT NULL,
    ts BIGINT NOT NULL
);
