#!/bin/sh
# The runtime's integration tests that depend on the kernel and the cgroup layout, run again in
# a QEMU guest (tests/vm/vm.py) on Debian's 6.1 kernel: once on pure cgroup v2 with every
# controller, once on pure cgroup v1. This host's own hybrid layout and kernel are covered by
# the host run of the same tests.
#   SKIFF_VM_TESTS    the test targets of skiff-runtime to run (default below)
#   SKIFF_VM_LAYOUTS  the layouts (default: v2 v1)
#   SKIFF_VM=0        skips the guest runs
set -eu
cd "$(dirname "$0")/../.."
if [ "${SKIFF_VM:-1}" = 0 ]; then echo "vm: skipped (SKIFF_VM=0)"; exit 0; fi
TESTS="${SKIFF_VM_TESTS:-lifecycle devices resources pause_events cgroupns rootless}"
LAYOUTS="${SKIFF_VM_LAYOUTS:-v2 v1}"
args=""
for t in $TESTS; do args="$args --test $t"; done
# shellcheck disable=SC2086
exes=$(cargo test --profile ci -p skiff-runtime $args --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])')
[ -n "$exes" ] || { echo "vm: no test executables built" >&2; exit 1; }
# The rootless tests make a throwaway user (useradd, userdel), become it (setpriv) and map its
# delegated ids (the setuid newuidmap/newgidmap): the guest gets the host's, where present.
files="--file target/ci/skiff-runtime"
for f in /usr/bin/setpriv /usr/sbin/useradd /usr/sbin/userdel /usr/bin/newuidmap /usr/bin/newgidmap; do
    if [ -e "$f" ]; then files="$files --file $f"; fi
done
plan=""
for e in $exes; do plan="$plan $e --test-threads=2 ;;"; done
rc=0
for layout in $LAYOUTS; do
    echo "== vm: $layout: $TESTS"
    # shellcheck disable=SC2086
    python3 tests/vm/vm.py --layout "$layout" --timeout 600 $files -- $plan || rc=1
done
exit $rc
