#!/usr/bin/env bash
# Benchmark: `poolwatch check` of 10,000 simulated NTP servers, one sample
# each, with the simulated fleet in a separate `poolwatch sim` process on
# 127.1.0.1 … 127.1.39.94 (one address per server, one port). Everything
# stays on loopback. Prints checks/s and the checker's peak RSS.
#
#   bench/check-10k.sh                     # defaults below
#   CONCURRENCY=500 bench/check-10k.sh     # try another concurrency
#   COUNT=2000 RUNS=3 bench/check-10k.sh
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-10000}
CONCURRENCY=${CONCURRENCY:-1000}
PORT=${PORT:-24123}
RUNS=${RUNS:-1}
TIMEOUT=${TIMEOUT:-2s}
BIN=${BIN:-target/release/poolwatch}

if [[ ! -x /usr/bin/time ]]; then
    echo "needs GNU time: apt-get install time" >&2
    exit 1
fi
# One socket per simulated server, plus one per check in flight.
need=$(( COUNT + CONCURRENCY + 256 ))
if (( $(ulimit -n) < need )); then
    ulimit -n "$need" 2>/dev/null || {
        echo "open-file limit $(ulimit -n) < $need; raise it (ulimit -Hn is $(ulimit -Hn))" >&2
        exit 1
    }
fi

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -p poolwatch --quiet
fi

work=$(mktemp -d)
sim_pid=
cleanup() {
    if [[ -n "$sim_pid" ]]; then kill -TERM "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/fleet.toml" <<TOML
[generate]
count = $COUNT
base = "127.1.0.1"
port = $PORT
behaviour = "good"
TOML

"$BIN" sim --fleet "$work/fleet.toml" --write-list "$work/servers.txt" \
    > "$work/sim.out" 2> "$work/sim.err" &
sim_pid=$!
start_ns=$(date +%s%N)
for _ in $(seq 600); do
    grep -q '^ready' "$work/sim.out" 2>/dev/null && break
    if ! kill -0 "$sim_pid" 2>/dev/null; then cat "$work/sim.err" >&2; exit 1; fi
    sleep 0.1
done
grep -q '^ready' "$work/sim.out" || { echo "sim not ready after 60 s" >&2; exit 1; }
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
sim_rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$sim_pid/status")
# utime + stime of the sim, in clock ticks.
sim_ticks() { awk '{print $14 + $15}' "/proc/$sim_pid/stat"; }
tck=$(getconf CLK_TCK)

echo "poolwatch check of $COUNT simulated servers: --samples 1 --timeout $TIMEOUT --concurrency $CONCURRENCY"
echo "sim: $COUNT servers ready in ${ready_ms} ms (upper bound, polled every 100 ms), RSS $(( sim_rss_kb / 1024 )) MB"
for run in $(seq "$RUNS"); do
    t0=$(sim_ticks)
    /usr/bin/time -v "$BIN" check --lab --samples 1 --timeout "$TIMEOUT" \
        --concurrency "$CONCURRENCY" --format csv --file "$work/servers.txt" \
        > "$work/out.csv" 2> "$work/time.txt" || { cat "$work/time.txt" >&2; exit 1; }
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, p, ":"); s = 0
        for (i = 1; i <= n; i++) s = s * 60 + p[i]
        print s }' "$work/time.txt")
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    user=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
    sys=$(awk -F': ' '/System time/ {print $2}' "$work/time.txt")
    sim_cpu=$(awk -v a="$t0" -v b="$(sim_ticks)" -v t="$tck" 'BEGIN {printf "%.2f", (b - a) / t}')
    rows=$(( $(wc -l < "$work/out.csv") - 1 ))
    # Column 8 is the error; a good server leaves it empty.
    failed=$(awk -F, 'NR > 1 && $8 != "" {n++} END {print n + 0}' "$work/out.csv")
    awk -v run="$run" -v n="$rows" -v f="$failed" -v w="$wall" -v r="$rss_kb" -v u="$user" -v s="$sys" -v sc="$sim_cpu" 'BEGIN {
        printf "run %d: %d checked (%d failed) in %.2f s = %.0f checks/s, peak RSS %.1f MB, cpu user %.2f s sys %.2f s; sim cpu %.2f s\n",
            run, n, f, w, n / w, r / 1024, u, s, sc }'
done
sim_hwm_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$sim_pid/status")
echo "sim: peak RSS $(( sim_hwm_kb / 1024 )) MB"
