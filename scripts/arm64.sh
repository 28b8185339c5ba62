#!/bin/sh
# scripts/arm64.sh: cross-builds mika for arm64 and runs the unit tests
# under qemu-user (make test-arm64).
#
# Usage: scripts/arm64.sh BUILD_DIR [JOBS]
# Needs scripts/deps.sh arm64 (the cross compiler, qemu-user and the :arm64
# libraries). libpq-dev is the exception: it cannot be installed for amd64
# and arm64 at once, so its arm64 .pc file and link are taken from the
# package itself, unpacked into BUILD_DIR (libpq5:arm64 is installed).
set -eu
build=${1:?usage: $0 BUILD_DIR [JOBS]}
jobs=${2:-$(nproc)}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build"
build=$(cd "$build" && pwd)
triplet=aarch64-linux-gnu
start=$(date +%s)

pq=$build/libpq-dev-arm64
if [ ! -s "$pq/pkgconfig/libpq.pc" ]; then
    rm -rf "$pq"
    mkdir -p "$pq/deb" "$pq/pkgconfig" "$pq/lib"
    (cd "$pq/deb" && apt-get download -q libpq-dev:arm64 >/dev/null 2>&1) || {
        echo "arm64.sh: apt-get download libpq-dev:arm64 failed" >&2
        exit 1
    }
    dpkg-deb -x "$pq"/deb/libpq-dev_*_arm64.deb "$pq/root"
    # Headers from the unpacked package, the library from libpq5:arm64; the
    # static-link lines would ask for libssl-dev:arm64, and mika links libpq
    # dynamically.
    sed -e "s#^prefix=.*#prefix=$pq/root/usr#" -e "s#^libdir=.*#libdir=$pq/lib#" \
        -e '/^Requires.private:/d' -e '/^Libs.private:/d' \
        "$pq/root/usr/lib/$triplet/pkgconfig/libpq.pc" >"$pq/pkgconfig/libpq.pc"
    ln -sf "/usr/lib/$triplet/libpq.so.5" "$pq/lib/libpq.so"
fi

export PKG_CONFIG_LIBDIR="/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig"
export PKG_CONFIG_PATH="$pq/pkgconfig"
cmake -S "$src" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$src/cmake/arm64-linux-gnu.cmake" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs" >"$build/build.log" 2>&1 || {
    tail -n 40 "$build/build.log" >&2
    exit 1
}
$triplet-readelf -h "$build/mika" | grep -q 'Machine:.*AArch64' || { echo "arm64.sh: mika is not arm64" >&2; exit 1; }
echo "arm64: built in $(($(date +%s) - start)) s: $(qemu-aarch64 "$build/mika" version)"
# Timeouts: the tests run several times slower under emulation.
cd "$build"
ctest -L unit -j "$jobs" --output-on-failure --timeout 600
echo "arm64: $(($(date +%s) - start)) s in all"
