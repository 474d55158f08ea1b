#!/usr/bin/env python3
"""Side-by-side start latency and peak RSS of skiff-runtime, runc and crun.

Each runtime runs `/bin/true` in the same busybox bundle, N times, alternating runtimes so
that machine noise hits all of them alike. Latency is wall time of the whole `run` command;
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
    bundle, n = sys.argv[1], int(sys.argv[2])
    runtimes = json.loads(sys.argv[3])  # {"name": ["binary", "--root", "dir"], ...}
    lat = {k: [] for k in runtimes}
    rss = {k: [] for k in runtimes}
    for i in range(n + 3):
        for name, base in runtimes.items():
            cid = f"bench-{name}-{os.getpid()}-{i}"
            ms, mb = measure(base + ["run", "--bundle", bundle, cid])
            if i >= 3:  # warm-up runs are dropped
                lat[name].append(ms)
                rss[name].append(mb)
    print(f"{'runtime':<12}{'median ms':>10}{'p90 ms':>9}{'peak RSS MB':>13}")
    med = {}
    for name in runtimes:
        l = sorted(lat[name])
        med[name] = (statistics.median(l), max(rss[name]))
        print(f"{name:<12}{med[name][0]:>10.2f}{l[int(len(l) * 0.9) - 1]:>9.2f}{med[name][1]:>13.2f}")
    if "skiff" in med:
        for other in runtimes:
            if other != "skiff":
                print(f"skiff/{other}: latency {med['skiff'][0] / med[other][0]:.2f}x, peak RSS {med['skiff'][1] / med[other][1]:.2f}x")

if __name__ == "__main__":
    main()
