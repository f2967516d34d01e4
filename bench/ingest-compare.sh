#!/usr/bin/env bash
# Ingest of two builds side by side, on both backends, interleaved so that
# the machine's drift hits both alike:
#   bench/ingest-compare.sh BEFORE_BENCH AFTER_BENCH [ROUNDS] [SECONDS]
# BEFORE_BENCH / AFTER_BENCH are `bench` example binaries, e.g.
#   git worktree add /tmp/before <commit> && (cd /tmp/before &&
#     cargo build --release -p server --example bench) &&
#   cp /tmp/before/target/release/examples/bench /tmp/bench-before
#   cargo build --release -p server --example bench
#   bench/ingest-compare.sh /tmp/bench-before target/release/examples/bench 3 15
# PostgreSQL at POOLWATCH_TEST_PG_URL (scripts/test starts one).
set -euo pipefail
before=$1 after=$2 rounds=${3:-3} secs=${4:-15}
: "${POOLWATCH_TEST_PG_URL:=postgres://poolwatch:poolwatch@127.0.0.1:5432/postgres}"
export POOLWATCH_TEST_PG_URL
for backend in sqlite postgres; do
  for round in $(seq "$rounds"); do
    for which in before after; do
      bin=$before; [ "$which" = after ] && bin=$after
      rate=$("$bin" ingest "$backend" --servers 10000 --seconds "$secs" 2>/dev/null \
        | sed -n 's/.* = \([0-9]*\) results\/s.*/\1/p')
      echo "$backend round $round $which ${rate:-FAILED} results/s"
    done
  done
done
