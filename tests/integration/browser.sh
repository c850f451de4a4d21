#!/usr/bin/env bash
# integration.browser_*: browser tests (web/test/browser, Node's test runner,
# playwright-core driving Debian's chromium) against the integration
# environment ($PARLEY_ENV_FILE), whose gateways serve web/.
#
#   browser.sh FILE.test.mjs...   (names under web/test/browser)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
web=$(cd "$here/../../web" && pwd)

die() { echo "browser: $*" >&2; exit 1; }
command -v node >/dev/null || die "node is not installed: the browser tests need Node.js 18.19 or later (scripts/dev installs it)"
command -v npm >/dev/null || die "npm is not installed: the browser tests need it to install web/package-lock.json"
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || die "$chromium is missing: apt-get install chromium (scripts/dev installs it)"
[ -n "${PARLEY_ENV_FILE:-}" ] && [ -f "$PARLEY_ENV_FILE" ] || die "PARLEY_ENV_FILE names no environment (run through ctest)"
[ $# -gt 0 ] || die "name the test files"

# The locked npm packages (ws, playwright-core): installed when missing, or
# again when the lock file changed since.
if [ ! -f "$web/node_modules/.package-lock.json" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in web/"
fi

cd "$web"
files=()
for f in "$@"; do files+=("test/browser/$f"); done
# The files share one environment: one at a time.
if node --help | grep -q -- '--test-concurrency'; then
  exec node --test --test-concurrency=1 "${files[@]}"
fi
rc=0
for f in "${files[@]}"; do node --test "$f" || rc=1; done
exit $rc
