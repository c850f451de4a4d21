#!/usr/bin/env bash
# A short parley-load run against the integration environment: a few hundred
# messages in the chat, reconnect, receipts and moderation scenarios (and the
# chat load split over two generator processes) must arrive with zero loss,
# zero duplicates, zero out-of-order, and a sane report.
#
# The suite's shared environment runs PostgreSQL without fsync; this test is
# the pass that runs durable (fsync, synchronous_commit and full_page_writes
# on, as `scripts/dev run` and the benchmarks do): it starts an environment
# of its own with env.sh, so group commits here wait for real flushes.
set -euo pipefail
load=${1:?parley-load binary}
here=$(cd "$(dirname "$0")" && pwd)
: "${PARLEYD:?PARLEYD must name the parleyd binary}"
work=$(mktemp -d /tmp/parley-smoke.XXXXXX)
chmod 755 "$work"
finish() {
  local rc=$?
  # stop also fails on sanitizer or valgrind reports in the gateways' logs.
  "$here/env.sh" "$work/env" stop >"$work/stop.log" 2>&1 || { cat "$work/stop.log" >&2; rc=1; }
  rm -rf "$work"
  exit $rc
}
trap finish EXIT
PARLEY_PG_DURABILITY=durable "$here/env.sh" "$work/env" start >"$work/start.log" 2>&1 ||
  { cat "$work/start.log" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/env/env"
durability=$(psql -qXtA "$PARLEY_PG" -c "SELECT current_setting('fsync') || ' ' ||
  current_setting('synchronous_commit') || ' ' || current_setting('full_page_writes')")
[ "$durability" = "on on on" ] ||
  { echo "PostgreSQL is not durable (fsync synchronous_commit full_page_writes: $durability)" >&2; exit 1; }
echo "PostgreSQL durable: fsync, synchronous_commit, full_page_writes on"
"$PARLEYD" admin --pg "$PARLEY_PG" load-fixture 40 8 >"$work/fixture"
# The moderation scenario's workspace gets the rule set of loadtest/README.md
# before any of its rooms is used (a gateway compiles a room's rules at its
# first send).
"$PARLEYD" admin --pg "$PARLEY_PG" load-fixture 40 8 >"$work/modfixture"
room=$(awk '/^room /{print $2; exit}' "$work/modfixture")
psql -qX -v ON_ERROR_STOP=1 "$PARLEY_PG" -c "INSERT INTO guidelines (workspace_id, rules)
  SELECT workspace_id, '{\"rules\": [
    {\"id\": \"load-mask\", \"kind\": \"words\", \"terms\": [\"zqmaskword\"], \"action\": \"mask\"},
    {\"id\": \"load-reject\", \"kind\": \"words\", \"terms\": [\"zqrejectword\"], \"action\": \"reject\"},
    {\"id\": \"load-flag\", \"kind\": \"words\", \"terms\": [\"zqflagword\"], \"action\": \"flag\"}]}'::jsonb
  FROM rooms WHERE id = '$room'" >/dev/null
check() { # json-file scenario
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = sys.argv[2]
bad = {k: r[k] for k in ("lost", "dups", "out_of_order", "dead", "unrecovered", "errors", "leaks") if r[k]}
assert not bad, "%s: %s" % (s, bad)
assert r["joined"] == r["clients"] == 40, r
if s == "moderation":
    # one send in ten is refused by the reject rule; the rest are stored
    assert r["rejected"] > 20 and r["acked"] + r["rejected"] == r["sent"] > 100, r
    assert 0.05 < r["rejected"] / r["sent"] < 0.15, r
    # every delivery of a send with the term to mask arrived masked
    assert r["masked_seen"] == r["masked_expected"] > 50, r
else:
    assert r["acked"] == r["sent"] > 100, r
    assert r["masked_seen"] == r["rejected"] == 0, r
if s == "zipf":
    # rooms dealt again by 1/rank: one of 13 down to 2, every delivery counted
    assert r["largest_room"] == 13 and r["delivered"] == r["expected"] > r["acked"] * 5, r
else:
    assert r["delivered"] == r["expected"] == r["acked"] * 5, r   # rooms of 5
assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], r
if s == "reconnect": assert r["reconnects"] >= 40, r
if s == "receipts": assert r["reads_acked"] == r["reads"] > 300 and r["read_p99_ms"] > 0, r
if s == "procs2": assert r["procs"] == 2, r
print("%s ok: %d sent, %d delivered, p99 %.1f ms" % (s, r["sent"], r["delivered"], r["p99_ms"]))
PY
}
for s in chat reconnect receipts moderation procs2 zipf; do
  scenario=$s extra=() fixture=$work/fixture
  # receipts: the chat load plus read reports, whose events take seqs too
  [ "$s" = receipts ] && scenario=chat extra=(--read-rate 5)
  # the chat load from two generator processes checking each other's sends
  [ "$s" = procs2 ] && scenario=chat extra=(--procs 2)
  # rooms sized by Zipf's law instead of the fixture's equal ones
  [ "$s" = zipf ] && scenario=chat extra=(--zipf 1)
  [ "$s" = moderation ] && fixture=$work/modfixture
  "$load" --fixture "$fixture" --gw "127.0.0.1:$GW1_PORT" --gw "127.0.0.1:$GW2_PORT" \
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
