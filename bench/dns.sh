#!/usr/bin/env bash
# DNS benchmark (not a test): `poolwatch dns` against NSD serving the same
# names as a static zone (the upper bound for a server that makes no
# per-query choice), both on loopback, measured with dnsperf on the same
# query file, one after the other, each for a bounded time.
#
#   bench/dns.sh                  # 5,000 servers, 100,000-query mix, 10 s per server
#   SECS=5 SERVERS=1000 bench/dns.sh
#
# The zone comes from `dns::build_zone` (crates/dns/examples/dns_bench_data.rs);
# clients are located with MaxMind's test Country database; half the queries
# carry an EDNS Client Subnet. Needs dnsperf, nsd and dig (Debian: dnsperf,
# nsd, bind9-dnsutils). Results go to stdout; copy them to BENCHMARKS.md.
#
# dnsperf sends from one address, which response rate limiting (on by
# default) would throttle to 200 answers a second, so poolwatch runs three
# times: RRL off (the speed figure, as NSD runs with rrl-ratelimit 0), RRL on
# with a rate never reached (what the per-response check costs), and RRL at
# its defaults (the limiting itself: answered qps collapses, most queries
# are "lost" or truncated; not a speed figure).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-10}
SERVERS=${SERVERS:-5000}
QUERIES=${QUERIES:-100000}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-500}
NSD_SERVERS=${NSD_SERVERS:-1}
ZONE=pool.example.org

for tool in dnsperf dig; do
  command -v "$tool" >/dev/null || { echo "bench/dns.sh: $tool missing (apt-get install dnsperf bind9-dnsutils)" >&2; exit 1; }
done
NSD=$(command -v nsd || echo /usr/sbin/nsd)
[ -x "$NSD" ] || { echo "bench/dns.sh: nsd missing (apt-get install nsd)" >&2; exit 1; }

cargo build --release -q -p poolwatch
cargo build --release -q -p dns --example dns_bench_data

dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

target/release/examples/dns_bench_data "$dir" "$SERVERS" "$QUERIES"

# Starts `poolwatch dns` with extra flags; sets pw_port, pw_pid, metrics_port.
start_pw() {
  pw_port=$(free_port)
  metrics_port=$(free_port)
  target/release/poolwatch dns --zone "$ZONE" --zone-file "$dir/zone.json" \
    --geoip crates/geo/testdata/GeoLite2-Country-Test.mmdb \
    --listen "127.0.0.1:$pw_port" --metrics-listen "127.0.0.1:$metrics_port" "$@" \
    >"$dir/poolwatch.out" 2>"$dir/poolwatch.err" &
  pw_pid=$!
  pids+=($pw_pid)
  ready "$pw_port"
}

nsd_port=$(free_port)
cat >"$dir/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@$nsd_port
  port: $nsd_port
  server-count: $NSD_SERVERS
  username: ""
  chroot: ""
  zonesdir: "$dir"
  database: ""
  pidfile: "$dir/nsd.pid"
  xfrdfile: "$dir/xfrd.state"
  zonelistfile: "$dir/zone.list"
  logfile: "$dir/nsd.log"
  rrl-ratelimit: 0
  hide-version: yes
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: $ZONE
  zonefile: zone.nsd
CONF
"$NSD" -d -c "$dir/nsd.conf" &
nsd_pid=$!
pids+=($nsd_pid)

ready() {
  for _ in $(seq 50); do
    dig @127.0.0.1 -p "$1" "$ZONE" +short +time=1 +tries=1 2>/dev/null | grep -q . && return 0
    sleep 0.2
  done
  echo "bench/dns.sh: nothing answers on port $1" >&2
  cat "$dir"/*.err "$dir"/nsd.log 2>/dev/null >&2 || true
  exit 1
}
ready "$nsd_port"

# CPU ticks used so far by a process and its descendants (NSD forks twice).
descendants() {
  local c
  for c in $(pgrep -P "$1" || true); do echo "$c"; descendants "$c"; done
}
cpu_ticks() {
  local total=0 p
  for p in $1 $(descendants "$1"); do
    # utime and stime, counted after the "(comm)" field, which may hold spaces.
    total=$((total + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
  done
  echo "$total"
}

run() { # name port pid
  local before after qps lost lat codes cores
  before=$(cpu_ticks "$3")
  dnsperf -s 127.0.0.1 -p "$2" -B -d "$dir/queries.bin" -l "$SECS" -c "$CLIENTS" -T 1 -q "$OUTSTANDING" >"$dir/$1.perf" 2>&1
  after=$(cpu_ticks "$3")
  cores=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v s="$SECS" 'BEGIN { printf "%.2f", t / hz / s }')
  qps=$(awk '/Queries per second/ {printf "%.0f", $4}' "$dir/$1.perf")
  lost=$(awk '/Queries lost/ {print $3, $4}' "$dir/$1.perf")
  lat=$(awk '/Average Latency/ {printf "%.2f", $4*1000}' "$dir/$1.perf")
  codes=$(awk -F': *' '/Response codes/ {print $2}' "$dir/$1.perf")
  printf '| %s | %s | %s | %s ms | %s | %s |\n' "$1" "$qps" "$lost" "$lat" "$cores" "$codes"
  echo "$qps" >"$dir/$1.qps"
}

echo "zone: $SERVERS servers; $QUERIES-query mix (apex, 0-3, countries, continents; half with ECS)"
echo "dnsperf -B -l $SECS -c $CLIENTS -T 1 -q $OUTSTANDING on 127.0.0.1, $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| server | qps | lost | avg latency | server CPU (cores) | response codes |"
echo "|---|---:|---:|---:|---:|---|"
start_pw --dns-rrl-rate 0
run "poolwatch dns" "$pw_port" "$pw_pid"
kill "$pw_pid"
start_pw --dns-rrl-rate 1000000000
run "poolwatch dns, RRL on, rate never reached" "$pw_port" "$pw_pid"
kill "$pw_pid"
start_pw
run "poolwatch dns, RRL at defaults" "$pw_port" "$pw_pid"
run "NSD $($NSD -v 2>&1 | head -1 | awk '{print $3}') (static zone, $NSD_SERVERS server)" "$nsd_port" "$nsd_pid"
pw=$(cat "$dir/poolwatch dns.qps")
nsd=$(cat "$dir"/NSD*.qps)
echo
awk -v a="$pw" -v b="$nsd" 'BEGIN { printf "poolwatch / NSD = %.2f\n", a / b }'
echo
echo "poolwatch metrics after the run:"
curl -s "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null | grep -E '^poolwatch_dns_(queries|rrl)_total' | sort -t' ' -k2 -n -r | head -7 || true
