#!/usr/bin/env bash
# Benchmark: `poolwatch serve`'s housekeeping on SQLite. Fills a fresh
# database (made by serve itself) with BATCHES work batches of 10 servers,
# 90 % of them 3 days old, and LOG_ROWS score log rows over 50 servers, one
# a minute per server (about half older than 7 days), then starts serve
# with --log-retention 7d and prints its first pass's log line: how many
# rows it deleted and how long that took. Listens on 127.0.0.1 only.
#
#   bench/housekeeping.sh
#   BATCHES=3000000 LOG_ROWS=2000000 bench/housekeeping.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BATCHES=${BATCHES:-1000000}
LOG_ROWS=${LOG_ROWS:-1000000}
BIN=${BIN:-target/release/poolwatch}
PORT=${PORT:-18089}
[[ -x $BIN ]] || cargo build --release -p poolwatch
dir=$(mktemp -d)
trap 'pkill -f "serve --data-dir $dir" || true; rm -rf "$dir"' EXIT

# An empty, migrated database.
timeout 10 "$BIN" serve --data-dir "$dir" --listen "127.0.0.1:$PORT" >/dev/null 2>&1 || true
python3 - "$dir/poolwatch.db" "$BATCHES" "$LOG_ROWS" <<'PY'
import json, sqlite3, sys, time
db, batches, log_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db)
now = int(time.time())
c.execute("INSERT INTO monitors (name, location, ip, ip_version, status, key_hash, created_on) "
          "VALUES ('bench', 'Lab', '203.0.113.1', 4, 'active', ?, 0)", ("0" * 64,))
mid = c.execute("SELECT id FROM monitors").fetchone()[0]
servers = json.dumps([[i, "192.0.2.%d" % i] for i in range(1, 11)])
old = batches * 9 // 10
c.executemany("INSERT INTO batches (monitor_id, created, servers, submitted_at) VALUES (?, ?, ?, ?)",
              ((mid, now - 3 * 86400 if i < old else now - 3600, servers, now) for i in range(batches)))
for i in range(1, 51):
    c.execute("INSERT INTO servers (ip, ip_version, netspeed, score, created_on) "
              "VALUES (?, 4, 1000, 15, 0)", ("192.0.2.%d" % i,))
ids = [r[0] for r in c.execute("SELECT id FROM servers")]
per = log_rows // len(ids)
def rows():
    n = 0
    for sid in ids:
        for k in range(per):
            n += 1
            yield (sid, now - k * 60, n, mid, 1.0, 15.0, 0.001, 12000, 2, 0)
c.executemany('INSERT INTO log_scores (server_id, ts, id, monitor_id, step, score, "offset", '
              'rtt, stratum, leap) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', rows())
c.execute("UPDATE log_seq SET next_id = ?", (per * len(ids) + 1,))
c.commit()
print(f"filled: {batches} batches ({old} older than 48 h), {per * len(ids)} log rows")
PY
ls -l "$dir/poolwatch.db"
"$BIN" serve --data-dir "$dir" --listen "127.0.0.1:$PORT" --log-retention 7d >"$dir/serve.log" 2>&1 &
for _ in $(seq 1 300); do
  grep -q "housekeeping" "$dir/serve.log" && break
  sleep 1
done
grep "housekeeping" "$dir/serve.log"
