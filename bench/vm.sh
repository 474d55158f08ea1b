#!/usr/bin/env bash
# The start benchmark in a QEMU guest on pure cgroup v2 (issue 14): skiff-runtime against
# Debian's runc and crun, `run /bin/true` in two bundles (plain, and with limits: memory + cpu +
# pids), on Debian's 6.1 kernel with every v2 controller enabled (tests/vm/vm.py --layout v2).
# On pure v2 crun needs no workaround (on this hybrid host bench/run.sh hides the cgroup2 mount
# for it); this shows how the three compare where the container's cgroup is a v2 one.
#
# The guest has no Python: its loop is busybox sh (the plan below), each command timed by
# bench/vmtime.c (static; wall time fork -> wait4 and ru_maxrss, the method of
# bench/maxrss.c + bench/bench.py), printed as `BENCH LABEL RUNTIME MS KB STATUS` lines on the
# console; the host reads them and prints bench/bench.py's tables (median, p90, peak RSS,
# skiff/runc and skiff/crun). Every iteration runs every runtime once, alternating, the first 3
# are warm-up and dropped, as bench.py does. Before timing, each runtime runs a container
# that prints a line (checked), so a runtime that fails in the guest stops the bench.
#
# TCG emulates the CPU: absolute times are ~10-30x the host's and mean little; the ratios are
# what this measures (same kernel, same layout, same emulated CPU for all three). The guest
# has 2 vCPUs and 2 GB, no network. Not part of CI.
#
# Usage: bench/vm.sh [--no-build] [--no-aslr] [ITERATIONS]   (root; default 30 iterations, ~4 min)
#   --no-build: use target/release/skiff-runtime as it is (otherwise `cargo build --release
#   -p skiff-runtime` first).
#   --no-aslr: turn off address space randomisation in the guest (its sysctl; the host is not
#   touched). QEMU 7.2's TCG finds translated code by virtual address, so with ASLR every
#   process has its code translated afresh: a cost of the emulator, growing with the code a
#   program runs, that no real CPU has. Without ASLR translations are reused across processes.
# Needs qemu-system-x86 and the apt source for the 6.1 kernel package (see tests/vm/vm.py),
# runc, crun, busybox-static and a C compiler with static libc.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=1
ASLR=2
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --no-aslr) ASLR=0; shift ;;
        *) break ;;
    esac
done
N=30
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then N=$1; shift; fi
[ $# -eq 0 ] || { echo "usage: bench/vm.sh [--no-build] [--no-aslr] [ITERATIONS]" >&2; exit 2; }
RUNC=/usr/sbin/runc
CRUN=/usr/bin/crun
[ -x "$RUNC" ] && [ -x "$CRUN" ] || { echo "needs $RUNC and $CRUN (apt-get install runc crun)" >&2; exit 1; }
[ "$BUILD" = 1 ] && cargo build --release -q -p skiff-runtime
SKIFF="$PWD/target/release/skiff-runtime"
WORK="$(mktemp -d /tmp/skiff-bench-vm.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
scripts/mkrootfs.sh "$WORK/rootfs" >/dev/null
gcc -static -O2 -o "$WORK/vmtime" bench/vmtime.c
( cd "$WORK" && "$SKIFF" spec && python3 - <<'PY'
import json, os
c = json.load(open("config.json"))
os.unlink("config.json")
c["process"]["terminal"] = False
c["ociVersion"] = "1.0.2"   # crun 1.8 refuses >= 1.2
c["linux"].pop("seccomp")   # the baseline, as bench/run.sh's
c["root"]["path"] = os.path.abspath("rootfs")
def bundle(name, config, args):
    os.makedirs(name)
    json.dump(dict(config, process=dict(config["process"], args=args)), open(f"{name}/config.json", "w"), indent=1)
bundle("check", c, ["/bin/sh", "-c", "echo bench-check-ok"])
bundle("plain", c, ["/bin/true"])
c["linux"]["resources"] = {
    "memory": {"limit": 268435456, "swap": 268435456},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000},
    "pids": {"limit": 100},
}
bundle("limits", c, ["/bin/true"])
PY
)
cat > "$WORK/guest.sh" <<EOF
# bench/vm.sh's guest side (busybox sh): a checked run per runtime, then the timed loop.
echo $ASLR > /proc/sys/kernel/randomize_va_space
echo "guest: kernel.randomize_va_space=\$(cat /proc/sys/kernel/randomize_va_space)"
W=3
N=$N
rc=0
rt_bin() { case \$1 in skiff) echo $SKIFF ;; runc) echo $RUNC ;; crun) echo $CRUN ;; esac; }
for rt in skiff runc crun; do
    out=\$(\$(rt_bin \$rt) --root $WORK/state/\$rt run --bundle $WORK/check check-\$rt 2>&1)
    if [ "\$out" = bench-check-ok ]; then echo "CHECK \$rt ok"; else echo "CHECK \$rt FAILED: \$out"; rc=1; fi
done
[ \$rc = 0 ] || exit 1
i=0
while [ \$i -lt \$((N + W)) ]; do
    for b in plain limits; do
        label=\$b
        [ \$i -lt \$W ] && label=warmup
        for rt in skiff runc crun; do
            $WORK/vmtime \$label \$rt \$(rt_bin \$rt) --root $WORK/state/\$rt run --bundle $WORK/\$b bench-\$rt-\$b-\$i || rc=1
        done
    done
    i=\$((i + 1))
done
exit \$rc
EOF
echo "== guest: Debian 6.1 kernel, pure cgroup v2, TCG, 2 vCPUs; $N iterations (+3 warm-up)"
echo "   $("$SKIFF" --version | head -1); $("$RUNC" --version | head -1); $("$CRUN" --version | head -1)"
status=0
python3 tests/vm/vm.py --layout v2 --timeout 1800 --file "$SKIFF" --file "$RUNC" --file "$CRUN" --file "$WORK" \
    -- sh "$WORK/guest.sh" > "$WORK/console.log" 2>&1 || status=$?
grep -E '^(vm: kernel|CHECK|guest: )' "$WORK/console.log" || true
if [ "$status" != 0 ]; then
    echo "vm.sh: the guest failed (vm.py exit $status); its console:" >&2
    grep -v '^BENCH ' "$WORK/console.log" | tail -40 >&2
    exit 1
fi
python3 - "$WORK/console.log" <<'PY'
import sys
sys.path.insert(0, "bench")
from bench import report   # bench.py's table: median, p90, peak RSS, skiff/other ratios
runtimes = ["skiff", "runc", "crun"]
lat, rss = {}, {}
for line in open(sys.argv[1], errors="replace"):
    f = line.split()
    if len(f) == 6 and f[0] == "BENCH" and f[1] != "warmup":
        if f[5] != "0":
            raise SystemExit(f"a run failed in the guest: {line.strip()}")
        lat.setdefault(f[1], {r: [] for r in runtimes})[f[2]].append(float(f[3]))
        rss.setdefault(f[1], {r: [] for r in runtimes})[f[2]].append(int(f[4]) / 1024.0)
meds = {}
for bundle, label in (("plain", "no limits"), ("limits", "limits")):
    if bundle not in lat:
        raise SystemExit(f"no timings for the {bundle} bundle")
    meds[bundle] = report(f"run /bin/true in the v2 guest: {label}", runtimes, lat[bundle], rss[bundle])
print(f"skiff limits/no limits: latency {meds['limits']['skiff'][0] / meds['plain']['skiff'][0]:.2f}x")
PY
