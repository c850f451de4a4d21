#!/usr/bin/env bash
# Persisted rows per second, durable: messages and read receipts committed by
# the gateways' group-commit batchers, driven through two real gateways by
# parley-load (chat with read reports), on PostgreSQL with fsync,
# synchronous_commit and full_page_writes on. The offered load climbs a
# ladder of per-client rates; each step reports what was committed per
# second, counted two ways:
#   gateways   the gateways' own counters (/metrics:
#              parley_messages_persisted_total, messages and the read events
#              the receipts cause, + parley_receipts_persisted_total),
#              sampled every 0.2 s; the rate over the span in which they moved
#   postgres   row writes (inserts + updates) in messages, read_state and seen
#              and their partitions (pg_stat_user_tables, read after the
#              gateways have exited and their backends have flushed their
#              statistics), over that span
# A 3 s warm-up step and VACUUM ANALYZE come first, unmeasured.
# Then the peer-style comparison on the same server: pgbench, every row its
# own transaction (one INSERT of a message-shaped row, COMMIT), from 1, 16
# and 64 connections (PostgreSQL flushes the WAL of concurrent commits
# together, so more connections help it too, up to a point).
#
#   loadtest/bench_rows.sh [seconds] [clients] [rooms]   (defaults: 10 1000 500)
#   BENCH_LADDER="1 2 5 10 20" per-client msg/s of each step; each client also
#                               sends BENCH_READS_PER_MSG read reports per message
#                               (default 1); the ladder stops after the first step
#                               that commits no more rows than the one before, or
#                               leaves a send or read report unanswered (past the
#                               ceiling)
#   BENCH_DURABILITY=nondurable the same on PostgreSQL without fsync (a
#                               comparison only: nothing acknowledged is safe)
#
# The primary's write ceiling with the batcher, with and without the message
# log's hash partitions (sql/012), side by side on one durable server:
#
#   loadtest/bench_rows.sh --store [seconds] [conns] [batch] [rooms]
#                               (defaults: 10 4 100 500)
#   Two databases on the same PostgreSQL: one at the schema before 012 (one
#   messages table), one migrated with --partitions $BENCH_PARTITIONS
#   (default 8). build/loadtest/rows-store commits the send batcher's own
#   statement (insert_batch, seq allocation and insert in one statement)
#   from `conns` connections, one batch of `batch` sends over random rooms in
#   flight on each, as the store's batcher does; no gateway, generator or
#   Redis takes CPU from PostgreSQL. BENCH_REPS runs of each (default 3),
#   alternating, so that a noisy machine's drift falls on both; the medians
#   and their ratio are printed.
#
# What PostgreSQL itself takes in on its bulk path, the floor under any
# statement the batcher could send:
#
#   loadtest/bench_rows.sh --copy [rows] [batch] [conns]
#                               (defaults: 300000 1000 1)
#   COPY of message-shaped rows (64-byte bodies, fresh seqs over 500 rooms)
#   into the migrated schema, `batch` rows a transaction, from `conns` psql
#   clients at once, on a durable server; with messages' two foreign keys
#   (rooms, people: one key-share look-up per row) and, in a second database,
#   without them. The table is emptied and checkpointed before each run;
#   BENCH_REPS runs of each (default 3), alternating; medians.
#
# Private PostgreSQL and Redis on loopback in a temp dir (scripts/services.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/services.sh"

