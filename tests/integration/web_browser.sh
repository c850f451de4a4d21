#!/usr/bin/env bash
# integration.web_browser: the web client and the console in headless Chromium
# (web/test/browser, Node's test runner driving Debian's chromium through
# playwright-core) against the integration environment ($PARLEY_ENV_FILE),
# whose gateways serve web/; and the client's Node unit tests (web/test).
# Screenshots go to $PARLEY_SCREENS (default build/screens).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
web=$(cd "$here/../../web" && pwd)

die() { echo "web_browser: $*" >&2; exit 1; }
command -v node >/dev/null || die "node is not installed (scripts/dev installs it)"
command -v npm >/dev/null || die "npm is not installed: the browser tests need it to install web/package-lock.json"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "node $(node --version) is too old: playwright-core needs Node.js 20 or later"
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || die "$chromium is missing: apt-get install chromium (scripts/dev installs it)"
[ -n "${PARLEY_ENV_FILE:-}" ] && [ -f "$PARLEY_ENV_FILE" ] || die "PARLEY_ENV_FILE names no environment (run through ctest)"

# The locked npm packages: installed when missing or older than the lock file.
if [ ! -f "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in web/"
fi

# One file at a time: the outage test stops and restarts a shared gateway.
cd "$web"
rc=0
for f in test/*.test.mjs test/browser/*.test.mjs; do node --test "$f" || rc=1; done
exit $rc
