#!/usr/bin/env python3
"""Engine benchmark (issue 10): skiff against podman (crun, runc) and Docker, side by side.

Run through bench/engine.sh: it builds skiff, makes the temp dir, the busybox rootfs tar that
every engine imports, and the private mount namespace this script runs in (the cgroup2 mount
of this hybrid host hidden, see engine.sh), and leaves the host as found afterwards.

Sections (each selectable by name):
- run:    `E run --rm --network none IMAGE true`; wall time of the command.
- cycle:  `E run -d --network none IMAGE sleep 1000`, `E exec ID true`, `E rm -f ID`; each step
          timed on its own (podman gets `rm -f -t 0`: its `rm -f` first waits the 10 s stop
          timeout, as `sleep` as pid 1 ignores SIGTERM; docker's and skiff's `rm -f` kill at once).
- memory: one idle container per engine (`sleep 1000`); its monitor process is the parent of
          the container's init (pid from `E inspect`), checked to name the container's id on its
          command line (skiff-monitor `--dir .../ID`, conmon `-c ID`, containerd-shim-runc-v2
          `-id ID`). VmRSS from /proc/PID/status, PSS and USS (Private_*) from smaps_rollup.
- commit: a container copies a 100 MB random file (made once, bind-mounted read-only) into
          /big and exits; then `E commit` of it is timed (after a sync, so no engine pays for
          the previous one's writeback). The first image of each engine is checked to hold
          /big (`wc -c`).

Every iteration runs every engine once, round-robin, starting with a different engine each
time so that machine noise hits all of them alike; warm-up iterations are dropped. An engine's
turn starts only once nothing of the previous turns is still working on the temp dir
(skiff-monitor or conmon finishing a removal, podman's `container cleanup`, a shim exiting;
dockerd and its containerd excepted): on 2 cores one engine's aftermath would otherwise be
timed as the next one's latency. Latencies: median, mean, p90 (ms) and the ratio peer/skiff of the medians. An engine
that is missing, fails to start or fails in a section is reported as skipped with the reason.

Usage: engine.py --work DIR --skiff BIN --tar ROOTFS.tar [--quick] [SECTION[=N] ...]
"""
import argparse, os, shutil, signal, statistics, sys, time

import peers
from peers import Failed, cmdline, pids_naming, ppid_of, quiet, reap_naming, run, stats, umount_under

SECTIONS = ["run", "cycle", "memory", "commit"]
# (iterations, warm-up) per section: default and --quick.
DEFAULT_N = {"run": (30, 3), "cycle": (10, 1), "memory": (5, 0), "commit": (3, 1)}
QUICK_N = {"run": (5, 1), "cycle": (3, 1), "memory": (1, 0), "commit": (1, 0)}
BIG_MB = 100
TIMEOUT = 180

WORK = ""
DAEMONS = set()  # dockerd and its containerd: they name the temp dir for as long as they run


