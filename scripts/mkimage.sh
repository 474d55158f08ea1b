#!/bin/sh
# mkimage.sh [SKIFF] [--root DIR]: makes the local `busybox` image from Debian's
# busybox-static (no network): a rootfs by mkrootfs.sh, imported with `skiff import`.
set -eu
cd "$(dirname "$0")/.."
SKIFF=${1:-$(pwd)/target/release/skiff}
shift || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./scripts/mkrootfs.sh "$work/rootfs"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
"$SKIFF" "$@" import -c 'CMD ["sh"]' "$work/busybox.tar" busybox:latest
