#!/usr/bin/env bash
# Idle connections at scale: how many authenticated, joined, silent
# WebSocket connections this machine holds across several gateways, and the
# gateways' memory per connection.
#
#   loadtest/bench_idle.sh [connections] [gateways] [hold seconds]   (defaults: 10000 2 20)
#
#   IDLE_ROOM_SIZE=10      people per room (the fixture has connections / size rooms)
#   IDLE_CONNECT_RATE=1000 connections opened per second in all (sign-ins are paced,
#                          not a burst; 0: all at once)
#   IDLE_PROCS=N           parley-load worker processes (default: as many as gateways,
#                          so worker k talks to gateway k only)
#   IDLE_SOURCES=64        client source addresses 127.0.0.1 .. 127.0.0.N: the kernel
#                          has ~28k ephemeral ports per source address
#   IDLE_GW_ARGS="..."     more parleyd serve flags for every gateway
#   IDLE_PARLEYD, IDLE_LOAD  the binaries (default: this tree's build/)
#
# Exit status 0 only when every connection authenticated, joined and was
# still open at the end of the hold (tests/integration/idle_smoke.sh).
#
# Why several of everything: one process may hold at most `ulimit -Hn`
# descriptors (20,000 here), so each gateway and each generator process
# stays below it; the script refuses a split that would not.
#
# What it counts: the gateways' RSS (VmRSS from /proc) before the first
# connection and while every connection is held, over the connections held;
# PostgreSQL and Redis keep state per person and per room, not per
# connection, and are reported beside it, not in it. The hold's figures come
# from the last sample but one in which the gateways held every connection
# (their descriptors over those at the start). "Dropped": connections parley-load
# saw closed during the hold; the gateways' side is checked only in that
# it reached every connection.
#
# Starts its own PostgreSQL and Redis (scripts/services.sh) and gateways on
# free loopback ports under a temp dir; stops all of them and removes the dir
# on exit. Bounded: the generator gets set-up (60 s + the ramp, at most
# 600 s) plus the hold plus 60 s, then is stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/services.sh"
conns=${1:-10000}
ngw=${2:-2}
hold=${3:-20}
bin=${IDLE_PARLEYD:-$root/build/server/parleyd}
load=${IDLE_LOAD:-$root/build/loadtest/parley-load}
[ -x "$bin" ] && [ -x "$load" ] || svc_die "build first (cmake --build build)"
size=${IDLE_ROOM_SIZE:-10}
rate=${IDLE_CONNECT_RATE:-1000}
procs=${IDLE_PROCS:-$ngw}
sources=${IDLE_SOURCES:-64}
rooms=$(((conns + size - 1) / size))
ulimit -n "$(ulimit -Hn)"
lim=$(ulimit -n)
# Each gateway also holds PostgreSQL, Redis, its log and lws's own: 64 spare.
[ $(((conns + ngw - 1) / ngw + 64)) -le "$lim" ] || svc_die "$conns over $ngw gateways passes the file limit $lim per process: more gateways"
[ $(((conns + procs - 1) / procs + 64)) -le "$lim" ] || svc_die "$conns over $procs generator processes passes the file limit $lim: raise IDLE_PROCS"
[ "$ngw" -le 8 ] || svc_die "at most 8 gateways (parley-load measures at most 8 --pid)"
[ "$procs" -le 16 ] || svc_die "at most 16 generator processes"
[ $((conns / sources)) -le 20000 ] || svc_die "more than 20,000 connections per source address: raise IDLE_SOURCES"

# The services, with load-fixture's own (one person) left unused: it makes
# each person in round trips of its own, minutes at 100,000.
svc_bench_env "$bin" 1 1
# bulk_fixture: the rows `parleyd admin load-fixture CONNS ROOMS` makes
# (a workspace, its rooms, people with verified emails as members, one API
# token each: base64url of 32 random bytes, stored as their 32-byte
# BLAKE2b hash as server/base/auth.c does), in one transaction of set
# statements, and the same fixture file (room lines, then `token ROOM TOKEN`).
bulk_fixture() {
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U parley -d parley)
  python3 - "$conns" "$rooms" "$state/tokens.csv" "$state/fixture.tokens" <<'PY'
