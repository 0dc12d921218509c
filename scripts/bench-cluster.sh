#!/usr/bin/env bash
# Three nodes, side by side with etcd: starts a 3-node etcd cluster and a 3-node micro
# cluster (release build, RocksDB) on loopback, moves both leaders to node 1, then runs
# `micro bench store` against micro node 1's proxy and `micro bench etcd` against etcd
# member 1, with the same flags. Everything started here is stopped and its data
# removed on exit.
#
#   scripts/bench-cluster.sh                       # 5000 requests, concurrency 1,16,64
#   REQUESTS=2000 CONCURRENCY=1,16 scripts/bench-cluster.sh
#   LEADER=any scripts/bench-cluster.sh            # bench node 1 whoever leads
#   OUTPUT=json scripts/bench-cluster.sh
#
# Environment: REQUESTS (5000), CONCURRENCY (1,16,64), VALUE_SIZE (256), OUTPUT (table),
# PORT_BASE (27100: uses PORT_BASE+1 .. PORT_BASE+43), LEADER (node1 | any),
# KEEP_LOGS (unset: logs are deleted with the data; set: they are kept and printed).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-5000}
CONCURRENCY=${CONCURRENCY:-1,16,64}
VALUE_SIZE=${VALUE_SIZE:-256}
OUTPUT=${OUTPUT:-table}
PORT_BASE=${PORT_BASE:-27100}
LEADER=${LEADER:-node1}
HOST=127.0.0.1
WAIT_SECS=60 # the longest any single wait below may take

export ROCKSDB_LIB_DIR=${ROCKSDB_LIB_DIR:-/root/.cache/micro/librocksdb-sys-0.19.0+11.8.1/lib}
export ROCKSDB_STATIC=1

