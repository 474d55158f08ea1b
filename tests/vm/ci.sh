#!/bin/sh
# The tests that depend on the kernel and the cgroup layout, run again in a QEMU guest
# (tests/vm/vm.py) on Debian's 6.1 kernel: once on pure cgroup v2 with every controller, once
# on pure cgroup v1. This host's own hybrid layout and kernel are covered by the host run of
# the same tests. One guest per layout runs the runtime's tests, then the engine's.
#   SKIFF_VM_TESTS             the test targets of skiff-runtime to run (default below)
#   SKIFF_VM_ENGINE_TESTS_V2   the engine's test targets on v2, as PACKAGE:TARGET (default
#                              below: overlay, veth/bridge/nftables, containers with limits)
#   SKIFF_VM_ENGINE_TESTS_V1   the same on v1 (default: skiff:run, whose limits depend on the
#                              layout; networks and overlay do not)
#   SKIFF_VM_LAYOUTS           the layouts (default: v2 v1)
#   SKIFF_VM=0                 skips the guest runs
# Not for the guest: tests that need a registry or the internet (registry*, bad_input's pull),
# podman/docker interop, the tty tests (their typed input is timed for a real CPU), and
# network.rs's fifty containers at once (IPAM's locking; over 100 s under TCG).
set -eu
cd "$(dirname "$0")/../.."
if [ "${SKIFF_VM:-1}" = 0 ]; then echo "vm: skipped (SKIFF_VM=0)"; exit 0; fi
TESTS="${SKIFF_VM_TESTS:-lifecycle devices resources pause_events cgroupns rootless}"
ENGINE_V2="${SKIFF_VM_ENGINE_TESTS_V2-skiff-net:netlink skiff-net:nft skiff-image:overlay skiff:images skiff:files skiff:run skiff:network}"
ENGINE_V1="${SKIFF_VM_ENGINE_TESTS_V1-skiff:run}"
LAYOUTS="${SKIFF_VM_LAYOUTS:-v2 v1}"

# Every test and binary executable of the workspace, as "PACKAGE KIND TARGET PATH" lines. Built
# the way the host run (`cargo test --workspace`) builds them, so after it this is a no-op: a
# per-package build (`-p`) resolves features differently and rebuilt most of the tree (4-5
# minutes of CI), and the guest would have tested other binaries than the host.
artifacts=$(cargo test --workspace --profile ci --no-run --message-format=json 2>/dev/null | python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"][0] in ("test", "bin"):
        pkg = os.path.basename(os.path.dirname(m["manifest_path"]))
        print(pkg, m["target"]["kind"][0], m["target"]["name"], m["executable"])')

# The executables of "PACKAGE:TARGET ..." (integration tests).
test_exes() {
    for pt in "$@"; do
        exe=$(echo "$artifacts" | awk -v p="${pt%%:*}" -v t="${pt#*:}" '$1 == p && $2 == "test" && $3 == t {print $4}')
        [ -n "$exe" ] || { echo "vm: no test executable for $pt" >&2; exit 1; }
        echo "$exe"
    done
}

runtime_targets=""
for t in $TESTS; do runtime_targets="$runtime_targets skiff-runtime:$t"; done
# shellcheck disable=SC2086
exes=$(test_exes $runtime_targets)
[ -n "$exes" ] || { echo "vm: no test executables built" >&2; exit 1; }
# shellcheck disable=SC2086
exes_v2=$(test_exes $ENGINE_V2)
# shellcheck disable=SC2086
exes_v1=$(test_exes $ENGINE_V1)
# The rootless tests make a throwaway user (useradd, userdel), become it (setpriv) and map its
# delegated ids (the setuid newuidmap/newgidmap): the guest gets the host's, where present.
files="--file target/ci/skiff-runtime"
for f in /usr/bin/setpriv /usr/sbin/useradd /usr/sbin/userdel /usr/bin/newuidmap /usr/bin/newgidmap; do
    if [ -e "$f" ]; then files="$files --file $f"; fi
done
if [ -n "$exes_v2$exes_v1" ]; then
    # The engine's tests run the built skiff (the monitor and DNS server beside it), on the
    # busybox image the tests import from cargo's target tmp dir (made here when the host run
    # did not); network.rs's static UDP echo server is built there too (no compiler in the
    # guest). nft for skiff-net's table, iproute2's ip and procps's ps (`skiff top`) where
    # busybox's applets lack options the tests and skiff use; GNU tar for archive listings;
    # util-linux's script for run.rs's pty (SIGWINCH).
    tmp=target/tmp
    mkdir -p "$tmp"
    if [ ! -f "$tmp/busybox-rootfs.tar" ]; then
        bb=$(mktemp -d)
        sh scripts/mkrootfs.sh "$bb/rootfs" >/dev/null
        tar -C "$bb/rootfs" -cf "$tmp/busybox-rootfs.tar.$$" .
        mv "$tmp/busybox-rootfs.tar.$$" "$tmp/busybox-rootfs.tar"
        rm -rf "$bb"
    fi
    src=crates/skiff/tests/data/udp-echo.c
    if [ ! -f "$tmp/udp-echo" ] || [ "$src" -nt "$tmp/udp-echo" ]; then
        cc -static -O2 -o "$tmp/udp-echo.$$" "$src"
        mv "$tmp/udp-echo.$$" "$tmp/udp-echo"
    fi
    files="$files --file target/ci/skiff --file target/ci/skiff-monitor --file target/ci/skiff-dns"
    files="$files --file $tmp/busybox-rootfs.tar --file $tmp/udp-echo"
    for f in /usr/sbin/nft /usr/sbin/ip /usr/bin/ps /usr/bin/tar /usr/bin/script; do
        if [ -e "$f" ]; then files="$files --file $f"; fi
    done
fi
rc=0
for layout in $LAYOUTS; do
    # Timeouts: about twice a guest's time on a loaded 2-core host (v2 ~6 min, v1 ~3).
    case $layout in
    v2) engine=$exes_v2 names=$ENGINE_V2 timeout=720 ;;
    v1) engine=$exes_v1 names=$ENGINE_V1 timeout=480 ;;
    *) engine="" names="" timeout=600 ;;
    esac
    plan=""
    for e in $exes $engine; do
        # Fifty containers at once test IPAM's locking, not the kernel: under TCG they took
        # over 100 s of the guest's time. The host run keeps them.
        case $(basename "$e") in
        network-*) skip="--skip fifty_containers_started_at_once" ;;
        *) skip="" ;;
        esac
        plan="$plan $e --test-threads=2 $skip ;;"
    done
    echo "== vm: $layout: skiff-runtime: $TESTS; engine: ${names:-none}"
    # shellcheck disable=SC2086
    python3 tests/vm/vm.py --layout "$layout" --timeout "$timeout" $files -- $plan || rc=1
done
exit $rc
