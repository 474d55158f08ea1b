#!/usr/bin/env python3
"""Network benchmark: skiff against podman 4.3 (netavark, runc) and Docker 20.10 (own dockerd,
iptables + docker-proxy), side by side in one run, every engine in the host's network namespace.

Run through bench/network.sh: it builds skiff and the sink, makes the temp dir, the busybox
image tar (with /bin/network-sink in it) that every engine imports, the private mount namespace
this script runs in, and it cleans the host afterwards (bridges, iptables chains, nft table,
sysctls, files) and checks it against the start.

Sections (each selectable by name):
- start:   `E run -d --network bridge -p 127.0.0.1:PORT:80 IMAGE httpd -f -p 80` (podman:
           `--network podman`, its default netavark network); wall time of the command; a fresh
           host port per iteration. After the command returned (not part of that time) the
           time until an HTTP GET through 127.0.0.1:PORT gets an answer is taken too ("until
           HTTP answers", measured from the same invocation). Then `rm -f` (podman `-t 0`) and
           a wait until nothing of the engine still works on the temp dir, untimed.
           Variant `user`: `E run -d --network NET IMAGE httpd -f -p 80` on a user network
           the benchmark created (no -p; command time only).
- tput:    one sink container per engine (`run -d --network bridge -p 127.0.0.1:PORT:5001
           IMAGE /bin/network-sink 5001`); a client on the host sends N bytes (default 2 GiB)
           to 127.0.0.1:PORT and waits for the sink's byte count (checked == N). Also, as
           references: the same sink binary on the host at 127.0.0.1 (loopback, no container:
           the ceiling of the machine, so the sink is not what limits) and each container's own
           address on its bridge (no port mapping: veth + bridge only). MB/s = 10^6 bytes/s.

Every round runs every engine once, round-robin, starting with a different engine each time;
warm-up rounds are dropped. Ratios: peer median / skiff median for times, skiff / peer for
throughput. An engine that is missing, fails to start or fails in a section is reported as
skipped with the reason.

Usage: network.py --work DIR --skiff BIN --tar IMAGE.tar --sink BIN [--quick] [SECTION[=N] ...]
"""
import argparse, json, os, re, signal, socket, statistics, subprocess, sys, time

import peers
from peers import Failed, cmdline, pids_naming, ppid_of, quiet, reap_naming, run, stats, umount_under

SECTIONS = ["start", "user", "tput"]
# (iterations, warm-up) per section: default and --quick.
DEFAULT_N = {"start": (20, 3), "user": (20, 3), "tput": (5, 1)}
QUICK_N = {"start": (4, 1), "user": (3, 1), "tput": (2, 1)}
TPUT_BYTES = 2 << 30
QUICK_TPUT_BYTES = 512 << 20
WARM_TPUT_BYTES = 256 << 20
TIMEOUT = 180
# Host ports: start section base + 100 * engine index + iteration; sinks at TPUT_PORT + index.
START_PORT = 42000
TPUT_PORT = 42900
# Subnets of the user networks (and Docker's own bridge): one /24 each in 10.201.0.0/16,
# checked against the host's routes by network.sh.
SUBNETS = {"skiff": "10.201.1.0/24", "podman": "10.201.2.0/24", "docker": "10.201.3.0/24"}
DOCKER_BIP = "10.201.4.1/24"

WORK = ""
DAEMONS = set()  # dockerd and its containerd: they name the temp dir for as long as they run

RESIDENT = (b"skiff-dns",)  # per-network servers that live as long as their network


