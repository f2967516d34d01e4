#!/usr/bin/env bash
# Benchmark: one agent against a large simulated fleet, the service's
# intervals set low. Reports sustained checks/s and the agent's CPU and RSS.
# Not a test; numbers go to BENCHMARKS.md ("## Agent").
#
#   bench/agent.sh [SERVERS] [INTERVAL] [SECONDS]
#
# Defaults: 15000 servers, each due every 10 s (so up to 1,500 checks/s are
# offered), measured over 60 s after a 30 s warm-up. Checks use the pool's
# 4 samples 2 s apart (3 s timeout). Everything runs on loopback in lab mode.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-15000}; IVL=${2:-10s}; SECS=${3:-60}
NTP=11323; HTTP=18090; MET=19123
work=$(mktemp -d /tmp/pw-agent-bench.XXXX)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

cargo build --release -q -p poolwatch --example bench_setup
cargo build --release -q -p poolwatch
BIN=target/release/poolwatch

cat > "$work/fleet.toml" <<TOML
[generate]
count = $N
base = "127.8.0.1"
port = $NTP
behaviour = "good"
TOML
$BIN sim --fleet "$work/fleet.toml" > "$work/sim.log" 2>&1 &
key=$(target/release/examples/bench_setup "$work/data" "$N" 127.8.0.1 127.9.0.1 | tail -1)
until grep -q '^ready' "$work/sim.log"; do sleep 0.5; done

$BIN serve --data-dir "$work/data" --listen 127.0.0.1:$HTTP --interval-active "$IVL" \
  --batch-size 1000 --rate-limit 0 --reference-server 127.8.0.1:$NTP --reference-server 127.8.0.2:$NTP \
  --reference-server 127.8.0.3:$NTP > "$work/serve.log" 2>&1 &
sleep 2
$BIN agent --api http://127.0.0.1:$HTTP --key "$key" --state-dir "$work/agent" --lab --ntp-port $NTP \
  --source-addr 127.9.0.1 --concurrency 1000 --pipeline 12 --metrics-listen 127.0.0.1:$MET > "$work/agent.log" 2>&1 &
apid=$!

checks() { curl -s 127.0.0.1:$MET/metrics | awk '/^poolwatch_agent_checks_total/ {s+=$2} END {print s+0}'; }
cpu() { awk '{print $14+$15}' /proc/$apid/stat; }   # utime+stime in clock ticks
tck=$(getconf CLK_TCK)

sleep 30
c0=$(checks); u0=$(cpu); t0=$(date +%s.%N)
sleep "$SECS"
c1=$(checks); u1=$(cpu); t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' /proc/$apid/status); hwm=$(awk '/VmHWM/ {print $2}' /proc/$apid/status)
awk -v c0="$c0" -v c1="$c1" -v u0="$u0" -v u1="$u1" -v t0="$t0" -v t1="$t1" -v tck="$tck" -v rss="$rss" -v hwm="$hwm" -v n="$N" -v ivl="$IVL" 'BEGIN {
  dt = t1 - t0; rate = (c1 - c0) / dt; cpu = (u1 - u0) / tck / dt;
  printf "servers %d, interval %s: %.0f checks/s sustained over %.0f s\n", n, ivl, rate, dt;
  printf "agent CPU %.1f%% of one core (%.1f%% per 1,000 checks/s)\n", cpu * 100, (rate > 0 ? cpu * 100 * 1000 / rate : 0);
  printf "agent RSS %.1f MB now, peak %.1f MB\n", rss / 1024, hwm / 1024;
}'
echo "agent log: $work/agent.log"
