#!/usr/bin/env bash
# Parley benchmark, interleaved in one run against peers on the same machine:
#   parley     two parleyd gateways
#   socketio   two Node processes with Socket.IO + its Redis adapter, each
#              message persisted to PostgreSQL (loadtest/peers/socketio)
#   batch-1    parleyd with its write batcher off (--batch-max 1)
#   lws-floor  one libwebsockets broadcast process, no persistence, no bus
#              (loadtest/peers/lws_floor.c): the transport floor
#   nchan      nginx + nchan (Debian's libnginx-mod-nchan, a C pub/sub
#              server), two workers sharing nchan's memory store, no
#              persistence (loadtest/peers/nchan); installed when missing
# Each round runs every system (ours first in odd rounds, last in even
# ones), at least three rounds; the
# report gives medians and ratios against Parley.
#
#   loadtest/bench.sh [rounds] [rate per client] [seconds]     (defaults: 3 5 10)
#   BENCH_PLOT=latency.png loadtest/bench.sh ...   also plots each system's
#                          latency by percentile in the last round (gnuplot)
#   BENCH_SEARCH="2 5 10 20" loadtest/bench.sh ...  then, for parley and
#                          socketio (those of them in BENCH_SYSTEMS), runs the
#                          rates of the ladder in order until one fails (p99
#                          >= 100 ms, or any loss, duplicate, reorder or
#                          error) and reports the highest that held
#   BENCH_SEARCH_REPS=3    runs of each rung of the search (default 1); a rung
#                          holds when the median of its runs' p99 is under
#                          100 ms and no run lost, duplicated, reordered or
#                          failed anything
#   BENCH_CLIENTS=1000 BENCH_ROOMS=100   the load's size (default 200 in 20)
#   BENCH_SCENARIO=chat|bigroom|idle|reconnect   the parley-load scenario (default
#                          chat); idle reports each system's memory per idle
#                          connection instead of rates; reconnect only for
#                          parley (the peers have no recovery)
#   BENCH_SYSTEMS="parley socketio"      which systems, in this order in odd rounds (default
#                          all five; parley first, as the ratios' numerator)
#   BENCH_PROCS=2          generator processes (one process holds at most
#                          its file limit of connections)
#   BENCH_GATEWAYS=1       one process per system instead of two; N > 2
#                          (at most 16, parley-load's limit) runs N parleyd
#                          gateways (parley, parley-cluster, batch-1,
#                          parley-b) or N Socket.IO processes, clients
#                          spread round-robin over them, e.g. BENCH_GATEWAYS=4
#                          BENCH_SYSTEMS="parley parley-cluster"
#   BENCH_NCHAN_WORKERS=1  nginx workers of the nchan peer (default: as many
#                          as gateways; two lose messages under heavy load,
#                          see BENCHMARKS.md); system nchan-1 is the
#                          nchan peer with one worker, beside it in one run
#   BENCH_CONNECT_RATE=2000  connections opened per second at set-up (default:
#                          all at once)
#   BENCH_PARLEYD_B=PATH   system parley-b: another parleyd build, to compare
#                          a change with main in one run
#   system parley-cluster  the gateways on a local Redis Cluster (three
#                          masters, three replicas; --redis-cluster), e.g.
#                          BENCH_SYSTEMS="parley parley-cluster"
#   BENCH_STRACE=1         count each server's syscalls with strace -c and print
#                          epoll_ctl and send/write calls per delivery (the
#                          tracing slows the servers: not a run for CPU figures)
#   BENCH_PERF=DIR         profile each run with perf record -a -g (the whole
#                          machine: gateways, PostgreSQL, Redis, generator)
#                          into DIR/NAME.N.perf
#   BENCH_ZIPF=1           room sizes by Zipf's law (1/rank^S) instead of equal
#   BENCH_BODY=500         message body bytes (default 64; over about 25 a
#                          send no longer fits parleyd's 128-byte receive
#                          buffer and is reassembled)
#   BENCH_DURABILITY=nondurable  PostgreSQL without fsync, synchronous_commit
#                          and full_page_writes (default: all on, durable)
#
# Load: BENCH_CLIENTS clients in BENCH_ROOMS rooms (parley-load), spread
# round-robin over the processes of each system (BENCH_GATEWAYS). Private PostgreSQL
# and Redis on loopback in a temp dir. Needs a built tree and node/npm.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/services.sh"
rounds=${1:-3}
rate=${2:-5}
secs=${3:-10}
bin=$root/build/server/parleyd
load=$root/build/loadtest/parley-load
peer=$root/loadtest/peers/socketio
[ -x "$bin" ] && [ -x "$load" ] || svc_die "build first (cmake --build build)"
command -v node >/dev/null || svc_die "node is needed for the Socket.IO peer"
[ -d "$peer/node_modules" ] || (cd "$peer" && npm ci --no-audit --no-fund --silent)

