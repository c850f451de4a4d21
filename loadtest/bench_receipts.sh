#!/usr/bin/env bash
# Receipts benchmark: how many read reports per second Parley persists and
# acknowledges with 1,000 clients each reporting "read up to" 5 times a second
# across 100 rooms while messages flow (1 per client per second), against the
# single-row baseline (--batch-max 1: every receipt its own transaction),
# interleaved in one run on this machine; medians of the rounds.
#
#   loadtest/bench_receipts.sh [rounds] [seconds] [clients] [rooms]   (defaults: 3 15 1000 100)
#
# Private PostgreSQL and Redis on loopback in a temp dir; two gateways per
# system; parley-load spreads its connections over 16 source addresses.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/services.sh"
rounds=${1:-3}
secs=${2:-15}
clients=${3:-1000}
rooms=${4:-100}
bin=$root/build/server/parleyd
load=$root/build/loadtest/parley-load
[ -x "$bin" ] && [ -x "$load" ] || svc_die "build first (cmake --build build)"

svc_bench_env "$bin" "$clients" "$rooms"

run() { # name flags...
  local name=$1 p1 p2
  shift
  p1=$(svc_free_port)
  p2=$(svc_free_port)
  svc_gw_start "$state" gw1 "$p1" "$bin" "$conninfo" "$redis_port" --log-level warn --per-ip-max 100000 "$@"
  svc_gw_start "$state" gw2 "$p2" "$bin" "$conninfo" "$redis_port" --log-level warn --per-ip-max 100000 "$@"
  "$load" --fixture "$state/fixture" --gw "127.0.0.1:$p1" --gw "127.0.0.1:$p2" \
    --rate 1 --read-rate 5 --duration "$secs" --body 64 --sources 16 --json >"$state/out.json" || true
  python3 - "$name" "$state/out.json" <<'PY' >>"$state/results"
import json, sys
r = json.load(open(sys.argv[2]))
r["name"] = sys.argv[1]
print(json.dumps(r))
PY
  tail -n 1 "$state/results" | cut -c1-160 >&2
  svc_gw_stop "$state" gw1
  svc_gw_stop "$state" gw2
}

for _ in $(seq 1 "$rounds"); do
  run parley
  run "batch-1" --batch-max 1
done

python3 - "$state/results" "$rounds" "$secs" "$clients" "$rooms" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = ["parley", "batch-1"]
keys = [("reads_acked_per_s", "receipts acked/s", "%.0f"), ("read_p50_ms", "receipt p50 ms", "%.2f"),
        ("read_p99_ms", "receipt p99 ms", "%.2f"), ("acked_per_s", "messages acked/s", "%.0f"),
        ("p99_ms", "message delivery p99 ms", "%.2f"), ("errors", "errors", "%d"),
        ("lost", "lost", "%d")]
med = {n: {k: statistics.median(r[k] for r in rows if r["name"] == n) for k, _, _ in keys}
       for n in names}
print("receipts benchmark: %s rounds x %ss, %s clients in %s rooms, 1 msg/s + 5 reads/s each"
      % (sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]))
print("| | " + " | ".join(names) + " | parley / batch-1 |")
print("|---|" + "---|" * (len(names) + 1))
for k, label, fmt in keys:
    a, b = med["parley"][k], med["batch-1"][k]
    ratio = ("%.2f" % (a / b)) if b else "-"
    print("| %s | %s | %s | %s |" % (label, fmt % a, fmt % b, ratio))
PY
