# shellcheck shell=bash
# Private PostgreSQL and Redis servers on free loopback ports under a state
# directory, and parleyd gateways against them. Sourced by scripts/dev,
# tests/integration/env.sh and loadtest/bench.sh, so they all start the
# services the same way.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

svc_die() { echo "services: $*" >&2; exit 1; }

# A free TCP port on 127.0.0.1 (asks the kernel, then checks nobody listens).
svc_free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  svc_die "no free port"
}

# Runs a PostgreSQL binary as the postgres user when we are root (initdb and
# postgres refuse to run as root).
svc_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# svc_pg_start STATE PORT [durable|nondurable]: initdb once, then start on
# PORT. durable (the default: `scripts/dev run`, the benchmarks) keeps
# fsync, synchronous_commit and full_page_writes on, so a COMMIT that
# Parley acknowledges survives a power cut. nondurable turns all three off:
# a crash of the machine may lose or corrupt the database, which only a
# test suite that throws its database away can accept for the speed.
# SVC_PG_OPTS: more server settings (e.g. "-c shared_preload_libraries=...").
svc_pg_start() {
  local state=$1 port=$2 mode=${3:-durable} data=$1/pg durability nosync=()
  case "$mode" in
  durable) durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on" ;;
  nondurable)
    durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    nosync=(--no-sync)
    ;;
  *) svc_die "svc_pg_start: mode is durable or nondurable, not $mode" ;;
  esac
  [ -n "$PG_BIN" ] || svc_die "PostgreSQL server binaries not found (install postgresql)"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data" "$state"
    svc_pg "$PG_BIN/initdb" -D "$data" -U postgres -A trust "${nosync[@]}" >"$state/initdb.log" 2>&1 \
      || { cat "$state/initdb.log" >&2; svc_die "initdb failed"; }
  fi
  svc_pg "$PG_BIN/pg_ctl" -D "$data" -w -t 30 -l "$state/postgres.log" \
    -o "-p $port -k $state -c listen_addresses=127.0.0.1 $durability -c max_connections=200 ${SVC_PG_OPTS:-}" \
    start >/dev/null || { tail -n 20 "$state/postgres.log" >&2; svc_die "postgres did not start"; }
  if ! svc_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='parley'" | grep -q 1; then
    svc_pg "$PG_BIN/psql" -q -h 127.0.0.1 -p "$port" -U postgres -c "CREATE ROLE parley LOGIN" >/dev/null
    svc_pg "$PG_BIN/psql" -q -h 127.0.0.1 -p "$port" -U postgres -c "CREATE DATABASE parley OWNER parley" >/dev/null
  fi
}

svc_pg_stop() {
  local data=$1/pg
  [ -f "$data/postmaster.pid" ] && svc_pg "$PG_BIN/pg_ctl" -D "$data" -w -t 30 -m fast stop >/dev/null 2>&1
  return 0
}

# svc_pg_replica_start STATE PRIMARY_PORT PORT: a streaming hot standby of
# the primary on PRIMARY_PORT, in STATE/pg, on PORT. The first start copies
# the primary with pg_basebackup -R (it writes standby.signal and
# primary_conninfo); later starts reuse that copy. The primary needs
# wal_level=replica and max_wal_senders > 0 (PostgreSQL's defaults) and a
# "host replication" entry for 127.0.0.1 in pg_hba.conf (initdb -A trust
# writes one). The settings that a standby must keep at least as high as
# the primary's (max_connections) are svc_pg_start's.
svc_pg_replica_start() {
  local state=$1 primary=$2 port=$3 data
  [ -n "$PG_BIN" ] || svc_die "PostgreSQL server binaries not found (install postgresql)"
  mkdir -p "$state"
  state=$(cd "$state" && pwd) # the socket directory (-k) must be absolute
  data=$state/pg
  if [ ! -f "$data/PG_VERSION" ]; then
    [ "$(id -u)" = 0 ] && chown postgres "$state"
    svc_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary" -U postgres -D "$data" -R \
      -X stream -c fast >"$state/basebackup.log" 2>&1 \
      || { cat "$state/basebackup.log" >&2; svc_die "pg_basebackup from port $primary failed"; }
  fi
  svc_pg "$PG_BIN/pg_ctl" -D "$data" -w -t 30 -l "$state/postgres.log" \
    -o "-p $port -k $state -c listen_addresses=127.0.0.1 -c hot_standby=on -c max_connections=200 ${SVC_PG_OPTS:-}" \
    start >/dev/null || { tail -n 20 "$state/postgres.log" >&2; svc_die "replica did not start"; }
}

