#!/usr/bin/env bash
# DNS benchmark (not a test): `poolwatch dns` against gdnsd making the same
# GeoDNS choice per query (its `geoip` plugin over `weighted` resources
# holding the same servers with the same weights) and NSD serving the same
# names as a static zone (the upper bound for a server that makes no
# per-query choice), all on loopback, measured with dnsperf on the same
# query file, one after the other, each for a bounded time, in ROUNDS
# interleaved rounds (poolwatch, gdnsd, NSD, then again): the machine's
# load moves, so compare within a round and report the range.
#
#   bench/dns.sh                  # 5,000 servers, 100,000-query mix, 10 s per server, 2 rounds
#   SECS=5 SERVERS=1000 ROUNDS=3 bench/dns.sh
#   RRL_RUNS=1 bench/dns.sh       # also poolwatch with RRL on (see below)
#   PW=/tmp/poolwatch-before bench/dns.sh   # another build of poolwatch
#   PW_BEFORE=/tmp/poolwatch-before bench/dns.sh   # that build too, a row of its own in every round
#
# dnsperf runs with -v (one line per answer) so that the 99th percentile of
# latency can be read; that costs dnsperf some CPU, the same for every server.
#
# The zone comes from `dns::build_zone` (crates/dns/examples/dns_bench_data.rs);
# clients are located with MaxMind's test Country database; half the queries
# carry an EDNS Client Subnet. Needs dnsperf, nsd and dig (Debian: dnsperf,
# nsd, bind9-dnsutils; gdnsd for the gdnsd rows, skipped without it).
# Results go to stdout; copy them to BENCHMARKS.md.
#
# dnsperf sends from one address, which response rate limiting (on by
# default) would throttle to 200 answers a second, so poolwatch runs with
# RRL off (the speed figure, as NSD runs with rrl-ratelimit 0; gdnsd has
# none); RRL_RUNS=1 adds RRL on with a rate never reached (what the
# per-response check costs) and RRL at its defaults (the limiting itself:
# answered qps collapses, most queries are "lost" or truncated).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-10}
SERVERS=${SERVERS:-5000}
QUERIES=${QUERIES:-100000}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-500}
NSD_SERVERS=${NSD_SERVERS:-1}
ROUNDS=${ROUNDS:-2}
RRL_RUNS=${RRL_RUNS:-0}
ZONE=pool.example.org

for tool in dnsperf dig; do
  command -v "$tool" >/dev/null || { echo "bench/dns.sh: $tool missing (apt-get install dnsperf bind9-dnsutils)" >&2; exit 1; }
done
NSD=$(command -v nsd || echo /usr/sbin/nsd)
[ -x "$NSD" ] || { echo "bench/dns.sh: nsd missing (apt-get install nsd)" >&2; exit 1; }
GDNSD=$(command -v gdnsd || echo /usr/sbin/gdnsd)
[ -x "$GDNSD" ] || { echo "bench/dns.sh: gdnsd missing (apt-get install gdnsd): its rows are skipped" >&2; GDNSD=; }

# PW=path/to/poolwatch runs another build (e.g. the commit before a change).
if [ -z "${PW:-}" ]; then
  cargo build --release -q -p poolwatch
  PW=target/release/poolwatch
fi
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

