#!/bin/sh
# scripts/pkg/rootfs.sh: a minimal Debian bookworm tree for the packaging
# tests, made once and shared: `make test-docker` imports it as the base
# image, `make test-deb` installs the .deb into a copy of it.
#
# Usage: scripts/pkg/rootfs.sh CACHE_DIR   (prints the tarball's path)
# Makes CACHE_DIR/bookworm-minbase.tar with `debootstrap --variant=minbase`
# unless it is already there (delete it to refresh). The mirror and the
# apt sources are this machine's own (no other host is reachable here), so
# the tree installs packages from the same place the host does.
set -eu
cache=${1:?usage: $0 CACHE_DIR}
tar=$cache/bookworm-minbase.tar
if [ -s "$tar" ]; then
    echo "$tar"
    exit 0
fi
mkdir -p "$cache"

sources=/etc/apt/sources.list.d/debian.sources
mirror=""
if [ -r "$sources" ]; then
    mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)[[:space:]]*$/\1/p' "$sources" | head -n1)
fi
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { echo "rootfs.sh: no bookworm mirror in this machine's apt sources" >&2; exit 1; }

tree=$(mktemp -d "$cache/rootfs.XXXXXX")
trap 'rm -rf "$tree"' EXIT
start=$(date +%s)
debootstrap --variant=minbase bookworm "$tree" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    tail -n 20 "$cache/debootstrap.log" >&2
    exit 1
}
# The host's sources (main, updates, security) instead of debootstrap's one line.
if [ -r "$sources" ]; then
    rm -f "$tree/etc/apt/sources.list"
    cp "$sources" "$tree/etc/apt/sources.list.d/debian.sources"
fi
rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*
chmod 0755 "$tree" # the tree's / (mktemp made it 0700)
tar -C "$tree" --numeric-owner -cf "$tar.tmp" .
mv "$tar.tmp" "$tar"
echo "rootfs.sh: debootstrap took $(($(date +%s) - start)) s, $(du -m "$tar" | cut -f1) MiB" >&2
echo "$tar"