def settle(limit=10.0):
    """Wait until nothing but the daemons (dockerd, its containerd, skiff-dns) works on the
    temp dir: a monitor or conmon finishing a removal, podman's cleanup, a shim leaving."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not [p for p in pids_naming(WORK)
                if p not in DAEMONS and ppid_of(p) not in DAEMONS
                and os.path.basename((cmdline(p) or [b""])[0]) not in RESIDENT]:
            return
        time.sleep(0.01)


def record_link(name):
    """Bridges this run made (network.sh deletes those still there at the end)."""
    with open(f"{WORK}/created-links", "a") as f:
        f.write(name + "\n")


# ----------------------------------------------------------------------------------- engines

class Engine:
    def __init__(self, name, argv, image, network, rm_flags=("-f",), env=None, ip_format=None):
        self.name, self.argv, self.image, self.network = name, list(argv), image, network
        self.rm_flags = list(rm_flags)
        self.env = env or {}
        self.skip = None
        self.version = ""
        self.user_net = None
        self.ip_format = ip_format or "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        self.daemon = None

    def cmd(self, *args):
        return self.argv + list(args)

    def run(self, *args, **kw):
        return run(self.cmd(*args), env=dict(os.environ, **self.env), **kw)

    def quiet(self, *args, **kw):
        return quiet(self.cmd(*args), env=dict(os.environ, **self.env), **kw)

    def run_detached(self, *args):
        ms, _, out, _ = self.run("run", "-d", *args)
        cid = out.strip().splitlines()[-1].strip() if out.strip() else ""
        if not cid:
            raise Failed(f"{self.name}: `run -d` printed no container id")
        return ms, cid

    def remove(self, cid):
        return self.run("rm", *self.rm_flags, cid)[0]

    def ip(self, cid):
        ip = self.run("inspect", "-f", self.ip_format, cid, timeout=60)[2].strip()
        if not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", ip):
            raise Failed(f"{self.name}: no IPv4 address for {cid[:12]} (inspect said {ip!r})")
        return ip

    def remove_all(self):
        try:
            ids = self.run("ps", "-aq", timeout=60)[2].split()
        except Failed:
            ids = []
        if ids:
            self.quiet("rm", *self.rm_flags, *ids, timeout=120)


def start_dockerd(docker, d):
    """Our own dockerd with everything in `d`; Docker's defaults for networking (iptables,
    docker-proxy, ip-forward, masquerade) except the address of its bridge docker0."""
    docker.daemon, docker.env = peers.start_dockerd(
        d, json.dumps({"deprecated-key-path": f"{d}/key.json"}), ["--iptables=true", "--bip", DOCKER_BIP])
    docker.exec_root = f"{d}/exec"
    DAEMONS.add(docker.daemon.pid)
    return peers.wait_dockerd(docker.daemon, d, lambda: docker.run(
        "version", "--format", "{{.Server.Version}}", timeout=10, check=False)[1] == 0)


def stop_dockerd(docker):
    p = docker.daemon
    if p is None:
        return
    left = peers.stop_dockerd(p, docker.exec_root)
    if left:
        print(f"   (docker: killed leftover processes {left})")
    DAEMONS.discard(p.pid)
    docker.daemon = None


def link_exists(name):
    return os.path.exists(f"/sys/class/net/{name}")


def setup_engines(a):
    work, tar = a.work, a.tar
    change = 'CMD ["sh"]'
    engines = []
    tag = f"nb{os.getpid()}"

    skiff = Engine("skiff", [a.skiff, "--root", f"{work}/skiff"], "busybox:latest", "bridge",
                   ip_format="{{.NetworkSettings.IPAddress}}")
    try:
        skiff.run("import", "-c", change, tar, "busybox:latest")
    except Failed as e:
        skiff.skip = f"import failed: {e}"
    engines.append(skiff)

    p = f"{work}/podman"
    runc = "/usr/sbin/runc" if os.access("/usr/sbin/runc", os.X_OK) else None
    podman = Engine("podman", ["podman", "--runtime", runc or "runc"], "localhost/busybox:latest", "podman",
                    rm_flags=("-f", "-t", "0"))
    if not shutil_which("podman") or not shutil_which("conmon"):
        podman.skip = "podman or conmon not installed"
    elif not runc:
        podman.skip = "runc not installed (crun refuses this host's hybrid cgroups)"
    elif not os.access("/usr/lib/podman/netavark", os.X_OK) and not shutil_which("netavark"):
        podman.skip = "netavark not installed"
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
network_backend = "netavark"
network_config_dir = "{p}/net"
""")
        with open(f"{p}/storage.conf", "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{p}/graph"\nrunroot = "{p}/run"\n')
        podman.env = {"CONTAINERS_CONF": f"{p}/containers.conf", "CONTAINERS_STORAGE_CONF": f"{p}/storage.conf"}
        try:
            podman.run("import", "-q", "-c", change, tar, "localhost/busybox:latest")
            backend = podman.run("info", "--format", "{{.Host.NetworkBackend}}")[2].strip()
            if backend != "netavark":
                podman.skip = f"podman's network backend is {backend!r}, not netavark"
        except Failed as e:
            podman.skip = f"podman import failed: {e}"
    engines.append(podman)

    docker = Engine("docker", ["/usr/bin/docker"], "busybox:latest", "bridge")
    missing = [b for b in ("/usr/bin/docker", "dockerd", "containerd", "containerd-shim-runc-v2", "runc", "docker-proxy")
               if not shutil_which(b)]
    if missing:
        docker.skip = f"{', '.join(missing)} not installed"
    elif os.path.lexists("/run/containerd/containerd.sock"):
        docker.skip = "/run/containerd/containerd.sock exists: dockerd would use that containerd, not its own"
    elif link_exists("docker0"):
        docker.skip = "a docker0 bridge exists already (another Docker?): not touching it"
    else:
        docker.skip = start_dockerd(docker, f"{work}/docker")
        if link_exists("docker0"):
            record_link("docker0")
        if not docker.skip:
            try:
                docker.run("import", "-c", change, tar, "busybox:latest")
            except Failed as e:
                docker.skip = f"docker import failed: {e}"
    engines.append(docker)
    for e in engines:
        e.tag = tag
    versions(engines)
    return engines


def shutil_which(b):
    import shutil
    return shutil.which(b)


def make_user_net(e):
    """A user network for the `user` variant, on a subnet of its own; its bridge recorded."""
    name = f"{e.tag}-{e.name}"
    out = e.run("network", "create", "--subnet", SUBNETS[e.name], name)[2].strip()
    e.user_net = name
    if e.name == "skiff":
        bridge = "skbr-" + e.run("network", "inspect", "-f", "{{.Id}}", name)[2].strip()[:8]
    elif e.name == "docker":
        bridge = "br-" + out.splitlines()[-1][:12]
    else:
        bridge = e.run("network", "inspect", "-f", "{{.NetworkInterface}}", name)[2].strip()
    if bridge:
        record_link(bridge)  # skiff and podman make it at the first container: recorded in advance
    e.user_bridge = bridge


def versions(engines):
    def first(cmd, env=None):
        try:
            out = run(cmd, timeout=30, env=env)[2].strip().splitlines()
            return out[0] if out else "?"
        except (Failed, OSError):
            return "?"

    for e in engines:
        if e.skip:
            continue
        if e.name == "skiff":
            e.version = f"{first(e.cmd('--version'))}, nftables DNAT (`nft`: {first(['nft', '--version'])})"
        elif e.name == "podman":
            nv = first(["/usr/lib/podman/netavark", "--version"])
            e.version = (f"{first(e.cmd('--version'))}, {nv}, "
                         f"{first(['conmon', '--version']).replace('conmon version ', 'conmon ')}, "
                         f"{first(['/usr/sbin/runc', '--version']).replace(' version', '')}")
        else:
            v = first(e.cmd("version", "--format", "{{.Server.Version}}"), env=dict(os.environ, **e.env))
            cv = (first(["containerd", "--version"]).split(" ") + ["?", "?", "?"])[2]
            e.version = (f"dockerd {v}, containerd {cv}, {first(['runc', '--version']).replace(' version', '')}, "
                         f"docker-proxy + iptables ({first(['iptables', '--version'])})")


def teardown(engines, work):
    for e in engines:
        if e.name == "docker":
            if e.daemon is not None:
                e.remove_all()
                if e.user_net:
                    e.quiet("network", "rm", e.user_net)
                stop_dockerd(e)
        elif e.skip is None or e.user_net:
            e.remove_all()
            if e.user_net:
                e.quiet("network", "rm", e.user_net)
    left = reap_naming(work)
    if left:
        print(f"   (killed leftover processes naming {work}: {left})")
    umount_under(work)


# ---------------------------------------------------------------------------------- reports

def table(title, engines, lat, failed, base_name="skiff"):
    print(f"-- {title}")
    print(f"   {'engine':<10}{'median ms':>11}{'mean ms':>10}{'p90 ms':>10}{'peer/skiff':>12}")
    med = {e.name: stats(lat[e.name])[0] for e in engines if lat.get(e.name) and e.name not in failed}
    base = med.get(base_name)
    for e in engines:
        if e.skip or e.name in failed or not lat.get(e.name):
            print(f"   {e.name:<10}skipped: {e.skip or failed.get(e.name, 'no sample')}")
            continue
        m, mean, p90 = stats(lat[e.name])
        ratio = "-" if e.name == base_name or not base else f"{m / base:.1f}x"
        print(f"   {e.name:<10}{m:>11.1f}{mean:>10.1f}{p90:>10.1f}{ratio:>12}")
    return med


def rounds(items, n, warmup):
    for i in range(n + warmup):
        k = i % len(items)
        yield i, i >= warmup, items[k:] + items[:k]


def verdict_start(results, key, what, med, target):
    peers = {k: v for k, v in med.items() if k != "skiff"}
    if "skiff" in med and peers:
        fastest = min(peers, key=peers.get)
        r = peers[fastest] / med["skiff"]
        results.append((key, r >= target, f"{what}: skiff >= {target:g}x faster than the fastest peer: "
                                          f"{fastest} {peers[fastest]:.0f} ms / skiff {med['skiff']:.1f} ms = {r:.1f}x"))
    else:
        results.append((key, None, f"{what}: not evaluated (skiff or every peer skipped)"))


# --------------------------------------------------------------------------------- sections

def http_answers(port, deadline):
    """Poll 127.0.0.1:port with `GET /` until an HTTP status line comes back."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                if s.recv(16).startswith(b"HTTP/"):
                    return True
        except OSError:
            pass
        time.sleep(0.002)
    return False


def section_start(engines, n, warmup, results):
    live = [e for e in engines if not e.skip]
    lat = {e.name: [] for e in live}
    ready = {e.name: [] for e in live}
    failed = {}
    for i, keep, order in rounds(live, n, warmup):
        for e in order:
            if e.name in failed:
                continue
            port = START_PORT + 100 * engines.index(e) + i
            settle()
            cid = None
            try:
                t0 = time.perf_counter()
                ms, cid = e.run_detached("--network", e.network, "-p", f"127.0.0.1:{port}:80", e.image,
                                         "httpd", "-f", "-p", "80")
                if not http_answers(port, time.monotonic() + 20):
                    raise Failed(f"{e.name}: no HTTP answer on 127.0.0.1:{port} within 20 s")
                t_ready = (time.perf_counter() - t0) * 1000.0
                e.remove(cid)
                cid = None
            except Failed as x:
                failed[e.name] = str(x)
                if cid:
                    e.quiet("rm", *e.rm_flags, cid)
                continue
            if keep:
                lat[e.name].append(ms)
                ready[e.name].append(t_ready)
    med = table(f"start: `run -d --network bridge -p 127.0.0.1:PORT:80 IMAGE httpd -f -p 80` (podman: "
                f"--network podman), the command's wall time ({n} iterations + {warmup} warm-up, interleaved; "
                f"rm -f untimed)", engines, lat, failed)
    table("start: from the same invocation until `GET /` through 127.0.0.1:PORT gets an HTTP answer "
          "(polled every 2 ms after the command returned)", engines, ready, failed)
    verdict_start(results, "start", "`run -d -p` on the default bridge", med, 5.0)


def section_user(engines, n, warmup, results):
    live = [e for e in engines if not e.skip]
    failed = {}
    for e in live:
        try:
            make_user_net(e)
        except Failed as x:
            failed[e.name] = f"network create: {x}"
    lat = {e.name: [] for e in live}
    for i, keep, order in rounds(live, n, warmup):
        for e in order:
            if e.name in failed:
                continue
            settle()
            cid = None
            try:
                ms, cid = e.run_detached("--network", e.user_net, e.image, "httpd", "-f", "-p", "80")
                if i == 0:  # once: the container really is on the network and serves
                    ip = e.ip(cid)
                    if not ip.startswith(SUBNETS[e.name].rsplit(".", 1)[0] + "."):
                        raise Failed(f"{e.name}: address {ip} not in {SUBNETS[e.name]}")
                e.remove(cid)
                cid = None
            except Failed as x:
                failed[e.name] = str(x)
                if cid:
                    e.quiet("rm", *e.rm_flags, cid)
                continue
            if keep:
                lat[e.name].append(ms)
    med = table(f"user network: `run -d --network NET IMAGE httpd -f -p 80` on a network the benchmark "
                f"created (no -p; {n} iterations + {warmup} warm-up, interleaved)", engines, lat, failed)
    peers = {k: v for k, v in med.items() if k != "skiff"}
    if "skiff" in med and peers:
        fastest = min(peers, key=peers.get)
        results.append(("user", None, f"`run -d` on a user network, no -p (no target): fastest peer {fastest} "
                                      f"{peers[fastest]:.0f} ms / skiff {med['skiff']:.1f} ms = "
                                      f"{peers[fastest] / med['skiff']:.1f}x"))


def send(host, port, nbytes):
    """Send nbytes to host:port, wait for the sink's count; MB/s (10^6 bytes)."""
    buf = memoryview(bytes(4 << 20))
    with socket.create_connection((host, port), timeout=30) as s:
        s.settimeout(120)
        t0 = time.perf_counter()
        left = nbytes
        while left:
            k = min(len(buf), left)
            s.sendall(buf[:k])
            left -= k
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            d = s.recv(64)
            if not d:
                break
            reply += d
        t = time.perf_counter() - t0
    if reply.strip() != str(nbytes).encode():
        raise Failed(f"{host}:{port}: the sink received {reply.strip().decode(errors='replace') or 'nothing'} "
                     f"of {nbytes} bytes")
    return nbytes / t / 1e6


def wait_listening(host, port, deadline):
    while time.monotonic() < deadline:
        try:
            # A zero-byte connection: the sink answers "0".
            with socket.create_connection((host, port), timeout=2) as s:
                s.shutdown(socket.SHUT_WR)
                if s.recv(16).strip() == b"0":
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def section_tput(engines, n, warmup, nbytes, sink, results):
    live = [e for e in engines if not e.skip]
    failed = {}
    paths = []  # (label, engine name or None, host, port)
    host_sink = None
    ids = {}
    try:
        port = TPUT_PORT + 99
        host_sink = subprocess.Popen([sink, str(port), "127.0.0.1"], stdin=subprocess.DEVNULL, start_new_session=True)
        if wait_listening("127.0.0.1", port, time.monotonic() + 10):
            paths.append(("host loopback, no container", None, "127.0.0.1", port))
        else:
            print("   (the sink on the host did not answer: no loopback reference)")
        direct = []
        for e in live:
            port = TPUT_PORT + engines.index(e)
            try:
                ids[e.name] = e.run_detached("--network", e.network, "-p", f"127.0.0.1:{port}:5001", e.image,
                                             "/bin/network-sink", "5001")[1]
                ip = e.ip(ids[e.name])
                if not wait_listening("127.0.0.1", port, time.monotonic() + 20):
                    raise Failed(f"{e.name}: the sink is not reachable through 127.0.0.1:{port}")
                paths.append((f"{e.name} -p 127.0.0.1:{port}:5001", e.name, "127.0.0.1", port))
                direct.append((f"{e.name} container address {ip}:5001", e.name + "@ip", ip, 5001))
            except Failed as x:
                failed[e.name] = str(x)
        paths += direct
        res = {p[0]: [] for p in paths}
        for i, keep, order in rounds(paths, n, warmup):
            for label, who, host, port in order:
                if label in failed:
                    continue
                try:
                    mbs = send(host, port, nbytes if keep else min(nbytes, WARM_TPUT_BYTES))
                except (Failed, OSError) as x:
                    failed[label] = str(x)
                    continue
                if keep:
                    res[label].append(mbs)
    finally:
        if host_sink:
            host_sink.terminate()
            host_sink.wait()
        for e in live:
            if e.name in ids:
                e.quiet("rm", *e.rm_flags, ids[e.name])
    print(f"-- throughput host -> container: {nbytes / 2**30:g} GiB per run from a Python socket client on the host "
          f"(4 MiB sendall), to the same static sink (bench/network-sink.c, 1 MiB reads) in every container; "
          f"{n} runs + {warmup} warm-up of {WARM_TPUT_BYTES >> 20} MiB, interleaved; MB/s = 10^6 bytes/s")
    print(f"   {'path':<46}{'median MB/s':>13}{'min':>8}{'max':>8}{'skiff/peer':>12}")
    med = {}
    for label, who, _, _ in paths:
        if label in failed or not res[label]:
            print(f"   {label:<46}failed: {failed.get(label, 'no sample')}")
            continue
        med[label] = statistics.median(res[label])
    skiff_p = next((l for l, w, _, _ in paths if w == "skiff" and l in med), None)
    skiff_ip = next((l for l, w, _, _ in paths if w == "skiff@ip" and l in med), None)
    for label, who, _, _ in paths:
        if label not in med:
            continue
        base = skiff_ip if who and who.endswith("@ip") else skiff_p
        ratio = "-" if who is None or (who or "").startswith("skiff") or not base else f"{med[base] / med[label]:.2f}x"
        print(f"   {label:<46}{med[label]:>13.0f}{min(res[label]):>8.0f}{max(res[label]):>8.0f}{ratio:>12}")
    for name, why in failed.items():
        if name in [e.name for e in live]:
            print(f"   {name:<46}skipped: {why}")
    peers = {w: med[l] for l, w, _, _ in paths if l in med and w and "@" not in w and w != "skiff"}
    if skiff_p and peers:
        best = max(peers, key=peers.get)
        ok = all(med[skiff_p] >= v for v in peers.values())
        best_label = next(l for l, w, _, _ in paths if w == best)
        lo, hi = min(res[best_label]), max(res[best_label])
        note = (f" [skiff's median is inside {best}'s run-to-run range {lo:.0f}-{hi:.0f} MB/s: parity within noise]"
                if not ok and lo <= med[skiff_p] else "")
        results.append(("tput", ok, f"skiff's throughput through 127.0.0.1:PORT no lower than the peers': skiff "
                                    f"{med[skiff_p]:.0f} MB/s, " + ", ".join(f"{k} {v:.0f} MB/s" for k, v in peers.items())
                        + f" (best peer {best}: skiff/peer {med[skiff_p] / peers[best]:.2f}x){note}"))
    else:
        results.append(("tput", None, "throughput: not evaluated (skiff or every peer failed)"))


# ------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--skiff", required=True)
    ap.add_argument("--tar", required=True)
    ap.add_argument("--sink", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bytes", type=int, default=0)
    ap.add_argument("sections", nargs="*")
    a = ap.parse_args()
    plan = {}
    for s in a.sections or SECTIONS:
        name, _, count = s.partition("=")
        if name not in SECTIONS or (count and (not count.isdigit() or int(count) < 1)):
            raise SystemExit(f"unknown section {s} (sections: {' '.join(SECTIONS)}, optionally NAME=ITERATIONS)")
        n, w = (QUICK_N if a.quick else DEFAULT_N)[name]
        plan[name] = (int(count) if count else n, w)
    nbytes = a.bytes or (QUICK_TPUT_BYTES if a.quick else TPUT_BYTES)
    global WORK
    WORK = a.work
    os.environ["TMPDIR"] = f"{a.work}/tmp"
    os.makedirs(os.environ["TMPDIR"], exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    t0 = time.monotonic()
    load0 = open("/proc/loadavg").read().split()[:3]
    print(f"== network benchmark: {', '.join(plan)}{' (--quick)' if a.quick else ''}; every engine in the host's "
          f"network namespace (kernel {os.uname().release}, {os.cpu_count()} CPUs)")
    engines = []
    results = []
    try:
        engines = setup_engines(a)
        for e in engines:
            print(f"   {e.name:<10}{'skipped: ' + e.skip if e.skip else ' '.join(e.argv) + '  (' + e.version + ')'}")
        if all(e.skip for e in engines):
            raise SystemExit("every engine skipped")
        sys.stdout.flush()
        for name, (n, w) in plan.items():
            if name == "start":
                section_start(engines, n, w, results)
            elif name == "user":
                section_user(engines, n, w, results)
            elif name == "tput":
                section_tput(engines, n, w, nbytes, a.sink, results)
            sys.stdout.flush()
    except KeyboardInterrupt:
        print("== interrupted: removing the containers and networks, stopping dockerd")
        sys.stdout.flush()
        teardown(engines, a.work)
        sys.exit(130)
    except BaseException:
        teardown(engines, a.work)
        raise
    teardown(engines, a.work)
    print("== summary (targets)")
    for name, ok, text in results:
        verdict = "for reference" if ok is None else ("MET" if ok else "NOT MET")
        print(f"   {name}: {text}: {verdict}")
    print(f"   ({time.monotonic() - t0:.0f} s on {os.cpu_count()} CPUs; load average at the start "
          f"{' '.join(load0)}, at the end {' '.join(open('/proc/loadavg').read().split()[:3])})")


if __name__ == "__main__":
    main()
