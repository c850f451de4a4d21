#!/usr/bin/env bash
# loadtest/bench_idle.sh at a small scale, with services of its own: it
# passes when every connection is authenticated, joined and still held at
# the end of the hold, with a per-connection memory figure; and it fails
# when the gateways cannot hold them all (each capped below its share).
#   idle_smoke.sh PARLEYD PARLEY_LOAD
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export IDLE_PARLEYD=$1 IDLE_LOAD=$2 IDLE_CONNECT_RATE=200
out=$(mktemp)
trap 'rm -f "$out"' EXIT

if ! "$root/loadtest/bench_idle.sh" 300 2 4 >"$out" 2>&1; then
  cat "$out" >&2
  echo "idle smoke: 300 connections over 2 gateways were not all held" >&2
  exit 1
fi
grep -q '^RESULT: all 300 held, none dropped$' "$out" || { cat "$out" >&2; exit 1; }
grep -q '^| held by the gateways near the end of the hold (descriptors over the start) | 300 |$' "$out" ||
  { cat "$out" >&2; echo "idle smoke: the gateways' own count is not 300" >&2; exit 1; }
kb=$(sed -n 's/^| KB of gateway RSS per connection, end of the hold | \(.*\) |$/\1/p' "$out")
python3 -c "import sys; k = float(sys.argv[1]); sys.exit(0 if 0 < k < 100 else 1)" "$kb" ||
  { cat "$out" >&2; echo "idle smoke: implausible KB per connection '$kb'" >&2; exit 1; }
# The gateways' heap, read from /metrics: live bytes at the end of the hold.
heap=$(sed -n 's/^| the gateways. C heap over the start.* | [-0-9.]* \/ [-0-9.]*; \([-0-9.]*\) \/ [-0-9.]* |$/\1/p' "$out")
python3 -c "import sys; k = float(sys.argv[1]); sys.exit(0 if 0.5 < k < 100 else 1)" "$heap" ||
  { cat "$out" >&2; echo "idle smoke: implausible live heap per connection '$heap'" >&2; exit 1; }
echo "held: 300 of 300, $kb KB of RSS and $heap KB of live heap per connection"

# Two gateways of at most 100 connections cannot hold 300: the script must say so.
if IDLE_GW_ARGS="--max-conns 100" IDLE_SETUP_S=15 "$root/loadtest/bench_idle.sh" 300 2 4 >"$out" 2>&1; then
  cat "$out" >&2
  echo "idle smoke: passed although the gateways hold at most 200" >&2
  exit 1
fi
grep -q '^RESULT: FAILED' "$out" || { cat "$out" >&2; echo "idle smoke: no FAILED verdict" >&2; exit 1; }
echo "capped: $(grep '^| connections authenticated and joined' "$out")"
