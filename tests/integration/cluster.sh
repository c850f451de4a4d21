#!/usr/bin/env bash
# Parley on a local Redis Cluster (three masters, three replicas; sharded
# pub/sub, --redis-cluster): two gateways, parley-load's chat through both,
# and every member must see every message once and in order:
#   flow      the chat alone;
#   migrate   the slots of the rooms' channels move to another master under
#             load (CLUSTER SETSLOT IMPORTING / MIGRATING / NODE): the old
#             owner drops the subscriptions, the gateways subscribe again on
#             the new one and fetch the gap from PostgreSQL;
#   failover  a master is killed under load and its replica promoted.
# An environment of its own (PostgreSQL without fsync, the cluster, the
# gateways), stopped on exit. CLUSTER_ONLY=flow|migrate|failover runs one.
set -euo pipefail
load=${1:?parley-load binary}
here=$(cd "$(dirname "$0")" && pwd)
: "${PARLEYD:?PARLEYD must name the parleyd binary}"
# shellcheck source=../../scripts/services.sh
. "$here/../../scripts/services.sh"
state=$(mktemp -d /tmp/parley-cluster.XXXXXX)
chmod 755 "$state"
finish() {
  local rc=$?
  svc_gw_stop "$state" gw1 || rc=1
  svc_gw_stop "$state" gw2 || rc=1
  # a sanitizer's or valgrind's report in a gateway's log fails the test
  if grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:\|ERROR SUMMARY: [1-9]" \
    "$state"/gw*.log 2>/dev/null; then
    grep -h -B 2 -A 30 "ERROR: \|runtime error:\|ERROR SUMMARY: [1-9]" "$state"/gw*.log >&2 || true
    rc=1
  fi
  [ $rc = 0 ] || { tail -n 30 "$state/gw1.log" "$state/gw2.log" >&2 || true; }
  [ -z "${CLUSTER_LOGS:-}" ] || cp "$state"/gw*.log "$state"/moves.log "$CLUSTER_LOGS"/ 2>/dev/null || true
  svc_redis_cluster_stop "$state"
  svc_pg_stop "$state"
  rm -rf "$state"
  exit $rc
}
trap finish EXIT
pg_port=$(svc_free_port)
svc_pg_start "$state" "$pg_port" nondurable
base=$(svc_cluster_base)
svc_redis_cluster_start "$state" "$base"
conninfo="host=127.0.0.1 port=$pg_port dbname=parley user=parley"
"$PARLEYD" migrate --pg "$conninfo" >"$state/migrate.log"
# 9 rooms of 5: client n is in room n % 9 and on gateway n % 2, so every
# room has members on both gateways (with an even room count it would not)
"$PARLEYD" admin --pg "$conninfo" load-fixture 45 9 >"$state/fixture"
"$PARLEYD" admin --pg "$conninfo" operator-token "$state/metrics.token" >/dev/null
seeds="127.0.0.1:$base,127.0.0.1:$((base + 1))"
gw1=$(svc_free_port)
gw2=$(svc_free_port)
for gw in "gw1 $gw1" "gw2 $gw2"; do
  # shellcheck disable=SC2086
  svc_gw_start "$state" ${gw% *} ${gw#* } "$PARLEYD" "$conninfo" "$base" \
    --redis-cluster "$seeds" --db-timeout-ms 2000 --log-level "${GW_LOG_LEVEL:-info}" \
    --metrics-token-file "$state/metrics.token"
done

# The recovery work both gateways did so far: gap fetches, replayed
# messages (what a move or a failover costs, printed per phase).
recovery() {
  for p in $gw1 $gw2; do
    curl -s --max-time 5 -H "Authorization: Bearer $(cat "$state/metrics.token")" "http://127.0.0.1:$p/metrics"
  done | awk '/^parley_recovery_gap_fetches_total/ {g += $2} /^parley_recovery_replayed_messages_total/ {m += $2}
    END {printf "%d %d\n", g, m}'
}
recovery_since() { # what "gaps msgs" before
  local now
  now=$(recovery)
  echo "$1: recovery work: $((${now% *} - ${2% *})) gap fetches, $((${now#* } - ${2#* })) replayed messages"
}

check() { # json-file name
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = {k: r[k] for k in ("lost", "dups", "out_of_order", "dead", "unrecovered", "errors") if r[k]}
assert not bad, "%s: %s" % (sys.argv[2], bad)
assert r["joined"] == r["clients"] == 45, r
assert r["acked"] == r["sent"] > 100, r
assert r["delivered"] == r["expected"] == r["acked"] * 5, r
print("%s ok: %d sent, %d delivered, 0 lost, 0 duplicated, 0 reordered, p99 %.1f ms"
      % (sys.argv[2], r["sent"], r["delivered"], r["p99_ms"]))
PY
}
run_load() { # name seconds
  "$load" --fixture "$state/fixture" --gw "127.0.0.1:$gw1" --gw "127.0.0.1:$gw2" \
    --scenario chat --rate 5 --duration "$2" --sources 16 --json >"$state/$1.json"
}
rcli() { redis-cli -p "$@"; }
node_id() { rcli "$1" cluster myid; }
masters() { for p in $(cat "$state/rc.ports"); do
  [ -f "$state/rc-$p/redis.pid" ] && rcli "$p" role 2>/dev/null | head -n 1 | grep -q '^master$' && echo "$p"
done; return 0; }
# The port of the master serving a slot in `cluster slots` as redis-cli
# prints it off a terminal (one value a line; each range is start, end, then
# host, port, id per node, master first). awk, not python: this runs in
# loops, and a python start costs 0.4 s on some machines.
owner_in() { # slot  (cluster slots on stdin)
  awk -v s="$1" '{ v[NR] = $0 } END {
    for (i = 1; i + 4 <= NR; i++)
      if (v[i] ~ /^[0-9]+$/ && v[i + 1] ~ /^[0-9]+$/ && v[i + 2] !~ /^[0-9]+$/) {
        if (v[i] + 0 <= s + 0 && s + 0 <= v[i + 1] + 0) { print v[i + 3]; exit }
        i += 4
      } }'
}
# The port of the master serving slot, asked of a live master.
slot_owner() { # slot
  rcli "$(masters | head -n 1)" cluster slots | owner_in "$1"
}

