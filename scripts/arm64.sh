#!/bin/sh
# scripts/arm64.sh: cross-builds mika for arm64 and runs the unit tests
# under qemu-user (make test-arm64).
#
# Usage: scripts/arm64.sh BUILD_DIR [JOBS]
# Needs scripts/deps.sh arm64 (the cross compiler, qemu-user and the :arm64
# libraries). libpq-dev and libmariadb-dev are the exceptions: they cannot be
# installed for amd64 and arm64 at once, so their arm64 .pc files and links
# are taken from the packages themselves, unpacked into BUILD_DIR (libpq5 and
# libmariadb3 :arm64 are installed).
set -eu
build=${1:?usage: $0 BUILD_DIR [JOBS]}
jobs=${2:-$(nproc)}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build"
build=$(cd "$build" && pwd)
triplet=aarch64-linux-gnu
start=$(date +%s)

# unpack_dev PKG PC SONAME: PKG (a -dev package that is not Multi-Arch:
# same) unpacked into $build/PKG-arm64, with a .pc file PC pointing at its
# headers and at the library SONAME that the installed :arm64 runtime
# package provides.
unpack_dev() {
    dir=$build/$1-arm64
    if [ ! -s "$dir/pkgconfig/$2.pc" ]; then
        rm -rf "$dir"
        mkdir -p "$dir/deb" "$dir/pkgconfig" "$dir/lib"
        (cd "$dir/deb" && apt-get download -q "$1:arm64" >/dev/null 2>&1) || {
            echo "arm64.sh: apt-get download $1:arm64 failed" >&2
            exit 1
        }
        dpkg-deb -x "$dir"/deb/"$1"_*_arm64.deb "$dir/root"
        # Headers from the unpacked package, the library from the runtime
        # package; the static-link lines would ask for more :arm64 -dev
        # packages, and mika links dynamically.
        sed -e "s#^prefix=.*#prefix=$dir/root/usr#" -e "s#^libdir=.*#libdir=$dir/lib#" \
            -e '/^Requires.private:/d' -e '/^Libs.private:/d' \
            "$dir/root/usr/lib/$triplet/pkgconfig/$2.pc" >"$dir/pkgconfig/$2.pc"
        ln -sf "/usr/lib/$triplet/$3" "$dir/lib/${3%.so.*}.so"
    fi
    pc_path="${pc_path:+$pc_path:}$dir/pkgconfig"
}
pc_path=
unpack_dev libpq-dev libpq libpq.so.5
unpack_dev libmariadb-dev libmariadb libmariadb.so.3

export PKG_CONFIG_LIBDIR="/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig"
export PKG_CONFIG_PATH="$pc_path"
cmake -S "$src" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$src/cmake/arm64-linux-gnu.cmake" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIKA_UNIT_TIMEOUT=900 >/dev/null
cmake --build "$build" -j "$jobs" >"$build/build.log" 2>&1 || {
    tail -n 40 "$build/build.log" >&2
    exit 1
}
$triplet-readelf -h "$build/mika" | grep -q 'Machine:.*AArch64' || { echo "arm64.sh: mika is not arm64" >&2; exit 1; }
echo "arm64: built in $(($(date +%s) - start)) s: $(qemu-aarch64 "$build/mika" version)"
# The tests run several times slower under emulation: each may take 900 s
# (MIKA_UNIT_TIMEOUT above), and the randomized ones run a tenth of their
# rounds, as under valgrind; the full rounds run natively in make test.
cd "$build"
MIKA_TEST_LIGHT=1 ctest -L unit -j "$jobs" --output-on-failure
echo "arm64: $(($(date +%s) - start)) s in all"
