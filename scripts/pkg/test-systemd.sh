#!/bin/sh
# scripts/pkg/test-systemd.sh: checks contrib/systemd/mika.service without
# starting it (CI has no systemd as PID 1):
#   - `make install` into a scratch DESTDIR puts the binary, the config, both
#     man pages and the unit where they belong;
#   - `systemd-analyze verify` accepts the installed unit (run against that
#     DESTDIR, so the ExecStart binary and the man pages are checked too);
#   - `systemd-analyze security --offline=yes` rates its exposure below 2.0.
# Usage: scripts/pkg/test-systemd.sh BUILD_DIR
set -eu
build=${1:?usage: $0 BUILD_DIR}
max_exposure=2.0
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

DESTDIR=$root cmake --install "$build" >/dev/null
for f in usr/bin/mika etc/mika/mika.ini usr/share/man/man1/mika.1 usr/share/man/man5/mika.conf.5 \
    usr/lib/systemd/system/mika.service usr/share/doc/mika/mika.example.ini; do
    [ -e "$root/$f" ] || { echo "make install: $f missing" >&2; exit 1; }
done
echo "make install: binary, config, man pages and unit in place"

unit=$root/usr/lib/systemd/system/mika.service
# verify resolves ExecStart= and the man: Documentation= links; it is given
# the paths inside DESTDIR through a copy that points there.
mkdir -p "$root/check"
sed "s#/usr/bin/mika#$root/usr/bin/mika#" "$unit" >"$root/check/mika.service"
MANPATH=$root/usr/share/man systemd-analyze verify "$root/check/mika.service"
echo "systemd-analyze verify: ok"

out=$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1)
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for mika.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { printf '%s\n' "$out" >&2; echo "no exposure score" >&2; exit 1; }
echo "systemd-analyze security: exposure $score (must be below $max_exposure)"
awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s < m) }' || {
    printf '%s\n' "$out" | grep -v '✓' >&2
    exit 1
}