if [ "${1:-}" = "--store" ]; then
  shift
  secs=${1:-10} conns=${2:-4} batch=${3:-100} rooms=${4:-500}
  parts=${BENCH_PARTITIONS:-8} reps=${BENCH_REPS:-3}
  bin=$root/build/server/parleyd
  store=$root/build/loadtest/rows-store
  [ -x "$bin" ] && [ -x "$store" ] || svc_die "build first (cmake --build build)"
  state=$(mktemp -d /tmp/parley-bench.XXXXXX)
  chmod 755 "$state"
  trap 'svc_pg_stop "$state"; rm -rf "$state"' EXIT
  pg_port=$(svc_free_port)
  svc_pg_start "$state" "$pg_port" "${BENCH_DURABILITY:-durable}"
  su() { svc_pg "$PG_BIN/psql" -qXtA -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -c "$1"; }
  mkdir "$state/sql-flat"
  for f in "$root"/sql/*.sql; do
    case "${f##*/}" in 00[0-9]_* | 01[01]_*) cp "$f" "$state/sql-flat/" ;; esac
  done
  for d in flat part; do su "CREATE DATABASE parley_$d OWNER parley" >/dev/null; done
  base="host=127.0.0.1 port=$pg_port user=parley"
  "$bin" migrate --pg "$base dbname=parley_flat" --sql-dir "$state/sql-flat" >/dev/null
  "$bin" migrate --pg "$base dbname=parley_part" --sql-dir "$root/sql" --partitions "$parts" >/dev/null
  echo "PostgreSQL: fsync=$(su 'SHOW fsync') synchronous_commit=$(su 'SHOW synchronous_commit')" \
    "full_page_writes=$(su 'SHOW full_page_writes')" >&2
  # A warm-up, then statistics, as a live database has them (autovacuum
  # analyzes within a minute): on tables never analyzed the planner serves
  # the batch's retry probe from messages_sender (sender, room, seq) and
  # reads every earlier message of that sender in the room, which made the
  # ceiling measured here a fresh-table artefact (BENCHMARKS.md).
  for d in flat part; do
    "$store" "$base dbname=parley_$d" 2 "$conns" "$batch" "$rooms" >/dev/null
    svc_pg "$PG_BIN/psql" -qXtA -h 127.0.0.1 -p "$pg_port" -U postgres -d "parley_$d" -c "ANALYZE" >/dev/null
  done
  for rep in $(seq 1 "$reps"); do
    for d in flat part; do
      out=$("$store" "$base dbname=parley_$d" "$secs" "$conns" "$batch" "$rooms")
      echo "$out" >&2
      echo "$out" | python3 -c 'import json, sys
r = json.load(sys.stdin); r["schema"] = sys.argv[1]; r["rep"] = int(sys.argv[2]); print(json.dumps(r))' \
        "$d" "$rep" >>"$state/store"
    done
  done
  python3 - "$state/store" "$(su 'SHOW fsync')" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda d, k: statistics.median(r[k] for r in rows if r["schema"] == d)