# svc_pg_replica_stop STATE
svc_pg_replica_stop() { svc_pg_stop "$1"; }

# svc_redis_start STATE PORT
svc_redis_start() {
  local state=$1 port=$2
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$state/redis.pid" --logfile "$state/redis.log" --dir "$state" >/dev/null \
    || svc_die "redis-server did not start"
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  svc_die "redis did not answer"
}

svc_redis_stop() {
  local state=$1 pid
  pid=$(cat "$state/redis.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$state/redis.pid"
}

# svc_wait_http PORT PATH SECONDS: until GET answers 200.
svc_wait_http() {
  local port=$1 path=$2 secs=$3
  for _ in $(seq 1 $((secs * 20))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$path" >&3 && head -n 1 <&3 | grep -q ' 200') 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# svc_gw_start STATE NAME PORT PARLEYD CONNINFO REDIS_PORT [extra flags...]
svc_gw_start() {
  local state=$1 name=$2 port=$3 bin=$4 pg=$5 rport=$6
  shift 6
  # GW_WRAPPER runs the gateway under a tool, e.g. valgrind.
  # shellcheck disable=SC2086
  ${GW_WRAPPER:-} "$bin" serve --port "$port" --pg "$pg" --redis "127.0.0.1:$rport" "$@" \
    >"$state/$name.log" 2>&1 &
  echo $! >"$state/$name.pid"
  if ! svc_wait_http "$port" /readyz 60; then
    tail -n 20 "$state/$name.log" >&2
    svc_die "gateway $name did not become ready"
  fi
}

# svc_gw_stop STATE NAME: SIGTERM, wait, report a non-zero exit.
svc_gw_stop() {
  local state=$1 name=$2 pid
  pid=$(cat "$state/$name.pid" 2>/dev/null) || return 0
  rm -f "$state/$name.pid"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    echo "services: gateway $name did not exit on SIGTERM" >&2
    return 1
  fi
  wait "$pid" 2>/dev/null
  return 0
}

# svc_bench_env PARLEYD CLIENTS ROOMS: the benchmarks' private world. Sets
# state (a temp dir), pg_port, redis_port and conninfo; starts PostgreSQL and
# Redis there, migrates, writes the load fixture to $state/fixture, and
# stops everything (gateways gw1..gwN, peer processes in $state/peer.pids)
# and removes the dir on exit. PostgreSQL is durable unless
# BENCH_DURABILITY=nondurable (for a "not durable" comparison only).
svc_bench_env() {
  local bin=$1
  state=$(mktemp -d /tmp/parley-bench.XXXXXX)
  chmod 755 "$state"
  trap svc_bench_cleanup EXIT
  pg_port=$(svc_free_port)
  redis_port=$(svc_free_port)
  svc_pg_start "$state" "$pg_port" "${BENCH_DURABILITY:-durable}"
  svc_redis_start "$state" "$redis_port"
  conninfo="host=127.0.0.1 port=$pg_port dbname=parley user=parley"
  "$bin" migrate --pg "$conninfo" >/dev/null
  "$bin" admin --pg "$conninfo" load-fixture "$2" "$3" >"$state/fixture"
}

svc_bench_cleanup() {
  local f
  # gw1..gwN (bench.sh starts BENCH_GATEWAYS of them)
  for f in "$state"/gw*.pid; do
    [ -f "$f" ] && { svc_gw_stop "$state" "$(basename "$f" .pid)" || true; }
  done
  # shellcheck disable=SC2046
  [ -f "$state/peer.pids" ] && kill $(cat "$state/peer.pids") 2>/dev/null
  svc_redis_stop "$state"
  svc_redis_cluster_stop "$state" # when a benchmark started one
  svc_pg_stop "$state"
  rm -rf "$state"
}

# svc_cpu_ticks PID...: user + system clock ticks used so far.
svc_cpu_ticks() { for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done | awk '{s += $14 + $15} END {print s + 0}'; }

# ---- a local Redis Cluster (three masters, three replicas) ------------------

# svc_cluster_base: a port P <= 55525 such that P..P+5 and the cluster bus
# ports P+10000..P+10005 are all free (the bus port is port+10000, so a
# node's port cannot be above 55535).
svc_cluster_base() {
  python3 - <<'PY' || svc_die "no free cluster port range"
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(500):
    b = random.randrange(20000, 55525)
    if all(free(b + i) and free(b + 10000 + i) for i in range(6)):
        print(b)
        raise SystemExit(0)
raise SystemExit(1)
PY
}

# svc_redis_cluster_start STATE BASEPORT: six cluster-enabled redis-server
# processes on BASEPORT..BASEPORT+5 (state under STATE/rc-PORT), joined by
# `redis-cli --cluster create` into three masters with a replica each; returns
# once every node reports cluster_state:ok and agrees on the slot map.
svc_redis_cluster_start() {
  local state=$1 base=$2 p i ok nodes=()
  [ "$base" -le 55530 ] || svc_die "cluster ports must be <= 55535 (bus port is port+10000)"
  for i in 0 1 2 3 4 5; do
    p=$((base + i))
    mkdir -p "$state/rc-$p"
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
      --repl-diskless-sync-delay 0 --repl-ping-replica-period 1 --shutdown-timeout 0 \
      --pidfile "$state/rc-$p/redis.pid" --logfile "$state/rc-$p/redis.log" --dir "$state/rc-$p" \
      >/dev/null || svc_die "cluster node $p did not start"
    nodes+=("127.0.0.1:$p")
    echo "$p" >>"$state/rc.ports"
  done
  for p in $(cat "$state/rc.ports"); do
    for _ in $(seq 1 100); do
      redis-cli -p "$p" ping 2>/dev/null | grep -q PONG && break
      sleep 0.05
    done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
    >"$state/rc-create.log" 2>&1 || { tail -n 20 "$state/rc-create.log" >&2; svc_die "cluster create failed"; }
  svc_redis_cluster_wait "$state" 30 || svc_die "cluster did not reach cluster_state:ok"
  # A replica appears in CLUSTER SLOTS once it has synced with its master
  # and its offset moved (the master's pings, every second here, move it).
  for _ in $(seq 1 300); do
    ok=1
    for p in $(cat "$state/rc.ports"); do
      [ "$(redis-cli -p "$p" cluster shards 2>/dev/null | grep -c '^online$')" = 6 ] || { ok=0; break; }
    done
    [ $ok = 1 ] && return 0
    sleep 0.1
  done
  svc_die "cluster replicas did not attach"
}

# svc_redis_cluster_wait STATE SECONDS: until every live node says
# cluster_state:ok and `redis-cli --cluster check` finds all slots covered.
svc_redis_cluster_wait() {
  local state=$1 secs=$2 p ok first
  first=$(head -n 1 "$state/rc.ports")
  for _ in $(seq 1 $((secs * 10))); do
    ok=1
    for p in $(cat "$state/rc.ports"); do
      [ -f "$state/rc-$p/redis.pid" ] || continue
      redis-cli -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || { ok=0; break; }
      first=$p
    done
    if [ $ok = 1 ] && redis-cli --cluster check "127.0.0.1:$first" 2>/dev/null | grep -q 'All 16384 slots covered'; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# svc_redis_cluster_node_stop STATE PORT: stops one node (a failover test).
svc_redis_cluster_node_stop() {
  local state=$1 p=$2 pid
  pid=$(cat "$state/rc-$p/redis.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$state/rc-$p/redis.pid"
}

# svc_redis_cluster_stop STATE: stops every node the start recorded (all
# signalled first: a node takes a couple of seconds to exit).
svc_redis_cluster_stop() {
  local state=$1 p pids=() pid
  [ -f "$state/rc.ports" ] || return 0
  for p in $(cat "$state/rc.ports"); do
    pid=$(cat "$state/rc-$p/redis.pid" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$state/rc-$p/redis.pid"
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  done
  rm -f "$state/rc.ports"
}