log() { printf '[bench-cluster] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# ---- build and install -------------------------------------------------------------
log "building micro-cli (release)"
cargo build --release -p micro-cli >&2
MICRO=$PWD/target/release/micro
NODE=$PWD/target/release/micro-node

if [[ ! -x /usr/bin/etcd ]]; then
  log "installing etcd-server"
  apt-get update -qq
  # The package would start a system etcd on 2379: forbid service starts while installing.
  created_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >&2
  if [[ -n $created_policy ]]; then rm -f /usr/sbin/policy-rc.d; fi
fi
ETCD=/usr/bin/etcd
if pgrep -x etcd >/dev/null; then
  log "note: an etcd not started by this script is running (pids: $(pgrep -x etcd | tr '\n' ' '))"
fi

# ---- ports, directories, clean-up --------------------------------------------------
# micro node i: peer PORT_BASE+i, proxy PORT_BASE+10+i, api PORT_BASE+20+i;
# etcd member i: client PORT_BASE+30+i, peer PORT_BASE+40+i.
micro_peer() { echo "$HOST:$((PORT_BASE + $1))"; }
micro_proxy() { echo "$HOST:$((PORT_BASE + 10 + $1))"; }
micro_api() { echo "$HOST:$((PORT_BASE + 20 + $1))"; }
etcd_client() { echo "$HOST:$((PORT_BASE + 30 + $1))"; }
etcd_peer() { echo "$HOST:$((PORT_BASE + 40 + $1))"; }

for i in 1 2 3; do
  for addr in "$(micro_peer $i)" "$(micro_proxy $i)" "$(micro_api $i)" "$(etcd_client $i)" "$(etcd_peer $i)"; do
    if ss -Hltn "sport = :${addr##*:}" | grep -q .; then
      die "port ${addr##*:} is in use; pick another PORT_BASE"
    fi
  done
done

WORK=$(mktemp -d /tmp/bench-cluster.XXXXXX)
PIDS=() ETCD_PIDS=() MICRO_PIDS=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    # Bounded: a process still alive after 10 s is killed.
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n ${KEEP_LOGS:-} ]]; then
    mkdir -p "$WORK.logs"
    cp "$WORK"/*.log "$WORK.logs/" 2>/dev/null || true
    log "logs kept in $WORK.logs"
  elif ((status != 0)); then
    for f in "$WORK"/*.log; do
      [[ -f $f ]] || continue
      log "--- last lines of $(basename "$f")"
      tail -n 15 "$f" >&2
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- etcd --------------------------------------------------------------------------
INITIAL=""
for i in 1 2 3; do INITIAL+="${INITIAL:+,}e$i=http://$(etcd_peer $i)"; done
for i in 1 2 3; do
  "$ETCD" --name "e$i" --data-dir "$WORK/etcd$i" \
    --listen-client-urls "http://$(etcd_client $i)" \
    --advertise-client-urls "http://$(etcd_client $i)" \
    --listen-peer-urls "http://$(etcd_peer $i)" \
    --initial-advertise-peer-urls "http://$(etcd_peer $i)" \
    --initial-cluster "$INITIAL" --initial-cluster-state new \
    --initial-cluster-token "bench-$$" \
    --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) \
    --logger zap --log-outputs stderr >"$WORK/etcd$i.log" 2>&1 &
  PIDS+=($!)
  ETCD_PIDS+=($!)
done

# ---- micro -------------------------------------------------------------------------
PEERS=""
for i in 1 2 3; do PEERS+="${PEERS:+,}$i=$(micro_peer $i)"; done
for i in 1 2 3; do
  RUST_LOG=${RUST_LOG:-warn} "$NODE" --node-id "$i" --peers "$PEERS" \
    --proxy-addr "$(micro_proxy $i)" --api-addr "$(micro_api $i)" \
    --storage rocksdb --data-dir "$WORK/micro$i" >"$WORK/micro$i.log" 2>&1 &
  PIDS+=($!)
  MICRO_PIDS+=($!)
done

# ---- waits (each at most WAIT_SECS) ------------------------------------------------
# wait_for DESCRIPTION COMMAND...: runs COMMAND every 0.2 s until it succeeds.
wait_for() {
  local what=$1
  shift
  local deadline=$((SECONDS + WAIT_SECS))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${WAIT_SECS}s waiting for $what"
    for pid in "${PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null || die "a server exited early (pid $pid) while waiting for $what"
    done
    sleep 0.2
  done
}

# etcd_status I: Maintenance.Status of member I through etcd's JSON gateway.
etcd_status() { curl -sf -m 2 -X POST "http://$(etcd_client "$1")/v3/maintenance/status" -d '{}'; }
etcd_leader_is_known() { [[ $(etcd_status "$1" | jq -r '.leader // "0"') != 0 ]]; }
micro_leader() { "$MICRO" --proxy "$(micro_proxy "$1")" cluster status --output json | jq -r '.leader // empty'; }
micro_leader_is_known() { [[ -n $(micro_leader "$1") ]]; }
micro_ready() { grep -q "micro-node $1 ready" "$WORK/micro$1.log"; }

for i in 1 2 3; do
  wait_for "micro node $i to print ready" micro_ready "$i"
done
for i in 1 2 3; do
  wait_for "etcd member $i to know a leader" etcd_leader_is_known "$i"
  wait_for "micro node $i to know a leader" micro_leader_is_known "$i"
done
# The store is for admins: log in (the token is kept in a throwaway MICRO_HOME).
MICRO_HOME=$(mktemp -d)
export MICRO_HOME
micro_login() { "$MICRO" --proxy "$(micro_proxy 1)" login --email admin --password micro >/dev/null 2>&1; }
wait_for "a login to micro node 1" micro_login

# ---- leaders on node 1 -------------------------------------------------------------
# Both benchmarks talk to node 1. A follower forwards writes and confirms reads with the
# leader, so for a like-for-like run node 1 leads in both clusters (LEADER=any skips).
etcd_member_id() { etcd_status "$1" | jq -r '.header.member_id'; }
etcd_leader_on_1() { [[ $(etcd_status 1 | jq -r '.leader') == "$(etcd_member_id 1)" ]]; }
micro_leader_on_1() { [[ $(micro_leader 1) == 1 ]]; }
if [[ $LEADER == node1 ]]; then
  if ! etcd_leader_on_1; then
    id1=$(etcd_member_id 1)
    for i in 2 3; do
      if [[ $(etcd_status "$i" | jq -r '.leader') == "$(etcd_member_id "$i")" ]]; then
        log "moving etcd's leadership from member $i to member 1"
        curl -sf -m 10 -X POST "http://$(etcd_client "$i")/v3/maintenance/transfer-leadership" \
          -d "{\"targetID\": \"$id1\"}" >/dev/null || log "warning: etcd refused to move its leader"
      fi
    done
    wait_for "etcd member 1 to lead" etcd_leader_on_1
  fi
  if ! micro_leader_on_1; then
    log "moving micro's leadership from node $(micro_leader 1) to node 1"
    "$MICRO" --proxy "$(micro_proxy 1)" cluster transfer-leader 1 >&2 ||
      log "warning: micro refused to move its leader"
    wait_for "micro node 1 to lead" micro_leader_on_1
  fi
fi
for i in 1 2 3; do wait_for "micro node $i to see the leader" micro_leader_is_known "$i"; done
etcd_lead=1
etcd_leader_on_1 || etcd_lead="another member"
log "leaders: micro node $(micro_leader 1), etcd ${etcd_lead}"

# ---- the benchmarks ----------------------------------------------------------------
# cpu_ticks PID...: user + system CPU ticks each process has used so far.
cpu_ticks() { for pid in "$@"; do awk '{print $14 + $15}' "/proc/$pid/stat"; done; }
# bench NAME PIDS_VAR -- COMMAND...: runs COMMAND, then prints the CPU seconds that the
# servers in PIDS_VAR used meanwhile, per server.
bench() {
  local name=$1
  local -n pids=$2
  shift 3
  local before after used=() hz
  hz=$(getconf CLK_TCK)
  mapfile -t before < <(cpu_ticks "${pids[@]}")
  "$@"
  mapfile -t after < <(cpu_ticks "${pids[@]}")
  for i in "${!before[@]}"; do
    used+=("$(awk -v a="${after[$i]}" -v b="${before[$i]}" -v hz="$hz" 'BEGIN {printf "%.1f", (a - b) / hz}')")
  done
  echo "server CPU seconds during the run ($name 1, 2, 3): ${used[*]}"
}

FLAGS=(--requests "$REQUESTS" --concurrency "$CONCURRENCY" --value-size "$VALUE_SIZE" --output "$OUTPUT")
echo "micro $("$MICRO" --version | awk '{print $2}') (3 nodes, RocksDB) vs $("$ETCD" --version | head -1) (3 members)"
echo "requests per phase and level: $REQUESTS, concurrency: $CONCURRENCY, value size: $VALUE_SIZE bytes"
echo
echo "== micro bench store --proxy $(micro_proxy 1) (micro node 1)"
bench "micro node" MICRO_PIDS -- "$MICRO" --proxy "$(micro_proxy 1)" bench store "${FLAGS[@]}"
echo
echo "== micro bench etcd --endpoint $(etcd_client 1) (etcd member 1)"
bench "etcd member" ETCD_PIDS -- "$MICRO" bench etcd --endpoint "$(etcd_client 1)" "${FLAGS[@]}"
