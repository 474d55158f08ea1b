#!/bin/sh
# Demo: set up, build a busybox bundle, and run a command in a container with skiff-runtime.
# Needs root (namespaces, mounts, cgroups). DEMO_DIR (default /tmp/skiff-demo) holds the bundle;
# SKIFF_RUNTIME=/usr/sbin/runc runs the same demo with runc, for comparison.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    exec sudo -E "$0" "$@"
fi

./scripts/setup.sh

SKIFF=${SKIFF_RUNTIME:-$(pwd)/target/release/skiff-runtime}
DEMO_DIR=${DEMO_DIR:-/tmp/skiff-demo}
BUNDLE=$DEMO_DIR/bundle
ROOT=$DEMO_DIR/state
ID=skiff-demo-$$

mkdir -p "$BUNDLE"
./scripts/mkrootfs.sh "$BUNDLE/rootfs"
rm -f "$BUNDLE/config.json"
"$SKIFF" spec --bundle "$BUNDLE"
# No terminal (the demo may run without one) and our command instead of `sh`.
sed -i \
    -e 's/"terminal": true/"terminal": false/' \
    -e 's/^\t\t\t"sh"$/\t\t\t"sh", "-c", "echo hello from skiff; hostname; id"/' \
    "$BUNDLE/config.json"

echo "+ $(basename "$SKIFF") --root $ROOT run --bundle $BUNDLE $ID"
set +e
"$SKIFF" --root "$ROOT" run --bundle "$BUNDLE" "$ID"
status=$?
set -e
echo "demo: container exited with status $status"
exit $status
