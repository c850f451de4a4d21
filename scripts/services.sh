# shellcheck shell=bash
# Private PostgreSQL and Redis servers on free loopback ports under a state
# directory, and parleyd gateways against them. Sourced by scripts/dev,
# tests/integration/env.sh and loadtest/bench.sh so that all of them start the
# services the same way. Nothing here listens anywhere but 127.0.0.1, and every
# wait is bounded.
#
# Layout of a state directory (root-owned when run as root):
#   pg/            PostgreSQL data directory (owned by the postgres user when root)
#   pgsock/        PostgreSQL's unix socket directory
#   postgres.log   server log          initdb.log   initdb output
#   redis.pid      redis.log
#   NAME.pid       a gateway's pid     NAME.rc      its exit status, once it exited
#   NAME.log       its output

PG_BIN=${PG_BIN:-$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)}

svc_die() {
  echo "services: $*" >&2
  exit 1
}

# ---- ports -------------------------------------------------------------------

# svc_port_free PORT: true when nothing accepts on 127.0.0.1:PORT and, when
# python3 is there to ask, the port can be bound.
svc_port_free() {
  local p=$1
  # bash's /dev/tcp connects; a refused connect means nobody listens. `timeout`
  # guards against a listener whose backlog is full.
  # shellcheck disable=SC2016 # $1 expands in the inner shell
  if timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$p" 2>/dev/null; then
    return 1
  fi
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket,sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$p" 2>/dev/null || return 1
  fi
  return 0
}

# svc_free_port [PORT...]: prints a free loopback port, not one of the given
# ones. Ports are drawn below the kernel's ephemeral range so that an outgoing
# connection cannot take the port between this check and the server's bind.
svc_free_port() {
  local lo p
  lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$lo" -gt 16000 ] || lo=32768
  for _ in $(seq 1 200); do
    p=$((15000 + (RANDOM * 32768 + RANDOM) % (lo - 15000)))
    case " $* " in *" $p "*) continue ;; esac
    if svc_port_free "$p"; then
      echo "$p"
      return 0
    fi
  done
  svc_die "no free loopback port found"
}

# svc_http_status PORT PATH: prints the HTTP status of GET PATH (empty when
# nothing answered within 3 s).
svc_http_status() {
  # shellcheck disable=SC2016 # $1 and $2 expand in the inner shell
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$2" >&3
    read -r _ code _ <&3 && echo "$code"' _ "$1" "$2" 2>/dev/null || true
}

# ---- PostgreSQL --------------------------------------------------------------

# Runs a PostgreSQL program as the postgres user when we are root: initdb and
# postgres refuse to run as root. From / so that it never complains about an
# unreadable working directory.
svc_pg() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Makes DIR and its ancestors traversable by the postgres user (root only):
# the cluster, its socket and its log live under DIR.
svc_pg_reach() {
  local d
  d=$(cd "$1" && pwd)
  [ "$(id -u)" = 0 ] || return 0
  id postgres >/dev/null 2>&1 || svc_die "no postgres system user (install postgresql)"
  while :; do
    if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
      chmod o+x "$d"
      echo "services: made $d traversable for the postgres user" >&2
    fi
    [ "$d" = / ] && break
    d=$(dirname "$d")
  done
}

# svc_pg_init STATE: creates the cluster once: trust authentication on the
# unix socket and on 127.0.0.1 only (nothing else is listed in pg_hba.conf).
svc_pg_init() {
  local state=$1 data=$1/pg
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    svc_die "PostgreSQL server binaries not found (install postgresql)"
  fi
  [ -f "$data/PG_VERSION" ] && return 0
  mkdir -p "$data" "$state/pgsock"
  touch "$state/postgres.log"
  chmod 700 "$data"
  if [ "$(id -u)" = 0 ]; then
    svc_pg_reach "$state"
    chown postgres: "$data" "$state/pgsock" "$state/postgres.log"
  fi
  if ! svc_pg "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-sync \
    >"$state/initdb.log" 2>&1; then
    cat "$state/initdb.log" >&2
    svc_die "initdb failed"
  fi
  cat >"$data/pg_hba.conf" <<'EOF'
# Private test/dev cluster: local socket and 127.0.0.1 only, no passwords.
local all all trust
host  all all 127.0.0.1/32 trust
EOF
  echo "include_if_exists = 'parley.conf'" >>"$data/postgresql.conf"
}

