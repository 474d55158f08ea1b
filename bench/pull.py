#!/usr/bin/env python3
"""Pull benchmark (issue 11): `skiff pull` against skopeo copy + umoci unpack, podman pull and
docker pull, from one local registry, in one run.

Run through bench/pull.sh: it compiles bench/maxrss.c, makes the temp dir and the private mount
namespace this script runs in (/var/lib/containers hidden behind a dir of the temp dir, so the
blob-info cache of skopeo and podman is the run's own), and leaves the host as found afterwards.

Steps:
1. The image (built once, cached in --cache, reused while the recipe below is unchanged): real
   files of this machine in 8 gzip layers (`gzip -n -6`, as a registry client would push them):
   a static busybox root filesystem at the bottom (so the image runs), python, a big shared
   library, perl and vim, locales and time zones, C headers, icons, and a small top "app" layer
   holding a marker file (the check that a pull really unpacked the top layer) and a whiteout.
   `big` is all 8 layers; `half` is the bottom 4 with a config of its own. Stored as an OCI
   layout (index.json names `big` and `half`).
2. Debian's `docker-registry serve` (distribution 2.8) on a free 127.0.0.1 port, filesystem
   storage in the temp dir; both images pushed with `skopeo copy --dest-tls-verify=false` as
   127.0.0.1:PORT/bench/big:v1 and bench/half:v1 (manifest format v2s2 unless --format oci);
   the composition is then read back from the registry's manifest.
3. Every contender pulls `big`, N times per case, each time into a fresh, empty store:
   - cold: nothing there before;
   - half: `half` pulled first (not timed), then `big` timed: the bottom 4 layers are cached.
   Contenders take turns round-robin (run i starts with contender i), a `sync` (not timed)
   before every timed pull so nobody pays for the previous one's writeback; the `sync` just
   after each pull is timed too and shown on its own row (data a tool left dirty in the page
   cache). The page cache is not dropped: the registry's blobs are in memory for everyone.
   - skiff: `skiff --root STORE pull --tls-verify=false -q REF`;
   - skopeo+umoci: `skopeo copy --src-tls-verify=false docker://REF oci:DIR:v1`, then
     `umoci unpack --image DIR:v1 BUNDLE` (time: the sum; half: DIR already holds `half`,
     skopeo skips the blobs it has; umoci has no cache and unpacks every layer);
   - podman: `podman --root R --runroot RR --storage-driver overlay pull --tls-verify=false -q
     REF`, with a containers.conf/storage.conf of the run's own (cgroupfs, file events and locks,
     tmp dirs in the temp dir);
   - docker: a dockerd of the run's own (--data-root/--exec-root/--pidfile/-H unix:// in the
     temp dir, --iptables=false --bridge=none --insecure-registry 127.0.0.1:PORT), restarted on
     a fresh data root for every pull (rmi + prune would leave the layers), then
     `/usr/bin/docker pull -q REF`.
4. Peak memory: skiff, skopeo, umoci, podman: ru_maxrss of the command (bench/maxrss.c; for
   skopeo+umoci the larger of the two). docker: the pull runs inside dockerd, so it is dockerd's
   VmHWM after the pull (the high-water mark reset to the current RSS just before, `echo 5 >
   /proc/PID/clear_refs`) minus its VmRSS when idle (once started, before any pull; in the half
   case what the untimed pull of `half` left resident counts, as it does in a process's
   ru_maxrss).
5. After each pull the image is checked: skiff `image inspect REF` and the marker under
   STORE/image/layers/*/diff/; umoci: the marker in the bundle's rootfs and the whiteout applied;
   podman `image exists REF` and the marker in overlay/*/diff; docker `image inspect REF` and
   the marker in overlay2/*/diff.

Prints the image's composition, every sample, and a table of medians (min-max) with the ratio
skiff vs the fastest peer (time: peer/skiff, >1 means skiff is faster; memory: skiff/lowest
peer), then the issue's targets: skiff >= 1.5x faster than the fastest peer, peak memory no
more than any peer's.

Usage: pull.py --work DIR --skiff BIN --maxrss BIN [--runs N] [--cache DIR] [--format v2s2|oci]
               [--only NAME,...] [--rebuild]
"""
import argparse, glob, hashlib, json, os, shutil, socket, signal, statistics, subprocess, sys
import time, urllib.request
from concurrent.futures import ThreadPoolExecutor

import peers
from peers import Failed, reap_naming, umount_under

