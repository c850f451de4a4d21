#!/usr/bin/env bash
# `scripts/dev run` end to end on a private state directory, with a parleyd
# already built: it prints the page's URL and each demo person's sign-in,
# those sign-ins work over HTTP, the demo workspace has its guidelines,
# rooms and held message, and Ctrl-C stops everything it started. Ctrl-C is
# tried both ways it arrives: SIGINT to the script alone (what `timeout -s
# INT` sends) and to its whole process group (what a terminal sends).
#
#   check_dev_run.sh PARLEYD
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:?parleyd binary}
# shellcheck source=../../scripts/services.sh
. "$root/scripts/services.sh"

work=$(mktemp -d /tmp/parley-devrun.XXXXXX)
chmod 755 "$work"
state=$work/state
dev_pid=""

fail() {
  echo "check_dev_run: $*" >&2
  [ -f "$work/out" ] && sed 's/^/  | /' "$work/out" >&2
  exit 1
}

# Whatever this test started and is still running is stopped on the way
# out, so that a failure does not leave servers behind either.
finish() {
  [ -n "$dev_pid" ] && kill -TERM "$dev_pid" 2>/dev/null && sleep 2
  svc_redis_stop "$state" 2>/dev/null || true
  svc_pg_stop "$state" 2>/dev/null || true
  rm -rf "$work"
}
trap finish EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

login() { # email password -> token
  curl -sS -m 10 -X POST -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" "http://127.0.0.1:$port/api/v1/auth/login" |
    json 'd["token"]'
}

# round MODE: start `scripts/dev run`, check what it printed and serves,
# then Ctrl-C it (MODE script: SIGINT to the script; group: to its group).
round() {
  local mode=$1
  port=$(svc_free_port)
  : >"$work/out"
  if [ "$mode" = script ]; then
    PARLEY_BIN=$bin PARLEY_STATE_DIR=$state PARLEY_PORT=$port \
      timeout -s INT 300 "$root/scripts/dev" run >"$work/out" 2>&1 &
  else
    PARLEY_BIN=$bin PARLEY_STATE_DIR=$state PARLEY_PORT=$port \
      setsid "$root/scripts/dev" run >"$work/out" 2>&1 &
  fi
  dev_pid=$!
  for _ in $(seq 1 240); do
    grep -q "^Ctrl-C stops" "$work/out" && break
    kill -0 "$dev_pid" 2>/dev/null || fail "$mode: scripts/dev run exited early"
    sleep 0.5
  done
  grep -q "^Ctrl-C stops" "$work/out" || fail "$mode: not running after 120 s"
  grep -q "Open http://127.0.0.1:$port/ and sign in as:" "$work/out" || fail "$mode: no URL"
  local redis_port pg_port
  redis_port=$(sed -n 's/^  Redis: *127.0.0.1:\([0-9]*\)$/\1/p' "$work/out")
  pg_port=$(cat "$state/pg_port")
  # Every person printed signs in with the password printed.
  local n=0 email pw role owner_tok=""
  while read -r email _ pw role; do
    tok=$(login "$email" "$pw") || fail "$mode: $email cannot sign in"
    [ ${#tok} -ge 40 ] || fail "$mode: $email: no session token"
    [ "$role" = "(owner)" ] && owner_tok=$tok
    n=$((n + 1))
  done < <(sed -n 's/^  \([^ ]*@[^ ]*\)  password \([^ ]*\)  \((.*)\)$/\1 password \2 \3/p' "$work/out")
  [ "$n" = 3 ] || fail "$mode: expected 3 sign-ins, found $n"
  [ -n "$owner_tok" ] || fail "$mode: no owner among the sign-ins"
  # A wrong password is refused (the check above could not pass by accident).
  login consultant@demo.example not-the-password >/dev/null 2>&1 && fail "$mode: wrong password accepted"
  # The demo workspace: guidelines with a mask, a hold and a reject rule,
  # a chat and a dialogue room, a message held for review.
  local api="http://127.0.0.1:$port/api/v1" h="authorization: Bearer $owner_tok" ws chat
  ws=$(curl -sS -m 10 -H "$h" "$api/workspaces" | json '[w["id"] for w in d["items"] if w["name"] == "Demo"][0]')
  curl -sS -m 10 -H "$h" "$api/workspaces/$ws/guidelines" |
    json 'sorted(r["action"] for r in d["rules"])' | grep -qx "\['hold', 'mask', 'redact', 'reject'\]" ||
    fail "$mode: demo guidelines"
  curl -sS -m 10 -H "$h" "$api/workspaces/$ws/rooms" |
    json 'sorted(r["kind"] for r in d["items"])' | grep -qx "\['chat', 'dialogue'\]" || fail "$mode: demo rooms"
  chat=$(curl -sS -m 10 -H "$h" "$api/workspaces/$ws/rooms" | json '[r["id"] for r in d["items"] if r["kind"] == "chat"][0]')
  curl -sS -m 10 -H "$h" "$api/workspaces/$ws/rooms/$chat/pending" | json 'len(d["items"])' | grep -qx 1 ||
    fail "$mode: no held message"
  # The avatar's token authenticates on its own.
  bot_tok=$(sed -n 's/^  avatar .* token \([^ ]*\)$/\1/p' "$work/out")
  curl -sS -m 10 -o /dev/null -w '%{http_code}' -H "authorization: Bearer $bot_tok" "$api/workspaces/$ws" |
    grep -qx 200 || fail "$mode: avatar token"

  # Ctrl-C.
  if [ "$mode" = script ]; then kill -INT "$dev_pid"; else kill -INT -- "-$dev_pid"; fi
  for _ in $(seq 1 120); do kill -0 "$dev_pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$dev_pid" 2>/dev/null && fail "$mode: scripts/dev run still running 60 s after SIGINT"
  wait "$dev_pid" 2>/dev/null || true
  dev_pid=""
  grep -q "unbound variable" "$work/out" && fail "$mode: the exit trap failed"
  port_open "$port" && fail "$mode: the gateway is still listening"
  port_open "$redis_port" && fail "$mode: Redis is still running"
  port_open "$pg_port" && fail "$mode: PostgreSQL is still running"
  [ -f "$state/pg/postmaster.pid" ] && fail "$mode: PostgreSQL left its pid file"
  [ -f "$state/redis.pid" ] && fail "$mode: Redis left its pid file"
  echo "check_dev_run: $mode: signed in as $n people, Ctrl-C stopped everything"
}

round script
round group # the same state: seeded once, the same passwords still work
echo "check_dev_run: ok"
