#!/usr/bin/env bash
# Redis memory per remembered key, as hookgate's Redis backend writes them:
# N keys of `hookgate:` + 64 hex digits, each holding `d` with a 72 h expiry
# (a delivered key), then the same N holding a reservation
# (`f:` + 32 hex digits, 60 s expiry). Loaded with `redis-cli --pipe` into a
# private `redis-server` on a free loopback port, which it stops by pid.
#
#   bash benches/redis/memory.sh          # N=1000000
#
# Prints `INFO memory`'s used_memory before and after, per key, and
# `MEMORY USAGE` of one key. Needs redis-server and redis-cli.
set -euo pipefail
N=${N:-1000000}
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
DIR=$(mktemp -d /tmp/hookgate-redis-mem.XXXXXX)
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" >/dev/null &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
cli() { redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }
for _ in $(seq 1 100); do cli ping >/dev/null 2>&1 && break; sleep 0.05; done
used() { cli info memory | awk -F: '/^used_memory:/ { print $2 + 0 }'; }

# One RESP `SET key value PX ms` per key, from awk (no per-key process).
load() { # value ms
  awk -v n="$N" -v val="$1" -v ms="$2" 'BEGIN {
    for (i = 0; i < n; i++) {
      k = sprintf("hookgate:%08x%08x%08x%08x%08x%08x%08x%08x", i, i * 7, i * 13, i * 31, i * 61, i * 127, i * 251, i * 509)
      printf "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nPX\r\n$%d\r\n%s\r\n", length(k), k, length(val), val, length(ms), ms
    }
  }' | cli --pipe >/dev/null
}

report() { # label value ms
  cli flushall >/dev/null
  local before after keys one
  before=$(used)
  load "$2" "$3"
  after=$(used)
  keys=$(cli dbsize)
  one=$(cli memory usage "$(cli randomkey)")
  awk -v l="$1" -v b="$before" -v a="$after" -v k="$keys" -v o="$one" 'BEGIN {
    printf "%-36s keys %d  used_memory %.1f MiB -> %.1f MiB  per key %.1f B  MEMORY USAGE %d B\n", l, k, b / 1048576, a / 1048576, (a - b) / k, o }'
}

echo "$(redis-server --version | cut -d' ' -f1-3), N=$N"
report "delivered (d, PX 72h)" d 259200000
report "reserved (f:<32 hex>, PX 60s)" "f:$(printf '%032x' 1)" 60000