clients=${BENCH_CLIENTS:-200}
rooms=${BENCH_ROOMS:-20}
scenario=${BENCH_SCENARIO:-chat}
body=${BENCH_BODY:-64}
systems=${BENCH_SYSTEMS:-parley socketio batch-1 lws-floor nchan}
procs=${BENCH_PROCS:-1}
gateways=${BENCH_GATEWAYS:-2}
[[ "$gateways" =~ ^[0-9]+$ ]] && [ "$gateways" -ge 1 ] && [ "$gateways" -le 16 ] ||
  svc_die "BENCH_GATEWAYS: 1 to 16"
floorpeer=$root/build/loadtest/parley-lws-floor
nchanmod=/usr/lib/nginx/modules/ngx_nchan_module.so
nchanworkers=${BENCH_NCHAN_WORKERS:-$gateways}
# Only the bench needs nginx + nchan: installed here, not by the test setup.
if [[ " $systems " == *" nchan"* ]] && ! { command -v nginx >/dev/null && [ -f "$nchanmod" ]; }; then
  nchan_pkgs=(libnginx-mod-nchan nginx-light)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${nchan_pkgs[@]}" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${nchan_pkgs[@]}" >/dev/null; } || svc_die "cannot install ${nchan_pkgs[*]} for the nchan peer"
fi
case "$scenario" in chat | bigroom | idle | reconnect) ;; *) svc_die "BENCH_SCENARIO: chat, bigroom, idle or reconnect" ;; esac
# Every process here may hold thousands of sockets.
ulimit -n "$(ulimit -Hn)"
svc_bench_env "$bin" "$clients" "$rooms"

# PostgreSQL: the postmaster and every backend now alive.
pg_pids() {
  local pm
  pm=$(head -n 1 "$state/pg/postmaster.pid")
  echo "$pm" $(pgrep -P "$pm")
}

