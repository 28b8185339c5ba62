#!/bin/sh
# scripts/deps.sh: installs the Debian packages mika needs that are missing.
#
# Usage: scripts/deps.sh build|test|run
# Idempotent: a package already installed is skipped, and nothing runs when
# all are present. A non-root user is shown the exact apt-get line instead.
set -eu

build_pkgs="build-essential cmake pkg-config libsqlite3-dev libinih-dev libmicrohttpd-dev libjansson-dev libgnutls28-dev libcurl4-gnutls-dev libpq-dev libsystemd-dev"
test_pkgs="libcmocka-dev clang libclang-rt-14-dev python3 python3-libtorrent python3-yaml transmission-cli sqlite3 openssl php-cli php-curl postgresql valgrind"

case "${1:-build}" in
    build|run) want="$build_pkgs" ;;
    test) want="$build_pkgs $test_pkgs" ;;
    *) echo "usage: $0 build|run|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "mika needs these Debian packages; run as root:" >&2
    echo "  apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
