#!/usr/bin/env bash
# The reconnect storm (issue 18, section 3): N clients on gateway A under chat
# load; parley-load SIGKILLs gateway A (the pid this script started, named by
# its pid file); every client comes back through gateway B with jittered
# backoff (the server's retry_after_ms honoured), rejoins with since and
# re-sends its unanswered sends with the same client_msg_id. The report gives
# how many authenticated again, the time from the kill until 100% had
# recovered, and per member lost / duplicated / reordered (seqcheck).
# Private PostgreSQL and Redis on loopback in a temp dir; every run is bounded
# (STORM_DURATION) and stops by itself.
#
#   loadtest/bench_storm.sh [clients] [rounds]      (defaults: 2000 1)
#   STORM_RATE=0.1         msg/s per client, rooms of 10 (10,000 clients: 1,000 msg/s)
#   STORM_KILL_AFTER=5     seconds of load before the kill
#   STORM_DURATION=90      the bound, in seconds: the load stops 3 s after the
#                          last client recovered, or then at the latest
#   STORM_BACKOFF_MS=250 STORM_BACKOFF_MAX_MS=10000   the clients' backoff (the SDK's defaults)
#   STORM_SOURCES=64       127.0.0.x source addresses
#   STORM_CONNECT_RATE=500 connections opened per second at set-up (a ramp:
#                          the storm is the reconnection, not the set-up);
#                          set-up is bounded by clients / rate + 60 s
#   STORM_GW_FLAGS="..."   more flags for both gateways
#   BENCH_PARLEYD=PATH     another parleyd build
#   STORM_PG_PROFILE=1     load pg_stat_statements and print, after each
#                          round, the statements that took PostgreSQL's time
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/services.sh"
clients=${1:-2000}
rounds=${2:-1}
bin=${BENCH_PARLEYD:-$root/build/server/parleyd}
load=$root/build/loadtest/parley-load
[ -x "$bin" ] && [ -x "$load" ] || svc_die "build first (cmake --build build)"
rate=${STORM_RATE:-0.1}
kill_after=${STORM_KILL_AFTER:-5}
duration=${STORM_DURATION:-90}
connect_rate=${STORM_CONNECT_RATE:-500}
setup_s=$(python3 -c "print(min(600, int($clients / $connect_rate) + 60))")
# Every process here may hold thousands of sockets (one gateway: all of them).
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((clients + 200)) ] || svc_die "the file limit ($(ulimit -n)) is below $clients clients"
[ "${STORM_PG_PROFILE:-0}" = 1 ] && export SVC_PG_OPTS="${SVC_PG_OPTS:-} -c shared_preload_libraries=pg_stat_statements"
svc_bench_env "$bin" "$clients" "$(((clients + 9) / 10))"
results=$state/results
# The survivor's counters at the end of each round say where a storm that
# did not recover got stuck (sign-ins told busy, PostgreSQL errors, ...).
"$bin" admin --pg "$conninfo" operator-token "$state/metrics.token" >/dev/null
mflags=(--metrics-token-file "$state/metrics.token")

for i in $(seq 1 "$rounds"); do
  p1=$(svc_free_port)
  p2=$(svc_free_port)
  # shellcheck disable=SC2086
  svc_gw_start "$state" gw1 "$p1" "$bin" "$conninfo" "$redis_port" --log-level warn --per-ip-max 100000 "${mflags[@]}" ${STORM_GW_FLAGS:-}
  disown "$(cat "$state/gw1.pid")" # it dies by SIGKILL: no "Killed" line from this shell
  # shellcheck disable=SC2086
  svc_gw_start "$state" gw2 "$p2" "$bin" "$conninfo" "$redis_port" --log-level warn --per-ip-max 100000 "${mflags[@]}" ${STORM_GW_FLAGS:-}
  "$load" --fixture "$state/fixture" --gw "127.0.0.1:$p1" --gw "127.0.0.1:$p2" --scenario storm \
    --rate "$rate" --duration "$duration" --kill-after "$kill_after" --kill-pidfile "$state/gw1.pid" \
    --backoff-ms "${STORM_BACKOFF_MS:-250}" --backoff-max-ms "${STORM_BACKOFF_MAX_MS:-10000}" \
    --sources "${STORM_SOURCES:-64}" --connect-rate "$connect_rate" --setup-s "$setup_s" --pid "$(cat "$state/gw2.pid")" --json >"$state/out.json" || true
  [ -s "$state/out.json" ] || svc_die "parley-load wrote no report (round $i)"
  cat "$state/out.json" >>"$results"
  tail -n 1 "$results" | cut -c1-200 >&2
  curl -s --max-time 5 -H "Authorization: Bearer $(cat "$state/metrics.token")" "http://127.0.0.1:$p2/metrics" \
    | grep -E '^parley_(auth|postgres|bus|op_errors|connections)' | grep -v _bucket >"$state/metrics.$i" || true
  echo "gateway B's counters after round $i:" >&2
  cat "$state/metrics.$i" >&2
  echo "gateway B's warnings after round $i (count, message):" >&2
  grep -o 'level=[a-z]* msg="[^"]*"' "$state/gw2.log" 2>/dev/null | sort | uniq -c | sort -rn | head -n 8 >&2 || true
  if [ "${STORM_PG_PROFILE:-0}" = 1 ]; then
    echo "PostgreSQL's time by statement, round $i (calls, total ms, mean ms, statement):" >&2
    svc_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d parley -tAF ' | ' -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
      -c "SELECT calls, round(total_exec_time), round(mean_exec_time::numeric, 2), left(regexp_replace(query, '\s+', ' ', 'g'), 90)
          FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 10" -c "SELECT pg_stat_statements_reset()" >&2 || true
  fi
  svc_gw_stop "$state" gw1 || true # killed by parley-load: nothing left to stop
  # An overloaded gateway may not finish its shutdown in time: say so, and
  # still report the round (svc_gw_stop has killed it then).
  svc_gw_stop "$state" gw2 || echo "bench_storm: gateway B did not exit on SIGTERM in 10 s (round $i)" >&2