RECIPE = "v1"  # change when LAYERS changes: the cached image is rebuilt
# (name, host paths (globs, relative to /) or None for a special layer). Parents of each path
# are added as directory entries of their own (not recursive) so every layer is complete.
LAYERS = [
    ("busybox", None),  # scripts/mkrootfs.sh: static busybox, applet links, /etc files
    ("python", ["usr/lib/python3.11", "usr/lib/python3"]),
    ("llvm", ["usr/lib/x86_64-linux-gnu/libLLVM-15.so.1"]),
    ("perl+vim", ["usr/share/perl", "usr/lib/x86_64-linux-gnu/perl", "usr/lib/x86_64-linux-gnu/perl5",
                  "usr/lib/x86_64-linux-gnu/perl-base", "usr/share/vim"]),
    ("locale", ["usr/share/locale", "usr/share/i18n", "usr/share/zoneinfo"]),
    ("include", ["usr/include"]),
    ("icons", ["usr/share/icons"]),
    ("app", None),  # marker file, /usr/bin/python3.11, a whiteout of usr/share/i18n/charmaps
]
HALF = 4  # `half` = the bottom HALF layers of `big`
MARKER = "etc/skiff-bench/marker"
MARKER_TEXT = f"skiff pull benchmark image {RECIPE}\n"
WHITEOUT = "usr/share/i18n/charmaps"  # in layer `locale`, deleted by `app`
CONTENDERS = ["skiff", "skopeo+umoci", "podman", "docker"]
SHORT = {"skiff": "skiff", "skopeo+umoci": "umoci", "podman": "podman", "docker": "docker"}
TIMEOUT = 900
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def log(msg):
    print(msg, flush=True)


def run(cmd, timeout=TIMEOUT, check=True, env=None, maxrss=False):
    """peers.run, optionally through the maxrss launcher. Returns (ms, rc, stdout, stderr,
    maxrss_kb)."""
    ms, rc, o, e = peers.run(([MAXRSS] if maxrss else []) + cmd, timeout=timeout, check=False, env=env)
    kb = None
    if maxrss:
        lines = e.rstrip("\n").split("\n")
        if lines and lines[-1].startswith("MAXRSS_KB "):
            kb = int(lines[-1].split()[1])
            e = "\n".join(lines[:-1])
    if check and rc != 0:
        raise peers.failure(cmd, rc, timeout, o, e)
    return ms, rc, o, e, kb


def remove_tree(d):
    if os.path.lexists(d):
        umount_under(d)
        subprocess.run(["rm", "-rf", "--one-file-system", d], check=False)


