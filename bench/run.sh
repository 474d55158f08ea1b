#!/usr/bin/env bash
# Benchmark: `run /bin/true` with skiff-runtime vs Debian's runc and crun, same bundles (plain,
# with resource limits, with Docker's default seccomp profile), then the cost of compiling the
# default seccomp profile (benches/seccomp_compile.rs).
# Usage: bench/run.sh [ITERATIONS]   (root; builds skiff in release mode first)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-50}"
command -v runc >/dev/null && command -v crun >/dev/null || { echo "needs runc and crun (apt-get install runc crun)" >&2; exit 1; }
cargo build --release -q -p skiff-runtime
SKIFF="$PWD/target/release/skiff-runtime"
WORK="$(mktemp -d /tmp/skiff-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
scripts/mkrootfs.sh "$WORK/bundle/rootfs" >/dev/null
gcc -O2 -o "$WORK/maxrss" bench/maxrss.c
export MAXRSS="$WORK/maxrss"
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
# The same container with the default seccomp profile, sharing the rootfs.
os.makedirs("../seccomp", exist_ok=True)
json.dump(dict(c, linux=dict(c["linux"], seccomp=seccomp)), open("../seccomp/config.json", "w"), indent=1)
# The same container with limits (memory + cpu + pids), sharing the rootfs.
c["linux"]["resources"] = {
    "memory": {"limit": 268435456, "swap": 268435456},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000},
    "pids": {"limit": 100},
}
os.makedirs("../limits", exist_ok=True)
json.dump(c, open("../limits/config.json", "w"), indent=1)
PY
)
RT="{\"skiff\": [\"$SKIFF\", \"--root\", \"$WORK/skiff\"], \"runc\": [\"runc\", \"--root\", \"$WORK/runc\"], \"crun\": [\"crun\", \"--root\", \"$WORK/crun\"]}"
BUNDLES="{\"no limits\": \"$WORK/bundle\", \"limits\": \"$WORK/limits\", \"seccomp\": \"$WORK/seccomp\"}"
echo "== hybrid layout hidden (crun cannot run on this host's hybrid cgroups): all three in one private mount namespace"
unshare -m --propagation private sh -c '
  if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && grep -q . /sys/fs/cgroup/unified/cgroup.controllers; then
    umount /sys/fs/cgroup/unified 2>/dev/null || mount --bind /dev/null /sys/fs/cgroup/unified/cgroup.controllers
  fi
  exec python3 bench/bench.py "$@"' sh "$N" "$RT" "$BUNDLES"
echo "== host layout as is (hybrid here): skiff and runc"
python3 bench/bench.py "$N" "{\"skiff\": [\"$SKIFF\", \"--root\", \"$WORK/skiff\"], \"runc\": [\"runc\", \"--root\", \"$WORK/runc\"]}" "$BUNDLES"
echo "== compiling Docker's default seccomp profile (goal: <= 1 ms; skiff caches the BPF)"
cargo bench -q -p skiff-core --bench seccomp_compile 2>/dev/null | grep -v '^$'
