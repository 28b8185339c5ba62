#!/bin/sh
# scripts/pkg/test-deb.sh: installs the .deb into a fresh Debian bookworm
# chroot and checks it there: apt resolves its dependencies from the archive,
# postinst makes the system user and /var/lib/mika, `mika version` answers,
# and the daemon, started as the package's user with the package's config,
# answers an announce (tests/pkg/chroot_announce.py) and stops cleanly.
#
# Usage: scripts/pkg/test-deb.sh DEB ROOTFS_TAR
set -eu
deb=${1:?usage: $0 DEB ROOTFS_TAR}
rootfs=${2:?usage: $0 DEB ROOTFS_TAR}
here=$(cd "$(dirname "$0")/../.." && pwd)
root=$(mktemp -d /tmp/mika-deb-test.XXXXXX)
cleanup() {
    for m in proc dev; do
        mountpoint -q "$root/$m" && umount -l "$root/$m"
    done
    rm -rf "$root"
}
trap cleanup EXIT

tar -C "$root" -xf "$rootfs"
chmod 0755 "$root" # mktemp's 0700 would shut out apt's _apt and the mika user
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp "$deb" "$root/tmp/"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

in_root apt-get update -qq
in_root apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$deb")" >"$root/tmp/apt.log" 2>&1 || {
    tail -n 30 "$root/tmp/apt.log" >&2
    exit 1
}
echo "apt-get install $(basename "$deb"): ok"

want=$(dpkg-deb -f "$deb" Version)
got=$(in_root mika version)
[ "$got" = "mika $want" ] || { echo "mika version said \"$got\", want \"mika $want\"" >&2; exit 1; }
echo "mika version: $got"

in_root getent passwd mika >/dev/null || { echo "no system user mika" >&2; exit 1; }
uid=$(in_root id -u mika)
gid=$(in_root id -g mika)
owner=$(stat -c %u:%g "$root/var/lib/mika")
[ "$owner" = "$uid:$gid" ] || { echo "/var/lib/mika is $owner, want mika ($uid:$gid)" >&2; exit 1; }
[ -L "$root/etc/systemd/system/multi-user.target.wants/mika.service" ] ||
    { echo "mika.service is not enabled" >&2; exit 1; }
echo "system user mika, /var/lib/mika owned by it, mika.service enabled"

# As the unit would start it: the packaged user, config and working directory.
/usr/bin/python3 "$here/tests/pkg/chroot_announce.py" --root "$root" --db /var/lib/mika/mika.db \
    -- chroot --userspec="$uid:$gid" "$root" env --chdir=/var/lib/mika \
    /usr/bin/mika serve --config /etc/mika/mika.ini

in_root apt-get purge -y -qq mika >/dev/null 2>&1
[ ! -e "$root/var/lib/mika" ] || { echo "purge left /var/lib/mika" >&2; exit 1; }
echo "apt-get purge: ok"