def settle(work, limit=10.0):
    """Wait until no process but the daemons works on the temp dir: skiff-monitor and conmon
    finishing a removed container, podman's `container cleanup`, a shim on its way out. Every
    measurement starts from idle engines, so no engine is timed while another one's aftermath
    still holds the CPU (on 2 cores that is most of the noise)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not [p for p in pids_naming(work) if p not in DAEMONS and ppid_of(p) not in DAEMONS]:
            return
        time.sleep(0.01)


# ----------------------------------------------------------------------------------- engines

class Engine:
    """One engine: its command prefix, image name and the extra flags it needs."""

    def __init__(self, name, argv, image, monitor, rm_flags=("-f",), commit_flags=(), env=None):
        self.name, self.argv, self.image, self.monitor = name, list(argv), image, monitor
        self.rm_flags, self.commit_flags = list(rm_flags), list(commit_flags)
        self.env = env or {}  # this engine's own variables (podman reads DOCKER_CONFIG too)
        self.skip = None  # reason, when unavailable
        self.version = ""

    def cmd(self, *args):
        return self.argv + list(args)

    def run(self, *args, **kw):
        return run(self.cmd(*args), env=dict(os.environ, **self.env), **kw)

    def quiet(self, *args, **kw):
        quiet(self.cmd(*args), env=dict(os.environ, **self.env), **kw)

    def run_true(self):
        return self.run("run", "--rm", "--network", "none", self.image, "true")[0]

    def run_detached(self, *args):
        ms, _, out, _ = self.run("run", "-d", "--network", "none", *args)
        cid = out.strip().splitlines()[-1].strip() if out.strip() else ""
        if not cid:
            raise Failed(f"{self.name}: `run -d` printed no container id")
        return ms, cid

    def remove(self, cid):
        return self.run("rm", *self.rm_flags, cid)[0]

    def container_ids(self):
        try:
            return self.run("ps", "-aq", timeout=60)[2].split()
        except Failed:
            return []

    def remove_all(self):
        ids = self.container_ids()
        if ids:
            self.quiet("rm", *self.rm_flags, *ids, timeout=120)


def setup_engines(a):
    """skiff, podman+crun, podman+runc, docker; each imports the same rootfs tar."""
    work = a.work
    tar = a.tar
    change = 'CMD ["sh"]'
    engines = []

    skiff = Engine("skiff", [a.skiff, "--root", f"{work}/skiff"], "busybox:latest", "skiff-monitor")
    if not os.access(a.skiff, os.X_OK):
        skiff.skip = f"{a.skiff} not built"
    else:
        try:
            skiff.run("import", "-c", change, tar, "busybox:latest")
        except Failed as e:
            skiff.skip = f"import failed: {e}"
    engines.append(skiff)

    # podman: a throwaway configuration and store in the temp dir. File locks (in tmp_dir)
    # instead of the /dev/shm/libpod_lock segment every root podman of the host shares.
    p = f"{work}/podman"
    crun, runc = shutil.which("crun"), shutil.which("runc")
    pc = Engine("podman+crun", ["podman", "--runtime", crun or "crun"], "localhost/busybox:latest", "conmon",
                rm_flags=("-f", "-t", "0"), commit_flags=("-q",))
    pr = Engine("podman+runc", ["podman", "--runtime", runc or "runc"], "localhost/busybox:latest", "conmon",
                rm_flags=("-f", "-t", "0"), commit_flags=("-q",))
    missing = [b for b in ("podman", "conmon") if not shutil.which(b) and not os.path.exists(f"/usr/libexec/podman/{b}")]
    if missing:
        pc.skip = pr.skip = f"{' and '.join(missing)} not installed"
    else:
        for d in ("tmp", "net", "graph", "run"):
            os.makedirs(f"{p}/{d}", exist_ok=True)
        with open(f"{p}/containers.conf", "w") as f:
            f.write(f"""[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "{p}/tmp"
image_copy_tmp_dir = "{p}/tmp"
runtime_supports_json = ["crun", "runc"]
[network]
network_config_dir = "{p}/net"
""")
        with open(f"{p}/storage.conf", "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{p}/graph"\nrunroot = "{p}/run"\n')
        conf = {"CONTAINERS_CONF": f"{p}/containers.conf", "CONTAINERS_STORAGE_CONF": f"{p}/storage.conf"}
        pc.env, pr.env = conf, conf
        if not crun:
            pc.skip = "crun not installed"
        if not runc:
            pr.skip = "runc not installed"
        if not (pc.skip and pr.skip):
            try:
                (pr if pc.skip else pc).run("import", "-q", "-c", change, tar, "localhost/busybox:latest")
            except Failed as e:
                pc.skip = pc.skip or f"podman import failed: {e}"
                pr.skip = pr.skip or f"podman import failed: {e}"
    engines += [pc, pr]

    docker = Engine("docker", ["/usr/bin/docker"], "busybox:latest", "containerd-shim-runc-v2")
    docker.daemon = None
    missing = [b for b in ("/usr/bin/docker", "dockerd", "containerd", "containerd-shim-runc-v2", "runc")
               if not shutil.which(b)]
    if missing:
        docker.skip = f"{', '.join(missing)} not installed"
    elif os.path.lexists("/run/containerd/containerd.sock"):
        # dockerd 20.10 uses a system containerd whenever this socket exists.
        docker.skip = "/run/containerd/containerd.sock exists: dockerd would use that containerd, not its own"
    else:
        docker.skip = start_dockerd(docker, f"{work}/docker")
        if not docker.skip:
            try:
                docker.run("import", "-c", change, tar, "busybox:latest")
            except Failed as e:
                docker.skip = f"docker import failed: {e}"
    engines.append(docker)
    versions(engines)
    return engines


def versions(engines):
    """What is being compared, for the header."""
    def first(cmd, env=None):
        try:
            out = run(cmd, timeout=30, env=env)[2].strip().splitlines()
            return out[0] if out else "?"
        except Failed:
            return "?"

    for e in engines:
        if e.skip:
            continue
        if e.name == "skiff":
            e.version = first(e.cmd("--version"))
        elif e.name.startswith("podman"):
            rt = e.argv[2]
            e.version = (f"{first(e.cmd('--version'))}, {first(['conmon', '--version']).replace('conmon version ', 'conmon ')}, "
                         f"{first([rt, '--version']).replace(' version', '')}")
        else:
            v = first(e.cmd("version", "--format", "{{.Server.Version}}"), env=dict(os.environ, **e.env))
            cv = (first(["containerd", "--version"]).split(" ") + ["?", "?", "?"])[2]
            e.version = f"dockerd {v}, containerd {cv}, {first(['runc', '--version']).replace(' version', '')}"


def start_dockerd(docker, d):
    """Our own dockerd (and the containerd it starts) with everything in `d`, no networking."""
    docker.daemon, docker.env = peers.start_dockerd(
        d, '{"ip-forward": false, "ip-masq": false, "userland-proxy": false}\n', ["--iptables=false", "--bridge=none"])
    docker.exec_root = f"{d}/exec"
    DAEMONS.add(docker.daemon.pid)
    return peers.wait_dockerd(docker.daemon, d, lambda: docker.run(
        "version", "--format", "{{.Server.Version}}", timeout=10, check=False)[1] == 0)


def stop_dockerd(docker):
    if docker.daemon is None:
        return
    left = peers.stop_dockerd(docker.daemon, docker.exec_root)
    if left:
        print(f"   (docker: killed leftover processes {left})")
    docker.daemon = None


def teardown(engines, work):
    for e in engines:
        if e.name == "docker":
            # Only through our own daemon: without it DOCKER_HOST may not be set yet.
            if getattr(e, "daemon", None) is not None:
                e.remove_all()
                stop_dockerd(e)
        elif e.skip is None:
            e.remove_all()
    left = reap_naming(work)
    if left:
        print(f"   (killed leftover processes naming {work}: {left})")
    # Mounts the engines left in this (private) mount namespace, innermost first.
    umount_under(work)


# ---------------------------------------------------------------------------------- reports

def table(title, engines, lat, failed, unit="ms"):
    """Median, mean, p90 per engine and the ratio peer/skiff of the medians."""
    print(f"-- {title}")
    print(f"   {'engine':<14}{'median ' + unit:>11}{'mean ' + unit:>10}{'p90 ' + unit:>10}{'peer/skiff':>12}")
    med = {e.name: stats(lat[e.name])[0] for e in engines if lat.get(e.name) and e.name not in failed}
    base = med.get("skiff")
    for e in engines:
        if e.skip or e.name in failed:
            print(f"   {e.name:<14}skipped: {e.skip or failed[e.name]}")
            continue
        m, mean, p90 = stats(lat[e.name])
        ratio = "-" if e.name == "skiff" or not base else f"{m / base:.1f}x"
        print(f"   {e.name:<14}{m:>11.1f}{mean:>10.1f}{p90:>10.1f}{ratio:>12}")
    return med


def rounds(engines, n, warmup):
    """(iteration, measured?, engines in this iteration's order): round-robin, each iteration
    starting one engine later."""
    for i in range(n + warmup):
        k = i % len(engines)
        yield i, i >= warmup, engines[k:] + engines[:k]


# --------------------------------------------------------------------------------- sections

def section_run(engines, n, warmup, results):
    live = [e for e in engines if not e.skip]
    lat = {e.name: [] for e in live}
    failed = {}
    for _, keep, order in rounds(live, n, warmup):
        for e in order:
            if e.name in failed:
                continue
            settle(WORK)
            try:
                ms = e.run_true()
            except Failed as x:
                failed[e.name] = str(x)
                continue
            if keep:
                lat[e.name].append(ms)
    med = table(f"run: `run --rm --network none IMAGE true` ({n} iterations + {warmup} warm-up, interleaved)",
                engines, lat, failed)
    peers = {k: v for k, v in med.items() if k != "skiff"}
    if "skiff" in med and peers:
        fastest = min(peers, key=peers.get)
        r = peers[fastest] / med["skiff"]
        results.append(("run", r >= 10.0,
                        f"skiff >= 10x faster than the fastest peer in `run --rm`: {fastest} {peers[fastest]:.0f} ms"
                        f" / skiff {med['skiff']:.1f} ms = {r:.1f}x"))
    else:
        results.append(("run", None, "skiff >= 10x faster than the fastest peer: not evaluated (skiff or every peer skipped)"))


def section_cycle(engines, n, warmup, results):
    live = [e for e in engines if not e.skip]
    steps = ["run -d", "exec", "rm -f", "total"]
    lat = {s: {e.name: [] for e in live} for s in steps}
    failed = {}
    for i, keep, order in rounds(live, n, warmup):
        for e in order:
            if e.name in failed:
                continue
            cid = None
            settle(WORK)
            try:
                t_run, cid = e.run_detached(e.image, "sleep", "1000")
                t_exec = e.run("exec", cid, "true")[0]
                t_rm = e.remove(cid)
                cid = None
            except Failed as x:
                failed[e.name] = str(x)
                if cid:
                    e.quiet("rm", *e.rm_flags, cid)
                continue
            if keep:
                for s, v in zip(steps, (t_run, t_exec, t_rm, t_run + t_exec + t_rm)):
                    lat[s][e.name].append(v)
    print(f"-- cycle: `run -d --network none IMAGE sleep 1000`, `exec ID true`, `rm -f ID` ({n} iterations + "
          f"{warmup} warm-up, interleaved; podman: `rm -f -t 0`)")
    for s in steps:
        table(f"step: {s}", engines, lat[s], failed)


def read_memory(pid):
    kb = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                kb["rss"] = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("Pss", "Private_Clean", "Private_Dirty"):
                kb[k] = int(rest.split()[0])
    return kb["rss"] / 1024.0, kb.get("Pss", 0) / 1024.0, (kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) / 1024.0


def find_monitor(e, cid):
    """The monitor of container `cid`: the parent of its init, checked to name the id on its
    command line; failing that, the one process (not the init) whose command line names it."""
    _, _, out, _ = e.run("inspect", "-f", "{{.State.Pid}}", cid, timeout=60)
    init = int(out.strip())
    full = e.run("inspect", "-f", "{{.Id}}", cid, timeout=60)[2].strip() or cid
    parent = ppid_of(init)
    if parent and any(full.encode() in a for a in cmdline(parent)):
        return parent, "parent of the init"
    named = [p for p in pids_naming(full) if p != init]
    if len(named) == 1:
        return named[0], "command line names the id"
    raise Failed(f"{e.name}: no monitor found for container {full[:12]} (init {init}, parent {parent}, "
                 f"processes naming it: {named})")


def section_memory(engines, n, settle, results):
    live = [e for e in engines if not e.skip]
    mem = {e.name: [] for e in live}
    info = {}
    failed = {}
    for _ in range(n):
        ids = {}
        try:
            for e in live:
                if e.name in failed:
                    continue
                try:
                    ids[e.name] = e.run_detached(e.image, "sleep", "1000")[1]
                except Failed as x:
                    failed[e.name] = str(x)
            time.sleep(settle)  # let every monitor finish its start-up work
            for e in live:
                if e.name not in ids:
                    continue
                try:
                    pid, how = find_monitor(e, ids[e.name])
                    comm = os.path.basename(cmdline(pid)[0].decode(errors="replace"))
                    mem[e.name].append(read_memory(pid))
                    info[e.name] = f"{comm} ({how})"
                except (Failed, OSError, ValueError) as x:
                    failed[e.name] = str(x)
        finally:
            for e in live:
                if e.name in ids:
                    e.quiet("rm", *e.rm_flags, ids[e.name])
    print(f"-- memory: the monitor of an idle container (`sleep 1000`), {n} container(s) per engine, read "
          f"{settle:.0f} s after start; MB, median over containers")
    print(f"   {'engine':<14}{'VmRSS':>8}{'PSS':>8}{'USS':>8}{'RSS peer/skiff':>16}   monitor (found as)")
    med = {}
    for e in engines:
        if e.skip or e.name in failed or not mem.get(e.name):
            print(f"   {e.name:<14}skipped: {e.skip or failed.get(e.name, 'no sample')}")
            continue
        rss, pss, uss = (statistics.median(x[i] for x in mem[e.name]) for i in range(3))
        med[e.name] = (rss, pss, info[e.name].split()[0])
        ratio = "-" if e.name == "skiff" or "skiff" not in med else f"{rss / med['skiff'][0]:.2f}x"
        print(f"   {e.name:<14}{rss:>8.2f}{pss:>8.2f}{uss:>8.2f}{ratio:>16}   {info[e.name]}")
    peers = {k: v for k, v in med.items() if k != "skiff"}
    if "skiff" in med and peers:
        s = med["skiff"]
        ok = all(s[0] < v[0] for v in peers.values())
        others = ", ".join(f"{v[2]} ({k}) {v[0]:.2f} MB (PSS {v[1]:.2f})" for k, v in peers.items())
        margin = min(v[0] for v in peers.values()) - s[0]
        note = (f" [margin {margin * 1024:+.0f} KB: within the ~0.1 MB spread between runs, i.e. parity]"
                if abs(margin) < 0.1 else "")
        results.append(("memory", ok, f"skiff-monitor VmRSS below every peer's monitor: skiff-monitor {s[0]:.2f} MB "
                                      f"(PSS {s[1]:.2f}) vs {others}{note}"))
    else:
        results.append(("memory", None, "skiff-monitor below the peers' monitors: not evaluated (skiff or every peer skipped)"))


def section_commit(engines, n, warmup, work, results):
    data = f"{work}/commit-data"
    os.makedirs(data, exist_ok=True)
    big = f"{data}/big"
    if not os.path.exists(big) or os.path.getsize(big) != BIG_MB << 20:
        with open("/dev/urandom", "rb") as src, open(big, "wb") as dst:
            for _ in range(BIG_MB):
                dst.write(src.read(1 << 20))
    live = [e for e in engines if not e.skip]
    lat = {e.name: [] for e in live}
    failed = {}
    checked = {}
    for i, keep, order in rounds(live, n, warmup):
        for e in order:
            if e.name in failed:
                continue
            name = f"bench-commit-{e.name.replace('+', '-')}-{i}"
            image = f"bench-commit-{e.name.replace('+', '-')}-{i}:latest"
            try:
                e.run("run", "--name", name, "--network", "none", "-v", f"{data}:/data:ro", e.image,
                      "cp", "/data/big", "/big")
                settle(WORK)
                os.sync()
                ms = e.run("commit", *e.commit_flags, name, image)[0]
                if e.name not in checked:
                    out = e.run("run", "--rm", "--network", "none", image, "wc", "-c", "/big")[2].split()
                    checked[e.name] = out[0] if out else "?"
                    if checked[e.name] != str(BIG_MB << 20):
                        raise Failed(f"the committed image's /big has {checked[e.name]} bytes")
                if keep:
                    lat[e.name].append(ms)
            except Failed as x:
                failed[e.name] = str(x)
            finally:
                e.quiet("rm", "-f", name)
                e.quiet("rmi", image)
    table(f"commit: `commit` of a stopped container that wrote {BIG_MB} MB to /big ({n} iterations + {warmup} "
          f"warm-up, interleaved; each committed image checked once: /big = {BIG_MB << 20} bytes)", engines, lat, failed)


# ------------------------------------------------------------------------------------- main

def layout():
    """How cgroups look from here (the namespace engine.sh made)."""
    fs = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            t = parts[parts.index("-") + 1]
            if t in ("cgroup", "cgroup2") and parts[4].startswith("/sys/fs/cgroup"):
                fs.append(t)
    return "cgroup v1 + cgroup2 (hybrid)" if "cgroup" in fs and "cgroup2" in fs else ("cgroup v1" if "cgroup" in fs else "cgroup v2")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--skiff", required=True)
    ap.add_argument("--tar", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("sections", nargs="*")
    a = ap.parse_args()
    plan = {}
    for s in a.sections or SECTIONS:
        name, _, count = s.partition("=")
        if name not in SECTIONS or (count and (not count.isdigit() or int(count) < 1)):
            raise SystemExit(f"unknown section {s} (sections: {' '.join(SECTIONS)}, optionally NAME=ITERATIONS)")
        n, w = (QUICK_N if a.quick else DEFAULT_N)[name]
        plan[name] = (int(count) if count else n, w)
    global WORK
    WORK = a.work
    os.environ["TMPDIR"] = f"{a.work}/tmp"
    os.makedirs(os.environ["TMPDIR"], exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    t0 = time.monotonic()
    load0 = open("/proc/loadavg").read().split()[:3]
    print(f"== engine benchmark: {', '.join(plan)}{' (--quick)' if a.quick else ''}; cgroups seen by every "
          f"engine: {layout()} (private mount namespace, see bench/engine.sh)")
    engines = []
    results = []
    try:
        engines = setup_engines(a)
        for e in engines:
            print(f"   {e.name:<14}{'skipped: ' + e.skip if e.skip else ' '.join(e.argv) + '  (' + e.version + ')'}")
        if all(e.skip for e in engines):
            raise SystemExit("every engine skipped")
        for name, (n, w) in plan.items():
            if name == "run":
                section_run(engines, n, w, results)
            elif name == "cycle":
                section_cycle(engines, n, w, results)
            elif name == "memory":
                section_memory(engines, n, 1.0, results)
            elif name == "commit":
                section_commit(engines, n, w, a.work, results)
            sys.stdout.flush()
    except KeyboardInterrupt:
        print("== interrupted: removing the containers, stopping dockerd")
        sys.stdout.flush()
        teardown(engines, a.work)
        sys.exit(130)
    except BaseException:
        teardown(engines, a.work)
        raise
    teardown(engines, a.work)
    print("== summary (targets)")
    for name, ok, text in results:
        verdict = "not evaluated" if ok is None else ("MET" if ok else "NOT MET")
        print(f"   {name}: {text}: {verdict}")
    print(f"   ({time.monotonic() - t0:.0f} s on {os.cpu_count()} CPUs; load average at the start "
          f"{' '.join(load0)}, at the end {' '.join(open('/proc/loadavg').read().split()[:3])})")


if __name__ == "__main__":
    main()
