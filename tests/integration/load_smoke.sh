#!/usr/bin/env bash
# A short parley-load run against the integration environment: a few hundred
# messages in the chat, reconnect, receipts and moderation scenarios (and the
# chat load split over two generator processes) must arrive with zero loss,
# zero duplicates, zero out-of-order, and a sane report. Last, a reconnect
# storm: gateway 1 is killed under 300 clients, all must come back through
# gateway 2 and recover (gateway 1 is started again afterwards).
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
standin=
finish() {
  local rc=$?
  [ -z "$standin" ] || kill "$standin" 2>/dev/null || true
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

# The reconnect storm: 300 clients on gateway 1 under chat load; parley-load
# SIGKILLs gateway 1 (the pid in its pid file, nothing else) and every client
# comes back through gateway 2 with jittered backoff and rejoins with since.
# (The environment is this test's own, so gateway 1 stays down.) Under
# valgrind (scripts/dev test's second pass) the gateways are many times
# slower: 100.
storm_n=300
case "${GW_WRAPPER:-}" in *valgrind*) storm_n=100 ;; esac
"$PARLEYD" admin --pg "$PARLEY_PG" load-fixture "$storm_n" $((storm_n / 10)) >"$work/stormfixture"
storm_rc=0
"$load" --fixture "$work/stormfixture" --gw "127.0.0.1:$GW1_PORT" --gw "127.0.0.1:$GW2_PORT" \
  --scenario storm --rate 1 --duration 60 --kill-after 2 --kill-pidfile "$STATE_DIR/gw1.pid" \
  --sources 16 --backoff-ms 100 --backoff-max-ms 2000 --json >"$work/storm.json" || storm_rc=$?
python3 - "$work/storm.json" "$storm_rc" "$storm_n" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n = int(sys.argv[3])
bad = {k: r[k] for k in ("lost", "dups", "out_of_order", "dead", "unrecovered", "errors") if r[k]}
assert not bad, "storm: %s" % bad
assert r["clients"] == r["joined"] == n, r
# every client was on the killed gateway, signed in again and recovered with since
assert r["storm_cut"] == r["storm_reauthed"] == r["storm_recovered"] == n, r
assert 0 < r["storm_recover_p50_ms"] <= r["storm_recover_ms"] < 60000, r
assert r["retries"] >= n, r
assert r["acked"] == r["sent"] > n and r["delivered"] == r["expected"] == r["acked"] * 10, r
assert sys.argv[2] == "0", "parley-load exited %s" % sys.argv[2]
print("storm ok: %d clients recovered in %.0f ms (p99 %.0f ms), %d sends resent, %d delivered"
      % (r["storm_recovered"], r["storm_recover_ms"], r["storm_recover_p99_ms"], r["resent"], r["delivered"]))
PY

# parley-load honours a refusal's hint: a stand-in (busy_gateway.py) answers
# the auth busy with retry_after_ms 1500. parleyd does answer busy now, but
# with a hint it computes (250 ms at least) and without a timestamp of the
# answer, which this check measures the gap from; moving it to a real
# parleyd (as web/sdk/test/storm.test.mjs does) is still to do; the next attempt, at the second stand-in, comes 1500 ms later plus at
# most the first jitter (--backoff-ms 50), not at once.
python3 "$(dirname "$0")/busy_gateway.py" 1500 "$work/ports" >"$work/busy.log" &
standin=$!
for _ in $(seq 1 100); do grep -q ' ' "$work/ports" 2>/dev/null && break; sleep 0.05; done
read -r b1 b2 <"$work/ports"
"$load" --fixture "$work/fixture" --clients 1 --gw "127.0.0.1:$b1" --gw "127.0.0.1:$b2" \
  --scenario idle --duration 1 --backoff-ms 50 --json >"$work/busy.json"
kill $standin 2>/dev/null || true
python3 - "$work/busy.json" "$work/busy.log" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["joined"] == 1 and r["refusals"] == 1 and r["hinted"] == 1 and r["retries"] == 1, r
assert r["errors_by_code"] == {"busy": 1} and r["errors"] == 0, r
t = dict(l.split() for l in open(sys.argv[2]))
gap = int(t["conn"]) - int(t["busy"])
assert 1500 <= gap < 1500 + 50 + 1000, "the next attempt came %d ms after busy (hint 1500)" % gap
print("busy hint ok: next attempt %d ms after busy with retry_after_ms 1500" % gap)
PY