# Starts `poolwatch dns` (the build in $PW, or in $bin when set) with extra
# flags; sets pw_port, pw_pid, metrics_port.
start_pw() {
  pw_port=$(free_port)
  metrics_port=$(free_port)
  "${bin:-$PW}" dns --zone "$ZONE" --zone-file "$dir/zone.json" \
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

if [ -n "$GDNSD" ]; then
  gdnsd_port=$(free_port)
  sed -i -e "s|@PORT@|$gdnsd_port|" -e "s|@DIR@|$dir|g" \
    -e "s|@MMDB@|$PWD/crates/geo/testdata/GeoLite2-Country-Test.mmdb|" "$dir/gdnsd/config"
  "$GDNSD" -c "$dir/gdnsd" start >"$dir/gdnsd.err" 2>&1 &
  gdnsd_pid=$!
  pids+=($gdnsd_pid)
  ready "$gdnsd_port"
fi

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
  local before after qps lost lat p99 codes cores
  before=$(cpu_ticks "$3")
  dnsperf -s 127.0.0.1 -p "$2" -B -d "$dir/queries.bin" -l "$SECS" -c "$CLIENTS" -T 1 -q "$OUTSTANDING" -v >"$dir/$1.perf" 2>&1
  after=$(cpu_ticks "$3")
  cores=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v s="$SECS" 'BEGIN { printf "%.2f", t / hz / s }')
  qps=$(awk '/Queries per second/ {printf "%.0f", $4}' "$dir/$1.perf")
  lost=$(awk '/Queries lost/ {print $3, $4}' "$dir/$1.perf")
  lat=$(awk '/Average Latency/ {printf "%.2f", $4*1000}' "$dir/$1.perf")
  # -v lines: "> RCODE name type latency-in-seconds".
  p99=$(awk '$1 == ">" {print $NF}' "$dir/$1.perf" | sort -g | awk '{v[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] * 1000}')
  codes=$(awk -F': *' '/Response codes/ {print $2}' "$dir/$1.perf")
  printf '| %s | %s | %s | %s | %s ms | %s ms | %s | %s |\n' "$round" "$1" "$qps" "$lost" "$lat" "$p99" "$cores" "$codes"
  echo "$qps" >>"$dir/$1.qps"
}

echo "zone: $SERVERS servers; $QUERIES-query mix (apex, 0-3, countries, continents; half with ECS)"
echo "dnsperf -B -l $SECS -c $CLIENTS -T 1 -q $OUTSTANDING on 127.0.0.1, $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| round | server | qps | lost | avg latency | p99 latency | server CPU (cores) | response codes |"
echo "|---:|---|---:|---:|---:|---:|---:|---|"
if [ -n "${PW_BEFORE:-}" ]; then
  bin=$PW_BEFORE start_pw --dns-rrl-rate 0
  before_port=$pw_port before_pid=$pw_pid
fi
start_pw --dns-rrl-rate 0
nsd_name="NSD $({ $NSD -v 2>&1 || true; } | head -1 | awk '{print $3}') (static zone, $NSD_SERVERS server)"
gdnsd_name="gdnsd $({ $GDNSD -h 2>&1 || true; } | awk '/version/ {print $3; exit}') (geoip over weighted)"
for round in $(seq "$ROUNDS"); do
  # With PW_BEFORE the two builds take turns going first.
  if [ -n "${PW_BEFORE:-}" ] && [ $((round % 2)) = 1 ]; then
    run "poolwatch dns (PW_BEFORE)" "$before_port" "$before_pid"
    run "poolwatch dns" "$pw_port" "$pw_pid"
  else
    run "poolwatch dns" "$pw_port" "$pw_pid"
    [ -z "${PW_BEFORE:-}" ] || run "poolwatch dns (PW_BEFORE)" "$before_port" "$before_pid"
  fi
  [ -z "$GDNSD" ] || run "$gdnsd_name" "$gdnsd_port" "$gdnsd_pid"
  run "$nsd_name" "$nsd_port" "$nsd_pid"
done
echo
echo "poolwatch metrics after the runs:"
curl -s "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null | grep -E '^poolwatch_dns_(queries|rrl)_total' | sort -t' ' -k2 -n -r | head -7 || true
kill "$pw_pid"
echo
ratio() { # name-a name-b
  paste "$dir/$1.qps" "$dir/$2.qps" | awk -v a="$1" -v b="$2" '{printf "%s / %s = %.2f (round %d)\n", a, b, $1 / $2, NR}'
}
ratio "poolwatch dns" "$nsd_name"
[ -z "${PW_BEFORE:-}" ] || ratio "poolwatch dns" "poolwatch dns (PW_BEFORE)"
[ -z "$GDNSD" ] || ratio "poolwatch dns" "$gdnsd_name"

if [ "$RRL_RUNS" = 1 ]; then
  # dnsperf sends from one address: with RRL at its defaults most answers
  # are dropped or slipped (not a speed figure).
  round=-
  start_pw --dns-rrl-rate 1000000000
  run "poolwatch dns, RRL on, rate never reached" "$pw_port" "$pw_pid"
  kill "$pw_pid"
  start_pw
  run "poolwatch dns, RRL at defaults" "$pw_port" "$pw_pid"
fi