r0 = rows[0]
print("\nthe send batcher's statement, durable primary (fsync=%s): %d connections, batches of %d"
      " over %d rooms, %.0f s per run, %d runs each (median)" % (
          sys.argv[2], r0["conns"], r0["batch"], r0["rooms"], r0["secs"], len(rows) // 2))
print("| messages table | rows/s | batch p50 ms | batch p99 ms | runs (rows/s) |")
print("|---|---|---|---|---|")
for d in ("flat", "part"):
    n = [r for r in rows if r["schema"] == d]
    label = "one table (before 012)" if d == "flat" else "%d hash partitions" % n[0]["partitions"]
    print("| %s | %.0f | %.1f | %.1f | %s |" % (label, med(d, "rows_per_s"), med(d, "batch_p50_ms"),
          med(d, "batch_p99_ms"), ", ".join("%.0f" % r["rows_per_s"] for r in n)))
print("\npartitioned / one table: %.2f" % (med("part", "rows_per_s") / med("flat", "rows_per_s")))
if any(r["failed"] for r in rows):
    print("some runs failed (see above)")
    sys.exit(1)
PY
  exit 0
fi
if [ "${1:-}" = "--copy" ]; then
  shift
  nrows=${1:-300000} batch=${2:-1000} conns=${3:-1} reps=${BENCH_REPS:-3}
  bin=$root/build/server/parleyd
  [ -x "$bin" ] || svc_die "build first (cmake --build build)"
  state=$(mktemp -d /tmp/parley-bench.XXXXXX)
  chmod 755 "$state"
  trap 'svc_pg_stop "$state"; rm -rf "$state"' EXIT
  pg_port=$(svc_free_port)
  svc_pg_start "$state" "$pg_port" "${BENCH_DURABILITY:-durable}"
  base="host=127.0.0.1 port=$pg_port user=parley"
  q() { svc_pg "$PG_BIN/psql" -qXtA -h 127.0.0.1 -p "$pg_port" -U postgres -d "$1" -c "$2"; }
  echo "PostgreSQL: fsync=$(q postgres 'SHOW fsync') synchronous_commit=$(q postgres 'SHOW synchronous_commit')" \
    "full_page_writes=$(q postgres 'SHOW full_page_writes')" >&2
  for d in fk nofk; do
    q postgres "CREATE DATABASE parley_$d OWNER parley" >/dev/null
    "$bin" migrate --pg "$base dbname=parley_$d" >/dev/null
    "$bin" admin --pg "$base dbname=parley_$d" load-fixture 1000 500 >/dev/null
    # one sender per room, from the room's own workspace
    q "parley_$d" "SELECT r.id, p.id FROM (SELECT id, row_number() OVER () n FROM rooms) r
                   JOIN (SELECT id, row_number() OVER () n FROM people) p ON p.n = r.n" >"$state/pairs.$d"
    python3 - "$state/pairs.$d" "$state/copy.$d" "$nrows" "$batch" "$conns" <<'PY'
import sys
pairs = [l.strip().split("|") for l in open(sys.argv[1]) if l.strip()]
out, rows, batch, conns = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
files = [open("%s.%d" % (out, k), "w") for k in range(conns)]
seq, body = {}, "x" * 64
for b in range(0, rows, batch):
    f = files[(b // batch) % conns]
    f.write("COPY messages (room_id, seq, sender_id, client_msg_id, body, kind) FROM STDIN;\n")
    for i in range(b, min(rows, b + batch)):
        room, person = pairs[i % len(pairs)]
        seq[room] = seq.get(room, 0) + 1
        f.write("%s\t%d\t%s\tc%d\t%s\tmessage\n" % (room, seq[room], person, i, body))
    f.write("\\.\n")
PY
  done
  q parley_nofk "ALTER TABLE messages DROP CONSTRAINT messages_room_id_fkey,
                 DROP CONSTRAINT messages_sender_id_fkey" >/dev/null
  pm=$(head -n 1 "$state/pg/postmaster.pid")
  # PostgreSQL's CPU: the postmaster's own and its reaped children's (each
  # psql's backend exits within the run) plus the children still running
  pg_ticks() {
    { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
      svc_cpu_ticks $(pgrep -P "$pm"); } | awk '{s += $1} END {print s}'
  }
  for rep in $(seq 1 "$reps"); do
    for d in fk nofk; do
      q "parley_$d" "TRUNCATE messages" >/dev/null
      q "parley_$d" "CHECKPOINT" >/dev/null
      t0=$(pg_ticks) s0=$(date +%s.%N)
      for f in "$state/copy.$d".*; do
        svc_pg "$PG_BIN/psql" -qXtA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U parley \
          -d "parley_$d" -f "$f" >/dev/null &
      done
      wait
      s1=$(date +%s.%N)
      sleep 1 # the backends exit and are reaped
      t1=$(pg_ticks)
      n=$(q "parley_$d" "SELECT count(*) FROM messages")
      [ "$n" = "$nrows" ] || svc_die "$d: $n rows of $nrows stored"
      echo "$d $rep $n $s0 $s1 $t0 $t1" | tee -a "$state/copy" >&2
    done
  done
  python3 - "$state/copy" "$batch" "$conns" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
runs = [l.split() for l in open(sys.argv[1])]
tck = int(sys.argv[4])
print("\nCOPY into messages, %s rows a transaction, %s connection(s), durable; medians of %d" % (
    sys.argv[2], sys.argv[3], len(runs) // 2))
print("| messages | rows/s (median) | PostgreSQL CPU µs per row | runs (rows/s) |")
print("|---|---|---|---|")
for d, label in (("fk", "with its foreign keys"), ("nofk", "without its two foreign keys")):
    rs = [r for r in runs if r[0] == d]
    rate = [int(r[2]) / (float(r[4]) - float(r[3])) for r in rs]
    cpu = [(int(r[6]) - int(r[5])) / tck * 1e6 / int(r[2]) for r in rs]
    print("| %s | %.0f | %.1f | %s |" % (label, statistics.median(rate), statistics.median(cpu),
          ", ".join("%.0f" % x for x in rate)))
PY
  exit 0
fi
secs=${1:-10}
clients=${2:-1000}
rooms=${3:-500}
ladder=${BENCH_LADDER:-1 2 5 10 20}
reads_per_msg=${BENCH_READS_PER_MSG:-1}
bin=$root/build/server/parleyd
load=$root/build/loadtest/parley-load
[ -x "$bin" ] && [ -x "$load" ] || svc_die "build first (cmake --build build)"
command -v curl >/dev/null || svc_die "curl is needed to read the gateways' /metrics"
[ -x "$PG_BIN/pgbench" ] || svc_die "pgbench not found beside the PostgreSQL server"
ulimit -n "$(ulimit -Hn)"

svc_bench_env "$bin" "$clients" "$rooms"
"$bin" admin --pg "$conninfo" operator-token "$state/metrics.token" >/dev/null
token=$(cat "$state/metrics.token")
psql_q() { svc_pg "$PG_BIN/psql" -qXtA -h 127.0.0.1 -p "$pg_port" -U parley parley -c "$1"; }
echo "PostgreSQL: fsync=$(psql_q 'SHOW fsync') synchronous_commit=$(psql_q 'SHOW synchronous_commit')" \
  "full_page_writes=$(psql_q 'SHOW full_page_writes')" >&2

# Rows inserted + updated so far in the tables a chat with receipts writes.
# A backend flushes its table statistics when it exits, so this first waits
# until no other backend of parley is left (the gateways have stopped).
pg_rows() {
  for _ in $(seq 1 100); do
    [ "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE usename = 'parley'
                 AND pid <> pg_backend_pid()")" = 0 ] && break
    sleep 0.1
  done
  # messages and seen are hash-partitioned (sql/012): their rows are counted
  # in the partitions, not the parents.
  psql_q "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables
          WHERE relid IN (SELECT oid FROM pg_class WHERE relname IN ('messages', 'read_state', 'seen')
                          UNION ALL
                          SELECT inhrelid FROM pg_inherits
                          WHERE inhparent IN (SELECT oid FROM pg_class
                                              WHERE relname IN ('messages', 'read_state', 'seen')))"
}

# Both gateways' persisted messages + receipts, with the time it was read.
gw_persisted() {
  local t n=0 p v
  t=$(date +%s.%N)
  for p in "$p1" "$p2"; do
    v=$(curl -s -m 2 -H "Authorization: Bearer $token" "http://127.0.0.1:$p/metrics" |
      awk '/^parley_(messages|receipts)_persisted_total / {s += $2} END {printf "%d", s}')
    n=$((n + ${v:-0}))
  done
  echo "$t $n"
}

# step RATE: one load run at RATE msg/s per client; appends a JSON line to
# $results.
results=$state/results
step() {
  local rate=$1 r0 r1 sampler
  r0=$(pg_rows)
  p1=$(svc_free_port)
  p2=$(svc_free_port)
  for g in 1 2; do
    local port=$p1
    [ $g = 2 ] && port=$p2
    svc_gw_start "$state" gw$g "$port" "$bin" "$conninfo" "$redis_port" --log-level warn \
      --per-ip-max 100000 --metrics-token-file "$state/metrics.token"
  done
  : >"$state/samples"
  (while :; do gw_persisted >>"$state/samples"; sleep 0.2; done) &
  sampler=$!
  "$load" --fixture "$state/fixture" --gw "127.0.0.1:$p1" --gw "127.0.0.1:$p2" \
    --rate "$rate" --read-rate "$(python3 -c "print($rate * $reads_per_msg)")" --duration "$secs" \
    --body 64 --sources 16 --json >"$state/out.json" || true
  sleep 0.5
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null || true
  # A gateway with a backlog may outlive the stop's wait (it is killed then).
  svc_gw_stop "$state" gw1 || true
  svc_gw_stop "$state" gw2 || true
  r1=$(pg_rows)
  python3 - "$rate" "$state/out.json" "$state/samples" "$((r1 - r0))" <<'PY' >>"$results"
import json, sys
rate, path, samples, pgrows = float(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
r = json.load(open(path))
s = [tuple(map(float, l.split())) for l in open(samples) if len(l.split()) == 2]
# The span in which the counters moved: from the last sample before the
# first commit to the first sample after the last one.
moved = [i for i in range(1, len(s)) if s[i][1] > s[i - 1][1]]
if moved:
    t0, t1 = s[moved[0] - 1][0], s[moved[-1]][0]
    n = s[moved[-1]][1] - s[moved[0] - 1][1]
else:
    t0, t1, n = 0, 1, 0
span = max(t1 - t0, 1e-3)
print(json.dumps({"rate": rate, "read_rate": r["read_rate"], "span_s": span,
                  "gw_rows": n, "gw_rows_per_s": n / span, "pg_rows": pgrows,
                  "pg_rows_per_s": pgrows / span, "acked": r["acked"], "sent": r["sent"],
                  "reads_acked": r["reads_acked"], "reads": r["reads"], "p99_ms": r["p99_ms"],
                  "read_p99_ms": r["read_p99_ms"], "lost": r["lost"], "errors": r["errors"],
                  "joined": r["joined"], "clients": r["clients"]}))
PY
  tail -n 1 "$results" >&2
}

# A warm-up step, then VACUUM ANALYZE, before anything is measured: on
# tables never analyzed the send batch's retry probe may be served by the
# wrong index, so the first step ran several times slower than later ones
# (BENCHMARKS.md, "The first run of a bench"). A live database has
# statistics within a minute of its first writes (autovacuum).
results=$state/warmup
full_secs=$secs
secs=3
step "${ladder%% *}" 2>/dev/null
secs=$full_secs
svc_pg "$PG_BIN/psql" -qXtA -h 127.0.0.1 -p "$pg_port" -U postgres -d parley -c "VACUUM ANALYZE" >/dev/null
results=$state/results

prev=0
for rate in $ladder; do
  step "$rate"
  read -r now whole < <(tail -n 1 "$state/results" | python3 -c 'import json, sys
r = json.load(sys.stdin)
print(int(r["gw_rows_per_s"]), int(r["acked"] == r["sent"] and r["reads_acked"] == r["reads"]))')
  [ "$now" -gt "$prev" ] && [ "$whole" = 1 ] || break
  prev=$now
done

# The peers' way: each row its own transaction, on the same server.
psql_q "CREATE TABLE IF NOT EXISTS peer_rows (room_id uuid NOT NULL, seq bigint NOT NULL,
  sender_id uuid NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room_id, seq))" >/dev/null
cat >"$state/one_row.sql" <<'SQL'
\set seq random(1, 1000000000)
INSERT INTO peer_rows (room_id, seq, sender_id, body)
  VALUES (gen_random_uuid(), :seq, gen_random_uuid(), repeat('x', 64));
SQL
# At least 10 s: 64 connections take seconds to open on a busy machine.
for c in 1 16 64; do
  out=$(svc_pg "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$pg_port" -U parley -c "$c" -j 2 -T "$((secs > 10 ? secs : 10))" \
    -f "$state/one_row.sql" parley 2>&1) || { echo "$out" >&2; continue; }
  tps=$(echo "$out" | awk '/^tps = / {print $3; exit}')
  echo "{\"pgbench_clients\": $c, \"rows_per_s\": ${tps:-0}}" >>"$state/pgbench"
  echo "pgbench, one row per transaction, $c connections: $tps rows/s" >&2
done

python3 - "$state/results" "$state/pgbench" "$secs" "$clients" "$rooms" "$reads_per_msg" \
  "$(psql_q 'SHOW fsync')" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
peer = [json.loads(l) for l in open(sys.argv[2])] if __import__("os").path.exists(sys.argv[2]) else []
secs, clients, rooms, rpm, fsync = sys.argv[3:8]
print("\npersisted rows per second (messages + receipts), PostgreSQL fsync=%s; %s clients in %s rooms,"
      " %s s per step, %s read report(s) per message" % (fsync, clients, rooms, secs, rpm))
print("| msg/s per client | reads/s per client | rows/s (gateways' counters) | row writes/s (pg_stat_user_tables) |"
      " message p99 ms | receipt p99 ms | lost | errors |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| %g | %g | %.0f | %.0f | %.1f | %.1f | %d | %d |" % (
        r["rate"], r["read_rate"], r["gw_rows_per_s"], r["pg_rows_per_s"], r["p99_ms"],
        r["read_p99_ms"], r["lost"], r["errors"]))
best = max(r["gw_rows_per_s"] for r in rows) if rows else 0
print("\ncommit per row (pgbench, one INSERT per transaction, same server):")
print("| connections | rows/s | group commit / this |")
print("|---|---|---|")
for p in peer:
    print("| %d | %.0f | %s |" % (p["pgbench_clients"], p["rows_per_s"],
                                 ("%.1f×" % (best / p["rows_per_s"])) if p["rows_per_s"] else "–"))
PY
