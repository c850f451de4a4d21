#!/usr/bin/env bash
# Guidelines benchmark: the full server's message path with the workspace's
# communication guidelines on (2,000 words, 20 regular expressions, every
# personal-data detector, links; mask/flag actions so every message is still
# delivered) versus off, and the same rules plus a rate limit (which counts
# each person's pace in Redis on every send: one more round trip), interleaved
# in one run on this machine; medians. Figures: gateway CPU and Redis CPU per
# acknowledged message, acked/s, delivery p50/p99.
#
#   loadtest/bench_guidelines.sh [rounds] [seconds] [clients] [rooms] [rate]
#                                (defaults: 3 15 1000 100 2)
#
# Private PostgreSQL and Redis on loopback in a temp dir; two gateways.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/services.sh"
rounds=${1:-3}
secs=${2:-15}
clients=${3:-1000}
rooms=${4:-100}
rate=${5:-2}
bin=$root/build/server/parleyd
load=$root/build/loadtest/parley-load
[ -x "$bin" ] && [ -x "$load" ] || svc_die "build first (cmake --build build)"

svc_bench_env "$bin" "$clients" "$rooms"
# The rule set of gl-bench's figure: terms that ordinary text does not hit.
python3 - "$state/rules-rate.json" >"$state/rules.json" <<'PY'
import json, random, sys
random.seed(7)
words = ["".join(random.choice("bcdfghjklmnpqrstvwxz") for _ in range(7)) for _ in range(2000)]
rules = [{"id": "words", "kind": "words", "terms": words, "action": "mask"},
         {"id": "pii", "kind": "pii", "detect": ["email", "phone", "card", "iban"], "action": "redact"},
         {"id": "links", "kind": "links", "action": "flag"}]
rules += [{"id": "re%d" % i, "kind": "regex", "pattern": "zz%d[a-q]{2,5}x?y+" % i, "action": "flag"}
          for i in range(20)]
print(json.dumps({"rules": rules}))
rules.append({"id": "rate", "kind": "rate", "max": 100000, "action": "flag"})
open(sys.argv[1], "w").write(json.dumps({"rules": rules}))
PY
psql_q() { psql -q -X "$conninfo" -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }

run() { # name
  local name=$1 p1 p2 c0 c1
  p1=$(svc_free_port)
  p2=$(svc_free_port)
  [ -f "$state/metrics.token" ] || "$bin" admin --pg "$conninfo" operator-token "$state/metrics.token"
  local mt=(--metrics-token-file "$state/metrics.token")
  svc_gw_start "$state" gw1 "$p1" "$bin" "$conninfo" "$redis_port" --log-level warn --per-ip-max 100000 "${mt[@]}"
  svc_gw_start "$state" gw2 "$p2" "$bin" "$conninfo" "$redis_port" --log-level warn --per-ip-max 100000 "${mt[@]}"
  c0=$(svc_cpu_ticks "$(cat "$state/gw1.pid")" "$(cat "$state/gw2.pid")")
  r0=$(svc_cpu_ticks "$(cat "$state/redis.pid")")
  "$load" --fixture "$state/fixture" --gw "127.0.0.1:$p1" --gw "127.0.0.1:$p2" \
    --rate "$rate" --duration "$secs" --body 500 --sources 16 --json >"$state/out.json" || true
  c1=$(svc_cpu_ticks "$(cat "$state/gw1.pid")" "$(cat "$state/gw2.pid")")
  r1=$(svc_cpu_ticks "$(cat "$state/redis.pid")")
  # the gateways' own counts: that the rules (and the pace) were applied
  python3 - "$state/metrics.token" "$p1" "$p2" >"$state/metrics.json" <<'PY'
import json, sys, urllib.request
m = {}
token = open(sys.argv[1]).read().strip()
for port in sys.argv[2:]:
    req = urllib.request.Request("http://127.0.0.1:%s/metrics" % port,
                                 headers={"Authorization": "Bearer " + token})
    for line in urllib.request.urlopen(req).read().decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            m[k] = m.get(k, 0) + float(v)
print(json.dumps(m))
PY
  python3 - "$name" "$state/out.json" "$((c1 - c0))" "$(getconf CLK_TCK)" "$((r1 - r0))" "$state/metrics.json" <<'PY' >>"$state/results"
import json, sys
r = json.load(open(sys.argv[2]))
m = json.load(open(sys.argv[6]))
r["name"] = sys.argv[1]
r["gl_checks"] = m.get("parley_guideline_checks_total", 0)
r["gl_compiles"] = m.get("parley_guideline_compiles_total", 0)
r["pace_checks"] = m.get('parley_pace_checks_total{outcome="counted"}', 0)
r["gw_cpu_us_per_msg"] = int(sys.argv[3]) / int(sys.argv[4]) * 1e6 / max(r["acked"], 1)
r["redis_cpu_us_per_msg"] = int(sys.argv[5]) / int(sys.argv[4]) * 1e6 / max(r["acked"], 1)
print(json.dumps(r))
PY
  tail -n 1 "$state/results" | python3 -c 'import json, sys; r = json.load(sys.stdin); print("%(name)s: acked %(acked)d, gateway %(gw_cpu_us_per_msg).1f us/msg, redis %(redis_cpu_us_per_msg).1f us/msg, p99 %(p99_ms).2f ms, checks %(gl_checks)d, compiles %(gl_compiles)d, paced %(pace_checks)d" % r)' >&2
  svc_gw_stop "$state" gw1
  svc_gw_stop "$state" gw2
}

for _ in $(seq 1 "$rounds"); do
  psql_q "DELETE FROM guidelines"
  run off
  psql_q "INSERT INTO guidelines (workspace_id, rules) SELECT id, '$(cat "$state/rules.json")'::jsonb FROM workspaces"
  run on
  psql_q "UPDATE guidelines SET rules = '$(cat "$state/rules-rate.json")'::jsonb"
  run rate
done

python3 - "$state/results" "$rounds" "$secs" "$clients" "$rooms" "$rate" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = ["off", "on", "rate"]
keys = [("gw_cpu_us_per_msg", "gateway CPU µs per message", "%.1f"),
        ("redis_cpu_us_per_msg", "Redis CPU µs per message", "%.1f"),
        ("acked_per_s", "messages acked/s", "%.0f"), ("delivered_per_s", "deliveries/s", "%.0f"),
        ("p50_ms", "delivery p50 ms", "%.2f"), ("p99_ms", "delivery p99 ms", "%.2f"),
        ("errors", "errors", "%d"), ("lost", "lost", "%d"),
        ("gl_checks", "messages checked by the guidelines", "%d"),
        ("gl_compiles", "rule sets compiled (both gateways)", "%d"),
        ("pace_checks", "messages paced in Redis", "%d")]
med = {n: {k: statistics.median(r[k] for r in rows if r["name"] == n) for k, _, _ in keys}
       for n in names}
print("guidelines benchmark: %s rounds x %ss, %s clients in %s rooms, %s msg/s each, 500-byte bodies"
      % tuple(sys.argv[2:7]))
print("| | guidelines off | guidelines on | on - off | on + rate limit | rate - on |")
print("|---|---|---|---|---|---|")
for k, label, fmt in keys:
    a, b, c = med["off"][k], med["on"][k], med["rate"][k]
    print("| %s | %s | %s | %s | %s | %s |" % (label, fmt % a, fmt % b, fmt % (b - a), fmt % c, fmt % (c - b)))
PY