import base64, hashlib, os, sys
n, rooms = int(sys.argv[1]), int(sys.argv[2])
with open(sys.argv[3], "w") as csv, open(sys.argv[4], "w") as fx:
    for i in range(n):
        raw = os.urandom(32)
        tok = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        csv.write("%d,\\x%s\n" % (i, hashlib.blake2b(raw, digest_size=32).hexdigest()))
        fx.write("token %d %s\n" % (i % rooms, tok))
PY
  "${psql[@]}" -v rooms="$rooms" -tA >"$state/fixture" <<SQL
BEGIN;
CREATE TEMP TABLE t (i int PRIMARY KEY, hash bytea, pid uuid DEFAULT gen_random_uuid()) ON COMMIT DROP;
\copy t (i, hash) FROM '$state/tokens.csv' WITH (FORMAT csv)
INSERT INTO workspaces (name) VALUES ('load') RETURNING id AS ws \gset
\o /dev/null
INSERT INTO people (id, email, email_verified_at)
  SELECT pid, 'load-' || :'ws' || '-' || i || '@load.invalid', now() FROM t;
INSERT INTO workspace_members (workspace_id, person_id, role) SELECT :'ws', pid, 'member' FROM t;
INSERT INTO access_tokens (hash, person_id, workspace_id, kind) SELECT hash, pid, :'ws', 'api' FROM t;
\o
INSERT INTO rooms (workspace_id, name)
  SELECT :'ws', 'load-' || g FROM generate_series(1, :rooms) g RETURNING 'room ' || id;
COMMIT;
SQL
  cat "$state/fixture.tokens" >>"$state/fixture"
}
echo "fixture: $conns people in $rooms rooms..." >&2
t_fix=$(date +%s)
bulk_fixture
[ "$(grep -c '^room ' "$state/fixture")" = "$rooms" ] || svc_die "the bulk fixture has no rooms"
echo "fixture made in $(($(date +%s) - t_fix)) s" >&2
loadpid=""
cleanup() {
  [ -n "$loadpid" ] && kill "$loadpid" 2>/dev/null && wait "$loadpid" 2>/dev/null
  for i in $(seq 1 "$ngw"); do svc_gw_stop "$state" "gw$i" || true; done
  svc_bench_cleanup
}
trap cleanup EXIT

# kb PID...: summed VmRSS.
kb() { for p in "$@"; do awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null; done | awk '{s += $1} END {print s + 0}'; }
# fds PID...: summed open descriptors.
fds() { for p in "$@"; do ls "/proc/$p/fd" 2>/dev/null | wc -l; done | awk '{s += $1} END {print s + 0}'; }
pg_pids() {
  local pm
  pm=$(head -n 1 "$state/pg/postmaster.pid")
  echo "$pm" $(pgrep -P "$pm")
}

# The gateways' heap (live and kept free) splits their RSS: what the
# connections hold against what the allocator keeps (/metrics).
"$bin" admin --pg "$conninfo" operator-token "$state/metrics.token" >/dev/null
gwargs=() pids=() ports=()
for i in $(seq 1 "$ngw"); do
  p=$(svc_free_port)
  # shellcheck disable=SC2086 # IDLE_GW_ARGS is a list of flags
  svc_gw_start "$state" "gw$i" "$p" "$bin" "$conninfo" "$redis_port" --log-level warn --per-ip-max 1000000 \
    --metrics-token-file "$state/metrics.token" ${IDLE_GW_ARGS:-}
  pids+=("$(cat "$state/gw$i.pid")") ports+=("$p")
  gwargs+=(--gw "127.0.0.1:$p" --pid "${pids[-1]}")
