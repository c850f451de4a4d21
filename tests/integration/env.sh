#!/usr/bin/env bash
# The integration test environment: a private PostgreSQL, a private Redis and
# two parleyd gateways on free loopback ports, all under STATE_DIR.
#
#   env.sh STATE_DIR start|stop|stop-pg|start-pg|stop-redis|start-redis|stop-gw1|start-gw1|stop-gw2|start-gw2
#
# start writes STATE_DIR/env (KEY=VALUE lines) for the tests to read.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../scripts/services.sh
. "$here/../../scripts/services.sh"

state=${1:?state dir}
cmd=${2:?command}
PARLEYD=${PARLEYD:-}
# The suite throws its database away, so by default it runs PostgreSQL
# without fsync (scripts/services.sh: nondurable); load_smoke.sh starts an
# environment of its own with PARLEY_PG_DURABILITY=durable, so that one pass
# of the load runs on the settings `scripts/dev run` and the benchmarks use.
pg_mode=${PARLEY_PG_DURABILITY:-nondurable}

# The gateways' test settings: small limits so limit behaviour is cheap to reach.
# Sign-in limits are per source address; tests bind 127.0.0.x addresses of
# their own so that one test's attempts do not spend another's.
gw_flags=(--per-ip-max 32 --auth-timeout-ms 1500 --outq-bytes 262144 --replay-limit 200
          --db-timeout-ms 2000 --log-level ${GW_LOG_LEVEL:-info}
          --login-max-account 5 --login-max-ip 12 --signup-max-ip 100000 --login-window-s 120 --http-request-timeout-ms 3000
          --ip-retention-days 7 --anonymise-every-s 1 --retention-every-s 1
          --operator-token-file "$state/operator.token" --metrics-token-file "$state/metrics.token")
# Valgrind cannot follow PCRE2's JIT code (false reports): the interpreter then.
case "${GW_WRAPPER:-}" in *valgrind*) gw_flags+=(--regex-jit 0) ;; esac

load_env() { [ -f "$state/env" ] && . "$state/env"; }

# The gateways serve the repository's web/ (the browser tests load pages from
# them), and a page may open WebSockets to the gateway that served it or the
# other one. gw_start NAME PORT starts gateway gw1 or gw2 with these settings.
web_root=$(cd "$here/../../web" && pwd)
gw_start() {
  svc_gw_start "$state" "$1" "$2" "$PARLEYD" "$PARLEY_PG" "$REDIS_PORT" "${gw_flags[@]}" --web-root "$web_root" \
    --origins "https://app.parley.example, http://localhost:3000, http://127.0.0.1:$GW1_PORT, http://127.0.0.1:$GW2_PORT"
}

case "$cmd" in
start)
  [ -x "$PARLEYD" ] || svc_die "PARLEYD must name the parleyd binary"
  "$0" "$state" stop >/dev/null 2>&1 || true
  rm -rf "$state"
  mkdir -p "$state"
  chmod 755 "$state"
  pg_port=$(svc_free_port)
  redis_port=$(svc_free_port)
  gw1=$(svc_free_port)
  gw2=$(svc_free_port)
  conninfo="host=127.0.0.1 port=$pg_port dbname=parley user=parley"
  svc_pg_start "$state" "$pg_port" "$pg_mode"
  svc_redis_start "$state" "$redis_port"
  "$PARLEYD" migrate --pg "$conninfo" >"$state/migrate.log"
  "$PARLEYD" admin --pg "$conninfo" operator-token "$state/operator.token"
  "$PARLEYD" admin --pg "$conninfo" operator-token "$state/metrics.token"
  GW1_PORT=$gw1 GW2_PORT=$gw2 PARLEY_PG=$conninfo REDIS_PORT=$redis_port
  gw_start gw1 "$gw1"
  gw_start gw2 "$gw2"
  cat >"$state/env" <<EOV
PARLEY_PG="$conninfo"
PG_PORT=$pg_port
REDIS_PORT=$redis_port
GW1_PORT=$gw1
GW2_PORT=$gw2
GW1_PID=$(cat "$state/gw1.pid")
GW2_PID=$(cat "$state/gw2.pid")
STATE_DIR=$state
PG_DURABILITY=$pg_mode
PARLEYD=$PARLEYD
ENV_SH=$here/env.sh
OPERATOR_TOKEN_FILE=$state/operator.token
METRICS_TOKEN_FILE=$state/metrics.token
EOV
  echo "environment up: gateways on $gw1 and $gw2"
  ;;
stop)
  rc=0
  svc_gw_stop "$state" gw1 || rc=1
  svc_gw_stop "$state" gw2 || rc=1
  svc_redis_stop "$state"
  svc_pg_stop "$state"
  # A sanitizer build reports leaks and errors in the gateway logs.
  # A sanitizer build or valgrind reports errors and leaks in the gateway logs.
  if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:\|ERROR SUMMARY: [1-9]" \
      "$state"/gw*.log 2>/dev/null; then
    echo "env.sh: sanitizer or valgrind reports in gateway logs:" >&2
    grep -h -B 2 -A 30 "ERROR: \|runtime error:\|ERROR SUMMARY: [1-9]" "$state"/gw*.log >&2 || true
    rc=1
  fi
  exit $rc
  ;;
stop-pg) load_env; svc_pg_stop "$state" ;;
start-pg) load_env; svc_pg_start "$state" "$PG_PORT" "$PG_DURABILITY" ;;
stop-redis) load_env; svc_redis_stop "$state" ;;
start-redis) load_env; svc_redis_start "$state" "$REDIS_PORT" ;;
# A gateway stopped with SIGTERM and started again on its port (the browser
# tests' outage); its pid file follows, so stop still stops it.
# (svc_gw_stop's wait fails for a gateway this shell did not start: set -e.)
stop-gw1 | stop-gw2) load_env; svc_gw_stop "$state" "${cmd#stop-}" || true ;;
start-gw1) load_env; gw_start gw1 "$GW1_PORT" ;;
start-gw2) load_env; gw_start gw2 "$GW2_PORT" ;;
*) svc_die "unknown command $cmd" ;;
esac