# measure NAME PROTO PORTS PIDS...: one load run, then a JSON line. PORTS is
# one word, the gateways' ports separated by spaces (one --gw each).
measure() {
  local name=$1 proto=$2 ports=$3 gws=() p
  shift 3
  for p in $ports; do gws+=(--gw "127.0.0.1:$p"); done
  local c0 c1 r0 r1 g0 g1 rp
  rp=${redis_cpu_pids:-$(cat "$state/redis.pid")} # the cluster's nodes for parley-cluster
  c0=$(svc_cpu_ticks "$@")
  # shellcheck disable=SC2086
  r0=$(svc_cpu_ticks $rp)
  # shellcheck disable=SC2046
  g0=$(svc_cpu_ticks $(pg_pids))
  local extra=() # --pid of each server process, --zipf
  for p in "$@"; do extra+=(--pid "$p"); done
  [ -n "${BENCH_ZIPF:-}" ] && extra+=(--zipf "$BENCH_ZIPF")
  # BENCH_STRACE=1: count the servers' syscalls over the whole run (set-up
  # included; tracing slows them, so that run's CPU figures mean nothing).
  local tracers=""
  rm -f "$state"/strace.*
  if [ -n "${BENCH_STRACE:-}" ]; then
    for p in "$@"; do
      strace -c -f -q -o "$state/strace.$p" -p "$p" &
      tracers="$tracers $!"
    done
    sleep 1 # attached before the first connection
  fi
  # BENCH_PERF=DIR: a whole-machine profile of the run (perf record -a -g),
  # one file per run, DIR/NAME.N.perf; read it per process with
  # `perf report -i FILE --comm parleyd` (or postgres, redis-server). The
  # samples carry the monotonic clock, and DIR/NAME.N.window holds the send
  # window's (as parley-load's, whose CPU figure it is), so that
  # `perf report -i FILE --time "$(cat DIR/NAME.N.window)"` leaves the
  # connections' set-up out of the profile as the figure does.
  local profiler="" perf_file=""
  if [ -n "${BENCH_PERF:-}" ]; then
    mkdir -p "$BENCH_PERF"
    local n=1
    while [ -e "$BENCH_PERF/$name.$n.perf" ]; do n=$((n + 1)); done
    perf_file=$BENCH_PERF/$name.$n
    perf record -q -F 499 -a -g -k CLOCK_MONOTONIC -o "$perf_file.perf" >/dev/null 2>&1 &
    profiler=$!
  fi
  "$load" --proto "$proto" --fixture "$state/fixture" "${gws[@]}" \
    --scenario "$scenario" --rate "$rate" --duration "$secs" --body "$body" --sources 64 \
    --procs "$procs" --connect-rate "${BENCH_CONNECT_RATE:-0}" "${extra[@]}" \
    --csv "$state/$name.csv" --json >"$state/out.json" || true
  if [ -n "$profiler" ]; then
    kill -INT "$profiler"
    wait "$profiler" || true
    python3 -c 'import json, sys; w = json.load(open(sys.argv[1]))["window_mono_s"]
print("%.6f,%.6f" % tuple(w))' "$state/out.json" >"$perf_file.window" || true
  fi
  if [ -n "$tracers" ]; then
    # shellcheck disable=SC2086
    kill -INT $tracers
    # shellcheck disable=SC2086
    wait $tracers || true
  fi
  c1=$(svc_cpu_ticks "$@")
  # shellcheck disable=SC2086
  r1=$(svc_cpu_ticks $rp)
  # shellcheck disable=SC2046
  g1=$(svc_cpu_ticks $(pg_pids))
  python3 - "$name" "$state/out.json" "$((c1 - c0))" "$((r1 - r0))" "$((g1 - g0))" "$(getconf CLK_TCK)" \
    <<'PY' >>"$results"
import json, sys
name, path = sys.argv[1], sys.argv[2]
server, redis, pg, hz = (int(x) for x in sys.argv[3:7])
r = json.load(open(path))
r["name"] = name
d = max(r["delivered"], 1)
r["server_cpu_whole_us_per_delivery"] = server / hz * 1e6 / d
# The servers' CPU from the first send to the end of the drain (parley-load
# samples it), without the set-up of the connections.
w = r.get("pids_cpu_s", -1)
r["server_cpu_us_per_delivery"] = (w if w >= 0 else server / hz) * 1e6 / d
r["redis_cpu_us_per_delivery"] = redis / hz * 1e6 / d
r["pg_cpu_us_per_delivery"] = pg / hz * 1e6 / d
r["generator_cpu_us_per_delivery"] = r["generator_cpu_s"] * 1e6 / d
# strace -c summaries (BENCH_STRACE): "% time seconds usecs/call calls [errors] syscall".
import glob, os
calls = {}
for f in glob.glob(os.path.join(os.path.dirname(path), "strace.*")):
    for line in open(f):
        w = line.split()
        if len(w) >= 5 and w[3].isdigit() and w[-1] != "total":
            calls[w[-1]] = calls.get(w[-1], 0) + int(w[3])
if calls:
    r["syscalls"] = calls
    for k in ("epoll_ctl", "epoll_wait"):
        r[k + "_per_delivery"] = calls.get(k, 0) / d
    r["send_per_delivery"] = sum(calls.get(k, 0) for k in ("sendto", "write", "writev", "sendmsg")) / d
print(json.dumps(r))
PY
  # One line a run, to read the rounds apart (the table below gives medians).
  tail -n 1 "$results" | python3 -c 'import json, sys
r = json.loads(sys.stdin.read())
print("%s: p50 %.1f ms, p99 %.1f ms, server CPU %.2f us/delivery, delivered %d" % (r["name"],
      r.get("p50_ms", -1), r.get("p99_ms", -1), r["server_cpu_us_per_delivery"], r["delivered"]))' >&2
}

run_parley() { # name flags...
  local name=$1
  shift
  local p ports="" pids="" i
  for i in $(seq 1 "$gateways"); do
    p=$(svc_free_port)
    svc_gw_start "$state" "gw$i" "$p" "${gwbin:-$bin}" "$conninfo" "$redis_port" --log-level warn \
      --per-ip-max 100000 "$@"
    ports="$ports $p"
    pids="$pids $(cat "$state/gw$i.pid")"
  done
  # One gateway: its port twice, as before (the same load either way).
  [ "$gateways" = 1 ] && ports="$ports $ports"
  # shellcheck disable=SC2086
  measure "$name" parley "$ports" $pids
  for i in $(seq 1 "$gateways"); do svc_gw_stop "$state" "gw$i"; done
}