def proc_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise Failed(f"no {key} for pid {pid}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


# ------------------------------------------------------------------------------------ image

def layer_tar(name, paths, build, repo):
    """The uncompressed tar of one layer in `build`; (path, number of entries, sources)."""
    out = f"{build}/{name}.tar"
    common = ["tar", "--numeric-owner", "--sort=name", "--verbose", "-cf", out]
    if name == "busybox":
        root = f"{build}/busybox-rootfs"
        subprocess.run([f"{repo}/scripts/mkrootfs.sh", root], check=True, stdout=subprocess.DEVNULL)
        cmd = common[:1] + ["-C", root, "--owner=0", "--group=0"] + common[1:] + sorted(os.listdir(root))
        sources = ["busybox-static rootfs (scripts/mkrootfs.sh)"]
    elif name == "app":
        root = f"{build}/app-rootfs"
        os.makedirs(f"{root}/{os.path.dirname(MARKER)}", exist_ok=True)
        with open(f"{root}/{MARKER}", "w") as f:
            f.write(MARKER_TEXT)
        os.makedirs(f"{root}/usr/bin", exist_ok=True)
        shutil.copy2("/usr/bin/python3.11", f"{root}/usr/bin/python3.11")
        wdir, wname = os.path.split(WHITEOUT)
        os.makedirs(f"{root}/{wdir}", exist_ok=True)
        open(f"{root}/{wdir}/.wh.{wname}", "w").close()
        cmd = common[:1] + ["-C", root, "--owner=0", "--group=0"] + common[1:] + ["etc", "usr"]
        sources = [f"/{MARKER}", "/usr/bin/python3.11", f"whiteout of /{WHITEOUT}"]
    else:
        found = []
        for p in paths:
            found += sorted(os.path.relpath(m, "/") for m in glob.glob("/" + p))
        if not found:
            raise Failed(f"layer {name}: none of {paths} exists on this machine")
        parents = sorted({"/".join(f.split("/")[:i]) for f in found for i in range(1, f.count("/") + 1)} - set(found))
        cmd = common[:1] + ["-C", "/"] + common[1:] + ["--no-recursion"] + parents + ["--recursion"] + found
        sources = ["/" + f for f in found]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # 1: "file changed as we read it" (a live host); anything else is an error.
    if p.returncode not in (0, 1):
        raise Failed(f"tar of layer {name}: {p.stderr.decode(errors='replace').strip()[-300:]}")
    return out, len(p.stdout.splitlines()), sources


def build_layer(name, paths, build, repo, blobs):
    tar, entries, sources = layer_tar(name, paths, build, repo)
    diff_id = sha256_file(tar)
    usize = os.path.getsize(tar)
    gz = f"{blobs}/{name}.tmp"
    with open(gz, "wb") as f:
        subprocess.run(["gzip", "-n", "-6", "-c", tar], stdout=f, check=True)
    digest = sha256_file(gz)
    size = os.path.getsize(gz)
    os.rename(gz, f"{blobs}/{digest}")
    os.unlink(tar)
    return {"name": name, "sources": sources, "digest": f"sha256:{digest}", "size": size,
            "diff_id": f"sha256:{diff_id}", "usize": usize, "entries": entries}


def write_blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(f"{blobs}/{digest}", "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def image_manifest(layers, blobs, tag):
    created = "2026-01-01T00:00:00Z"
    config = {
        "created": created, "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"],
                   "Labels": {"org.skiff.bench": f"pull {tag} {RECIPE}"}},
        "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
        "history": [{"created": created, "created_by": f"skiff bench/pull.py: layer {l['name']}"} for l in layers],
    }
    cfg = write_blob(blobs, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **cfg),
        "layers": [{"mediaType": OCI_LAYER, "digest": l["digest"], "size": l["size"]} for l in layers],
    }
    m = write_blob(blobs, json.dumps(manifest, sort_keys=True).encode())
    return dict(mediaType="application/vnd.oci.image.manifest.v1+json",
                annotations={"org.opencontainers.image.ref.name": tag}, **m)


def cached_image(cache):
    """The composition of the cached image if it is complete, else None."""
    try:
        with open(f"{cache}/composition.json") as f:
            comp = json.load(f)
        for l in comp["layers"]:
            if os.path.getsize(f"{cache}/oci/blobs/sha256/{l['digest'].split(':')[1]}") != l["size"]:
                return None
        return comp if comp.get("recipe") == RECIPE else None
    except (OSError, ValueError, KeyError):
        return None


def ensure_image(cache, work, repo, rebuild):
    """The OCI layout with `big` and `half` under cache/oci; built when absent (~1-2 minutes)."""
    comp = None if rebuild else cached_image(cache)
    if comp:
        log(f"== image: reusing {cache} (built {comp['built']}; --rebuild or remove the dir to rebuild)")
        return comp
    log(f"== image: building {cache} from this machine's files (once; later runs reuse it)")
    t0 = time.monotonic()
    tmp = f"{cache}.building.{os.getpid()}"
    blobs = f"{tmp}/oci/blobs/sha256"
    os.makedirs(blobs)
    build = f"{work}/build"
    os.makedirs(build, exist_ok=True)
    try:
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as ex:
            futures = [ex.submit(build_layer, name, paths, build, repo, blobs) for name, paths in LAYERS]
            layers = [f.result() for f in futures]
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [image_manifest(layers, blobs, "big"), image_manifest(layers[:HALF], blobs, "half")]}
        with open(f"{tmp}/oci/index.json", "w") as f:
            json.dump(index, f)
        with open(f"{tmp}/oci/oci-layout", "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        comp = {"recipe": RECIPE, "built": time.strftime("%Y-%m-%d %H:%M:%S"), "host": os.uname().release,
                "layers": layers, "half": HALF, "marker": MARKER}
        with open(f"{tmp}/composition.json", "w") as f:
            json.dump(comp, f, indent=1)
        remove_tree(cache)
        os.rename(tmp, cache)
    finally:
        remove_tree(tmp)
        remove_tree(build)
    log(f"   built in {time.monotonic() - t0:.0f} s")
    return comp


# --------------------------------------------------------------------------------- registry

