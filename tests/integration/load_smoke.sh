#!/usr/bin/env bash
# A short parley-load run against the integration environment: a few hundred
# messages in the chat and reconnect scenarios must arrive with zero loss,
# zero duplicates, zero out-of-order, and a sane report.
set -euo pipefail
load=${1:?parley-load binary}
# shellcheck disable=SC1090
. "${PARLEY_ENV_FILE:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PARLEYD" admin --pg "$PARLEY_PG" load-fixture 40 8 >"$work/fixture"
check() { # json-file scenario
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = {k: r[k] for k in ("lost", "dups", "out_of_order", "dead", "unrecovered", "errors") if r[k]}
assert not bad, "%s: %s" % (sys.argv[2], bad)
assert r["joined"] == r["clients"] == 40, r
assert r["acked"] == r["sent"] > 100, r
assert r["delivered"] == r["expected"] == r["acked"] * 5, r   # rooms of 5
assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], r
if sys.argv[2] == "reconnect": assert r["reconnects"] >= 40, r
if sys.argv[2] == "receipts": assert r["reads_acked"] == r["reads"] > 300 and r["read_p99_ms"] > 0, r
print("%s ok: %d sent, %d delivered, p99 %.1f ms" % (sys.argv[2], r["sent"], r["delivered"], r["p99_ms"]))
PY
}
for s in chat reconnect receipts; do
  scenario=$s extra=()
  # receipts: the chat load plus read reports, whose events take seqs too
  [ "$s" = receipts ] && scenario=chat extra=(--read-rate 5)
  "$load" --fixture "$work/fixture" --gw "127.0.0.1:$GW1_PORT" --gw "127.0.0.1:$GW2_PORT" \
    --scenario "$scenario" --rate 5 --duration 3 --reconnect-every 1 --sources 16 "${extra[@]}" \
    --csv "$work/$s.csv" --json >"$work/$s.json"
  check "$work/$s.json" "$s"
done
# The plot of those runs' latency histograms is a PNG image.
"$(dirname "$0")/../../loadtest/plot.sh" "$work/latency.png" "smoke" \
  "chat=$work/chat.csv" "reconnect=$work/reconnect.csv" >/dev/null
[ "$(head -c 8 "$work/latency.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
  { echo "plot: not a PNG" >&2; exit 1; }
[ "$(stat -c %s "$work/latency.png")" -gt 2000 ] || { echo "plot: image too small" >&2; exit 1; }
echo "plot ok: $(stat -c %s "$work/latency.png") bytes"
