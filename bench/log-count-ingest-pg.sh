#!/bin/sh
# What a kept log count would cost PostgreSQL's ingest: 8 pgbench clients
# each inserting batches of 100 score log rows in a transaction, plain and
# with "UPDATE log_count SET n = n + 100" in the same transaction (the
# kept-count design /metrics did not take), 15 s each, twice.
#
#   bench/log-count-ingest-pg.sh      # POOLWATCH_TEST_PG_URL names the server
set -e
cd "$(dirname "$0")/.."
U=${POOLWATCH_TEST_PG_URL:-postgres://poolwatch:poolwatch@127.0.0.1:5432/postgres}
URL="${U%/*}/pw_ingest"
M=crates/store/migrations/postgres
PGB=$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | tail -n 1); PGB=${PGB:-pgbench}
T=$(mktemp -d)
psql -q "$U" -c "DROP DATABASE IF EXISTS pw_ingest" -c "CREATE DATABASE pw_ingest"
cat $M/0001_init.sql $M/0002_zone_counts.sql $M/0003_monitor_clock.sql $M/0004_many_monitors.sql | psql -q "$URL" > /dev/null
psql -q "$URL" -c "ALTER TABLE log_scores DROP CONSTRAINT IF EXISTS log_scores_server_id_fkey, DROP CONSTRAINT IF EXISTS log_scores_monitor_id_fkey" \
    -c "CREATE TABLE log_count (id int PRIMARY KEY, n bigint NOT NULL); INSERT INTO log_count VALUES (1, 0)"
cat > $T/plain.sql <<'SQL'
\set sid random(1, 2000)
BEGIN;
INSERT INTO log_scores (server_id, monitor_id, ts, step, score, "offset", rtt, stratum, leap, refid, error, no_response)
 SELECT (:sid + n) % 2000 + 1, :client_id % 7 + 1, 1700000000 + n, 1.0, 20.0, 0.001, 12000, 2, 0, 'GPS', NULL, false FROM generate_series(1, 100) n;
COMMIT;
SQL
sed 's/^COMMIT;/UPDATE log_count SET n = n + 100 WHERE id = 1;\nCOMMIT;/' $T/plain.sql > $T/kept.sql
for run in 1 2; do
    for f in plain kept; do
        echo "== $f, run $run"
        "$PGB" -n -c 8 -j 2 -T 15 -f $T/$f.sql "$URL" 2>&1 | grep -E "^tps|latency average"
    done
done
psql -q "$U" -c "DROP DATABASE pw_ingest"
rm -rf "$T"