class Registry:
    def __init__(self, work):
        self.dir = f"{work}/registry"
        os.makedirs(f"{self.dir}/storage")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.host = f"127.0.0.1:{self.port}"
        with open(f"{self.dir}/config.yml", "w") as f:
            f.write(f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {self.dir}/storage
  cache:
    blobdescriptor: inmemory
http:
  addr: {self.host}
""")
        self.log = open(f"{self.dir}/registry.log", "wb")
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", f"{self.dir}/config.yml"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise Failed(f"docker-registry exited with {self.proc.returncode}: {self.tail()}")
            try:
                with self.opener.open(f"http://{self.host}/v2/", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Failed(f"docker-registry not answering on {self.host} after 30 s: {self.tail()}")
            time.sleep(0.1)

    def tail(self):
        with open(f"{self.dir}/registry.log", errors="replace") as f:
            return " | ".join(f.read().strip().splitlines()[-2:])

    def manifest(self, repo, tag):
        req = urllib.request.Request(f"http://{self.host}/v2/{repo}/manifests/{tag}", headers={"Accept": ", ".join([
            "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"])})
        with self.opener.open(req, timeout=30) as r:
            return json.load(r)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ------------------------------------------------------------------------------ contenders

class Sample:
    def __init__(self, ms, kb, parts=None):
        self.ms, self.kb, self.parts = ms, kb, parts or {}
        self.sync_ms = 0.0


class Contender:
    name = "?"

    def __init__(self):
        self.skip = None
        self.version = ""
        self.dir = None

    def fresh(self, d):
        self.dir = d
        os.makedirs(d)

    def clear(self, trash=None):
        """Removes the run's store; with `trash`, only moves it there (removed at the end)."""
        if self.dir and trash and os.path.lexists(self.dir):
            umount_under(self.dir)
            os.makedirs(trash, exist_ok=True)
            os.rename(self.dir, f"{trash}/{len(os.listdir(trash))}")
        elif self.dir:
            remove_tree(self.dir)
        self.dir = None

    def marker_in(self, pattern):
        hits = glob.glob(pattern)
        if not hits:
            raise Failed(f"{self.name}: no {MARKER} of the top layer under {pattern}")
        with open(hits[0]) as f:
            if f.read() != MARKER_TEXT:
                raise Failed(f"{self.name}: {hits[0]} has the wrong content")


class Skiff(Contender):
    name = "skiff"

    def __init__(self, binary):
        super().__init__()
        self.bin = binary
        if not os.access(binary, os.X_OK):
            self.skip = f"{binary} not built"
        elif run([binary, "pull", "--help"], check=False, timeout=30)[1] != 0:
            self.skip = "n/a (no pull yet)"
        else:
            self.version = run([binary, "--version"], check=False, timeout=30)[2].strip()

    def argv(self):
        return [self.bin, "--root", f"{self.dir}/store"]

    def prepull(self, ref):
        self.pull(ref)

    def pull(self, ref):
        ms, _, _, _, kb = run(self.argv() + ["pull", "--tls-verify=false", "-q", ref], maxrss=True)
        return Sample(ms, kb)

    def verify(self, ref):
        run(self.argv() + ["image", "inspect", ref], timeout=60)
        self.marker_in(f"{self.dir}/store/image/layers/*/diff/{MARKER}")


class SkopeoUmoci(Contender):
    name = "skopeo+umoci"

    def __init__(self):
        super().__init__()
        missing = [b for b in ("skopeo", "umoci") if not shutil.which(b)]
        if missing:
            self.skip = f"{' and '.join(missing)} not installed"
        else:
            sv = run(["skopeo", "--version"], check=False, timeout=30)[2].split()
            uv = run(["umoci", "--version"], check=False, timeout=30)[2].split()
            self.version = f"skopeo {sv[-1] if sv else '?'}, umoci {uv[-1] if uv else '?'}"

    def copy(self, ref, tag):
        return run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"oci:{self.dir}/oci:{tag}"],
                   maxrss=True)

    def prepull(self, ref):
        self.copy(ref, "half")

    def pull(self, ref):
        ms1, _, _, _, kb1 = self.copy(ref, "v1")
        ms2, _, _, _, kb2 = run(["umoci", "unpack", "--image", f"{self.dir}/oci:v1", f"{self.dir}/bundle"], maxrss=True)
        return Sample(ms1 + ms2, max(kb1 or 0, kb2 or 0), {"skopeo ms": ms1, "umoci ms": ms2,
                                                          "skopeo kb": kb1, "umoci kb": kb2})

    def verify(self, ref):
        self.marker_in(f"{self.dir}/bundle/rootfs/{MARKER}")
        if not os.path.isdir(f"{self.dir}/bundle/rootfs/{os.path.dirname(WHITEOUT)}"):
            raise Failed(f"{self.name}: /{os.path.dirname(WHITEOUT)} missing from the bundle")
        if os.path.lexists(f"{self.dir}/bundle/rootfs/{WHITEOUT}"):
            raise Failed(f"{self.name}: the whiteout of /{WHITEOUT} was not applied")