# Moves a slot from src to dst the way redis-cli --cluster reshard does:
# IMPORTING on dst, MIGRATING on src, the keys, then NODE on dst first (it
# bumps dst's config epoch, so that no gossip from src still claiming the
# slot can win it back), then on the others; waits until every master
# agrees. NODE sent in another order races the gossip (in CI a master named
# the old owner again right after every master had been told the new one).
move_slot() { # slot src dst src_id dst_id masters (asked once by the caller: moves go under load)
  local slot=$1 src=$2 dst=$3 src_id=$4 dst_id=$5 ms=$6 m
  rcli "$dst" cluster setslot "$slot" importing "$src_id" >/dev/null
  rcli "$src" cluster setslot "$slot" migrating "$dst_id" >/dev/null
  # keys of that slot (none are expected: the rooms' keys are tagged by room id)
  while read -r k; do
    [ -n "$k" ] && rcli "$src" migrate 127.0.0.1 "$dst" "$k" 0 5000 >/dev/null
  done < <(rcli "$src" cluster getkeysinslot "$slot" 100)
  for m in $dst $(echo "$ms" | grep -v "^$dst\$"); do
    echo "slot $slot $src->$dst at $m: $(rcli "$m" cluster setslot "$slot" node "$dst_id")"
  done >>"$state/moves.log"
  for _ in $(seq 1 100); do
    for m in $ms; do
      [ "$(rcli "$m" cluster slots | owner_in "$slot")" = "$dst" ] || break
      m=
    done
    [ -z "$m" ] && return 0
    sleep 0.05
  done
  echo "slot $slot did not settle on $dst" >&2
  exit 1
}

rooms=$(awk '/^room /{print $2}' "$state/fixture")
# Both gateways hold the control channel ("ctl", sharded like the rooms') on
# the master that owns its slot now (a moved slot or a failover included).
ctl_slot=$(rcli "$base" cluster keyslot ctl)
ctl_held() { # what
  local owner n=0
  for _ in $(seq 1 50); do
    owner=$(slot_owner "$ctl_slot")
    n=$(rcli "$owner" pubsub shardnumsub ctl | tail -n 1)
    [ "$n" = 2 ] && { echo "$1: both gateways subscribed to ctl on $owner"; return 0; }
    sleep 0.1
  done
  echo "$1: ctl has $n subscribers on its master $owner, not 2" >&2
  exit 1
}

