#!/usr/bin/env python3
"""Side-by-side latency and peak RSS of skiff-runtime, runc and crun (and podman with each).

Sections (the first argument):
- run:    `RT run --bundle B ID` of `/bin/true`, in each bundle (e.g. without and with resource
          limits, with seccomp). Latency is the wall time of the whole command.
- cycle:  `RT create --pid-file F`, `RT start`, wait for the init to exit (a pidfd on it, so
          the wait costs every runtime the same), `RT delete`. Latency is the whole cycle;
          peak RSS the largest of the three commands.
- exec:   `RT exec ID /bin/true` into a running container (one per runtime, running `sleep`),
          in the foreground: the command waits for the process, as `runc exec` does.
- podman: `podman --runtime RT run --rm --network none IMAGE true` (a throwaway podman config
          and storage; see bench/run.sh). Peak RSS there is podman's own, the largest process
          of the tree, so only the latency compares runtimes.

Every iteration runs every runtime once, alternating, so that machine noise hits all of them
alike; the first 3 iterations are warm-up and dropped. Peak RSS is ru_maxrss from wait4 in a
tiny C launcher (bench/maxrss.c): the command and the processes it reaped; the launcher's
~0.1 ms is the same for every runtime. Prints medians, p90, the largest peak RSS and ratios
skiff/other. Run through bench/run.sh (it prepares bundles, the podman store and the mount
namespace crun needs on a hybrid cgroup host).

Usage: bench.py SECTION N RUNTIMES_JSON [BUNDLES_JSON | EXTRA_JSON]
  run/cycle/exec: BUNDLES_JSON {"label": "/bundle/dir", ...}; exec uses {"sleep": dir}.
  podman: EXTRA_JSON {"podman": [argv prefix], "image": NAME}; RUNTIMES_JSON maps a name to
  the runtime binary path.
"""
import json, os, select, statistics, subprocess, sys, tempfile, time

MAXRSS = os.environ.get("MAXRSS", "")
WARMUP = 3


def measure(cmd, check=True):
    """Wall time (ms) of the whole command, and its peak RSS (MB) through the maxrss launcher."""
    # stderr goes to a file, not a pipe: a created container's init holds the runtime's stdio
    # until it is started, so EOF on a pipe would only come after `start`.
    with tempfile.TemporaryFile() as f:
        t0 = time.perf_counter()
        p = subprocess.run([MAXRSS] + cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=f)
        dt = time.perf_counter() - t0
        f.seek(0)
        err = f.read().decode(errors="replace")
    if check and p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {err}")
    kb = int(err.strip().splitlines()[-1].split()[1])
    return dt * 1000.0, kb / 1024.0


def quiet(cmd):
    subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(title, runtimes, lat, rss, rss_note=""):
    """One table: per runtime median, p90, peak RSS; then skiff/other ratios."""
    print(f"-- {title}")
    print(f"{'runtime':<12}{'median ms':>10}{'p90 ms':>9}{'peak RSS MB':>13}")
    med = {}
    for name in runtimes:
        l = sorted(lat[name])
        if not l:
            continue
        med[name] = (statistics.median(l), max(rss[name]))
        p90 = l[max(0, int(len(l) * 0.9) - 1)]
        print(f"{name:<12}{med[name][0]:>10.2f}{p90:>9.2f}{med[name][1]:>13.2f}")
    if "skiff" in med:
        s = med["skiff"]
        for other in med:
            if other != "skiff":
                o = med[other]
                print(f"skiff/{other}: latency {s[0] / o[0]:.2f}x, peak RSS {s[1] / o[1]:.2f}x{rss_note}")
    return med


def run_section(n, runtimes, bundles):
    lat = {(r, b): [] for r in runtimes for b in bundles}
    rss = {(r, b): [] for r in runtimes for b in bundles}
    for i in range(n + WARMUP):
        for label, bundle in bundles.items():
            for name, base in runtimes.items():
                cid = f"bench-{name}-{label.replace(' ', '-')}-{os.getpid()}-{i}"
                ms, mb = measure(base + ["run", "--bundle", bundle, cid])
                if i >= WARMUP:
                    lat[(name, label)].append(ms)
                    rss[(name, label)].append(mb)
    meds = {}
    for label in bundles:
        meds[label] = report(f"run /bin/true: {label}", runtimes,
                             {r: lat[(r, label)] for r in runtimes}, {r: rss[(r, label)] for r in runtimes})
    labels = list(bundles)
    if "skiff" in runtimes and len(labels) > 1:
        base = meds[labels[0]]["skiff"][0]
        for label in labels[1:]:
            print(f"skiff {label}/{labels[0]}: latency {meds[label]['skiff'][0] / base:.2f}x")


