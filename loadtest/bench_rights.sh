#!/usr/bin/env bash
# Data rights benchmark (issue 17), three measurements in one private world
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
# 3. Chat during retention: the same chat load and rounds, beside another
#    workspace whose rooms hold a backlog of old messages (created a year
#    ago, with seen rows, likes and ratings); "off" sets its retention_days
#    to 36500 (nothing due), "on" to 30 (all of it due: the gateways'
#    retention job cuts it to stubs, --retention-batch seqs a run, a run a
#    second). Afterwards it checks the stubs rule: every seq the job passed
#    is a stub with no receipts or votes left, and every room's seqs are
#    still 1..last_seq with none missing.
#
#   loadtest/bench_rights.sh [rounds] [chat seconds] [N small] [N large]
#                                    (defaults: 3 15 20000 200000)
#   BENCH_PART=export,purge,retention               the parts to run (all)
#   BENCH_CLIENTS=200 BENCH_ROOMS=20 BENCH_RATE=5   the chat load
#   BENCH_PURGE_BATCH=1000                           the gateways' --purge-batch
#   BENCH_RET_BATCH=500                              the gateways' --retention-batch
#   BENCH_RET_BACKLOG=N   old messages to retain-delete (default: more than
#                         the "on" rounds can remove, at least 100000)
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
rbatch=${BENCH_RET_BATCH:-500}
parts=${BENCH_PART:-export,purge,retention}
want() { case ",$parts," in *",$1,"*) return 0 ;; esac; return 1; }
for p in ${parts//,/ }; do
  case $p in export | purge | retention) ;; *) svc_die "BENCH_PART: unknown part $p" ;; esac
done
ulimit -n "$(ulimit -Hn)"
svc_bench_env "$bin" "$clients" "$rooms"
sql() { psql -qAt -v ON_ERROR_STOP=1 "$conninfo" -c "$1"; }
admin() { "$bin" admin --pg "$conninfo" "$@"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# ---- 1. export memory ----------------------------------------------------
if want export; then
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
fi

# ---- 2. chat p99 during a purge ------------------------------------------
if want purge; then
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
svc_gw_stop "$state" gw1
svc_gw_stop "$state" gw2
fi

# ---- 3. chat p99 during retention ----------------------------------------
# The backlog: a live workspace (not the chat's) with rooms of messages made
# a year ago and the receipts and votes on them, more than every "on" round
# can remove. Its retention_days decides whether any of it is due.
if want retention; then
rws=$(admin create-workspace retention-bench)
rowner=$(admin create-person "$rws" owner@retention.invalid owner)
rvoter=$(admin create-person "$rws" voter@retention.invalid member)
# two gateways, each a run of --retention-batch seqs a second (one at a time)
rbacklog=${BENCH_RET_BACKLOG:-$((rbatch * 2 * (secs + 2) * rounds + 20000))}
[ "$rbacklog" -ge 100000 ] || [ -n "${BENCH_RET_BACKLOG:-}" ] || rbacklog=100000
rk=$(((rbacklog + 3) / 4))
rrooms=()
for i in 1 2 3 4; do
  r=$(admin create-room "$rws" "old$i")
  rrooms+=("'$r'")
  # created_at rises along seq (008), a millisecond apart, a year back
  sql "WITH r AS (UPDATE rooms SET last_seq = $rk,
                    last_ts = now() - interval '365 days' + $rk * interval '1 ms'
                  WHERE id = '$r' RETURNING id)
       INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body, created_at,
                             like_count, star_count, star_sum)
       SELECT r.id, g, '$rowner', 'r' || g, 'retained body ' || g,
              now() - interval '365 days' + g * interval '1 ms',
              (g % 8 = 0)::int, (g % 16 = 0)::int, CASE WHEN g % 16 = 0 THEN 1 + g % 5 ELSE 0 END
       FROM r, generate_series(1, $rk) g"
  sql "INSERT INTO seen (room_id, seq, person_id, at)
       SELECT '$r', g, p, now() - interval '365 days' + g * interval '1 ms'
       FROM generate_series(1, $rk, 2) g, (VALUES ('$rowner'::uuid), ('$rvoter'::uuid)) v(p)"
  sql "INSERT INTO likes (room_id, seq, person_id, at)
       SELECT '$r', g, '$rvoter', now() - interval '365 days' FROM generate_series(8, $rk, 8) g"
  sql "INSERT INTO ratings (room_id, seq, person_id, stars, at)
       SELECT '$r', g, '$rvoter', 1 + g % 5, now() - interval '365 days'
       FROM generate_series(16, $rk, 16) g"
