#!/usr/bin/env bash
# Engine benchmark (issue 10): skiff against podman 4.3 (+ conmon) with crun and with runc, and
# Docker 20.10 (dockerd + containerd + containerd-shim-runc-v2 + runc), side by side in one run,
# printing median/mean/p90 ms and the ratios peer/skiff (bench/engine.py measures; see there):
#   run     `run --rm --network none IMAGE true`                       target: skiff >= 10x faster
#                                                                       than the fastest peer
#   cycle   `run -d IMAGE sleep 1000`, `exec ID true`, `rm -f ID`, each step timed
#   memory  VmRSS/PSS/USS of an idle container's monitor: skiff-monitor, conmon,
#           containerd-shim-runc-v2                                    target: skiff-monitor below both
#   commit  `commit` of a container that wrote 100 MB
# Engines are interleaved round-robin within every section (each iteration starts with the next
# engine), warm-up iterations dropped, as bench/run.sh does for runtimes; a turn starts only when
# no process of the previous one (monitor, conmon, podman's cleanup, shim) still works on the
# temp dir. Wall times are taken with a pidfd wait (no polling).
#
# Usage: bench/engine.sh [--quick] [--no-build] [SECTION[=ITERATIONS] ...]   (root)
#   default: every section, 30 run / 10 cycle / 5 memory / 3 commit iterations: ~2 minutes on
#   the 2-core dev VM, plus the build; --quick: 5 / 3 / 1 / 1, ~30 s. --no-build: use
#   target/release/skiff as it is (otherwise `cargo build --release -p skiff` first).
#
# Layout: crun refuses this host's hybrid cgroups (v1 controllers + a cgroup2 mount with only
# hugetlb). So that every engine sees the same layout, the whole comparison runs in ONE private
# mount namespace where /sys/fs/cgroup/unified is unmounted: skiff, podman+crun, podman+runc
# and our own dockerd (with its containerd and shims) all see cgroup v1 only. Their mounts stay
# in that namespace.
#
# Peers, all from a temp dir under /tmp that is removed at exit, nothing global:
# - podman: its own containers.conf (cgroupfs, file events log, default_ulimits under the
#   missing CAP_SYS_RESOURCE, lock_type "file" in tmp_dir instead of the shared
#   /dev/shm/libpod_lock) and storage.conf (overlay, graphroot/runroot in the temp dir) through
#   CONTAINERS_CONF/CONTAINERS_STORAGE_CONF; `--network none`; `rm -f -t 0` (its plain `rm -f`
#   waits the 10 s stop timeout first).
# - docker: our own `dockerd --data-root --exec-root --pidfile -H unix://... --iptables=false
#   --bridge=none` with a daemon.json (no ip-forward, ip-masq, userland-proxy) in the temp dir,
#   /usr/bin/docker with DOCKER_HOST (a newer CLI may come first in PATH); `--network none`.
#   Skipped when /run/containerd/containerd.sock exists (dockerd 20.10 would use that
#   containerd). Stopped by its pid; its containerd and shims must be gone.
# - every engine imports the same busybox rootfs tar (scripts/mkrootfs.sh, as scripts/mkimage.sh).
# Left behind by the peers outside the temp dir and removed here only if they did not exist
# before: /etc/docker/key.json (dockerd 20.10 always writes it), /run/docker/plugins,
# /run/containerd/s (shim sockets), /run/runc (podman+runc's state root), /run/crun, and the
# `docker` and `libpod_parent` cgroups. At the end the host state is compared with the start.
# An engine that is missing or fails to start is reported as skipped, with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=""
BUILD=1
SECTIONS=()
for a in "$@"; do
    case $a in
        --quick) QUICK=--quick ;;
        --no-build) BUILD=0 ;;
        run|cycle|memory|commit|run=*|cycle=*|memory=*|commit=*) SECTIONS+=("$a") ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $a (sections: run cycle memory commit, optionally NAME=ITERATIONS)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "engine.sh needs root" >&2; exit 1; }
if [ "$BUILD" = 1 ]; then
    cargo build --release -q -p skiff
