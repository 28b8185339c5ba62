#!/bin/sh
# scripts/pkg/test-docker.sh: builds the Dockerfile and runs the image's
# entrypoint, without a registry or a container runtime (neither is
# available on the build machines):
#   - the debootstrapped bookworm tree is imported as the base image
#     (`podman import`) and passed as BASE;
#   - `podman build --isolation=chroot` builds both stages, in Docker's image
#     format (OCI's has no HEALTHCHECK);
#   - `podman image mount` exposes the image's files, and its ENTRYPOINT and
#     CMD run there under chroot as its USER with its ENV; an announce through
#     it must succeed, its HEALTHCHECK command must pass, SIGTERM must stop it.
# Podman keeps its storage under WORK_DIR, apart from the machine's own.
#
# Usage: scripts/pkg/test-docker.sh ROOTFS_TAR WORK_DIR
set -eu
rootfs=${1:?usage: $0 ROOTFS_TAR WORK_DIR}
work=${2:?usage: $0 ROOTFS_TAR WORK_DIR}
here=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work"
work=$(cd "$work" && pwd)
pm() { podman --root "$work/containers" --runroot "$work/containers-run" "$@"; }
base=localhost/mika-base:bookworm
image=localhost/mika:test

# Whatever happens, nothing stays mounted: the image's mounts, and podman's
# own overlay storage mount, which would otherwise keep WORK_DIR (inside the
# build directory) from being removed.
mnt=""
volume=""
data=""
cleanup() {
    if [ -n "$mnt" ]; then
        for m in proc dev "${volume:-/nonexistent}"; do
            mountpoint -q "$mnt/$m" && umount -l "$mnt/$m"
        done
        pm image unmount "$image" >/dev/null 2>&1 || true
    fi
    [ -z "$data" ] || rm -rf "$data"
    if mountpoint -q "$work/containers/overlay"; then
        umount -l "$work/containers/overlay"
    fi
}
trap cleanup EXIT

start=$(date +%s)
if ! pm image exists "$base"; then
    pm import --quiet "$rootfs" "$base" >/dev/null
fi
pm build --format docker --isolation=chroot --build-arg BASE="$base" -t "$image" "$here" \
    >"$work/podman-build.log" 2>&1 || {
    tail -n 40 "$work/podman-build.log" >&2
    exit 1
}
built=$(date +%s)
size=$(pm image inspect --format '{{.Size}}' "$image")
echo "podman build: $((built - start)) s, image $((size / 1048576)) MiB"

mnt=$(pm image mount "$image")

# What the image says about itself, as a runtime would use it.
fmt() { pm image inspect --format "$1" "$image"; }
user=$(fmt '{{.Config.User}}')
workdir=$(fmt '{{.Config.WorkingDir}}')
entry=$(fmt '{{range .Config.Entrypoint}}{{.}} {{end}}')
cmd=$(fmt '{{range .Config.Cmd}}{{.}} {{end}}')
health=$(fmt '{{if .Config.Healthcheck}}{{range .Config.Healthcheck.Test}}{{.}} {{end}}{{end}}')
volume=$(fmt '{{range $k, $v := .Config.Volumes}}{{$k}} {{end}}')
ports=$(fmt '{{range $k, $v := .Config.ExposedPorts}}{{$k}} {{end}}')
fmt '{{range .Config.Env}}{{.}}
{{end}}' >"$work/image.env"
echo "image: user $user, volume $volume, ports $ports"
echo "image: entrypoint $entry$cmd"
case $user in root | root:* | 0 | 0:* | "") echo "the image runs as root" >&2; exit 1 ;; esac
case $health in "CMD "*) health=${health#CMD } ;; *) echo "no HEALTHCHECK CMD: $health" >&2; exit 1 ;; esac
volume=${volume%% }
[ -d "$mnt$volume" ] || { echo "volume $volume missing in the image" >&2; exit 1; }

# chroot(8) looks the user up on the host, so give it numbers from the image.
uid=$(awk -F: -v n="${user%%:*}" '$1 == n { print $3 }' "$mnt/etc/passwd")
gid=$(awk -F: -v n="${user#*:}" '$1 == n { print $3 }' "$mnt/etc/group")
[ -n "$uid" ] && [ -n "$gid" ] || { echo "user $user not in the image" >&2; exit 1; }
mount -t proc proc "$mnt/proc"
mount --bind /dev "$mnt/dev"
# The volume: a new, empty directory owned by the image's user, as a runtime
# gives a fresh named volume (the image's own files stay read-only).
data=$(mktemp -d "$work/volume.XXXXXX")
chown "$uid:$gid" "$data"
chmod 0750 "$data"
mount --bind "$data" "$mnt$volume"

run_in="chroot --userspec=$uid:$gid $mnt /usr/bin/env --chdir=$workdir"
# shellcheck disable=SC2086
/usr/bin/python3 "$here/tests/pkg/chroot_announce.py" --root "$mnt" --db "$volume/mika.db" \
    --env-file "$work/image.env" --health "$run_in $health" -- $run_in $entry$cmd
# Earlier builds' images (the build stage is 800 MiB) would pile up.
pm image prune -f >/dev/null
echo "test-docker: $(($(date +%s) - start)) s in all"