done
rin=$(IFS=,; echo "${rrooms[*]}")
sql "UPDATE workspaces SET retention_days = 36500 WHERE id = '$rws'"
sql "ANALYZE messages, seen, likes, ratings, rooms"
# what the job has removed so far: "stubs rows", the seqs cut to stubs (its
# watermarks) and all rows, those plus the receipts and votes gone (from
# what was seeded)
rseeded=$(sql "SELECT (SELECT count(*) FROM seen WHERE room_id IN ($rin))
                    + (SELECT count(*) FROM likes WHERE room_id IN ($rin))
                    + (SELECT count(*) FROM ratings WHERE room_id IN ($rin))")
removed() {
  sql "SELECT s || ' ' || s + $rseeded - (SELECT count(*) FROM seen WHERE room_id IN ($rin))
            - (SELECT count(*) FROM likes WHERE room_id IN ($rin))
            - (SELECT count(*) FROM ratings WHERE room_id IN ($rin))
       FROM (SELECT coalesce(sum(purged_seq), 0) AS s FROM room_retention
              WHERE room_id IN ($rin)) w"
}
echo "retention backlog: $((rk * 4)) messages a year old, $rseeded receipts and votes on them"

p1=$(svc_free_port)
p2=$(svc_free_port)
flags=(--log-level warn --per-ip-max 100000 --retention-every-s 1 --retention-batch "$rbatch")
svc_gw_start "$state" gw1 "$p1" "$bin" "$conninfo" "$redis_port" "${flags[@]}"
svc_gw_start "$state" gw2 "$p2" "$bin" "$conninfo" "$redis_port" "${flags[@]}"
results=$state/retention
: >"$results"
for i in $(seq 1 "$rounds"); do
  for mode in off on; do
    if [ "$mode" = on ]; then
      sql "UPDATE workspaces SET retention_days = 30 WHERE id = '$rws'"
    else
      sql "UPDATE workspaces SET retention_days = 36500 WHERE id = '$rws'"
    fi
    sleep 1.5 # a retention run in flight ends
    read -r st0 rm0 <<<"$(removed)"
    "$load" --fixture "$state/fixture" --gw "127.0.0.1:$p1" --gw "127.0.0.1:$p2" --scenario chat \
      --rate "$rate" --duration "$secs" --body 64 --sources 16 --json >"$state/out.json" || true
    read -r st1 rm1 <<<"$(removed)"
    python3 - "$mode" "$state/out.json" "$rm0" "$rm1" "$secs" "$st0" "$st1" >>"$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
r["mode"] = sys.argv[1]
r["removed_per_s"] = (int(sys.argv[4]) - int(sys.argv[3])) / float(sys.argv[5])
r["stubbed_per_s"] = (int(sys.argv[7]) - int(sys.argv[6])) / float(sys.argv[5])
print(json.dumps(r))
PY
    tail -n 1 "$results" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("chat %s: p50 %.2f ms p99 %.2f ms max %.1f ms, %d msg/s acked, lost %d dups %d out of order %d, retention removed %.0f rows/s (%.0f messages cut to stubs/s)" % (r["mode"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["acked_per_s"], r["lost"], r["dups"], r["out_of_order"], r["removed_per_s"], r["stubbed_per_s"]))' >&2
  done
done
sql "UPDATE workspaces SET retention_days = 36500 WHERE id = '$rws'"
sleep 1.5 # the last run ends before the checks read
# The stubs rule: below each backlog room's watermark every row is still
# there as a stub (empty body, deleted, no counts) with no receipts or
# votes; above it nothing was touched; and every live room (the chat's
# included) holds exactly the seqs 1..last_seq.
stubs=$(sql "SELECT count(*) FILTER (WHERE m.seq <= w.wm AND m.body = '' AND m.deleted_at IS NOT NULL
                                      AND m.like_count = 0 AND m.star_count = 0)
                 || ' ' || count(*) FILTER (WHERE m.seq <= w.wm)
                 || ' ' || count(*) FILTER (WHERE m.seq > w.wm AND m.body <> '' AND m.deleted_at IS NULL)
                 || ' ' || count(*) FILTER (WHERE m.seq > w.wm)
             FROM messages m
             JOIN (SELECT r.id, coalesce(rr.purged_seq, 0) AS wm FROM rooms r
                   LEFT JOIN room_retention rr ON rr.room_id = r.id WHERE r.id IN ($rin)) w
               ON w.id = m.room_id")
left=$(sql "SELECT (SELECT count(*) FROM seen x JOIN room_retention rr USING (room_id)
                     WHERE x.room_id IN ($rin) AND x.seq <= rr.purged_seq)
                 + (SELECT count(*) FROM likes x JOIN room_retention rr USING (room_id)
                     WHERE x.room_id IN ($rin) AND x.seq <= rr.purged_seq)
                 + (SELECT count(*) FROM ratings x JOIN room_retention rr USING (room_id)
                     WHERE x.room_id IN ($rin) AND x.seq <= rr.purged_seq)")
dense=$(sql "SELECT count(*) || ' ' || count(*) FILTER (WHERE n <> last_seq OR hi <> last_seq OR lo <> 1)
             FROM (SELECT r.last_seq, count(m.seq) AS n, coalesce(max(m.seq), 0) AS hi,
                          coalesce(min(m.seq), 1) AS lo
                     FROM rooms r JOIN workspaces w ON w.id = r.workspace_id
                     LEFT JOIN messages m ON m.room_id = r.id
                    WHERE w.deleted_at IS NULL GROUP BY r.id, r.last_seq) x")
read -r s_ok s_below s_intact s_above <<<"$stubs"
read -r d_rooms d_bad <<<"$dense"
svc_gw_stop "$state" gw1
svc_gw_stop "$state" gw2
python3 - "$results" "$rounds" "$clients" "$rooms" "$rate" "$secs" "$rbatch" "$((rk * 4))" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\nchat, %s rounds, %s clients in %s rooms over two gateways, %s msg/s per client, %s s each; --retention-batch %s every 1 s; a backlog of %s old messages; medians (lost, dups, out of order: the worst round)" % tuple(sys.argv[2:9]))
print("| figure | retention not due | during retention |")
print("|---|---|---|")
for k, label, fmt in [("acked_per_s", "persisted msg/s", "%.0f"), ("p50_ms", "p50 ms", "%.2f"),
                      ("p99_ms", "p99 ms", "%.2f"), ("max_ms", "max ms", "%.1f"),
                      ("removed_per_s", "rows removed per second (stubs + receipts + votes)", "%.0f"),
                      ("stubbed_per_s", "of which messages cut to stubs", "%.0f"),
                      ("lost", "lost (worst round)", "%d"), ("dups", "dups (worst round)", "%d"),
                      ("out_of_order", "out of order (worst round)", "%d")]:
    v = [[r[k] for r in rows if r["mode"] == m] for m in ("off", "on")]
    f = max if k in ("lost", "dups", "out_of_order") else statistics.median
    print("| %s | %s | %s |" % (label, fmt % f(v[0]), fmt % f(v[1])))
PY
echo "stubs: $s_ok of $s_below seqs below the watermark are stubs, $left receipts/votes left there;" \
  "$s_intact of $s_above above it untouched"
echo "seqs: $d_bad of $d_rooms live rooms have a missing or extra seq"
if [ "$s_ok" != "$s_below" ] || [ "$left" != 0 ] || [ "$s_intact" != "$s_above" ] || [ "$d_bad" != 0 ]; then
  svc_die "retention broke the stubs rule (see above)"
fi
fi
