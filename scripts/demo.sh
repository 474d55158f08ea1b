#!/bin/sh
# Demo: set up, build, make a local busybox image (from Debian's busybox-static, no network)
# and walk through the book's Docker: run, run -d, ps, logs, exec, commit, stop, rm, a volume
# and a memory limit. Needs root. SKIFF_ROOT (default /tmp/skiff-demo) holds the store.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    exec sudo -E "$0" "$@"
fi

./scripts/setup.sh

ROOT=${SKIFF_ROOT:-/tmp/skiff-demo}
SKIFF="$(pwd)/target/release/skiff --root $ROOT"
run() {
    echo "+ skiff $*"
    $SKIFF "$@"
}

if ! $SKIFF image inspect busybox >/dev/null 2>&1; then
    echo "+ scripts/mkimage.sh (busybox:latest from busybox-static)"
    ./scripts/mkimage.sh target/release/skiff --root "$ROOT" >/dev/null
fi
run run --rm busybox sh -c 'echo hello from skiff; hostname; id'
run run -d --name demo-web -m 64m busybox sh -c 'echo serving; while true; do sleep 1; done'
run ps
run logs demo-web
run exec demo-web sh -c 'echo in the container: $(hostname), memory limit $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)'
run exec demo-web sh -c 'echo changed > /etc/motd'
run commit -m "add motd" demo-web demo-image:v1
run run --rm demo-image:v1 cat /etc/motd
run stop -t 1 demo-web
run rm demo-web
run run --rm -v demo-data:/data busybox sh -c 'echo kept > /data/file'
run run --rm -v demo-data:/data busybox cat /data/file
run volume rm demo-data
run rmi demo-image:v1
run images
