#!/usr/bin/env bash
# Benchmark skiff-runtime against Debian's runc and crun, side by side in one run (see
# bench/bench.py for what each section measures):
#   run     `run /bin/true` in three bundles: plain, with resource limits, with Docker's
#           default seccomp profile
#   cycle   create, start, wait for the exit, delete
#   exec    `exec ID /bin/true` into a running container, in the foreground
#   podman  `podman run --rm --network none IMAGE true` with each runtime (throwaway podman
#           config and storage; skipped when podman is missing)
#   host    `run` on the host's own (hybrid) cgroup layout: skiff and runc only
#   seccomp the cost of compiling the default seccomp profile (benches/seccomp_compile.rs)
# crun refuses this host's hybrid cgroups, so every section but `host` runs all runtimes in one
# private mount namespace where the cgroup2 mount is hidden.
# Usage: bench/run.sh [--quick] [ITERATIONS] [SECTION...]   (root; builds skiff in release
# mode first). Default: 50 iterations, every section; --quick: 10 iterations, the plain bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
if [ "${1:-}" = "--quick" ]; then QUICK=1; shift; fi
N=50
[ "$QUICK" = 1 ] && N=10
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then N=$1; shift; fi
SECTIONS="${*:-run cycle exec podman host seccomp}"
for s in $SECTIONS; do
    case $s in run|cycle|exec|podman|host|seccomp) ;; *) echo "unknown section $s" >&2; exit 2 ;; esac
done
command -v runc >/dev/null && command -v crun >/dev/null || { echo "needs runc and crun (apt-get install runc crun)" >&2; exit 1; }
cargo build --release -q -p skiff-runtime
SKIFF="$PWD/target/release/skiff-runtime"
WORK="$(mktemp -d /tmp/skiff-bench.XXXXXX)"
cleanup() {
    # Containers left by an interrupted run (each runtime's own state root), then our files.
    for rt in "$SKIFF" runc crun; do
        name=$(basename "$rt" | sed 's/-runtime//')
        [ -d "$WORK/$name" ] || continue
        for id in $("$rt" --root "$WORK/$name" list -q 2>/dev/null); do
            "$rt" --root "$WORK/$name" delete --force "$id" >/dev/null 2>&1 || true
        done
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
scripts/mkrootfs.sh "$WORK/bundle/rootfs" >/dev/null
gcc -O2 -o "$WORK/maxrss" bench/maxrss.c
export MAXRSS="$WORK/maxrss" BENCH_TMP="$WORK"
( cd "$WORK/bundle" && "$SKIFF" spec && python3 - <<'PY'
import json, os
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["ociVersion"] = "1.0.2"   # crun 1.8 refuses >= 1.2
# `spec` writes Docker's default seccomp profile; the baseline runs without it.
seccomp = c["linux"].pop("seccomp")
json.dump(c, open("config.json", "w"), indent=1)
c["root"]["path"] = os.path.abspath("rootfs")
def bundle(name, config):
    os.makedirs(f"../{name}", exist_ok=True)
    json.dump(config, open(f"../{name}/config.json", "w"), indent=1)
# The same container with the default seccomp profile, sharing the rootfs.
bundle("seccomp", dict(c, linux=dict(c["linux"], seccomp=seccomp)))
# A long-running one to exec into.
bundle("sleep", dict(c, process=dict(c["process"], args=["sleep", "100000"])))
# The same container with limits (memory + cpu + pids).
c["linux"]["resources"] = {
    "memory": {"limit": 268435456, "swap": 268435456},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000},
    "pids": {"limit": 100},
}
bundle("limits", c)
PY
)
RT="{\"skiff\": [\"$SKIFF\", \"--root\", \"$WORK/skiff\"], \"runc\": [\"runc\", \"--root\", \"$WORK/runc\"], \"crun\": [\"crun\", \"--root\", \"$WORK/crun\"]}"
if [ "$QUICK" = 1 ]; then
    BUNDLES="{\"no limits\": \"$WORK/bundle\"}"
else
    BUNDLES="{\"no limits\": \"$WORK/bundle\", \"limits\": \"$WORK/limits\", \"seccomp\": \"$WORK/seccomp\"}"