# The gateways on a local Redis Cluster (three masters, three replicas,
# started at its first use) instead of the one Redis server; Redis CPU is
# the six nodes'.
run_parley_cluster() {
  if [ ! -f "$state/rc.ports" ]; then
    cluster_base=$(svc_cluster_base)
    svc_redis_cluster_start "$state" "$cluster_base"
  fi
  redis_cpu_pids=$(for p in $(cat "$state/rc.ports"); do cat "$state/rc-$p/redis.pid"; done)
  run_parley parley-cluster --redis-cluster "127.0.0.1:$cluster_base,127.0.0.1:$((cluster_base + 1))"
  redis_cpu_pids=
}

run_socketio() {
  local ports pids="" p
  ports=$(svc_free_port)
  for _ in $(seq 2 "$gateways"); do ports="$ports $(svc_free_port)"; done
  # One after the other: both creating the peer's tables at once on a fresh
  # database race in PostgreSQL's catalog, and the loser exits.
  for p in $ports; do
    PORT=$p PG="postgres://parley@127.0.0.1:$pg_port/parley" REDIS="redis://127.0.0.1:$redis_port" \
      node "$peer/server.js" >"$state/sio-$p.log" 2>&1 &
    pids="$pids $!"
    echo "$pids" >"$state/peer.pids"
    for _ in $(seq 1 200); do grep -q "peer on" "$state/sio-$p.log" 2>/dev/null && break; sleep 0.1; done
  done
  [ "$gateways" = 1 ] && ports="$ports $ports"
  # shellcheck disable=SC2086
  measure socketio socketio "$ports" $pids
  # shellcheck disable=SC2086
  kill $pids 2>/dev/null
  # shellcheck disable=SC2086
  for p in $pids; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
  rm -f "$state/peer.pids"
}

# The transport floor: one process, so both "gateways" are the same port.
run_floor() {
  local p pid
  p=$(svc_free_port)
  "$floorpeer" "$p" >"$state/floor.log" 2>&1 &
  pid=$!
  echo "$pid" >"$state/peer.pids"
  for _ in $(seq 1 100); do grep -q "lws-floor on" "$state/floor.log" 2>/dev/null && break; sleep 0.1; done
  measure lws-floor parley "$p $p" "$pid"
  kill "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$state/peer.pids"
}

# nginx + nchan: $nchanworkers workers (two like the two gateways) on one port, a private
# prefix in the state dir; every message of the run fits the channel buffer.
run_nchan() { # name workers
  local name=$1 nw=$2 p dir master workers buf
  p=$(svc_free_port)
  dir=$state/nchan
  rm -rf "$dir"
  mkdir -p "$dir/tmp"
  # messages one room can receive in a run, at most (any room size, + set-up)
  buf=$(python3 -c "import math,sys; print(max(1000, math.ceil(float(sys.argv[1]) * (float(sys.argv[2]) + 10) * int(sys.argv[3]))))" \
    "$rate" "$secs" "$clients")
  sed -e "s|@MODULE@|$nchanmod|" -e "s|@NOFILE@|$(ulimit -Hn)|g" -e "s|@PREFIX@|$dir|g" \
    -e "s|@PORT@|$p|" -e "s|@BUFLEN@|$buf|" -e "s|@WORKERS@|$nw|" "$root/loadtest/peers/nchan/nginx.conf.in" >"$dir/nginx.conf"
  nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/out.log" 2>&1 &
  master=$!
  echo "$master" >"$state/peer.pids"
  for _ in $(seq 1 100); do
    workers=$(pgrep -P "$master" | tr '\n' ' ' || true)
    [ "$(echo "$workers" | wc -w)" = "$nw" ] && (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
    sleep 0.1
  done
  [ -n "$workers" ] || svc_die "nginx + nchan did not start: $(cat "$dir/error.log" "$dir/out.log" 2>/dev/null)"
  # shellcheck disable=SC2086
  measure "$name" nchan "$p $p" $workers
  kill "$master" 2>/dev/null
  while kill -0 "$master" 2>/dev/null; do sleep 0.1; done
  rm -f "$state/peer.pids"
}

run_system() {
  case "$1" in
  parley) run_parley parley ;;
  socketio) run_socketio ;;
  batch-1) run_parley "batch-1" --batch-max 1 ;;
  parley-b) gwbin=$BENCH_PARLEYD_B run_parley parley-b ;;
  parley-cluster) run_parley_cluster ;;
  lws-floor) [ -x "$floorpeer" ] && run_floor ;;
  nchan) run_nchan nchan "$nchanworkers" ;;
  nchan-1) run_nchan nchan-1 1 ;;
  *) svc_die "unknown system $1" ;;
  esac
}

