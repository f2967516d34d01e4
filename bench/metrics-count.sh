#!/bin/sh
# The store part of a /metrics scrape at a given score log size, before
# (COUNT(*) over the log) and after issue 11 (SQLite: the count kept in
# log_seq; PostgreSQL: the id range), 7 runs each, median/min/max.
#
#   bench/metrics-count.sh sqlite 1000000
#   DELETE=300000 bench/metrics-count.sh postgres 1000000   # also after deleting ids ≤ 300000
#
# PostgreSQL: POOLWATCH_TEST_PG_URL (default the test cluster's) names a
# server where a throw-away database pw_meas_ROWS is made and dropped.
# Rows are written by SQL (2000 servers, 7 monitors), not through the
# service: the shape of the table is what matters here.
set -e
cd "$(dirname "$0")/.."
BACKEND=${1:?sqlite or postgres}; N=${2:?rows}
OLD="SELECT (SELECT COUNT(*) FROM servers), (SELECT COUNT(*) FROM monitors), (SELECT COUNT(*) FROM log_scores)"
case $BACKEND in
sqlite)
    M=crates/store/migrations/sqlite; DB=$(mktemp -d)/log.db
    cat $M/0001_init.sql $M/0002_zone_counts.sql $M/0003_monitor_clock.sql $M/0004_many_monitors.sql | sqlite3 "$DB"
    sqlite3 "$DB" "PRAGMA journal_mode=WAL; WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM i WHERE n < $N)
      INSERT INTO log_scores (server_id, ts, id, monitor_id, step, score, \"offset\", rtt, stratum, leap, refid, error, no_response)
      SELECT n % 2000 + 1, 1700000000 + n, n, n % 7 + 1, 1.0, 20.0, 0.001, 12000, 2, 0, 'GPS', NULL, 0 FROM i;
      UPDATE log_seq SET next_id = $N + 1;" > /dev/null
    sqlite3 "$DB" < $M/0005_log_row_count.sql
    NEW="SELECT (SELECT COUNT(*) FROM servers), (SELECT COUNT(*) FROM monitors), (SELECT log_rows FROM log_seq WHERE id = 1)"
    python3 - "$DB" "$OLD" "$NEW" <<'PY'
import sqlite3, sys, time, statistics
db, old, new = sys.argv[1:]
for name, q in (("before: COUNT(*)", old), ("after: kept count", new)):
    ts = []
    for _ in range(7):
        c = sqlite3.connect(db)
        t = time.perf_counter(); r = c.execute(q).fetchone(); ts.append((time.perf_counter() - t) * 1000); c.close()
    print(f"{name}: median {statistics.median(ts):.3f} ms (min {min(ts):.3f}, max {max(ts):.3f}) -> {r}")
PY
    rm -rf "$(dirname "$DB")";;
postgres)
    M=crates/store/migrations/postgres
    U=${POOLWATCH_TEST_PG_URL:-postgres://poolwatch:poolwatch@127.0.0.1:5432/postgres}
    DB=pw_meas_$N; URL="${U%/*}/$DB"
    psql -q "$U" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
    cat $M/0001_init.sql $M/0002_zone_counts.sql $M/0003_monitor_clock.sql $M/0004_many_monitors.sql | psql -q "$URL" > /dev/null
    psql -q "$URL" -c "SET session_replication_role = replica" -c "INSERT INTO log_scores (server_id, monitor_id, ts, step, score, \"offset\", rtt, stratum, leap, refid, error, no_response)
      SELECT n % 2000 + 1, n % 7 + 1, 1700000000 + n, 1.0, 20.0, 0.001, 12000, 2, 0, 'GPS', NULL, false FROM generate_series(1, $N) n" -c "VACUUM ANALYZE log_scores"
    NEW="SELECT (SELECT COUNT(*) FROM servers), (SELECT COUNT(*) FROM monitors), (SELECT COALESCE(MAX(id) - MIN(id) + 1, 0) FROM log_scores)"
    time_pg() {
        python3 - "$URL" "$OLD" "$NEW" <<'PY'
import subprocess, sys
url, old, new = sys.argv[1:]
for name, q in (("before: COUNT(*)", old), ("after: id range", new)):
    out = subprocess.run(["psql", "-X", url], input="\\timing on\n" + (q + ";\n") * 7,
                         capture_output=True, text=True).stdout
    ts = sorted(float(l.split()[1]) for l in out.splitlines() if l.startswith("Time:"))
    res = [l.strip() for l in out.splitlines() if "|" in l and "count" not in l][:1]
    print(f"{name}: median {ts[3]:.3f} ms (min {ts[0]:.3f}, max {ts[-1]:.3f}) -> {res}")
PY
    }
    time_pg
    if [ -n "$DELETE" ]; then
        psql -q "$URL" -c "DELETE FROM log_scores WHERE id <= $DELETE"
        echo "after deleting ids <= $DELETE, before any vacuum:"
        time_pg
    fi
    psql -q "$U" -c "DROP DATABASE $DB";;
*) echo "sqlite or postgres" >&2; exit 2;;
esac