done

python3 - "$results" "$clients" "$rate" "$kill_after" "$state/pg/postgresql.auto.conf" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda k: statistics.median(r[k] for r in rows)
worst = lambda k: max(r[k] for r in rows)
keys = [
    ("clients on the killed gateway", lambda: "%d" % med("storm_cut")),
    ("authenticated again (worst round)", lambda: "%d" % min(r["storm_reauthed"] for r in rows)),
    ("recovered with since (worst round)", lambda: "%d" % min(r["storm_recovered"] for r in rows)),
    ("kill to 100% recovered, ms (worst round; -1: not all)",
     lambda: "%.0f" % (-1 if any(r["storm_recover_ms"] < 0 for r in rows) else worst("storm_recover_ms"))),
    ("per client, kill to rejoined, p50 / p99 ms", lambda: "%.0f / %.0f" % (med("storm_recover_p50_ms"), med("storm_recover_p99_ms"))),
    ("refused busy/unavailable, retried (with a hint)", lambda: "%d (%d)" % (med("refusals"), med("hinted"))),
    ("connection attempts after a loss or refusal", lambda: "%d" % med("retries")),
    ("sends unanswered at the kill, re-sent with the same id", lambda: "%d" % med("resent")),
    ("sent / acknowledged", lambda: "%d / %d" % (med("sent"), med("acked"))),
    ("delivered / expected", lambda: "%d / %d" % (med("delivered"), med("expected"))),
    ("delivery latency p50 / p99 / max ms (whole run)", lambda: "%.1f / %.1f / %.0f" % (med("p50_ms"), med("p99_ms"), med("max_ms"))),
    ("survivor gateway CPU s (load window)", lambda: "%.2f" % med("pids_cpu_s")),
    ("lost / duplicated / out of order (worst round)", lambda: "%d / %d / %d" % (worst("lost"), worst("dups"), worst("out_of_order"))),
    ("rejoins not recovered, errors (worst round)", lambda: "%d, %d" % (worst("unrecovered"), worst("errors"))),
]
print("\nreconnect storm: %s clients in rooms of 10 on gateway A, %s msg/s each, A SIGKILLed after %s s; "
      "%d round%s (medians; the integrity rows: the worst round)" % (sys.argv[2], sys.argv[3], sys.argv[4], len(rows), "s" if len(rows) > 1 else ""))
print("| figure | value |")
print("|---|---|")
for label, f in keys:
    print("| %s | %s |" % (label, f()))
codes = {}
for r in rows:
    for k, v in r["errors_by_code"].items(): codes[k] = codes.get(k, 0) + v
if codes: print("\nrefusals and errors by code, all rounds: %s" % codes)
ok = all(r["storm_recovered"] == r["storm_cut"] > 0 and not (r["lost"] or r["dups"] or r["out_of_order"] or r["unrecovered"]) for r in rows)
print("\n%s" % ("all clients recovered; 0 lost, 0 duplicated, 0 reordered" if ok else "!!! NOT ALL RECOVERED, OR LOSS / DUPLICATES / REORDERING !!!"))
sys.exit(0 if ok else 1)
PY
