#!/bin/sh
# Issue 16: the score log partitioned by month on PostgreSQL (migration
# 0012) at a given size: the /metrics store query (COUNT(*) before issue 11,
# the id range it uses, the planner's estimate), a server's newest-first log
# read (the CSV/JSON route's query and the ingest's last-aggregate probe),
# and retention by dropping a month's partition vs deleting its rows.
#
#   bench/partitions.sh 50000000      # rows, spread over 24 months
#
# POOLWATCH_TEST_PG_URL (default the test cluster's) names a server where
# a throw-away database pw_part_ROWS is made and dropped. Rows are written
# by SQL (2000 servers, 7 monitors and the aggregate), not through the
# service; the partitions of the past 24 months are made as 0012 makes them
# for existing rows (the migration makes them only for rows it moves).
set -e
cd "$(dirname "$0")/.."
N=${1:?rows}; MONTHS=24
U=${POOLWATCH_TEST_PG_URL:-postgres://poolwatch:poolwatch@127.0.0.1:5432/postgres}
DB=pw_part_$N; URL="${U%/*}/$DB"
M=crates/store/migrations/postgres
psql -q "$U" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
cat $M/00*.sql | psql -q -v ON_ERROR_STOP=1 "$URL" > /dev/null
# The past months' partitions, then the rows, oldest month first.
psql -q -v ON_ERROR_STOP=1 "$URL" <<SQL
ALTER TABLE log_scores DETACH PARTITION log_scores_before;
SELECT format('CREATE TABLE log_scores_p%s PARTITION OF log_scores FOR VALUES FROM (%s) TO (%s)',
    to_char(m, 'YYYY_MM'), extract(epoch FROM m)::bigint, extract(epoch FROM m + interval '1 month')::bigint)
  FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '$MONTHS months',
                       date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month', interval '1 month') m \gexec
SELECT format('ALTER TABLE log_scores ATTACH PARTITION log_scores_before FOR VALUES FROM (MINVALUE) TO (%s)',
    extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC') - interval '$MONTHS months')::bigint) \gexec
INSERT INTO zones (name, description) VALUES ('@', 'Global');
INSERT INTO servers (ip, ip_version, created_on) SELECT '10.0.' || (n / 256) || '.' || (n % 256), 4, 0 FROM generate_series(1, 2000) n;
INSERT INTO monitors (name, ip, ip_version, status, key_hash, created_on)
  SELECT 'm' || n, '203.0.113.' || n, 4, 'active', 'k' || n, 0 FROM generate_series(1, 7) n;
SET synchronous_commit = off;
SELECT extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC') - interval '$MONTHS months')::bigint AS t0,
       extract(epoch FROM now())::bigint AS t1 \gset
INSERT INTO log_scores (server_id, monitor_id, ts, step, score, "offset", rtt, stratum, leap, refid, error, no_response)
  SELECT n % 2000 + 1, NULLIF(n % 8, 0), :t0 + (n::bigint * (:t1 - :t0) / $N), 1.0, 20.0, 0.001, 12000, 2, 0, 'GPS', NULL, false
  FROM generate_series(1, $N) n;
VACUUM ANALYZE log_scores;
SQL
psql -X -tA "$URL" -c "SELECT count(*) || ' partitions, ' || pg_size_pretty(sum(pg_total_relation_size(relid))) FROM pg_partition_tree('log_scores') WHERE isleaf"
timed() { # label, query, runs: median/min/max of psql's \timing
    python3 - "$URL" "$1" "$2" "$3" <<'PY'
import subprocess, sys
url, name, q, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
out = subprocess.run(["psql", "-X", url], input="\\timing on\n" + (q + ";\n") * runs,
                     capture_output=True, text=True).stdout
ts = sorted(float(l.split()[1]) for l in out.splitlines() if l.startswith("Time:"))
print(f"{name}: median {ts[len(ts)//2]:.3f} ms (min {ts[0]:.3f}, max {ts[-1]:.3f}, {runs} runs)")
PY
}
H="SELECT (SELECT COUNT(*) FROM servers), (SELECT COUNT(*) FROM monitors)"
timed "scrape, COUNT(*)" "$H, (SELECT COUNT(*) FROM log_scores)" 3
timed "scrape, id range (METRIC_COUNTS)" "$H, (SELECT COALESCE(MAX(id) - MIN(id) + 1, 0) FROM log_scores)" 15
timed "scrape, planner estimate" "$H, (SELECT sum(c.reltuples)::bigint FROM pg_partition_tree('log_scores') p JOIN pg_class c ON c.oid = p.relid WHERE p.isleaf)" 15
cat > /tmp/pw_part_read.sql <<'Q'
\set s random(1, 2000)
SELECT l.id, l.ts, l."offset", l.step, l.score, l.monitor_id, m.name AS monitor_name, l.rtt AS rtt_us, l.stratum, l.leap, l.refid, l.error, l.no_response FROM log_scores l LEFT JOIN monitors m ON m.id = l.monitor_id WHERE l.server_id = :s ORDER BY l.ts DESC, l.id DESC LIMIT 100;
Q
cat > /tmp/pw_part_agg.sql <<'Q'
\set s random(1, 2000)
SELECT x.score FROM log_scores x WHERE x.server_id = :s AND x.monitor_id IS NULL ORDER BY x.ts DESC, x.id DESC LIMIT 1;
Q
for q in read agg; do
    echo "log $q (pgbench, prepared, 10 s): $(pgbench -n -M prepared -T 10 -f /tmp/pw_part_$q.sql "$URL" 2>/dev/null | grep 'latency average')"
done
# Retention: the oldest month as a whole partition (as store::partitions
# does it: count, detach _before, drop, attach _before over it), then the
# next month by row deletes (5,000 rows per statement, as housekeeping).
OLD=$(psql -X -tA "$URL" -c "SELECT c.relname FROM pg_partition_tree('log_scores') p JOIN pg_class c ON c.oid = p.relid WHERE p.isleaf AND c.relname ~ '_p' ORDER BY 1 LIMIT 2" | tr '\n' ' ')
set -- $OLD
HI=$(psql -X -tA "$URL" -c "SELECT max(ts) + 1 FROM $1")
python3 - "$URL" "$1" "$HI" <<'PY'
import subprocess, sys, time
url, part, hi = sys.argv[1:]
sql = f"""BEGIN; SET LOCAL lock_timeout = '5s'; SELECT count(*) FROM {part};
ALTER TABLE log_scores DETACH PARTITION log_scores_before; DROP TABLE {part};
ALTER TABLE log_scores ATTACH PARTITION log_scores_before FOR VALUES FROM (MINVALUE) TO ({hi}); COMMIT;"""
t = time.perf_counter(); out = subprocess.run(["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", url], input=sql, capture_output=True, text=True, check=True).stdout
print(f"retention, drop a month's partition ({out.split()[0]} rows): {(time.perf_counter() - t) * 1000:.0f} ms")
PY
python3 - "$URL" "$2" <<'PY'
import subprocess, sys, time
url, part = sys.argv[1:]
n = int(subprocess.run(["psql", "-X", "-tA", url, "-c", f"SELECT count(*) FROM {part}"], capture_output=True, text=True).stdout)
hi = subprocess.run(["psql", "-X", "-tA", url, "-c", f"SELECT max(ts) + 1 FROM {part}"], capture_output=True, text=True).stdout.strip()
loop = f"""DO $$ DECLARE s bigint; k bigint; BEGIN FOR s IN 1..2000 LOOP LOOP
  DELETE FROM log_scores WHERE (server_id, ts, id) IN (SELECT server_id, ts, id FROM log_scores
    WHERE server_id = s AND ts < {hi} ORDER BY ts LIMIT 5000);
  GET DIAGNOSTICS k = ROW_COUNT; COMMIT; EXIT WHEN k < 5000; END LOOP; END LOOP; END $$;"""
t = time.perf_counter(); subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url], input=loop, text=True, check=True)
print(f"retention, delete a month's rows ({n} rows, 5,000 a transaction): {(time.perf_counter() - t) * 1000:.0f} ms")
PY
psql -q "$U" -c "DROP DATABASE $DB"
