#!/usr/bin/env bash
# Parley benchmark: the gateway core under chat load, against a baseline
# measured in the same run, interleaved (ours, baseline, ours, ...).
#
#   loadtest/bench.sh [rounds] [rate per client] [seconds]     (defaults: 3 50 10)
#
# Starts a private PostgreSQL and Redis (loopback, temp dir), two parleyd
# gateways, 200 clients in 20 rooms of 10 (parley-load), and reports the
# median of each figure over the rounds. The baseline is the same gateway
# with the write batcher off (--batch-max 1: one transaction per message).
# Needs a built tree (scripts/dev test or cmake --build build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/services.sh"
rounds=${1:-3}
rate=${2:-50}
secs=${3:-10}
bin=$root/build/server/parleyd
load=$root/build/loadtest/parley-load
[ -x "$bin" ] && [ -x "$load" ] || svc_die "build first (cmake --build build)"

state=$(mktemp -d /tmp/parley-bench.XXXXXX)
chmod 755 "$state"
cleanup() {
  svc_gw_stop "$state" gw1 || true
  svc_gw_stop "$state" gw2 || true
  svc_redis_stop "$state"
  svc_pg_stop "$state"
  rm -rf "$state"
}
trap cleanup EXIT
pg_port=$(svc_free_port)
redis_port=$(svc_free_port)
svc_pg_start "$state" "$pg_port"
svc_redis_start "$state" "$redis_port"
conninfo="host=127.0.0.1 port=$pg_port dbname=parley user=parley"
"$bin" migrate --pg "$conninfo" >/dev/null
"$bin" admin --pg "$conninfo" load-fixture 200 20 >"$state/fixture"

run_one() { # config-name flags...
  local name=$1
  shift
  local p1 p2
  p1=$(svc_free_port)
  p2=$(svc_free_port)
  svc_gw_start "$state" gw1 "$p1" "$bin" "$conninfo" "$redis_port" --log-level warn "$@"
  svc_gw_start "$state" gw2 "$p2" "$bin" "$conninfo" "$redis_port" --log-level warn "$@"
  local pids="$(cat "$state/gw1.pid") $(cat "$state/gw2.pid")"
  local cpu0 cpu1
  cpu0=$(for p in $pids; do cat "/proc/$p/stat"; done | awk "{s+=\$14+\$15} END {print s}")
  "$load" --fixture "$state/fixture" --gw "127.0.0.1:$p1" --gw "127.0.0.1:$p2" \
    --rate "$rate" --duration "$secs" --body 64 --json >"$state/out.json" || true
  cpu1=$(for p in $pids; do cat "/proc/$p/stat"; done | awk "{s+=\$14+\$15} END {print s}")
  svc_gw_stop "$state" gw1
  svc_gw_stop "$state" gw2
  python3 - "$name" "$state/out.json" "$((cpu1 - cpu0))" "$(getconf CLK_TCK)" <<'PY' >>"$state/results"
import json, sys
name, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(path))
r["name"] = name
r["server_cpu_us_per_delivery"] = ticks / hz * 1e6 / max(r["delivered"], 1)
print(json.dumps(r))
PY
  tail -n 1 "$state/results" >&2
}

for i in $(seq 1 "$rounds"); do
  run_one parley
  run_one "baseline (batch-max 1)" --batch-max 1
done

python3 - "$state/results" "$rounds" "$rate" "$secs" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = []
for r in rows:
    if r["name"] not in names: names.append(r["name"])
keys = [("acked_per_s", "persisted msg/s", "%.0f"), ("delivered_per_s", "deliveries/s", "%.0f"),
        ("p50_ms", "p50 ms", "%.2f"), ("p99_ms", "p99 ms", "%.2f"), ("max_ms", "max ms", "%.1f"),
        ("server_cpu_us_per_delivery", "gateway CPU µs/delivery", "%.2f"),
        ("lost", "lost", "%d"), ("gaps", "gaps", "%d"), ("dups", "dups", "%d"), ("errors", "errors", "%d")]
med = {n: {k: statistics.median([r[k] for r in rows if r["name"] == n]) for k, _, _ in keys} for n in names}
print("\n%d rounds, 200 clients, 20 rooms of 10, 2 gateways, %s msg/s per client offered, %s s each, 64-byte bodies; medians" % (int(sys.argv[2]), sys.argv[3], sys.argv[4]))
print("| figure | " + " | ".join(names) + " | ratio |")
print("|---|" + "---|" * (len(names) + 1))
for k, label, fmt in keys:
    a, b = med[names[0]][k], med[names[1]][k]
    ratio = ("%.2f×" % (a / b)) if b else "–"
    print("| %s | %s | %s | %s |" % (label, fmt % a, fmt % b, ratio))
PY