# svc_pg_start STATE PORT: initialises if needed, starts on 127.0.0.1:PORT and
# creates role and database `parley` if missing.
svc_pg_start() {
  local state=$1 port=$2 data=$1/pg
  svc_pg_init "$state"
  if svc_pg_running "$state"; then return 0; fi
  # Settings in a file rather than on the command line, so paths with spaces
  # work. fsync and friends are off: this cluster is disposable.
  cat >"$data/parley.conf" <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$state/pgsock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  if [ "$(id -u)" = 0 ]; then chmod 644 "$data/parley.conf"; fi
  if ! svc_pg "$PG_BIN/pg_ctl" -D "$data" -l "$state/postgres.log" -w -t 30 start >/dev/null 2>&1; then
    tail -n 20 "$state/postgres.log" >&2
    svc_die "postgres did not start on 127.0.0.1:$port"
  fi
  echo "$port" >"$state/pg.port"
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$state/pgsock" -p "$port" -U postgres -d postgres)
  if [ "$(svc_pg "${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'parley'")" != 1 ]; then
    svc_pg "${psql[@]}" -c "CREATE ROLE parley LOGIN" >/dev/null
  fi
  if [ "$(svc_pg "${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'parley'")" != 1 ]; then
    svc_pg "${psql[@]}" -c "CREATE DATABASE parley OWNER parley" >/dev/null
  fi
}

svc_pg_running() {
  [ -f "$1/pg/postmaster.pid" ] && svc_pg "$PG_BIN/pg_ctl" -D "$1/pg" status >/dev/null 2>&1
}

# svc_pg_stop STATE: fast shutdown (clients are disconnected); idempotent.
svc_pg_stop() {
  local data=$1/pg
  [ -n "$PG_BIN" ] && [ -f "$data/postmaster.pid" ] || return 0
  svc_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  if [ -f "$data/postmaster.pid" ] && svc_pg_running "$1"; then
    echo "services: postgres in $data did not stop" >&2
    return 1
  fi
  return 0
}

# ---- Redis -------------------------------------------------------------------

# svc_redis_ping PORT: true when Redis answers PING.
svc_redis_ping() {
  # shellcheck disable=SC2016 # $1 expands in the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "PING\r\n" >&3
    read -r line <&3 && [[ $line == +PONG* ]]' _ "$1" 2>/dev/null
}

# svc_redis_start STATE PORT: a daemonized redis-server on 127.0.0.1:PORT
# without persistence.
svc_redis_start() {
  local state=$1 port=$2
  command -v redis-server >/dev/null || svc_die "redis-server not found (install redis-server)"
  if svc_redis_running "$state"; then return 0; fi
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$state/redis.pid" --logfile "$state/redis.log" --dir "$state" >/dev/null ||
    svc_die "redis-server did not start"
  echo "$port" >"$state/redis.port"
  for _ in $(seq 1 100); do
    svc_redis_ping "$port" && return 0
    sleep 0.1
  done
  tail -n 20 "$state/redis.log" >&2
  svc_die "redis did not answer on 127.0.0.1:$port within 10 s"
}

# The pid in STATE/redis.pid, when it is a live redis-server (pids get reused).
svc_redis_pid() {
  local pid
  pid=$(cat "$1/redis.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && grep -q redis "/proc/$pid/comm" 2>/dev/null && echo "$pid"
}

svc_redis_running() {
  svc_redis_pid "$1" >/dev/null
}

# svc_redis_stop STATE: SIGTERM (nothing to save), bounded wait; idempotent.
svc_redis_stop() {
  local state=$1 pid
  pid=$(svc_redis_pid "$state") || {
    rm -f "$state/redis.pid"
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    echo "services: redis did not exit on SIGTERM; killed" >&2
  fi
  rm -f "$state/redis.pid"
}

# ---- parleyd gateways ----------------------------------------------------------

# svc_gw_start STATE NAME PORT PARLEYD CONNINFO REDIS_PORT [flags...]
# Starts `parleyd serve` in the background (output in STATE/NAME.log, pid in
# STATE/NAME.pid, exit status in STATE/NAME.rc once it exits) and waits until
# GET /healthz answers 200 (SVC_GW_READY_S seconds, default 20), then, as the
# gateway serves /readyz, until that says PostgreSQL and Redis are reachable.
# GW_WRAPPER runs the gateway under a tool, e.g. valgrind.
svc_gw_start() {
  local state=$1 name=$2 port=$3 bin=$4 pg=$5 rport=$6
  shift 6
  local secs=${SVC_GW_READY_S:-20}
  [ -x "$bin" ] || svc_die "no parleyd binary at '$bin'"
  rm -f "$state/$name.pid" "$state/$name.rc"
  # A watcher subshell owns the gateway so that its exit status is recorded
  # even though the shell that started it is gone by the time it stops. All
  # descriptors point at files: ctest waits for its pipes to close.
  (
    # shellcheck disable=SC2086 # GW_WRAPPER is a command line, split on purpose
    ${GW_WRAPPER:-} "$bin" serve --port "$port" --pg "$pg" --redis "127.0.0.1:$rport" "$@" \
      </dev/null >"$state/$name.log" 2>&1 &
    echo $! >"$state/$name.pid.tmp"
    mv "$state/$name.pid.tmp" "$state/$name.pid"
    rc=0
    wait $! || rc=$?
    echo "$rc" >"$state/$name.rc"
  ) </dev/null >/dev/null 2>&1 &
  disown $! 2>/dev/null || true
  local deadline=$((SECONDS + secs)) code=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ -f "$state/$name.rc" ]; then
      tail -n 30 "$state/$name.log" >&2
      svc_die "gateway $name exited with status $(cat "$state/$name.rc") during start-up"
    fi
    code=$(svc_http_status "$port" /healthz)
    [ "$code" = 200 ] && break
    sleep 0.1
  done
  if [ "$code" != 200 ]; then
    tail -n 30 "$state/$name.log" >&2
    svc_gw_stop "$state" "$name" >/dev/null 2>&1 || true
    svc_die "gateway $name did not answer GET /healthz with 200 within ${secs} s"
  fi
  # Readiness: the tests must not race the gateway's first PostgreSQL and
  # Redis connections. A gateway without /readyz (404) is taken as ready.
  while [ "$SECONDS" -lt "$deadline" ]; do
    code=$(svc_http_status "$port" /readyz)
    [ "$code" = 200 ] || [ "$code" = 404 ] && return 0
    sleep 0.1
  done
  tail -n 30 "$state/$name.log" >&2
  svc_die "gateway $name is up but not ready (GET /readyz: ${code:-no answer}) after ${secs} s"
}

# The gateway's pid while it runs.
svc_gw_pid() {
  local pid
  pid=$(cat "$1/$2.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ ! -f "$1/$2.rc" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# svc_gw_stop STATE NAME: SIGTERM, wait (SVC_GW_STOP_S, default 15 s), print
# and return non-zero on a non-zero exit status, on a gateway that had
# already died, or on one that had to be killed. Idempotent.
svc_gw_stop() {
  local state=$1 name=$2 pid rc
  [ -f "$state/$name.pid" ] || return 0
  pid=$(cat "$state/$name.pid")
  if [ -f "$state/$name.rc" ]; then
    rc=$(cat "$state/$name.rc")
    rm -f "$state/$name.pid"
    echo "services: gateway $name (pid $pid) had already exited with status $rc" >&2
    return 1
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + ${SVC_GW_STOP_S:-15}))
  while [ ! -f "$state/$name.rc" ] && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.05
  done
  rm -f "$state/$name.pid"
  if [ ! -f "$state/$name.rc" ]; then
    kill -KILL "$pid" 2>/dev/null || true
    echo "services: gateway $name (pid $pid) did not exit within ${SVC_GW_STOP_S:-15} s of SIGTERM; killed" >&2
    return 1
  fi
  rc=$(cat "$state/$name.rc")
  if [ "$rc" != 0 ]; then
    echo "services: gateway $name (pid $pid) exited with status $rc after SIGTERM" >&2
    return 1
  fi
  return 0
}
