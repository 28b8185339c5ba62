#!/bin/sh
# scripts/pkg/deb.sh: builds mika_<version>_<arch>.deb with debhelper.
#
# Usage: scripts/pkg/deb.sh OUT_DIR   (prints the .deb's path)
# dpkg-buildpackage writes its results beside the source tree, so it runs on
# a copy of the tracked files under OUT_DIR, never on the work tree itself.
set -eu
out=${1:?usage: $0 OUT_DIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
cmake_version=$(sed -n 's/^project(mika VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
case $version in
    "$cmake_version" | "$cmake_version"-*) ;;
    *) echo "deb.sh: debian/changelog says $version, CMakeLists.txt $cmake_version" >&2; exit 1 ;;
esac
arch=$(dpkg-architecture -qDEB_HOST_ARCH)

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out/tree"
mkdir -p "$out/tree/mika-$version"
# Tracked and new files, as git sees them (no build directories, no .git).
(cd "$src" && git ls-files -z --cached --others --exclude-standard -- . ':!build*' |
    xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
    tar -C "$src" --null -T - -cf - | tar -C "$out/tree/mika-$version" -xf -
start=$(date +%s)
(cd "$out/tree/mika-$version" &&
    DEB_BUILD_OPTIONS="noddebs parallel=$(nproc)" dpkg-buildpackage -b -us -uc \
        >"$out/dpkg-buildpackage.log" 2>&1) || {
    tail -n 40 "$out/dpkg-buildpackage.log" >&2
    exit 1
}
deb=$out/mika_${version}_${arch}.deb
mv "$out/tree/mika_${version}_${arch}.deb" "$deb"
rm -rf "$out/tree"
echo "deb.sh: built in $(($(date +%s) - start)) s, $(du -k "$deb" | cut -f1) KiB" >&2
echo "$deb"
