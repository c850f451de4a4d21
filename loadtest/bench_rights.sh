#!/usr/bin/env bash
# Data rights benchmark (issue 17), two measurements in one private world
# (PostgreSQL, Redis, gateways on loopback, in a temp dir):
#
# 1. Export memory: the gateway's RSS while it streams the export of a
#    person with N messages, for two N (JSON and the CSV archive), sampled
#    every 20 ms; if memory is bounded by the page, the peak rise is the
#    same for both N. Also: /healthz answer times on the same gateway
#    during the export (the loop is not stalled).
# 2. Chat during a purge: parley-load's chat scenario over two gateways,
#    rounds alternating "off" (the deleted workspace's purge_at in the
#    future: nothing to purge) and "on" (purge_at passed: the gateways'
#    purge job removes a large backlog, --purge-batch rows a second),
#    medians of the rounds.
#
#   loadtest/bench_rights.sh [rounds] [chat seconds] [N small] [N large]
#                                    (defaults: 3 15 20000 200000)
#   BENCH_CLIENTS=200 BENCH_ROOMS=20 BENCH_RATE=5   the chat load
#   BENCH_PURGE_BATCH=1000                           the gateways' --purge-batch
#   BENCH_PARLEYD, BENCH_LOAD   other binaries than build/'s
#
# Every loop is bounded in count and in time; loopback only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/services.sh"
rounds=${1:-3}
secs=${2:-15}
nsmall=${3:-20000}
nlarge=${4:-200000}
bin=${BENCH_PARLEYD:-$root/build/server/parleyd}
load=${BENCH_LOAD:-$root/build/loadtest/parley-load}
[ -x "$bin" ] && [ -x "$load" ] || svc_die "build first (cmake --build build)"
clients=${BENCH_CLIENTS:-200}
rooms=${BENCH_ROOMS:-20}
rate=${BENCH_RATE:-5}
batch=${BENCH_PURGE_BATCH:-1000}
ulimit -n "$(ulimit -Hn)"
svc_bench_env "$bin" "$clients" "$rooms"
sql() { psql -qAt -v ON_ERROR_STOP=1 "$conninfo" -c "$1"; }
admin() { "$bin" admin --pg "$conninfo" "$@"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# ---- 1. export memory ----------------------------------------------------
p1=$(svc_free_port)
svc_gw_start "$state" gw1 "$p1" "$bin" "$conninfo" "$redis_port" --log-level warn
gw=$(cat "$state/gw1.pid")
ws=$(admin create-workspace export-bench)
room=$(admin create-room "$ws" big)
echo "export: N, format, bytes, seconds, RSS before KB, peak rise KB, healthz p50/max ms"
for n in "$nsmall" "$nlarge"; do
  person=$(admin create-person "$ws" "export-$n@bench.invalid" member)
  tok=$(admin create-token "$person" "$ws")
  sql "WITH r AS (UPDATE rooms SET last_seq = last_seq + $n WHERE id = '$room' RETURNING id, last_seq)
       INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body)
       SELECT r.id, r.last_seq - $n + g, '$person', 'e' || g,
              'message ' || g || ', with \"quotes\" and a comma: ' || repeat('x', 60)
       FROM r, generate_series(1, $n) g"
  sql "ANALYZE messages"
  for fmt in json csv; do
    before=$(rss_kb "$gw")
    curl -s --max-time 300 -o /dev/null -w '%{size_download} %{time_total}\n' \
      -H "Authorization: Bearer $tok" "http://127.0.0.1:$p1/api/v1/me/export?format=$fmt" \
      >"$state/curl.out" &
    cpid=$!
    peak=$before
    : >"$state/healthz"
    # at most 300 s of samples (the curl's own limit)
    for _ in $(seq 1 15000); do
      kill -0 "$cpid" 2>/dev/null || break
      r=$(rss_kb "$gw")
      [ "$r" -gt "$peak" ] && peak=$r
      curl -s --max-time 5 -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$p1/healthz" \
        >>"$state/healthz"
      sleep 0.02
    done
    wait "$cpid" || true
    read -r bytes took <"$state/curl.out"
    hz=$(sort -n "$state/healthz" | awk '{a[NR] = $1 * 1000} END {if (NR) printf "%.1f/%.1f", a[int((NR + 1) / 2)], a[NR]; else print "-"}')
    echo "export: $n $fmt $bytes ${took}s $before $((peak - before)) $hz"
  done
