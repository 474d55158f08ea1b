#!/usr/bin/env python3
"""Side-by-side start latency and peak RSS of skiff-runtime, runc and crun.

Each runtime runs `/bin/true` in the same busybox bundles (e.g. one without and one with
resource limits), N times, alternating runtimes and bundles so that machine noise hits all of
them alike. Latency is wall time of the whole `run` command;
peak RSS is ru_maxrss from wait4 in a tiny C launcher (bench/maxrss.c): the runtime and
the processes it reaped; the launcher's ~0.1 ms is the same for every runtime. Prints medians
and ratios skiff/other. Run through bench/run.sh (it prepares the bundle and the mount
namespace crun needs on a hybrid cgroup host).
"""
import json, os, statistics, subprocess, sys, time

MAXRSS = os.environ.get("MAXRSS", "")

def measure(cmd):
    """Wall time (ms) of the whole command, and its peak RSS (MB) through the maxrss launcher."""
    t0 = time.perf_counter()
    p = subprocess.run([MAXRSS] + cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {err}")
    kb = int(err.strip().splitlines()[-1].split()[1])
    return dt * 1000.0, kb / 1024.0

def main():
    n = int(sys.argv[1])
    runtimes = json.loads(sys.argv[2])  # {"name": ["binary", "--root", "dir"], ...}
    bundles = json.loads(sys.argv[3])   # {"label": "/bundle/dir", ...}; the first is the baseline
    lat = {(r, b): [] for r in runtimes for b in bundles}
    rss = {(r, b): [] for r in runtimes for b in bundles}
    for i in range(n + 3):
        for label, bundle in bundles.items():
            for name, base in runtimes.items():
                cid = f"bench-{name}-{label.replace(' ', '_')}-{os.getpid()}-{i}"
                ms, mb = measure(base + ["run", "--bundle", bundle, cid])
                if i >= 3:  # warm-up runs are dropped
                    lat[(name, label)].append(ms)
                    rss[(name, label)].append(mb)
    med = {}
    for label in bundles:
        print(f"-- {label}")
        print(f"{'runtime':<12}{'median ms':>10}{'p90 ms':>9}{'peak RSS MB':>13}")
        for name in runtimes:
            l = sorted(lat[(name, label)])
            med[(name, label)] = (statistics.median(l), max(rss[(name, label)]))
            print(f"{name:<12}{med[(name, label)][0]:>10.2f}{l[int(len(l) * 0.9) - 1]:>9.2f}{med[(name, label)][1]:>13.2f}")
        if "skiff" in runtimes:
            s = med[("skiff", label)]
            for other in runtimes:
                if other != "skiff":
                    o = med[(other, label)]
                    print(f"skiff/{other}: latency {s[0] / o[0]:.2f}x, peak RSS {s[1] / o[1]:.2f}x")
    labels = list(bundles)
    if "skiff" in runtimes and len(labels) > 1:
        base = med[("skiff", labels[0])][0]
        for label in labels[1:]:
            print(f"skiff {label}/{labels[0]}: latency {med[('skiff', label)][0] / base:.2f}x")

if __name__ == "__main__":
    main()