done
sleep 1
# heap: the gateways' summed heap bytes "in use free" (KB).
heap() {
  for p in "${ports[@]}"; do
    # a gateway that does not answer adds nothing (the table row is then
    # low), and never stops the run before its report
    curl -sf --max-time 5 -H "Authorization: Bearer $(cat "$state/metrics.token")" "http://127.0.0.1:$p/metrics" || true
  done | awk '/^parley_heap_in_use_bytes / {u += $2} /^parley_heap_free_bytes / {f += $2} END {printf "%d %d\n", u / 1024, f / 1024}'
}
heap0=$(heap)
rss0=$(kb "${pids[@]}")
fd0=$(fds "${pids[@]}")
redis0=$(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ {print $2+0}')
# shellcheck disable=SC2046
pg0=$(kb $(pg_pids))
rp=$(cat "$state/redis.pid")
# shellcheck disable=SC2046
cpu0="$(svc_cpu_ticks "${pids[@]}") $(svc_cpu_ticks $(pg_pids)) $(svc_cpu_ticks "$rp")"

ramp=0
[ "$rate" != 0 ] && ramp=$(awk -v n="$conns" -v r="$rate" 'BEGIN {print int(n / r + 1)}')
# Set-up gets the ramp's length on top of parley-load's 60 s (its bound is 600 s).
setup=${IDLE_SETUP_S:-$((60 + ramp))} # set-up bound (the smoke shortens it)
[ "$setup" -le 600 ] || setup=600
limit=$((setup + hold + 60))
echo "$ngw gateways (RSS $((rss0 / 1024)) MB), $procs generator processes, $sources source addresses, $rate connections/s, hold $hold s (at most $limit s)" >&2
t0=$(date +%s)
timeout --signal=TERM "$limit" "$load" --fixture "$state/fixture" "${gwargs[@]}" --scenario idle \
  --duration "$hold" --setup-s "$setup" --procs "$procs" --sources "$sources" --connect-rate "$rate" --json \
  >"$state/out.json" 2>"$state/load.err" &
loadpid=$!
# Sample while it runs. The hold is judged by the last sample but one in
# which the gateways held every connection (one more descriptor each than at
# the start): the generator closes everything at its end, and the figures
# read after a sample's descriptor count (the heap, CPU) may already see
# that close in the last one. A connection lost during the hold is counted
# by parley-load (dead). Sampling 100,000 descriptors takes seconds, so a
# time window from the first full sample judged the start of the hold.
peak=0 rss_held=0 fd_held=0 t_full="" heap_held="0 0" heap_first="0 0" pend=""
# The hold's own cost (nothing but idle upkeep: presence, pings): gateway
# CPU ticks and Redis commands from its first sample to the judged one.
cmds() { redis-cli -p "$redis_port" info stats | awk -F: '/^total_commands_processed:/ {print $2+0}'; }
h0="" h1="" hc0=0 hc1=0 ht0=0 ht1=0
judge() { read -r rss_held fd_held h1 hc1 ht1 hu hf <<<"$pend"; heap_held="$hu $hf"; }
while kill -0 "$loadpid" 2>/dev/null; do
  sleep 2
  r=$(kb "${pids[@]}")
  held=$(($(fds "${pids[@]}") - fd0))
  now=$(date +%s)
  printf '\r[%4ds] gateways hold %6d connections, RSS %5d MB' "$((now - t0))" "$held" "$((r / 1024))" >&2
  if [ "$held" -ge "$conns" ]; then
    t_full=${t_full:-$now}
    hp=$(heap)
    c=$(svc_cpu_ticks "${pids[@]}" | awk '{s += $1} END {print s}')
    hc=$(cmds) ht=$(date +%s.%N)
    if [ -z "$h0" ]; then h0=$c hc0=$hc ht0=$ht heap_first=$hp; fi
    [ -n "$pend" ] && judge # the one before this is whole
    pend="$r $held $c $hc $ht $hp"
  elif [ -z "$t_full" ] && [ "$held" -gt "$peak" ]; then
    peak=$held rss_held=$r fd_held=$held heap_held=$(heap) # never all up: the most held
  fi
done
# A hold with one full sample is judged by it.
[ -n "$pend" ] && [ "$fd_held" -lt "$conns" ] && judge
[ "${h1:-0}" = "$h0" ] && h1="" # one sample: no window for the hold's cost
rc=0
wait "$loadpid" || rc=$?
loadpid=""
echo >&2
redis1=$(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ {print $2+0}')
# shellcheck disable=SC2046
pg1=$(kb $(pg_pids))
# shellcheck disable=SC2046
cpu1="$(svc_cpu_ticks "${pids[@]}") $(svc_cpu_ticks $(pg_pids)) $(svc_cpu_ticks "$rp")"
for i in $(seq 1 "$ngw"); do
  # What went wrong, most frequent first (numbers masked so alike lines count together).
  if [ -s "$state/gw$i.log" ]; then
    echo "gw$i log:" >&2
    sed -E 's/[0-9]+/N/g' "$state/gw$i.log" | sort | uniq -c | sort -rn | head -n 5 >&2
  fi
done
[ -s "$state/load.err" ] && tail -n 5 "$state/load.err" >&2
[ -s "$state/out.json" ] || { echo "parley-load gave no result (exit $rc)" >&2; exit 1; }
python3 - "$state/out.json" "$conns" "$ngw" "$procs" "$rooms" "$rss0" "$rss_held" "$fd_held" \
  "$redis0" "$redis1" "$pg0" "$pg1" "$rc" "$cpu0" "$cpu1" "$(getconf CLK_TCK)" \
  "${h0:-0}" "${h1:-0}" "$hc0" "$hc1" "$ht0" "$ht1" "$heap0" "$heap_first" "$heap_held" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
conns, ngw, procs, rooms, rss0, rss_held, fd_held, redis0, redis1, pg0, pg1, rc = (
    int(x) for x in sys.argv[2:14])
cpu = [(int(b) - int(a)) / int(sys.argv[16]) for a, b in zip(sys.argv[14].split(), sys.argv[15].split())]
held = r["joined"]
print("idle: %d connections asked, %d gateways, %d generator processes, %d rooms of %d" % (
    conns, ngw, procs, rooms, conns // rooms))
print("| figure | value |")
print("|---|---|")
print("| connections authenticated and joined (parley-load) | %d |" % held)
print("| closed during the hold (parley-load, dead) | %d |" % r["dead"])
if r["errors_by_code"]:
    print("| errors by code | %s |" % json.dumps(r["errors_by_code"]))
print("| held by the gateways near the end of the hold (descriptors over the start) | %d |" % fd_held)
print("| KB of gateway RSS per connection, all joined (parley-load) | %.2f |" % r["kb_per_connection"])
print("| KB of gateway RSS per connection, end of the hold | %.2f |" % ((rss_held - rss0) / max(fd_held, 1)))
hu0, hf0 = (int(x) for x in sys.argv[23].split())
hua, hfa = (int(x) for x in sys.argv[24].split())
hu1, hf1 = (int(x) for x in sys.argv[25].split())
print("| the gateways' C heap over the start, KB per connection, in live allocations / kept free: start of the hold; end | %.2f / %.2f; %.2f / %.2f |" % (
    (hua - hu0) / max(fd_held, 1), (hfa - hf0) / max(fd_held, 1),
    (hu1 - hu0) / max(fd_held, 1), (hf1 - hf0) / max(fd_held, 1)))
print("| gateways' RSS before / end of the hold, MB | %.0f / %.0f |" % (rss0 / 1024, rss_held / 1024))
print("| connect to joined, p99 ms | %.0f |" % r["join_p99_ms"])
print("| CPU ms per connection set up (sign-in and join): gateways / PostgreSQL / Redis | %s |" % (
    " / ".join("%.2f" % (c * 1e3 / max(held, 1)) for c in cpu)))
print("| Redis used_memory growth, MB (per room, not per connection) | %.1f |" % ((redis1 - redis0) / 1e6))
h0, h1, hc0, hc1 = (int(x) for x in sys.argv[17:21])
hs = float(sys.argv[22]) - float(sys.argv[21])
if h1 and hs > 0:
    print("| during the hold (%.0f s): gateway CPU, ms per second per 1,000 connections | %.2f |" % (
        hs, (h1 - h0) / int(sys.argv[16]) * 1e3 / hs / max(held, 1) * 1e3))
    print("| during the hold: Redis commands per second, all gateways | %.0f |" % ((hc1 - hc0) / hs))
print("| PostgreSQL RSS growth, MB (shared buffers counted per backend) | %.0f |" % ((pg1 - pg0) / 1024))
bad = held < conns or r["dead"] or fd_held < held or rc
print("RESULT: %s" % ("FAILED (exit %d)" % rc if bad else "all %d held, none dropped" % held))
sys.exit(1 if bad else 0)
PY
