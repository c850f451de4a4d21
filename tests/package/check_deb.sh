#!/usr/bin/env bash
# Builds the Debian package from a build tree and checks it: control fields,
# the files it installs, that the binary runs from the extracted tree and that
# the shipped configuration validates. (Installing it would change the test
# machine, so this stops at dpkg-deb.)
set -euo pipefail
build=${1:?build dir}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$build" && cpack -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/out/*.deb)
fail() { echo "check_deb: $*" >&2; exit 1; }
info=$(dpkg-deb -I "$deb")
grep -q "^ Package: parley$" <<<"$info" || fail "package name"
grep -q "^ Depends:.*libwebsockets17.*libpq5" <<<"$info" || fail "dependencies"
grep -q "postinst" <<<"$info" || fail "postinst missing"
files=$(dpkg-deb -c "$deb" | awk '{print $NF}')
for f in ./usr/bin/parleyd ./usr/share/parley/sql/001_init.sql ./etc/parley/parleyd.conf \
         ./usr/lib/systemd/system/parleyd.service ./usr/share/doc/parley/PROTOCOL.md; do
  grep -qx -- "$f" <<<"$files" || fail "missing $f"
done
dpkg-deb -f "$deb" Conffiles >/dev/null 2>&1 || true
dpkg-deb -x "$deb" "$work/root"
# Output captured first: with pipefail, `cmd | grep -q` fails when grep
# exits at its match while cmd is still writing (SIGPIPE), now and then.
help=$("$work/root/usr/bin/parleyd" --help)
grep -q -- "--config" <<<"$help" || fail "parleyd --help"
check=$("$work/root/usr/bin/parleyd" config-check --config "$work/root/etc/parley/parleyd.conf")
grep -q "^ok: port=8080 bind=127.0.0.1 redis=127.0.0.1:6379 sql-dir=/usr/share/parley/sql" \
  <<<"$check" || fail "shipped configuration does not validate"
grep -q " web-root=/usr/share/parley/web$" <<<"$check" || fail "shipped configuration: web-root"
grep -q "ExecStart=/usr/bin/parleyd serve --config /etc/parley/parleyd.conf" \
  "$work/root/usr/lib/systemd/system/parleyd.service" || fail "unit ExecStart"
echo "check_deb: $(basename "$deb") ok ($(wc -l <<<"$files") entries)"