# A warm-up run of parley, then VACUUM ANALYZE, before anything is measured:
# on tables never analyzed the planner may serve the send batch's retry
# probe from messages_sender (sender, room, seq) and read every earlier
# message of that sender in the room, so the first run saw PostgreSQL several
# times slower, bigger batches and less gateway CPU per delivery than every
# later one (BENCHMARKS.md, "The first run of a bench"). A live database has
# statistics within a minute of its first writes (autovacuum).
if [ "$scenario" != idle ]; then
  results=$state/warmup
  full_secs=$secs
  secs=3
  run_parley warmup >/dev/null 2>&1
  secs=$full_secs
  svc_pg "$PG_BIN/psql" -qXtA -h 127.0.0.1 -p "$pg_port" -U postgres -d parley -c "VACUUM ANALYZE" >/dev/null
fi
results=$state/results # where measure appends (the rate search uses its own)

# The raw floor in the same run: one small frame per write(2) on loopback.
floor=$("$root/build/loadtest/parley-floor" 300000 120)
# The order turns every round: on this machine the system that runs first
# in a round did markedly worse (p50 393 against 57 ms in one A/B of two
# builds, 113 against 88 ms with the order swapped), so a fixed order biased
# every ratio against the first-named system.
rev=$(echo "$systems" | tr ' ' '\n' | sed '/^$/d' | tac | tr '\n' ' ')
for i in $(seq 1 "$rounds"); do
  order=$systems
  [ $((i % 2)) = 0 ] && order=$rev
  for sys in $order; do run_system "$sys"; done
done

echo "$floor" >"$state/floor"
python3 - "$state/results" "$rounds" "$rate" "$secs" "$state/floor" "$clients" "$rooms" "$scenario" "$gateways" "$body" \
  "${BENCH_DURABILITY:-durable}" "$nchanworkers" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = []
for r in rows:
    if r["name"] not in names: names.append(r["name"])
keys = [("acked_per_s", "persisted msg/s", "%.0f"), ("delivered_per_s", "deliveries/s", "%.0f"),
        ("p50_ms", "p50 ms", "%.2f"), ("p99_ms", "p99 ms", "%.2f"), ("max_ms", "max ms", "%.1f"),
        ("server_cpu_us_per_delivery", "server CPU µs/delivery (send window)", "%.2f"),
        ("server_cpu_whole_us_per_delivery", "server CPU µs/delivery (whole run, with set-up)", "%.2f"),
        ("redis_cpu_us_per_delivery", "Redis CPU µs/delivery", "%.2f"),
        ("pg_cpu_us_per_delivery", "PostgreSQL CPU µs/delivery", "%.2f"),
        ("generator_cpu_us_per_delivery", "generator CPU µs/delivery", "%.2f"),
        ("lost", "lost (worst round)", "%d"), ("dups", "duplicates (worst round)", "%d"),
        ("out_of_order", "out of order (worst round)", "%d"), ("errors", "errors (worst round)", "%d")]
if "epoll_ctl_per_delivery" in rows[0]:
    keys[5:5] = [("epoll_ctl_per_delivery", "epoll_ctl per delivery (strace)", "%.3f"),
                 ("send_per_delivery", "send/write calls per delivery (strace)", "%.3f"),
                 ("epoll_wait_per_delivery", "epoll_wait per delivery (strace)", "%.3f")]
if sys.argv[8] == "reconnect":
    keys[5:5] = [("reconnects", "reconnections (rejoin with since)", "%d"),
                 ("unrecovered", "rejoins not recovered (worst round)", "%d")]
if sys.argv[8] == "idle":
    keys = [("joined", "connections held", "%d"), ("kb_per_connection", "KB of RSS per idle connection", "%.2f"),
            ("join_p99_ms", "connect to joined, p99 ms", "%.1f"), ("dead", "dropped (worst round)", "%d")]