class Podman(Contender):
    name = "podman"

    def __init__(self):
        super().__init__()
        if not shutil.which("podman"):
            self.skip = "podman not installed"
        else:
            self.version = run(["podman", "--version"], check=False, timeout=30)[2].strip()

    def fresh(self, d):
        super().fresh(d)
        for sub in ("graph", "run", "tmp", "net"):
            os.makedirs(f"{d}/{sub}")
        with open(f"{d}/containers.conf", "w") as f:
            f.write(f"""[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "{d}/tmp"
image_copy_tmp_dir = "{d}/tmp"
[network]
network_config_dir = "{d}/net"
""")
        with open(f"{d}/storage.conf", "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{d}/graph"\nrunroot = "{d}/run"\n')
        if len(f"{d}/run") > 50:
            raise Failed(f"podman refuses a runroot longer than 50 characters: {d}/run")
        self.env = dict(os.environ, CONTAINERS_CONF=f"{d}/containers.conf",
                        CONTAINERS_STORAGE_CONF=f"{d}/storage.conf", TMPDIR=f"{d}/tmp")

    def argv(self):
        return ["podman", "--root", f"{self.dir}/graph", "--runroot", f"{self.dir}/run", "--storage-driver", "overlay"]

    def prepull(self, ref):
        self.pull(ref)

    def pull(self, ref):
        ms, _, _, _, kb = run(self.argv() + ["pull", "--tls-verify=false", "-q", ref], env=self.env, maxrss=True)
        return Sample(ms, kb)

    def verify(self, ref):
        run(self.argv() + ["image", "exists", ref], env=self.env, timeout=60)
        self.marker_in(f"{self.dir}/graph/overlay/*/diff/{MARKER}")

    def clear(self, trash=None):
        if self.dir:
            # Its overlay driver bind-mounts graph/overlay on itself (in our private namespace).
            reap_naming(self.dir, wait=5.0)
        super().clear(trash)


class Docker(Contender):
    name = "docker"

    def __init__(self, registry_host):
        super().__init__()
        self.registry_host = registry_host
        self.daemon = None
        missing = [b for b in ("/usr/bin/docker", "dockerd", "containerd") if not shutil.which(b)]
        if missing:
            self.skip = f"{', '.join(missing)} not installed"
        elif os.path.lexists("/run/containerd/containerd.sock"):
            self.skip = "/run/containerd/containerd.sock exists: dockerd 20.10 would use that containerd"
        elif shutil.which("unpigz"):
            self.note = "unpigz is installed: dockerd decompresses through it (not counted in its memory)"

    def fresh(self, d):
        super().fresh(d)
        self.daemon, env = peers.start_dockerd(
            d, json.dumps({"ip-forward": False, "ip-masq": False, "userland-proxy": False,
                           "deprecated-key-path": f"{d}/key.json"}),
            ["--iptables=false", "--bridge=none", "--storage-driver", "overlay2", "--insecure-registry", self.registry_host])
        self.env = dict(os.environ, **env)
        def ready():
            r = run(["/usr/bin/docker", "version", "--format", "{{.Server.Version}}"], env=self.env, timeout=10, check=False)
            if r[1] == 0:
                self.version = self.version or f"dockerd {r[2].strip()}"
            return r[1] == 0
        why = peers.wait_dockerd(self.daemon, d, ready)
        if why:
            raise Failed(why)
        self.idle_kb = proc_kb(self.daemon.pid, "VmRSS")

    def prepull(self, ref):
        run(["/usr/bin/docker", "pull", "-q", ref], env=self.env)

    def pull(self, ref):
        pid = self.daemon.pid
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        before = proc_kb(pid, "VmRSS")
        ms = run(["/usr/bin/docker", "pull", "-q", ref], env=self.env)[0]
        hwm = proc_kb(pid, "VmHWM")
        # Above the idle daemon's RSS (read once it answered, before any pull): in the half
        # case, what the untimed pull of `half` left resident counts too, as it would for a
        # process that did both pulls.
        return Sample(ms, hwm - self.idle_kb, {"dockerd idle kb": self.idle_kb, "dockerd rss before kb": before,
                                               "dockerd hwm kb": hwm})

    def verify(self, ref):
        run(["/usr/bin/docker", "image", "inspect", ref], env=self.env, timeout=60)
        self.marker_in(f"{self.dir}/data/overlay2/*/diff/{MARKER}")

    def stop(self):
        p = self.daemon
        if p is None:
            return
        self.daemon = None
        left = peers.stop_dockerd(p, self.dir)  # its containerd names our dir
        if left:
            log(f"   (docker: killed leftover processes naming {self.dir}: {left})")

    def clear(self, trash=None):
        if self.dir:
            self.stop()
        super().clear(trash)


# -------------------------------------------------------------------------------- reporting

def mb(kb):
    return kb / 1024.0


def cell(values, fmt):
    if not values:
        return None
    m = statistics.median(values)
    if len(values) == 1:
        return m, fmt.format(m)
    return m, f"{fmt.format(m)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def report(contenders, samples, failed, runs):
    names = [c.name for c in contenders]
    peers = [n for n in names if n != "skiff"]
    rows = []
    verdicts = []
    for case, label in (("cold", "cold pull"), ("half", "half-cached pull")):
        rows.append((f"{label}, s", case, lambda s: s.ms / 1000.0, "{:.2f}", "time"))
    for case, label in (("cold", "cold"), ("half", "half-cached")):
        rows.append((f"peak memory {label}, MB", case, lambda s: mb(s.kb), "{:.1f}", "mem"))
    for case, label in (("cold", "cold"), ("half", "half-cached")):
        rows.append((f"sync after the pull ({label}), s", case, lambda s: s.sync_ms / 1000.0, "{:.2f}", "info"))
    header = ["section"] + names + ["skiff vs fastest"]
    table = [header]
    for title, case, get, fmt, kind in rows:
        line = [title]
        med = {}
        for n in names:
            c = next(x for x in contenders if x.name == n)
            if c.skip:
                line.append("n/a" if n == "skiff" and "no pull" in c.skip else "skipped")
                continue
            if n in failed:
                line.append("failed")
                continue
            got = cell([get(s) for s in samples[case][n]], fmt)
            if got is None:
                line.append("-")
                continue
            med[n] = got[0]
            line.append(got[1])
        pm = {n: v for n, v in med.items() if n in peers}
        if kind == "info" or "skiff" not in med or not pm:
            line.append("n/a" if kind != "info" else "")
        elif kind == "time":
            best = min(pm, key=pm.get)
            r = pm[best] / med["skiff"] if med["skiff"] > 0 else float("inf")
            line.append(f"{r:.2f}x faster than {best}" if r >= 1 else f"{1 / r:.2f}x slower than {best}")
            verdicts.append((f"{case}: skiff >= 1.5x faster than the fastest peer ({best} {pm[best]:.2f} s, "
                             f"skiff {med['skiff']:.2f} s: {r:.2f}x)", r >= 1.5))
        else:
            best = min(pm, key=pm.get)
            line.append(f"{med['skiff'] / pm[best]:.2f}x of {best}'s")
            each = ", ".join(f"{n} {v:.1f}" + (" (dockerd above idle)" if n == "docker" else "") for n, v in pm.items())
            verdicts.append((f"{case}: skiff's peak memory no more than any peer's (skiff {med['skiff']:.1f} MB; {each})",
                             med["skiff"] <= pm[best]))
        table.append(line)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    log(f"== results: median of {runs} run(s) per case (min-max), each from an empty store")
    for i, r in enumerate(table):
        log("   " + " | ".join(v.ljust(widths[j]) if j == 0 else v.rjust(widths[j]) for j, v in enumerate(r)))
        if i == 0:
            log("   " + "-+-".join("-" * w for w in widths))
    log("   time: wall time of the pull command(s) (skopeo+umoci: copy + unpack); skiff vs fastest: "
        "fastest peer's median / skiff's, memory: skiff's / the lowest peer's")
    log("   memory: ru_maxrss of the command (skopeo+umoci: the larger of the two); docker: the pull runs in "
        "dockerd: its VmHWM after the pull (peak reset by clear_refs just before) minus its idle VmRSS (once "
        "started, before any pull)")
    log("   sync after the pull: a `sync` right after the command, i.e. what it left to write back (not in its time)")
    dk = {case: samples[case].get("docker") for case in ("cold", "half")}
    if all(dk.values()) and "docker" not in failed:
        idle = statistics.median(mb(x.parts["dockerd idle kb"]) for x in dk["cold"] + dk["half"])
        hwm = {case: statistics.median(mb(x.parts["dockerd hwm kb"]) for x in dk[case]) for case in dk}
        log(f"   docker, absolute: dockerd idle VmRSS {idle:.1f} MB; VmHWM during the pull {hwm['cold']:.1f} MB cold, "
            f"{hwm['half']:.1f} MB half-cached (the others' figures include their own runtime's baseline)")
    for c in contenders:
        if getattr(c, "note", None):
            log(f"   note: {c.note}")
    return verdicts


def composition_text(comp, manifests, fmt_name):
    layers = comp["layers"]
    big, half = manifests
    lines = ["== image (as pushed; sizes from the registry's manifests, format " + fmt_name + ")"]
    lines.append(f"   {'#':>2} {'layer':<10}{'gzip MB':>9}{'tar MB':>9}{'entries':>9}   from")
    for i, l in enumerate(layers):
        src = ", ".join(l["sources"])
        lines.append(f"   {i + 1:>2} {l['name']:<10}{l['size'] / 1e6:>9.1f}{l['usize'] / 1e6:>9.1f}{l['entries']:>9}   "
                     f"{src[:90] + ('...' if len(src) > 90 else '')}")
    bsz = sum(x["size"] for x in big["layers"])
    hsz = sum(x["size"] for x in half["layers"])
    lines.append(f"   big:v1  {len(big['layers'])} layers, {bsz / 1e6:.1f} MB compressed (gzip), "
                 f"{sum(l['usize'] for l in layers) / 1e6:.1f} MB uncompressed, {sum(l['entries'] for l in layers)} tar entries")
    lines.append(f"   half:v1 the bottom {len(half['layers'])} layers, {hsz / 1e6:.1f} MB compressed "
                 f"({100.0 * hsz / bsz:.0f}% of big), {sum(l['usize'] for l in layers[:HALF]) / 1e6:.1f} MB uncompressed")
    ok = len(big["layers"]) >= 6 and bsz >= 150e6
    if not ok:
        lines.append("   WARNING: below the benchmark's minimum (6 layers, 150 MB compressed): this machine lacks some "
                     "of the recipe's files")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--skiff", required=True)
    ap.add_argument("--maxrss", required=True)
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cache", default="/var/tmp/skiff-bench-pull-image")
    ap.add_argument("--format", choices=("v2s2", "oci"), default="v2s2")
    ap.add_argument("--only", default="")
    ap.add_argument("--rebuild", action="store_true")
    a = ap.parse_args()
    if a.runs < 1:
        raise SystemExit("--runs must be at least 1")
    only = [x for x in a.only.split(",") if x]
    bad = [x for x in only if x not in CONTENDERS]
    if bad:
        raise SystemExit(f"unknown contender(s) {bad} (known: {', '.join(CONTENDERS)})")
    global MAXRSS
    MAXRSS = a.maxrss
    work = a.work
    os.environ["TMPDIR"] = f"{work}/tmp"
    os.makedirs(os.environ["TMPDIR"], exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    load0 = open("/proc/loadavg").read().split()[:3]

    comp = ensure_image(f"{a.cache}/{RECIPE}", work, a.repo, a.rebuild)
    layout = f"{a.cache}/{RECIPE}/oci"
    registry = None
    contenders = []
    try:
        registry = Registry(work)
        big_ref, half_ref = f"{registry.host}/bench/big:v1", f"{registry.host}/bench/half:v1"
        fmt = ["--format", "v2s2"] if a.format == "v2s2" else []
        for tag, ref in (("big", big_ref), ("half", half_ref)):
            ms = run(["skopeo", "copy", "-q", "--dest-tls-verify=false", *fmt, f"oci:{layout}:{tag}", f"docker://{ref}"])[0]
            log(f"== pushed {ref} with skopeo in {ms / 1000:.1f} s")
        manifests = (registry.manifest("bench/big", "v1"), registry.manifest("bench/half", "v1"))
        log(composition_text(comp, manifests, a.format))
        rv = run(["/usr/bin/docker-registry", "--version"], check=False, timeout=30)[2].strip()
        log(f"   registry: {rv or 'docker-registry'} on {registry.host}, filesystem storage in the temp dir")

        all_c = [Skiff(a.skiff), SkopeoUmoci(), Podman(), Docker(registry.host)]
        contenders = [c for c in all_c if not only or c.name in only]
        live = [c for c in contenders if not c.skip]
        # docker's version: from a first daemon (not timed).
        for c in live:
            if c.name == "docker":
                try:
                    c.fresh(f"{work}/docker-probe")
                except Failed as x:
                    c.skip = str(x)
                finally:
                    c.clear()
                if not c.skip:
                    c.version += ", " + run(["containerd", "--version"], check=False)[2].split()[2]
        live = [c for c in contenders if not c.skip]
        log(f"== contenders ({a.runs} run(s) per case, round-robin; {os.cpu_count()} CPUs)")
        for c in contenders:
            log(f"   {c.name:<14}{(c.skip if c.skip.startswith('n/a') else 'skipped: ' + c.skip) if c.skip else c.version}")

        samples = {case: {c.name: [] for c in contenders} for case in ("cold", "half")}
        failed = {}
        for i in range(a.runs):
            k = i % len(live) if live else 0
            order = live[k:] + live[:k]
            for case in ("cold", "half"):
                for c in order:
                    if c.name in failed:
                        continue
                    # Short: podman refuses a runroot longer than 50 characters.
                    d = f"{work}/r/{i}{case[0]}-{SHORT[c.name]}"
                    try:
                        c.fresh(d)
                        if case == "half":
                            c.prepull(half_ref)
                        os.sync()
                        s = c.pull(big_ref)
                        ts = time.perf_counter()
                        os.sync()
                        s.sync_ms = (time.perf_counter() - ts) * 1000.0
                        c.verify(big_ref)
                        samples[case][c.name].append(s)
                        extra = ""
                        if c.name == "skopeo+umoci":
                            extra = (f"  (skopeo {s.parts['skopeo ms'] / 1000:.2f} s / {mb(s.parts['skopeo kb'] or 0):.1f} MB, "
                                     f"umoci {s.parts['umoci ms'] / 1000:.2f} s / {mb(s.parts['umoci kb'] or 0):.1f} MB)")
                        elif c.name == "docker":
                            extra = (f"  (dockerd VmRSS idle {mb(s.parts['dockerd idle kb']):.1f} MB, before the pull "
                                     f"{mb(s.parts['dockerd rss before kb']):.1f} MB, VmHWM after {mb(s.parts['dockerd hwm kb']):.1f} MB)")
                        log(f"   run {i + 1}/{a.runs} {case:<4} {c.name:<13}{s.ms / 1000:>7.2f} s{mb(s.kb):>8.1f} MB"
                            f"   sync after {s.sync_ms / 1000:.2f} s{extra}")
                    except (Failed, OSError) as x:
                        failed[c.name] = str(x)
                        log(f"   run {i + 1}/{a.runs} {case:<4} {c.name:<13}FAILED: {x}")
                    finally:
                        # Not deleted now: ext4 skips inodes deleted in the last 60 s (300 s more
                        # while their table block is dirty) when it allocates new ones, scanning
                        # past each (`recently_deleted`), so whoever came after a 30 000-file
                        # deletion paid seconds of system time for it. The trash goes at the end.
                        c.clear(trash=f"{work}/trash")
        verdicts = report(contenders, samples, failed, a.runs)
        for n, why in failed.items():
            log(f"   {n} failed: {why}")
        log("== targets (issue 11)")
        if not verdicts:
            log("   not evaluated (skiff or every peer unavailable)")
        for text, ok in verdicts:
            log(f"   {text}: {'MET' if ok else 'NOT MET'}")
        log(f"   ({time.monotonic() - t0:.0f} s; load average at the start {' '.join(load0)}, at the end "
            f"{' '.join(open('/proc/loadavg').read().split()[:3])})")
    except KeyboardInterrupt:
        log("== interrupted")
        raise SystemExit(130)
    finally:
        for c in contenders:
            try:
                c.clear()
            except Exception as x:  # keep cleaning up
                log(f"   cleanup of {c.name}: {x}")
        if registry:
            registry.stop()
        left = reap_naming(work, wait=5.0)
        if left:
            log(f"   (killed leftover processes naming {work}: {left})")
        umount_under(work)


MAXRSS = ""

if __name__ == "__main__":
    try:
        main()
    except Failed as x:
        print(f"pull benchmark: {x}", file=sys.stderr)
        sys.exit(1)
