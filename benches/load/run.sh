#!/usr/bin/env bash
# The load benchmark: hookgate next to nginx, in one run, on loopback.
#
#   bash benches/load/run.sh            # DURATION=10 CONNS=64 SIZES="1024 65536"
#
# The system under test (SUT) is pinned to core $SUT_CPU; wrk and the
# receiver share core $LOAD_CPU. The headline is the SUT's CPU time per
# request, read from /proc (utime+stime of all its processes), because on a
# 2-core machine requests/s is bounded by the load generator. It installs
# wrk, nginx and the nginx Lua module from Debian when missing, and stops
# every process it starts. See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
SIZES=${SIZES:-"1024 65536"}
SUT_CPU=${SUT_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SECRET=bench-secret
TICK=$(getconf CLK_TCK)

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need+=(libnginx-mod-http-lua)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  # Debian starts a system nginx on install; it is not ours.
  systemctl stop nginx 2>/dev/null || service nginx stop 2>/dev/null || true
fi

# The profiling profile: release code with symbols, so `perf record -p` on
# the SUT during a run names functions.
cargo build --profile profiling --quiet --bin hookgate --example plain_proxy
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/profiling/hookgate
PLAIN=${CARGO_TARGET_DIR:-$ROOT/target}/profiling/examples/plain_proxy

WORK=$(mktemp -d /tmp/hookgate-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listening on $1" >&2; exit 1
}
# All pids of a process tree (nginx master + workers; hookgate is one process).
tree_pids() { echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"; }
cpu_ticks() {
  local sum=0
  for p in $1; do
    [ -r "/proc/$p/stat" ] || continue
    # Fields 14 and 15 (utime, stime), counted after the ")" that ends comm.
    sum=$((sum + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo $sum
}

RX=$(free_port); NGX=$(free_port); LUA=$(free_port); HG=$(free_port); HGR=$(free_port); RDS=$(free_port); PGR=$(free_port)

nginx_conf() { # name port body-of-location [extra-main] [extra-http]
  cat > "$WORK/$1.conf" <<CONF
${4:-}
worker_processes 1;
pid $WORK/$1.pid;
error_log $WORK/$1.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_max_body_size 2m;
  client_body_buffer_size 128k;
  keepalive_requests 1000000;
  upstream receiver { server 127.0.0.1:$RX; keepalive 128; }
  ${5:-}
  server {
    listen 127.0.0.1:$2;
    location / { $3 }
  }
}
CONF
}
start_nginx() { # name cpu
  mkdir -p "$WORK/$1"
  taskset -c "$2" nginx -p "$WORK/$1" -c "$WORK/$1.conf" -g 'daemon off;' &
  PIDS+=($!)
}

PROXY='proxy_pass http://receiver; proxy_http_version 1.1; proxy_set_header Connection "";'
nginx_conf receiver "$RX" "return 200 '{\"received\":true}';"
nginx_conf plain "$NGX" "$PROXY"
nginx_conf lua "$LUA" "access_by_lua_file $ROOT/benches/load/verify.lua; $PROXY
      log_by_lua_block {
        local k = ngx.ctx.dedupe_key
        if k then
          local d = ngx.shared.dedupe
          if ngx.status >= 200 and ngx.status < 300 then d:set(k, 'd', 259200) else d:delete(k) end
        end
      }" "load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
env BENCH_SECRET;" "lua_shared_dict dedupe 256m;"

export BENCH_SECRET=$SECRET
start_nginx receiver "$LOAD_CPU"; RX_PID=${PIDS[-1]}
start_nginx plain "$SUT_CPU"; NGX_PID=${PIDS[-1]}
start_nginx lua "$SUT_CPU"; LUA_PID=${PIDS[-1]}

hookgate_conf() { # port dedupe-block
  cat <<CONF
server: { listen: ["127.0.0.1:$1"], threads: 1, body_timeout: 10s }
dedupe:
$2
routes:
  - name: fynapse
    path: /webhooks/fynapse
    upstream: { url: "http://127.0.0.1:$RX/hooks" }
    verify: { scheme: fynapse, secrets: [ { value: $SECRET } ], tolerance: 5m }
    max_body: 1MiB
CONF
}
hookgate_conf "$HG" "  backend: memory" > "$WORK/hookgate.yaml"
RUST_LOG=warn taskset -c "$SUT_CPU" "$BIN" run --config "$WORK/hookgate.yaml" 2>"$WORK/hookgate.err" &
PIDS+=($!); HG_PID=$!

# A plain Pingora proxy (examples/plain_proxy.rs): same threads, same
# receiver, keep-alive to it, no checks.
taskset -c "$SUT_CPU" "$PLAIN" "127.0.0.1:$PGR" "127.0.0.1:$RX" 1 2>"$WORK/plain.err" &
PIDS+=($!); PGR_PID=$!

HGR_PID=""
if command -v redis-server >/dev/null 2>&1; then
  taskset -c "$LOAD_CPU" redis-server --port "$RDS" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
  PIDS+=($!)
  wait_port "$RDS"
  hookgate_conf "$HGR" "  backend: redis
  redis: { url: \"redis://127.0.0.1:$RDS\" }" > "$WORK/hookgate-redis.yaml"
  RUST_LOG=warn taskset -c "$SUT_CPU" "$BIN" run --config "$WORK/hookgate-redis.yaml" 2>"$WORK/hookgate-redis.err" &
  PIDS+=($!); HGR_PID=$!
fi
for p in "$RX" "$NGX" "$LUA" "$HG" "$PGR"; do wait_port "$p"; done
[ -n "$HGR_PID" ] && wait_port "$HGR"

to_ms() { # wrk's "1.23ms" / "850.00us" / "1.01s" → ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
measure() { # label size port pids key-mode
  local label=$1 size=$2 port=$3 pids=$4 key=$5
  export BENCH_BODY="$WORK/body-$size.json" BENCH_SIG="$(cat "$WORK/sig-$size")"
  if [ "$key" = dup ]; then export BENCH_KEY="dup-$size-$port"; else unset BENCH_KEY; fi
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s benches/load/request.lua "http://127.0.0.1:$port" >/dev/null
  local before after out
  before=$(cpu_ticks "$pids")
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s benches/load/request.lua "http://127.0.0.1:$port")
  after=$(cpu_ticks "$pids")
  local reqs rps p50 p99 errs
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  errs=$(echo "$out" | awk '/Non-2xx/ {print $5}'); errs=${errs:-0}
  local us
  us=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$size" "$us" "$rps" "$p50" "$p99" "$errs" >> "$RESULTS"
  printf '%-34s %6s B  %7s µs/req  %9s req/s  p50 %7s ms  p99 %7s ms  non-2xx %s\n' "$label" "$size" "$us" "$rps" "$p50" "$p99" "$errs" >&2
}

# Added latency, unsaturated: one connection, one request at a time.
LAT="$WORK/latency.tsv"
: > "$LAT"
latency() { # label size port
  export BENCH_BODY="$WORK/body-$2.json" BENCH_SIG="$(cat "$WORK/sig-$2")"
  unset BENCH_KEY
  local out p50 p99
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c1 -d"${LATENCY_DURATION:-5}s" --latency -s benches/load/request.lua "http://127.0.0.1:$3")
  p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$p50" "$p99" >> "$LAT"
}

for size in $SIZES; do
  python3 - "$size" > "$WORK/body-$size.json" <<'PY'
import sys
n = int(sys.argv[1])
head = '{"event_id":"a3efc743-ac6c-463b-aa19-4dd9c45b5b96","event_type":"balance.extracted","data":{"pad":"'
tail = '"}}'
sys.stdout.write(head + "x" * (n - len(head) - len(tail)) + tail)
PY
  "$BIN" sign --scheme fynapse --secret "$SECRET" "$WORK/body-$size.json" | sed 's/^Webhook-Signature: //' > "$WORK/sig-$size"
  measure "receiver direct (nginx return 200)" "$size" "$RX" "$(tree_pids "$RX_PID")" new
  measure "nginx proxy (no verification)" "$size" "$NGX" "$(tree_pids "$NGX_PID")" new
  measure "nginx + Lua HMAC + dedupe" "$size" "$LUA" "$(tree_pids "$LUA_PID")" new
  measure "plain Pingora proxy (no checks)" "$size" "$PGR" "$PGR_PID" new
  measure "hookgate verify + dedupe (new keys)" "$size" "$HG" "$HG_PID" new
  measure "hookgate duplicates" "$size" "$HG" "$HG_PID" dup
  if [ -n "$HGR_PID" ]; then
    measure "hookgate + redis (new keys)" "$size" "$HGR" "$HGR_PID" new
  fi
  latency "receiver direct" "$size" "$RX"
  latency "nginx proxy" "$size" "$NGX"
  latency "plain Pingora proxy" "$size" "$PGR"
  latency "hookgate (new keys)" "$size" "$HG"
done

echo
echo "| system under test | body | CPU µs/request | requests/s | p50 ms | p99 ms | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$RESULTS"
echo
awk -F'\t' '
  { cpu[$1 "@" $2] = $3; p99[$1 "@" $2] = $6 }
  END {
    h = "hookgate verify + dedupe (new keys)"
    if (cpu["nginx proxy (no verification)@1024"] > 0)
      printf "hookgate / nginx proxy, CPU per request at 1 KiB: %.2f (target <= 1.0)\n", cpu[h "@1024"] / cpu["nginx proxy (no verification)@1024"]
    p = "plain Pingora proxy (no checks)"
    if (cpu[p "@1024"] > 0) {
      printf "hookgate / plain Pingora, CPU per request at 1 KiB: %.2f (target <= 1.0)\n", cpu[h "@1024"] / cpu[p "@1024"]
      printf "hookgate duplicates / plain Pingora at 1 KiB: %.2f (target <= 0.5)\n", cpu["hookgate duplicates@1024"] / cpu[p "@1024"]
    }
    if (cpu["nginx + Lua HMAC + dedupe@1024"] > 0)
      printf "hookgate / nginx + Lua, CPU per request at 1 KiB: %.2f (target <= 1.0)\n", cpu[h "@1024"] / cpu["nginx + Lua HMAC + dedupe@1024"]
    if (cpu["hookgate + redis (new keys)@1024"] > 0)
      printf "hookgate redis / memory at 1 KiB: %.2f (target <= 1.3)\n", cpu["hookgate + redis (new keys)@1024"] / cpu[h "@1024"]
    if (cpu["nginx + Lua HMAC + dedupe@65536"] > 0)
      printf "hookgate / nginx + Lua, CPU per request at 64 KiB: %.2f (target <= 0.8)\n", cpu[h "@65536"] / cpu["nginx + Lua HMAC + dedupe@65536"]
  }' "$RESULTS"
echo
echo "Latency at one request at a time (wrk -c1):"
echo "| path | body | p50 ms | p99 ms |"
echo "|---|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$LAT"
awk -F'\t' '{ p99[$1 "@" $2] = $4 } END {
  for (s in p99) if (s ~ /^hookgate/) { split(s, a, "@"); printf "hookgate p99 added over direct at %s B: %.3f ms (target <= 1 ms)\n", a[2], p99[s] - p99["receiver direct@" a[2]] } }' "$LAT"
for e in "$WORK"/*.err; do
  if grep -qiE "error|panic" "$e"; then echo "--- $e"; grep -iE "error|panic" "$e" | head -5; fi
done
