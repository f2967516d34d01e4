#!/bin/sh
# `poolwatch admin export` of one day of ROWS score log rows (2000 servers,
# 8 monitors, every 5th row the aggregate), as Parquet and as CSV: time,
# rows/s, file size. The store is made by the binary (every migration),
# the rows by SQL; everything is removed afterwards.
#
#   bench/export.sh sqlite 1000000
#   bench/export.sh postgres 1000000
#
# BIN (default target/release/poolwatch, or $CARGO_TARGET_DIR's) is the
# binary; PostgreSQL: POOLWATCH_TEST_PG_URL (default the test cluster's)
# names a server where a throw-away database pw_export_ROWS is made and
# dropped.
set -e
cd "$(dirname "$0")/.."
BACKEND=${1:?sqlite or postgres}; N=${2:?rows}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/poolwatch}
DAY0=1699920000   # 2023-11-14 00:00 UTC
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
SERVERS="INSERT INTO servers (id, ip, ip_version, netspeed, created_on)
  SELECT n, '10.' || (n / 65536) || '.' || (n / 256 % 256) || '.' || (n % 256), 4, 1000, $DAY0 FROM S;
INSERT INTO monitors (id, name, location, ip, ip_version, status, key_hash, created_on)
  SELECT n, 'mon' || n, 'Lab', '192.0.2.' || n, 4, 'active', 'hash' || n, $DAY0 FROM M;"
# Columns of the INSERT … SELECT for row n (ids from 1).
ROW="n, n % 2000 + 1, CASE WHEN n % 5 = 0 THEN NULL ELSE n % 8 + 1 END, $DAY0 + n * 86399 / $N,
  1.0, 19.5 + (n % 100) / 200.0, CASE WHEN n % 5 = 0 THEN NULL ELSE (n % 2000 - 1000) / 1e6 END,
  CASE WHEN n % 5 = 0 THEN NULL ELSE 10000 + n % 50000 END, 2, 0, 'GPS',
  CASE WHEN n % 97 = 0 THEN 'i/o timeout' END, n % 97 = 0"
COLS="id, server_id, monitor_id, ts, step, score, \"offset\", rtt, stratum, leap, refid, error, no_response"
case $BACKEND in
sqlite)
    STORE="--data-dir $TMP/data"
    "$BIN" admin $STORE zone list > /dev/null
    sqlite3 "$TMP/data/poolwatch.db" "
      CREATE TEMP TABLE S AS WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n < 2000) SELECT n FROM s;
      CREATE TEMP TABLE M AS WITH RECURSIVE m(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM m WHERE n < 8) SELECT n FROM m;
      $SERVERS
      WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM g WHERE n < $N)
      INSERT INTO log_scores ($COLS) SELECT $ROW FROM g;
      UPDATE log_seq SET next_id = $N + 1;" > /dev/null
    echo "sqlite: $N rows, database $(du -h "$TMP/data/poolwatch.db" | cut -f1)";;
postgres)
    U=${POOLWATCH_TEST_PG_URL:-postgres://poolwatch:poolwatch@127.0.0.1:5432/postgres}
    DB=pw_export_$N; URL="${U%/*}/$DB"
    psql -q "$U" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
    trap 'rm -rf "$TMP"; psql -q "$U" -c "DROP DATABASE IF EXISTS $DB"' EXIT
    STORE="--data-dir $TMP/data --database-url $URL"
    "$BIN" admin $STORE zone list > /dev/null
    psql -q "$URL" -c "CREATE TEMP TABLE S AS SELECT generate_series(1, 2000) n;
      CREATE TEMP TABLE M AS SELECT generate_series(1, 8) n;
      $SERVERS
      INSERT INTO log_scores ($COLS) SELECT $ROW FROM generate_series(1::bigint, $N) n;" -c "VACUUM ANALYZE log_scores"
    echo "postgres: $N rows, log_scores $(psql -tA "$URL" -c "SELECT pg_size_pretty(pg_total_relation_size('log_scores'))")";;
*) echo "sqlite or postgres" >&2; exit 2;;
esac
for FORMAT in parquet csv; do
    /usr/bin/time -f "  $FORMAT: %e s wall, %U s user, %M KB max RSS" \
        "$BIN" admin $STORE export --from 2023-11-14 --to 2023-11-14 --format $FORMAT --out "$TMP/out" \
        | tail -1
done
ls -l "$TMP/out"
