#!/usr/bin/env bash
# Pull benchmark (issue 11): `skiff pull` against `skopeo copy` + `umoci unpack`, `podman pull`
# and `docker pull` (a private dockerd), all from one local registry, in one run; prints medians
# (min-max), ratios skiff vs the fastest peer and the issue's targets (bench/pull.py does the
# work; see there for every detail):
#   image   8 gzip layers of this machine's files (busybox-static at the bottom, python, a big
#           shared library, perl+vim, locales, C headers, icons, a small top layer with a
#           marker file and a whiteout), ~175 MB compressed / ~635 MB as tar; built once and
#           cached as an OCI layout in $PULL_BENCH_CACHE (default /var/tmp/skiff-bench-pull-image)
#   `half`  the bottom 4 layers (about half the bytes) as an image of its own
#   cold    pull of `big` into an empty store               target: skiff >= 1.5x faster than
#   half    `half` pulled first (not timed), then `big`     the fastest peer, peak memory no
#                                                          more than any peer's
# Each pull starts from a fresh empty store; contenders take turns round-robin; every pulled
# image is checked (the top layer's marker file is on disk, the engine knows the image).
#
# Usage: bench/pull.sh [--no-build] [--rebuild-image] [RUNS]   (root)
#   RUNS (or $PULL_BENCH_RUNS): pulls per contender and case, default 3 (~3 minutes per run
#   on the 2-core dev VM, so ~10 minutes, plus ~30 s the first time to build the image).
#   --no-build: use target/release/skiff as it is (otherwise `cargo build --release -p skiff`).
#   --rebuild-image: build the cached image again.
#   $PULL_BENCH_ONLY=skiff,podman,...: only these contenders (skiff skopeo+umoci podman docker).
#   $PULL_BENCH_FORMAT=v2s2|oci: the manifest format pushed to the registry (default v2s2).
#   $PULL_BENCH_SKIFF=PATH: another skiff binary (default target/release/skiff).
# skiff is reported as "n/a (no pull yet)" while `skiff pull` does not exist.
#
# Everything runs in ONE private mount namespace (podman's and dockerd's overlay mounts stay
# there), from a temp dir under /tmp removed at exit; the registry listens on 127.0.0.1 only.
# /var/lib/containers (skopeo's and podman's blob-info cache, written whatever their
# configuration says) is, in the namespace, a dir of the temp dir. dockerd gets a daemon.json
# with `deprecated-key-path` in its dir, so /etc/docker/key.json is not written; /run/docker
# (plugins) is removed at exit if it did not exist before. The registry and every dockerd are
# stopped by pid. At the end the host state is compared with the start.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=1
REBUILD=()
RUNS=${PULL_BENCH_RUNS:-3}
for a in "$@"; do
    case $a in
        --no-build) BUILD=0 ;;
        --rebuild-image) REBUILD=(--rebuild) ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *[!0-9]*|'') echo "unknown argument $a (usage: bench/pull.sh [--no-build] [--rebuild-image] [RUNS])" >&2; exit 2 ;;
        *) RUNS=$a ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "pull.sh needs root" >&2; exit 1; }
missing=""
for p in skopeo umoci podman docker.io docker-registry busybox-static gcc; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "pull.sh: installing$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
if [ "$BUILD" = 1 ]; then
    cargo build --release -q -p skiff
fi
SKIFF=${PULL_BENCH_SKIFF:-$PWD/target/release/skiff}
CACHE=${PULL_BENCH_CACHE:-/var/tmp/skiff-bench-pull-image}

WORK="$(mktemp -d /tmp/skiff-pull.XXXXXX)"
# Host state that the contenders may change outside $WORK.
snapshot() {
    echo "# mounts"; awk '{print $5}' /proc/self/mountinfo | sort
    echo "# files"
    ls -d /etc/docker /etc/docker/* /run/docker /run/docker/* /run/containerd /run/containerd/* /run/containers \
        /run/containers/* /run/libpod /var/lib/docker /var/lib/containers /var/lib/containers/* \
        /var/lib/containers/cache/* /dev/shm/* /etc/containers/* 2>/dev/null || true
    stat -c '%n %Y %s' /var/lib/containers/cache /var/lib/containers/cache/* 2>/dev/null || true
    echo "# processes"; ps -eo args= | grep -F -e dockerd -e containerd -e docker-registry -e podman -e skopeo -e umoci \
        | grep -v -F -e grep -e '<defunct>' | sort || true
    echo "# listening"; { ss -Hltn 2>/dev/null || true; } | awk '{print $4}' | sort
}
snapshot > "$WORK/host.before"
FRESH=()   # global paths that did not exist before, removed at exit (when empty, for dirs)
for p in /etc/docker /etc/docker/key.json /run/docker /run/docker/plugins /run/containerd /run/containers /run/libpod \
         /var/lib/containers; do
    [ -e "$p" ] || FRESH+=("$p")
done

. bench/peers.sh   # kill_naming, rmdir_tree (the cwd is the repository)
cleanup() {
    local status=$?
    set +e
    trap - EXIT INT TERM
    # Normally pull.py has stopped every dockerd and the registry; this is for a run that was
    # killed: each dockerd first (it stops its containerd), then anything naming $WORK.
    for pf in "$WORK"/r/*/dockerd.pid "$WORK"/docker-probe/dockerd.pid; do
        [ -s "$pf" ] || continue
        pid=$(cat "$pf")
        if grep -q -a -F "$WORK" "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid"; for _ in $(seq 150); do [ -e "/proc/$pid" ] || break; sleep 0.2; done
        fi
    done
    kill_naming
    for ((i = ${#FRESH[@]} - 1; i >= 0; i--)); do
        p=${FRESH[$i]}
        if [ -d "$p" ]; then rmdir "$p/plugins" 2>/dev/null; rmdir "$p" 2>/dev/null; elif [ -e "$p" ]; then rm -f "$p"; fi
    done
    snapshot > "$WORK/host.after" 2>/dev/null
    if diff -q "$WORK/host.before" "$WORK/host.after" >/dev/null; then
        echo "== host check: left as found (mounts, /etc/docker, /run, /var/lib, /dev/shm, daemons, listening ports)"
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

gcc -O2 -o "$WORK/maxrss" bench/maxrss.c
ONLY=()
[ -z "${PULL_BENCH_ONLY:-}" ] || ONLY=(--only "$PULL_BENCH_ONLY")
# One private mount namespace for every contender. skopeo and podman (containers/image) write
# their blob-info cache to /var/lib/containers/cache whatever the configuration says: in the
# namespace /var/lib/containers is an empty dir of $WORK (or, when it does not exist on the
# host, /var/lib is an overlay whose upper dir is in $WORK).
unshare -m --propagation private bash -c '
    set -eu
    W=$1; shift
    mkdir -p "$W/varlib/upper" "$W/varlib/work" "$W/varlib/containers"
    if [ -d /var/lib/containers ]; then
        mount --bind "$W/varlib/containers" /var/lib/containers
    elif ! mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$W/varlib/upper,workdir=$W/varlib/work" /var/lib; then
        echo "warning: skopeo/podman may create /var/lib/containers/cache (removed at exit)" >&2
    fi
    exec python3 bench/pull.py "$@"
' pull "$WORK" --work "$WORK" --skiff "$SKIFF" --maxrss "$WORK/maxrss" --runs "$RUNS" --cache "$CACHE" \
    --format "${PULL_BENCH_FORMAT:-v2s2}" "${ONLY[@]}" "${REBUILD[@]}"
