#!/bin/sh
# scripts/deps.sh: installs the Debian packages mika needs that are missing.
#
# Usage: scripts/deps.sh build|test|run|pkg|arm64
#   pkg    the packaging tests: systemd unit checks, the .deb, the image
#   arm64  the cross build and its unit tests under qemu-user (adds the
#          arm64 architecture to dpkg: the :arm64 libraries sit beside ours)
# Idempotent: a package already installed is skipped, and nothing runs when
# all are present. A non-root user is shown the exact apt-get line instead.
set -eu

build_pkgs="build-essential cmake pkg-config libsqlite3-dev libinih-dev libmicrohttpd-dev libjansson-dev libgnutls28-dev libcurl4-gnutls-dev libpq-dev libmariadb-dev libhiredis-dev libsystemd-dev libmaxminddb-dev"
test_pkgs="libcmocka-dev clang libclang-rt-14-dev python3 python3-libtorrent python3-yaml transmission-cli sqlite3 openssl php-cli php-curl postgresql mariadb-server redis-server haproxy valgrind"

# debootstrap makes the chroot and image base; podman builds the image
# (--isolation=chroot: no container runtime is needed); systemd and man-db
# for systemd-analyze verify (which opens the unit's man: pages).
pkg_pkgs="debootstrap podman debhelper python3 systemd man-db"
# The arm64 cross build. libpq-dev and libmariadb-dev cannot be installed for
# two architectures at once (they are not Multi-Arch: same), so
# scripts/arm64.sh adds their arm64 links and .pc files from the packages
# themselves; libpq5:arm64 and libmariadb3:arm64 are the libraries.
arm64_libs="libc6-dev libsqlite3-dev libinih-dev libmicrohttpd-dev libjansson-dev libgnutls28-dev libcurl4-gnutls-dev libpq5 libmariadb3 libhiredis-dev libsystemd-dev libmaxminddb-dev libcmocka-dev"
arm64_pkgs="gcc-aarch64-linux-gnu qemu-user $(for p in $arm64_libs; do printf '%s:arm64 ' "$p"; done)"

case "${1:-build}" in
    build|run) want="$build_pkgs" ;;
    test) want="$build_pkgs $test_pkgs" ;;
    pkg) want="$build_pkgs $pkg_pkgs" ;;
    arm64) want="$build_pkgs $arm64_pkgs" ;;
    *) echo "usage: $0 build|run|test|pkg|arm64" >&2; exit 2 ;;
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
if [ "${1:-}" = arm64 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