fi
SKIFF="$PWD/target/release/skiff"
[ -x "$SKIFF" ] && [ -x "$PWD/target/release/skiff-monitor" ] || { echo "no $SKIFF / skiff-monitor (build with cargo build --release -p skiff)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/skiff-engine-bench.XXXXXX)"
# Host state that the peers may change outside $WORK.
snapshot() {
    echo "# mounts"; awk '{print $5}' /proc/self/mountinfo | sort
    echo "# cgroups"; for h in /sys/fs/cgroup/*/; do find "$h" -mindepth 1 -maxdepth 1 -type d; done | sort
    echo "# files"
    ls -d /etc/docker /etc/docker/* /run/docker /run/docker/* /run/containerd /run/containerd/* /run/runc /run/crun \
        /var/lib/docker /var/lib/containers /var/lib/containers/* /run/containers /run/containers/* /dev/shm/* \
        /etc/cni/net.d/* 2>/dev/null || true
    stat -c '%n %Y %s' /var/lib/containers/cache/* 2>/dev/null || true
    echo "# iptables"; { iptables-save; ip6tables-save; } 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' || true
    echo "# net"; cat /proc/sys/net/ipv4/ip_forward; ip -o link 2>/dev/null | awk '{print $2}' || true
    echo "# processes"; ps -eo args= | grep -F -e dockerd -e containerd -e conmon | grep -v -F -e grep -e '<defunct>' | sort || true
}
snapshot > "$WORK/host.before"
FRESH=()   # global paths that did not exist before, removed at exit (when empty, for dirs)
for p in /etc/docker /etc/docker/key.json /run/docker /run/docker/plugins /run/containerd /run/containerd/s \
         /run/runc /run/crun /var/lib/containers; do
    [ -e "$p" ] || FRESH+=("$p")
done
FRESH_CG=()
for h in /sys/fs/cgroup/*/; do
    for n in docker libpod_parent; do [ -e "$h$n" ] || FRESH_CG+=("$h$n"); done
done

. bench/peers.sh   # kill_naming, rmdir_tree (the cwd is the repository)
cleanup() {
    local status=$?
    set +e
    trap - EXIT INT TERM
    # Normally engine.py has removed every container and stopped dockerd; this is for a run
    # that was killed: dockerd first (it stops its containerd), then anything naming $WORK.
    if [ -s "$WORK/docker/dockerd.pid" ]; then
        pid=$(cat "$WORK/docker/dockerd.pid")
        if grep -q -a -F "$WORK" "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid"; for _ in $(seq 150); do [ -e "/proc/$pid" ] || break; sleep 0.2; done
        fi
    fi
    # Processes of our containers (by the cgroups of the ids in our stores), then anything
    # naming $WORK (monitors, conmon, shims, podman's cleanup), then those cgroups.
    ours=$( (ls "$WORK/skiff/containers" 2>/dev/null | sed 's/^/skiff-/'
             ls "$WORK/podman/graph/overlay-containers" 2>/dev/null | sed 's,^,libpod_parent/libpod-,'
             ls "$WORK/docker/data/containers" 2>/dev/null | sed 's,^,docker/,') | grep -E '[0-9a-f]{64}$')
    for c in $ours; do
        for h in /sys/fs/cgroup/*/; do
            [ -d "$h$c" ] && find "$h$c" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
        done
    done
    kill_naming
    for c in $ours; do
        for h in /sys/fs/cgroup/*/; do rmdir_tree "$h$c"; done
    done
    for d in "${FRESH_CG[@]}"; do rmdir_tree "$d"; done
    for ((i = ${#FRESH[@]} - 1; i >= 0; i--)); do
        p=${FRESH[$i]}
        if [ -d "$p" ]; then rmdir "$p" 2>/dev/null; elif [ -e "$p" ]; then rm -f "$p"; fi
    done
    snapshot > "$WORK/host.after" 2>/dev/null
    if diff -q "$WORK/host.before" "$WORK/host.after" >/dev/null; then
        echo "== host check: left as found (mounts, cgroups, /etc/docker, /run, /var/lib, /dev/shm, iptables, links, daemons)"
    else
        echo "== host check: changed since the start (some may be other users' work):"
        diff "$WORK/host.before" "$WORK/host.after" | grep '^[<>]' | sed 's/^/   /'
    fi
    rm -rf --one-file-system "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/mkrootfs.sh "$WORK/rootfs" >/dev/null
tar -C "$WORK/rootfs" -cf "$WORK/busybox.tar" .
# One private mount namespace for every engine, the cgroup2 mount of a hybrid host hidden.
# podman (containers/image) writes its blob info cache to /var/lib/containers/cache whatever its
# configuration says: in the namespace /var/lib is an overlay whose upper dir is in $WORK (or,
# if /var/lib has mounts below it, /var/lib/containers is a bind of an empty dir in $WORK).
unshare -m --propagation private bash -c '
    set -eu
    if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && grep -q . /sys/fs/cgroup/unified/cgroup.controllers; then
        umount /sys/fs/cgroup/unified 2>/dev/null || mount --bind /dev/null /sys/fs/cgroup/unified/cgroup.controllers
    fi
    W=$2
    mkdir -p "$W/varlib/upper" "$W/varlib/work" "$W/varlib/containers"
    if awk "\$5 ~ \"^/var/lib/\" { found = 1 } END { exit !found }" /proc/self/mountinfo ||
       ! mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$W/varlib/upper,workdir=$W/varlib/work" /var/lib; then
        if [ -d /var/lib/containers ]; then
            mount --bind "$W/varlib/containers" /var/lib/containers
        else
            echo "warning: podman may create /var/lib/containers/cache (removed at exit)" >&2
        fi
    fi
    exec python3 bench/engine.py "$@"
' engine --work "$WORK" --skiff "$SKIFF" --tar "$WORK/busybox.tar" $QUICK "${SECTIONS[@]}"
