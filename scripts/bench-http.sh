#!/usr/bin/env bash
# The HTTP gateway benchmark: wrk against POST /helloworld/call on a node's api address
# and, in the same run, against a bare axum handler returning the same JSON
# (`micro bench http-peer`), at 1, 16 and 64 connections. Then the gateway's latency at
# a fixed 1,000 requests/s (wrk2-style pacing is not available: wrk -R is not in
# Debian's wrk, so the fixed-rate row uses one connection and reports its own rate).
# Needs wrk (apt-get install wrk) and a release build (cargo build --release -p micro-cli).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release
DURATION=${DURATION:-10s}
DATA=$(mktemp -d)
LUA=$(mktemp --suffix=.lua)
cat > "$LUA" <<'LUA'
wrk.method = "POST"
wrk.body = '{"name":"John"}'
wrk.headers["Content-Type"] = "application/json"
LUA
"$BIN/micro-node" --storage memory --data-dir "$DATA" --proxy-addr 127.0.0.1:18181 \
  --api-addr 127.0.0.1:18180 --peer-addr 127.0.0.1:18185 >/dev/null 2>&1 &
NODE=$!
"$BIN/micro" bench http-peer --listen 127.0.0.1:18190 >/dev/null &
PEER=$!
trap 'kill $NODE $PEER 2>/dev/null; rm -rf "$DATA" "$LUA" "${MICRO_HOME:-}"' EXIT
MICRO_HOME=$(mktemp -d)
export MICRO_HOME
for _ in $(seq 50); do  # starting a service needs an admin; auth bootstraps at start
  "$BIN/micro" --proxy 127.0.0.1:18181 login --email admin --password micro >/dev/null 2>&1 && break
  sleep 0.2
done
"$BIN/micro" --proxy 127.0.0.1:18181 run helloworld
for _ in $(seq 50); do
  curl -sf 127.0.0.1:18180/helloworld/call -d '{"name":"John"}' >/dev/null && break
  sleep 0.2
done
printf '%-8s %5s %10s %9s %9s\n' TARGET CONNS REQ/S P50 P99
for conns in 1 16 64; do
  for target in gateway:18180 bare-axum:18190; do
    name=${target%%:*}; port=${target##*:}
    out=$(wrk -t "$(( conns < 2 ? 1 : 2 ))" -c "$conns" -d "$DURATION" --latency -s "$LUA" \
      "http://127.0.0.1:$port/helloworld/call")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    printf '%-8s %5s %10s %9s %9s\n' "$name" "$conns" "$rps" "$p50" "$p99"
  done
done
