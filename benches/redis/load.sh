#!/usr/bin/env bash
# CPU per request of hookgate on its Redis backends: one node plain, one node
# TLS (rustls, private CA), a 3-primary Cluster, and one node with a replica
# and `wait_replicas: 1`; the memory store beside them. New keys only, 1 KiB
# bodies, hookgate pinned to core $SUT_CPU, wrk, the receiver and every
# redis-server on core $LOAD_CPU. Headline: hookgate's CPU µs per request
# (utime+stime from /proc), and the Redis processes' beside it.
#
#   bash benches/redis/load.sh          # DURATION=10 CONNS=64 SIZE=1024
#
# Run it on a quiet machine (no build): it shares benches/load's method.
# Installs wrk and nginx-light from Debian when missing; stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
SIZE=${SIZE:-1024}
SUT_CPU=${SUT_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SECRET=bench-secret
TICK=$(getconf CLK_TCK)

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  systemctl stop nginx 2>/dev/null || service nginx stop 2>/dev/null || true
fi

# BIN=path/to/hookgate skips the build (a smoke run of this script).
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin hookgate
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/hookgate
fi

WORK=$(mktemp -d /tmp/hookgate-redis-bench.XXXXXX)
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
cpu_ticks() {
  local sum=0
  for p in $1; do
    [ -r "/proc/$p/stat" ] || continue
    sum=$((sum + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo $sum
}
redis() { # name port [options…] — a redis-server on $LOAD_CPU; its pid in LAST
  local name=$1 port=$2; shift 2
  mkdir -p "$WORK/$name"
  taskset -c "$LOAD_CPU" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1 &
  LAST=$!
  PIDS+=("$LAST")
  wait_port "$port"
}

# The receiver: nginx answering 200.
RX=$(free_port)
cat > "$WORK/rx.conf" <<CONF
worker_processes 1;
pid $WORK/rx.pid;
error_log $WORK/rx.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$RX; location / { return 200 '{"received":true}'; } } }
CONF
mkdir -p "$WORK/rx"
taskset -c "$LOAD_CPU" nginx -p "$WORK/rx" -c "$WORK/rx.conf" -g 'daemon off;' &
PIDS+=($!)

# A private CA and a server certificate for the TLS node.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" \
  -keyout "$WORK/ca-key.pem" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$WORK/server-key.pem" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$WORK/san.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca-key.pem" \
  -CAcreateserial -days 2 -extfile "$WORK/san.ext" -out "$WORK/server.pem" 2>/dev/null

P1=$(free_port); redis plain "$P1"; PLAIN_PID=$LAST
P2=$(free_port); T2=$(free_port)
redis tls "$P2" --tls-port "$T2" --tls-cert-file "$WORK/server.pem" \
  --tls-key-file "$WORK/server-key.pem" --tls-ca-cert-file "$WORK/ca.pem" --tls-auth-clients no
TLS_PID=$LAST
CL_PIDS=""; CL_URLS=""; CL_NODES=""
for i in 1 2 3; do
  p=$(free_port)
  redis "node$i" "$p" --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port "$(free_port)"
  CL_PIDS="$CL_PIDS $LAST"
  CL_URLS="$CL_URLS${CL_URLS:+, }redis://127.0.0.1:$p"
  CL_NODES="$CL_NODES 127.0.0.1:$p"
done
# shellcheck disable=SC2086
redis-cli --cluster create $CL_NODES --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 1 100); do
  redis-cli -p "${CL_NODES##*:}" cluster info | grep -q cluster_state:ok && break; sleep 0.1
done
P3=$(free_port); redis primary "$P3"; PRIMARY_PID=$LAST
P4=$(free_port); redis replica "$P4" --replicaof 127.0.0.1 "$P3"; REPLICA_PID=$LAST
for _ in $(seq 1 100); do
  redis-cli -p "$P3" info replication | grep -q state=online && break; sleep 0.1
done

hookgate() { # name dedupe-block — hookgate on $SUT_CPU; its port and pid in HG_PORT, HG_PID
  local port; port=$(free_port)
  cat > "$WORK/$1.yaml" <<CONF
server: { listen: ["127.0.0.1:$port"], threads: 1, body_timeout: 10s }
dedupe:
$2
routes:
  - name: fynapse
    path: /webhooks/fynapse
    upstream: { url: "http://127.0.0.1:$RX/hooks" }
    verify: { scheme: fynapse, secrets: [ { value: $SECRET } ], tolerance: 5m }
    max_body: 1MiB
CONF
  RUST_LOG=warn taskset -c "$SUT_CPU" "$BIN" run --config "$WORK/$1.yaml" >/dev/null 2>"$WORK/$1.err" &
  HG_PID=$!
  disown "$HG_PID"   # no job notice when cleanup kills it
  HG_PORT=$port
  PIDS+=("$HG_PID")
  wait_port "$port"
}

python3 - "$SIZE" > "$WORK/body.json" <<'PY'
import sys
n = int(sys.argv[1])
head = '{"event_id":"a3efc743-ac6c-463b-aa19-4dd9c45b5b96","event_type":"balance.extracted","data":{"pad":"'
tail = '"}}'
sys.stdout.write(head + "x" * (n - len(head) - len(tail)) + tail)
PY
export BENCH_BODY="$WORK/body.json"
BENCH_SIG="$("$BIN" sign --scheme fynapse --secret "$SECRET" "$WORK/body.json" | sed 's/^Webhook-Signature: //')"
export BENCH_SIG
unset BENCH_KEY

echo "| hookgate store | hookgate CPU µs/request | Redis CPU µs/request | requests/s | p50 ms | p99 ms | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|---:|"
measure() { # label dedupe-block redis-pids
  hookgate "bench$RANDOM" "$2"
  local pid=$HG_PID port=$HG_PORT
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s benches/load/request.lua "http://127.0.0.1:$port" >/dev/null
  local hb rb out ha ra
  hb=$(cpu_ticks "$pid"); rb=$(cpu_ticks "$3")
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s benches/load/request.lua "http://127.0.0.1:$port")
  ha=$(cpu_ticks "$pid"); ra=$(cpu_ticks "$3")
  kill "$pid" 2>/dev/null || true
  echo "$out" | awk -v l="$1" -v h=$((ha - hb)) -v r=$((ra - rb)) -v hz="$TICK" '
    function ms(v) { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; return n }
    /requests in/ { reqs = $1 } /Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
    /Non-2xx/ { errs = $5 }
    END { printf "| %s | %.1f | %.1f | %s | %.2f | %.2f | %d |\n", l, h / hz * 1e6 / reqs, r / hz * 1e6 / reqs, rps, ms(p50), ms(p99), errs + 0 }'
}
measure "memory" "  backend: memory" ""
measure "Redis, one node" "  backend: redis
  redis: { url: \"redis://127.0.0.1:$P1\" }" "$PLAIN_PID"
measure "Redis, one node, TLS" "  backend: redis
  redis: { url: \"rediss://127.0.0.1:$T2\", ca: \"$WORK/ca.pem\" }" "$TLS_PID"
measure "Redis Cluster, 3 primaries" "  backend: redis
  redis: { cluster: [$CL_URLS] }" "$CL_PIDS"
measure "Redis, one node + replica, wait_replicas: 1" "  backend: redis
  redis: { url: \"redis://127.0.0.1:$P3\", wait_replicas: 1 }" "$PRIMARY_PID $REPLICA_PID"
for e in "$WORK"/*.err; do
  if grep -qiE "error|panic" "$e"; then echo "--- $e"; grep -iE "error|panic" "$e" | head -5; fi
done