done
svc_gw_stop "$state" gw1

# ---- 2. chat p99 during a purge ------------------------------------------
# The backlog: a deleted workspace with rooms of messages and what hangs off
# them, more than every "on" round can remove.
dws=$(admin create-workspace purge-bench)
owner=$(admin create-person "$dws" owner@purge.invalid owner)
backlog=$((batch * secs * rounds * 2 + 50000))
for i in 1 2 3 4; do
  r=$(admin create-room "$dws" "r$i")
  k=$((backlog / 4))
  sql "WITH r AS (UPDATE rooms SET last_seq = $k WHERE id = '$r' RETURNING id)
       INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body)
       SELECT r.id, g, '$owner', 'p' || g, 'purged body ' || g FROM r, generate_series(1, $k) g"
  sql "INSERT INTO seen (room_id, seq, person_id) SELECT '$r', g, '$owner'
       FROM generate_series(1, $k, 4) g"
done
sql "UPDATE workspaces SET deleted_at = now(), purge_at = now() + interval '1 day' WHERE id = '$dws'"
sql "ANALYZE"
rows_left() { sql "SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id WHERE r.workspace_id = '$dws'"; }
echo "purge backlog: $(rows_left) messages (+ seen rows)"

p1=$(svc_free_port)
p2=$(svc_free_port)
flags=(--log-level warn --per-ip-max 100000 --retention-every-s 1 --purge-batch "$batch")
svc_gw_start "$state" gw1 "$p1" "$bin" "$conninfo" "$redis_port" "${flags[@]}"
svc_gw_start "$state" gw2 "$p2" "$bin" "$conninfo" "$redis_port" "${flags[@]}"
results=$state/chat
: >"$results"
for i in $(seq 1 "$rounds"); do
  for mode in off on; do
    if [ "$mode" = on ]; then
      sql "UPDATE workspaces SET purge_at = now() - interval '1 second' WHERE id = '$dws'"
    else
      sql "UPDATE workspaces SET purge_at = now() + interval '1 day' WHERE id = '$dws'"
    fi
    sleep 1.5 # a purge run in flight ends
    left0=$(rows_left)
    "$load" --fixture "$state/fixture" --gw "127.0.0.1:$p1" --gw "127.0.0.1:$p2" --scenario chat \
      --rate "$rate" --duration "$secs" --body 64 --sources 16 --json >"$state/out.json" || true
    left1=$(rows_left)
    python3 - "$mode" "$state/out.json" "$left0" "$left1" "$secs" >>"$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
r["mode"] = sys.argv[1]
r["purged_msgs_per_s"] = (int(sys.argv[3]) - int(sys.argv[4])) / float(sys.argv[5])
print(json.dumps(r))
PY
    tail -n 1 "$results" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("chat %s: p50 %.2f ms p99 %.2f ms max %.1f ms, %d msg/s acked, lost %d, purged %.0f messages/s" % (r["mode"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["acked_per_s"], r["lost"], r["purged_msgs_per_s"]))' >&2
  done
done
sql "UPDATE workspaces SET purge_at = now() + interval '1 day' WHERE id = '$dws'"
python3 - "$results" "$rounds" "$clients" "$rooms" "$rate" "$secs" "$batch" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\nchat, %s rounds, %s clients in %s rooms over two gateways, %s msg/s per client, %s s each; --purge-batch %s; medians (lost: the worst round)" % tuple(sys.argv[2:8]))
print("| figure | no purge | during a purge |")
print("|---|---|---|")
for k, label, fmt in [("acked_per_s", "persisted msg/s", "%.0f"), ("p50_ms", "p50 ms", "%.2f"),
                      ("p99_ms", "p99 ms", "%.2f"), ("max_ms", "max ms", "%.1f"),
                      ("purged_msgs_per_s", "messages purged per second", "%.0f"),
                      ("lost", "lost (worst round)", "%d")]:
    v = [[r[k] for r in rows if r["mode"] == m] for m in ("off", "on")]
    f = max if k == "lost" else statistics.median
    print("| %s | %s | %s |" % (label, fmt % f(v[0]), fmt % f(v[1])))
PY