fi
PLAIN="{\"no limits\": \"$WORK/bundle\"}"
SLEEP="{\"sleep\": \"$WORK/sleep\"}"

has() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# podman: a throwaway configuration and store under $WORK, the image imported from the
# busybox rootfs. podman picks the --log-format=json flags by the runtime's file name; ours
# is listed in runtime_supports_json so that it gets them too.
PODMAN=""
if has podman; then
    if command -v podman >/dev/null; then
        P="$WORK/podman"
        mkdir -p "$P/tmp" "$P/net"
        cat > "$P/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$P/tmp"
runtime_supports_json = ["crun", "runc", "skiff-runtime"]
[network]
network_config_dir = "$P/net"
EOF
        cat > "$P/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$P/graph"
runroot = "$P/run"
EOF
        PODMAN="[\"env\", \"CONTAINERS_CONF=$P/containers.conf\", \"CONTAINERS_STORAGE_CONF=$P/storage.conf\", \"podman\"]"
        export PODMAN_RT="{\"skiff\": \"$SKIFF\", \"runc\": \"$(command -v runc)\", \"crun\": \"$(command -v crun)\"}"
        export PODMAN_EXTRA="{\"podman\": $PODMAN, \"image\": \"localhost/skiff-bench-busybox\", \"store\": \"$P\"}"
        export PODMAN_DIR="$P"
    else
        echo "== podman: not installed, section skipped"
    fi
fi

# podman (cgroupfs) leaves libpod_parent/conmon cgroups behind: remove those it makes here.
FRESH_CG=$(for d in /sys/fs/cgroup/*/; do [ -e "${d}libpod_parent" ] || echo "${d}libpod_parent"; done)
remove_podman_cgroups() {
    for d in $FRESH_CG; do
        [ -d "$d/conmon" ] && rmdir "$d/conmon" 2>/dev/null || true
        [ -d "$d" ] && rmdir "$d" 2>/dev/null || true
    done
}
[ -n "${PODMAN_DIR:-}" ] && trap 'remove_podman_cgroups; cleanup' EXIT

export SECTIONS N RT BUNDLES PLAIN SLEEP
echo "== hybrid layout hidden (crun cannot run on this host's hybrid cgroups): all three in one private mount namespace"
unshare -m --propagation private bash -c '
  set -euo pipefail
  if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && grep -q . /sys/fs/cgroup/unified/cgroup.controllers; then
    umount /sys/fs/cgroup/unified 2>/dev/null || mount --bind /dev/null /sys/fs/cgroup/unified/cgroup.controllers
  fi
  has() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
  has run && python3 bench/bench.py run "$N" "$RT" "$BUNDLES"
  has cycle && python3 bench/bench.py cycle "$N" "$RT" "$PLAIN"
  has exec && python3 bench/bench.py exec "$N" "$RT" "$SLEEP"
  if has podman && [ -n "${PODMAN_DIR:-}" ]; then
    P=$PODMAN_DIR
    export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf
    tar -C "$(dirname "$P")/bundle/rootfs" -c . | podman import -q - localhost/skiff-bench-busybox >/dev/null
    status=0
    python3 bench/bench.py podman "$(( N < 20 ? N : 20 ))" "$PODMAN_RT" "$PODMAN_EXTRA" || status=$?
    podman rm -a -f >/dev/null 2>&1 || true
    podman system reset -f >/dev/null 2>&1 || true
    exit $status
  fi
'
if has host; then
    echo "== host layout as is (hybrid here): skiff and runc"
    python3 bench/bench.py run "$N" "{\"skiff\": [\"$SKIFF\", \"--root\", \"$WORK/skiff\"], \"runc\": [\"runc\", \"--root\", \"$WORK/runc\"]}" "$BUNDLES"
fi
if has seccomp; then
    echo "== compiling Docker's default seccomp profile (goal: <= 1 ms; skiff caches the BPF)"
    cargo bench -q -p skiff-core --bench seccomp_compile 2>/dev/null | grep -v '^$'
fi