# Integrity must hold in every round: those rows show the worst round, the
# others the median.
worst = {"lost", "dups", "out_of_order", "errors", "unrecovered", "dead"}
pick = lambda k, v: max(v) if k in worst else statistics.median(v)
med = {n: {k: pick(k, [r[k] for r in rows if r["name"] == n]) for k, _, _ in keys} for n in names}
print("\nraw floor (one 120-byte frame per write(2), loopback): %s" % open(sys.argv[5]).read().strip())
print("\n%s scenario, %d rounds, %s clients in %s rooms, %s processes each (lws-floor: 1), %s msg/s per client offered, %s s each, %s-byte bodies, PostgreSQL %s; medians (integrity rows: the worst round)" % (sys.argv[8], int(sys.argv[2]), sys.argv[6], sys.argv[7], sys.argv[9], sys.argv[3], sys.argv[4], sys.argv[10], sys.argv[11]))
print("| figure | " + " | ".join(names) + " | " + " | ".join("parley / " + n for n in names[1:]) + " |")
print("|---|" + "---|" * (2 * len(names) - 1))
for k, label, fmt in keys:
    vals = [med[n][k] for n in names]
    ratios = [("%.2f×" % (vals[0] / v)) if v else "–" for v in vals[1:]]
    print("| %s | %s | %s |" % (label, " | ".join(fmt % v for v in vals), " | ".join(ratios)))
nopersist = [n for n in names if n in ("lws-floor", "nchan", "nchan-1")]
if nopersist:
    how = {"lws-floor": "lws-floor: its answer", "nchan": "nchan: the sender's own copy back",
           "nchan-1": "nchan-1: likewise"}
    print("\n%s: no persistence (nothing stored, no PostgreSQL); their \"persisted msg/s\" count acknowledged sends (%s)" % (" and ".join(nopersist), "; ".join(how[n] for n in nopersist)))
if "nchan" in names or "nchan-1" in names:
    print("nchan: nginx with %s workers%s, nchan's shared-memory store (no Redis); checked per (room, sender) counter" % (
        sys.argv[12], " (nchan-1: 1)" if "nchan-1" in names else ""))
PY
if [ -n "${BENCH_PLOT:-}" ]; then
  plots=()
  for sys in $systems; do [ -f "$state/$sys.csv" ] && plots+=("$sys=$state/$sys.csv"); done
  "$root/loadtest/plot.sh" "$BENCH_PLOT" \
    "delivery latency, $rate msg/s per client, last of $rounds rounds" "${plots[@]}"
fi
if [ -n "${BENCH_SEARCH:-}" ]; then
  results=$state/search
  reps=${BENCH_SEARCH_REPS:-1}
  for sys in parley socketio; do
    case " $systems " in *" $sys "*) ;; *) continue ;; esac
    for rate in $BENCH_SEARCH; do
      for _ in $(seq 1 "$reps"); do run_system "$sys"; done
      python3 - "$results" "$rate" "$reps" <<'PY' || break
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()[-int(sys.argv[3]):]]
keys = ("lost", "dups", "out_of_order", "dead", "unrecovered", "errors")
bad = sorted({k for r in runs for k in keys if r.get(k)})
p99 = statistics.median(r["p99_ms"] for r in runs)
held = not bad and p99 < 100 and all(r["acked"] == r["sent"] > 0 for r in runs)
print("search: %s at %s msg/s per client: p99 %.1f ms%s%s -> %s" % (
    runs[0]["name"], sys.argv[2], p99,
    " (median of %s)" % ", ".join("%.1f" % r["p99_ms"] for r in runs) if len(runs) > 1 else "",
    (", " + ", ".join(bad)) if bad else "", "held" if held else "failed"), file=sys.stderr)
with open(sys.argv[1] + ".held", "a") as f:
    if held: f.write("%s %s\n" % (runs[0]["name"], sys.argv[2]))
sys.exit(0 if held else 1)
PY
    done
  done
  touch "$results.held"
  python3 - "$results.held" "$BENCH_SEARCH" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    name, rate = line.split()
    best[name] = max(best.get(name, 0), float(rate))
p, s = best.get("parley", 0), best.get("socketio", 0)
print("highest per-client rate holding p99 < 100 ms with zero loss (ladder %s):" % sys.argv[2])
print("| parley | socketio | parley / socketio |")
print("|---|---|---|")
print("| %g | %g | %s |" % (p, s, ("%.1f×" % (p / s)) if s else "–"))
PY
fi
