#!/usr/bin/env bash
# integration.sdk_node: the JavaScript SDK's tests (web/sdk/test, Node's test
# runner) against the integration environment ($PARLEY_ENV_FILE), and the
# avatar bot example run as a child process.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
web=$(cd "$here/../../web" && pwd)

die() { echo "sdk_node: $*" >&2; exit 1; }
command -v node >/dev/null || die "node is not installed: the SDK tests need Node.js 18.19 or later (scripts/dev installs it)"
command -v npm >/dev/null || die "npm is not installed: the SDK tests need it to install web/package-lock.json"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || die "node $(node --version) is too old: Node.js 18.19 or later"
[ -n "${PARLEY_ENV_FILE:-}" ] && [ -f "$PARLEY_ENV_FILE" ] || die "PARLEY_ENV_FILE names no environment (run through ctest)"

# The locked dependencies (only the ws package for now): installed when
# missing, or again when the lock file changed since.
if [ ! -f "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in web/"
fi

# The files share one environment (one test stops PostgreSQL): one at a time.
cd "$web"
if node --help | grep -q -- '--test-concurrency'; then
  exec node --test --test-concurrency=1 sdk/test/*.test.mjs
fi
rc=0
for f in sdk/test/*.test.mjs; do node --test "$f" || rc=1; done
exit $rc