case "${CLUSTER_ONLY:-flow}" in flow | all)
  r0=$(recovery)
  run_load flow 4 &
  lp=$!
  # bus_call routes by key: every room's presence set is written on the
  # master that owns its hash tag's slot (a wrong node answers MOVED);
  # counted while the members are there (the last to leave a gateway
  # removes its entries, and an empty set is no key)
  np=0
  for _ in $(seq 1 30); do
    sleep 0.2
    np=0
    for m in $(masters); do
      np=$((np + $(rcli "$m" --scan --pattern 'parley:presence:{*}' | wc -l)))
    done
    [ "$np" = 9 ] && break
  done
  wait $lp || echo "parley-load exited non-zero"
  check "$state/flow.json" flow
  recovery_since flow "$r0"
  echo "flow: $np rooms' presence sets on the cluster"
  [ "$np" = 9 ] || { echo "expected the 9 rooms' presence sets, found $np" >&2; exit 1; }
  ctl_held flow
  ;;
esac

case "${CLUSTER_ONLY:-migrate}" in migrate | all)
  # The plan first (each room channel's slot goes to another master), so
  # that the moves themselves are quick and all happen under load.
  plan=()
  for room in $rooms; do
    slot=$(rcli "$base" cluster keyslot "room:$room")
    src=$(slot_owner "$slot")
    dst=$(masters | grep -v "^$src\$" | head -n 1)
    plan+=("$slot $src $dst $(node_id "$src") $(node_id "$dst")")
  done
  ms=$(masters)
  r0=$(recovery)
  run_load migrate 10 &
  lp=$!
  sleep 2
  moved=0
  for step in "${plan[@]}"; do
    read -r slot src dst src_id dst_id <<<"$step"
    move_slot "$slot" "$src" "$dst" "$src_id" "$dst_id" "$ms"
    moved=$((moved + 1))
  done
  kill -0 $lp 2>/dev/null || { echo "the load ended before the moves did" >&2; exit 1; }
  echo "migrate: $moved room channel slots moved under load"
  wait $lp || echo "parley-load exited non-zero"
  check "$state/migrate.json" migrate
  recovery_since migrate "$r0"
  # the gateways did see their subscriptions dropped and took them up again
  n=$(cat "$state/gw1.log" "$state/gw2.log" | grep -c 'redis slot moved, resubscribing' || true)
  echo "migrate: $n subscriptions dropped by the old owner and renewed"
  [ "$n" -ge "$moved" ] || { echo "expected at least $moved renewed subscriptions" >&2; exit 1; }
  ;;
esac

case "${CLUSTER_ONLY:-failover}" in failover | all)
  # the master serving the most rooms' channels, found before the load
  owners=$(for room in $rooms; do slot_owner "$(rcli "$base" cluster keyslot "room:$room")"; done)
  victim=$(echo "$owners" | sort | uniq -c | sort -rn | awk 'NR == 1 {print $2}')
  on_victim=$(echo "$owners" | grep -c "^$victim\$" || true)
  # The control channel's slot moves to the victim first (the gateways
  # follow it), so that the failover takes the control channel too.
  ctl_owner=$(slot_owner "$ctl_slot")
  if [ "$ctl_owner" != "$victim" ]; then
    move_slot "$ctl_slot" "$ctl_owner" "$victim" "$(node_id "$ctl_owner")" "$(node_id "$victim")" "$(masters)"
  fi
  ctl_held "ctl's slot on the master to be killed"
  r0=$(recovery)
  run_load failover 12 &
  lp=$!
  sleep 3
  kill -0 $lp 2>/dev/null || { echo "the load ended before the kill" >&2; exit 1; }
  svc_redis_cluster_node_stop "$state" "$victim"
  echo "failover: master $victim killed (it served $on_victim of the 9 rooms' channels)"
  t0=$(date +%s.%N)
  svc_redis_cluster_wait "$state" 30 || { echo "cluster did not recover" >&2; exit 1; }
  echo "failover: cluster ok again after $(python3 -c "print('%.1f s' % ($(date +%s.%N) - $t0))")"
  wait $lp || echo "parley-load exited non-zero"
  check "$state/failover.json" failover
  recovery_since failover "$r0"
  [ "$on_victim" -ge 1 ] || { echo "the killed master served no room" >&2; exit 1; }
  ctl_held failover
  for g in gw1 gw2; do
    grep -q 'redis shard no longer a master' "$state/$g.log" ||
      { echo "$g did not move off the killed master" >&2; exit 1; }
  done
  ;;
esac