def wait_pid_exit(pid, timeout=10.0):
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            raise SystemExit(f"container init {pid} did not exit within {timeout}s")
    finally:
        os.close(fd)


def cycle_section(n, runtimes, bundles, tmp):
    label, bundle = next(iter(bundles.items()))
    lat = {r: [] for r in runtimes}
    rss = {r: [] for r in runtimes}
    for i in range(n + WARMUP):
        for name, base in runtimes.items():
            cid = f"bench-cycle-{name}-{os.getpid()}-{i}"
            pidfile = os.path.join(tmp, f"{cid}.pid")
            t0 = time.perf_counter()
            _, m1 = measure(base + ["create", "--bundle", bundle, "--pid-file", pidfile, cid])
            pid = int(open(pidfile).read().strip())
            _, m2 = measure(base + ["start", cid])
            wait_pid_exit(pid)
            _, m3 = measure(base + ["delete", cid])
            ms = (time.perf_counter() - t0) * 1000.0
            os.unlink(pidfile)
            if i >= WARMUP:
                lat[name].append(ms)
                rss[name].append(max(m1, m2, m3))
    report(f"create + start + wait + delete of /bin/true: {label}", runtimes, lat, rss)


def exec_section(n, runtimes, bundles):
    bundle = bundles["sleep"]
    ids = {name: f"bench-exec-{name}-{os.getpid()}" for name in runtimes}
    lat = {r: [] for r in runtimes}
    rss = {r: [] for r in runtimes}
    try:
        for name, base in runtimes.items():
            measure(base + ["create", "--bundle", bundle, ids[name]])
            measure(base + ["start", ids[name]])
        for i in range(n + WARMUP):
            for name, base in runtimes.items():
                ms, mb = measure(base + ["exec", ids[name], "/bin/true"])
                if i >= WARMUP:
                    lat[name].append(ms)
                    rss[name].append(mb)
    finally:
        for name, base in runtimes.items():
            quiet(base + ["delete", "--force", ids[name]])
    report("exec /bin/true in a running container (foreground)", runtimes, lat, rss)


def podman_section(n, runtimes, extra):
    podman = extra["podman"]
    image = extra["image"]
    lat = {r: [] for r in runtimes}
    rss = {r: [] for r in runtimes}
    try:
        for i in range(n + WARMUP):
            for name, path in runtimes.items():
                ms, mb = measure(podman + ["--runtime", path, "run", "--rm", "--network", "none", image, "true"])
                if i >= WARMUP:
                    lat[name].append(ms)
                    rss[name].append(mb)
    finally:
        reap_store_users(extra["store"])
    report(f"podman run --rm --network none {image} true", runtimes, lat, rss,
           rss_note=" (RSS: podman's own)")


def store_users(store):
    """Pids (not ours) whose command line names the podman store: conmon, cleanup."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                if store.encode() in open(f"/proc/{d}/cmdline", "rb").read():
                    out.append(int(d))
            except OSError:
                pass
    return out


def reap_store_users(store):
    """conmon and `podman container cleanup` finish asynchronously after `run --rm`: wait for
    the ones working on our store, then kill any left (by pid)."""
    for _ in range(50):
        if not store_users(store):
            return
        time.sleep(0.1)
    for pid in store_users(store):
        try:
            os.kill(pid, 9)
        except OSError:
            pass


def main():
    section, n = sys.argv[1], int(sys.argv[2])
    runtimes = json.loads(sys.argv[3])  # {"name": ["binary", "--root", "dir"], ...}
    arg = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    if section == "run":
        run_section(n, runtimes, arg)
    elif section == "cycle":
        cycle_section(n, runtimes, arg, os.environ.get("BENCH_TMP", "/tmp"))
    elif section == "exec":
        exec_section(n, runtimes, arg)
    elif section == "podman":
        podman_section(n, runtimes, arg)
    else:
        raise SystemExit(f"unknown section {section}")


if __name__ == "__main__":
    main()
