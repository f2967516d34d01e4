#!/usr/bin/env bash
# Benchmark: `policy replay` of generated history under 4 policies
# (current, first-1, first-answer, all-must-answer), on SQLite or
# PostgreSQL. Generates SERVERS × MONITORS pairs checked every INTERVAL s
# over DAYS days ending at 00:00 UTC today (defaults: 4,000 × 7, 2130 s,
# 30 days ≈ 34 M checks, 136 M samples; see
# crates/server/examples/bench/replay_bench.rs for the behaviours), then
# times the replay alone under /usr/bin/time -v. Deletes the data after.
#
#   bench/replay.sh sqlite
#   POOLWATCH_TEST_PG_URL=postgres://poolwatch:poolwatch@127.0.0.1:5432/postgres bench/replay.sh postgres
#   SERVERS=1000 DAYS=7 bench/replay.sh sqlite          # a scaled run
#   DIR=/var/tmp/rb bench/replay.sh sqlite               # where the SQLite file goes (several GB)
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND=${1:-sqlite}
SERVERS=${SERVERS:-4000}
MONITORS=${MONITORS:-7}
DAYS=${DAYS:-30}
INTERVAL=${INTERVAL:-2130}
DIR=${DIR:-$(mktemp -d)}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/examples/bench}
[[ -x $BIN ]] || cargo build --release -p server --example bench

args=("$BACKEND" --dir "$DIR" --servers "$SERVERS" --monitors "$MONITORS" --days "$DAYS" --interval "$INTERVAL")
cleanup() { rm -rf "$DIR"; }
if [[ $BACKEND == postgres ]]; then
    admin=${POOLWATCH_TEST_PG_URL:?set POOLWATCH_TEST_PG_URL}
    db=pw_replay_bench
    psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
    url="${admin%/*}/$db"
    args+=(--url "$url")
    cleanup() { rm -rf "$DIR"; psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"; }
fi
trap cleanup EXIT

echo "== generate ($BACKEND, $SERVERS servers × $MONITORS monitors × $DAYS days)"
"$BIN" replay-gen "${args[@]}"
if [[ $BACKEND == postgres ]]; then
    psql "$url" -qc "VACUUM ANALYZE check_samples"
    psql "$url" -Atc "SELECT 'check_samples on disk: ' || pg_size_pretty(pg_total_relation_size('check_samples'))"
else
    du -sh "$DIR"
fi
df -h / | tail -1
echo "== replay under 4 policies"
/usr/bin/time -v "$BIN" replay-run "${args[@]}" 2> >(grep -E "Elapsed|Maximum resident|User time|System time" >&2)
