#!/usr/bin/env python3
"""Runs commands inside a throwaway QEMU guest (TCG, no network) on Debian's 6.1 kernel, with a
cgroup layout of our choosing: the tests that depend on the kernel get a second kernel and the
cgroup layouts this host does not have (pure v2, pure v1).

The guest is built from Debian packages only: the kernel package (downloaded with apt-get into
a cache, unpacked with dpkg-deb; the modules for overlay, veth, bridge and nf_tables come from
it), busybox-static, and the host files a command needs: each command's executable, the files
named with --file, and their shared libraries, all at their host paths. The initramfs's /init
copies itself to a tmpfs and switch_roots into it (pivot_root, which every container start
does, is refused on the initramfs itself), mounts the cgroup layout, runs the commands one
after the other and powers off. Nothing leaves the guest but its console output; the host is
untouched.

Usage: vm.py [--layout v2|v1|hybrid] [--timeout SECS] [--mem MB] [--cpus N] [--append ARGS]
             [--file PATH]... [--env K=V]... -- CMD [ARGS...] [';;' CMD [ARGS...]]...
Exit status: 0 when every command exited 0, 1 when one failed (all are run), 2 when the guest
could not be built, booted or timed out. Output: the guest's console, streamed (without its
terminal control sequences), then a summary: each command's exit status and libtest result.
"""
import argparse, os, re, select, shlex, shutil, stat, subprocess, sys, tempfile, time

CACHE = os.environ.get("SKIFF_VM_CACHE", "/var/cache/skiff/vm")
KERNEL_SERIES = "6.1.0"
MODULES = ["crc32c_generic", "overlay", "veth", "bridge", "nf_tables", "nft_chain_nat", "nft_nat", "nft_masq", "nft_ct",
           "nft_fib_inet", "nft_compat", "br_netfilter", "tun", "dummy", "nf_conntrack", "nf_nat",
           # BFQ: blkio.bfq.weight (v1) and io.bfq.weight (v2) for blockIO weights.
           "bfq"]
MARK = "SKIFF-VM-RESULT"
# Terminal control sequences (SeaBIOS clears the screen and turns off line wrap): not output.
ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|[c()][0-9A-Za-z]?)")


class Summary:
    """Per command of the plan: its exit status, libtest's result line and failed tests."""

    def __init__(self, layout):
        self.layout, self.cmds = layout, []

    def see(self, text):
        m = re.match(r"^vm: \[(\d+)\] (exit (\d+)|(.*))$", text)
        if m and m.group(3) is not None and self.cmds:
            self.cmds[-1]["exit"] = m.group(3)
        elif m:
            self.cmds.append({"cmd": os.path.basename(m.group(4).split()[0]), "exit": "?", "result": "", "failed": []})
        elif self.cmds and text.startswith("test result: "):
            self.cmds[-1]["result"] = text[len("test result: "):].split(";")[0:2]
        elif self.cmds and re.match(r"^test \S+ \.\.\. FAILED$", text):
            self.cmds[-1]["failed"].append(text.split()[1])

    def print(self):
        print(f"vm: summary ({self.layout}):", flush=True)
        for c in self.cmds:
            res = "; ".join(x.strip() for x in c["result"]) if c["result"] else "no test result"
            failed = f" FAILED: {' '.join(c['failed'])}" if c["failed"] else ""
            print(f"vm:   {c['cmd']}: exit {c['exit']}, {res}{failed}", flush=True)


def die(msg):
    print(f"vm: {msg}", file=sys.stderr, flush=True)
    sys.exit(2)


def kernel_package():
    """The newest linux-image-6.1.0-N-amd64-unsigned apt knows of."""
    out = subprocess.run(["apt-cache", "pkgnames", f"linux-image-{KERNEL_SERIES}-"], capture_output=True, text=True).stdout
    pat = re.compile(rf"^linux-image-{re.escape(KERNEL_SERIES)}-(\d+)-amd64-unsigned$")
    found = sorted((int(m.group(1)), m.group(0)) for m in map(pat.match, out.split()) if m)
    if not found:
        die(f"apt knows no linux-image-{KERNEL_SERIES}-N-amd64-unsigned (apt-get update, a bookworm source)")
    return found[-1][1]


def kernel(pkg):
    """(vmlinuz, modules dir, release) of `pkg`, unpacked in the cache (downloaded once)."""
    root = os.path.join(CACHE, pkg)
    if not os.path.isfile(os.path.join(root, ".done")):
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        dl = tempfile.mkdtemp(prefix="skiff-vm-dl.")
        try:
            os.chmod(dl, 0o755)  # apt's _apt user downloads into it
            r = subprocess.run(["apt-get", "download", "-q", pkg], cwd=dl, capture_output=True, text=True)
            debs = [f for f in os.listdir(dl) if f.endswith(".deb")]
            if r.returncode != 0 or not debs:
                die(f"apt-get download {pkg} failed: {r.stderr.strip()}")
            subprocess.run(["dpkg-deb", "-x", os.path.join(dl, debs[0]), root], check=True)
        finally:
            shutil.rmtree(dl, ignore_errors=True)
        open(os.path.join(root, ".done"), "w").close()
    rel = os.listdir(os.path.join(root, "lib/modules"))[0]
    return os.path.join(root, "boot", f"vmlinuz-{rel}"), os.path.join(root, "lib/modules", rel), rel


def module_order(moddir, names):
    """The .ko files (relative to moddir) for `names` and their dependencies, dependencies first.
    The dependencies are read from each module's own .modinfo ("depends="): no depmod needed."""
    by_name = {}
    for d, _, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            if f.endswith(".ko"):
                by_name[f[:-3].replace("-", "_")] = os.path.relpath(os.path.join(d, f), moddir)

    def deps(p):
        """`depends=` and the `softdep=pre:` modules (libcrc32c needs a crc32c implementation)."""
        with open(os.path.join(moddir, p), "rb") as f:
            data = f.read()
        m = re.search(rb"\0depends=([^\0]*)\0", data)
        out = [x.decode() for x in m.group(1).split(b",") if x] if m else []
        for sd in re.findall(rb"\0softdep=pre: ?([^\0]*)\0", data):
            out += [x.decode() for x in sd.split(b"post:")[0].split()]
        return [x.replace("-", "_") for x in out]
    order, seen = [], set()

    def visit(name):
        p = by_name.get(name)
        if p is None or p in seen:  # built in (or absent)
            return
        seen.add(p)
        for d in deps(p):
            visit(d)
        order.append(p)
    for n in names:
        visit(n.replace("-", "_"))
    return order


def busybox_applet(name):
    """Whether `name` (no slash) is one of busybox's applets."""
    if "/" in name:
        return False
    out = subprocess.run(["busybox", "--list"], capture_output=True, text=True).stdout
    return name in out.split()


def shared_libs(path):
    """The shared libraries `path` loads (ldd), with the dynamic loader."""
    r = subprocess.run(["ldd", path], capture_output=True, text=True)
    libs = []
    for line in r.stdout.splitlines():
        m = re.search(r"(/\S+)", line.split("=>")[-1])
        if m and os.path.exists(m.group(1)):
            libs.append(m.group(1))
    return libs


class Cpio:
    """A newc cpio archive (what the kernel unpacks as an initramfs), written directly."""

    def __init__(self, f):
        self.f, self.ino, self.dirs = f, 1, set()

    def _entry(self, name, mode, data=b"", nlink=1, rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0)
        hdr = "070701" + "".join(f"{v:08x}" for v in fields)
        self.ino += 1
        self.f.write(hdr.encode() + name_b)
        self.f.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        self.f.write(data)
        self.f.write(b"\0" * ((4 - len(data) % 4) % 4))

    def mkdir(self, path):
        path = path.strip("/")
        if not path or path in self.dirs:
            return
        self.mkdir(os.path.dirname(path))
        self.dirs.add(path)
        self._entry(path, stat.S_IFDIR | 0o755, nlink=2)

    def file(self, path, data, mode=0o755):
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFREG | mode, data)

    def chardev(self, path, major, minor):
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def symlink(self, path, target):
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def host(self, path):
        """A host file at its own path, following symlinks along the way (kept as symlinks)."""
        path = os.path.abspath(path)
        if path.strip("/") in self.dirs:
            return
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            self.symlink(path, target)
            self.dirs.add(path.strip("/"))  # written once
            self.host(os.path.join(os.path.dirname(path), target))
        elif stat.S_ISDIR(st.st_mode):
            self.mkdir(path)
            for e in sorted(os.listdir(path)):
                self.host(os.path.join(path, e))
        else:
            with open(path, "rb") as f:
                self.file(path, f.read(), st.st_mode & 0o7777)
            self.dirs.add(path.strip("/"))

    def end(self):
        self._entry("TRAILER!!!", 0)


INIT = r"""#!/bin/busybox sh
# Stage 1: copy the initramfs into a tmpfs and switch_root there (pivot_root is refused on the
# initramfs itself). Stage 2 (the same script, with $1 = 2): mounts, the cgroup layout, the plan.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if [ "$1" != 2 ]; then
    /bin/busybox mkdir -p /proc /sys /newroot
    /bin/busybox mount -t proc proc /proc
    /bin/busybox mount -t tmpfs -o mode=0755 root /newroot
    for e in /*; do
        case $e in /proc|/newroot) ;; *) /bin/busybox cp -a "$e" /newroot/ ;; esac
    done
    /bin/busybox umount /proc
    exec /bin/busybox switch_root /newroot /init 2
fi
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp /run /var/tmp /etc
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue
# / is a tmpfs already; no tmpfs over /tmp or /run: the executables may live there (a
# checkout under /tmp) and would be hidden.
chmod 1777 /tmp
ip link set lo up
hostname skiff-vm
for m in $(cat /vm/modules); do insmod "/vm/ko/$m" 2>&1 | sed "s,^,vm: insmod $m: ,"; done
case "$(cat /vm/layout)" in
v2)
    mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
    for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control; done
    ;;
v1|hybrid)
    mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup
    # The hierarchies as Debian and Docker hosts mount them (cpu,cpuacct and net_cls,net_prio together).
    for c in $(awk 'NR > 1 && $4 == 1 { print $1 }' /proc/cgroups); do
        case $c in cpu|cpuacct) c=cpu,cpuacct ;; net_cls|net_prio) c=net_cls,net_prio ;; esac
        [ -d "/sys/fs/cgroup/$c" ] && continue
        mkdir -p "/sys/fs/cgroup/$c"
        mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
    done
    [ -d /sys/fs/cgroup/cpu,cpuacct ] && ln -s cpu,cpuacct /sys/fs/cgroup/cpu && ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct
    [ -d /sys/fs/cgroup/net_cls,net_prio ] && ln -s net_cls,net_prio /sys/fs/cgroup/net_cls && ln -s net_cls,net_prio /sys/fs/cgroup/net_prio
    mkdir -p /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
    if [ "$(cat /vm/layout)" = hybrid ]; then
        mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
    fi
    ;;
esac
echo "vm: kernel $(uname -r), $(nproc) cpus, cgroups: $(cat /vm/layout) ($(awk '$3 ~ /^cgroup/ {print $2}' /proc/mounts | tr '\n' ' '))"
cd /tmp
. /vm/env
rc=0
n=0
while IFS= read -r cmd; do
    n=$((n + 1))
    echo "vm: [$n] $cmd"
    sh -c "$cmd" </dev/null
    s=$?
    echo "vm: [$n] exit $s"
    [ $s -eq 0 ] || rc=1
done < /vm/plan
echo "MARK $rc"
sync
poweroff -f
"""


def build(args, cmds, path):
    pkg = kernel_package()
    vmlinuz, moddir, rel = kernel(pkg)
    with open(path, "wb") as f:
        c = Cpio(f)
        c.chardev("dev/console", 5, 1)
        c.file("init", INIT.replace("MARK", MARK).encode())
        bb = shutil.which("busybox") or "/bin/busybox"
        if not os.path.exists(bb):
            die("busybox-static is not installed")
        with open(bb, "rb") as b:
            c.file("bin/busybox", b.read())
        mods = module_order(moddir, MODULES)
        for m in mods:
            with open(os.path.join(moddir, m), "rb") as k:
                c.file(f"vm/ko/{m}", k.read(), 0o644)
        c.file("vm/modules", "\n".join(mods).encode() + b"\n", 0o644)
        c.file("vm/layout", args.layout.encode() + b"\n", 0o644)
        env = "".join(f"export {shlex.quote(e)}\n" for e in args.env)
        c.file("vm/env", env.encode(), 0o644)
        c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644)
        c.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644)
        c.file("etc/hosts", b"127.0.0.1 localhost skiff-vm\n::1 localhost\n", 0o644)
        # What useradd/userdel need (the rootless tests make a throwaway user; give them with
        # --file /usr/sbin/useradd ...): the shadow files, login.defs, /home.
        c.file("etc/shadow", b"root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o640)
        c.file("etc/gshadow", b"root:*::\nnogroup:*::\n", 0o640)
        if os.path.isfile("/etc/login.defs"):
            c.host("/etc/login.defs")
        c.mkdir("home")
        c.mkdir("root")
        want = []
        for cmd in cmds:
            exe = os.path.abspath(cmd[0]) if "/" in cmd[0] else shutil.which(cmd[0])
            if exe is None or not os.path.exists(exe):
                die(f"{cmd[0]}: not found")
            if os.path.realpath(exe) == os.path.realpath(bb) or busybox_applet(cmd[0]):
                continue  # the guest's /bin has busybox and its applets
            cmd[0] = exe
            want.append(exe)
        want += [os.path.abspath(f) for f in args.file]
        c.file("vm/plan", "".join(" ".join(shlex.quote(a) for a in cmd) + "\n" for cmd in cmds).encode(), 0o644)
        done = set()
        for p in want:
            for q in [p] + (shared_libs(p) if os.path.isfile(p) else []):
                if q not in done:
                    done.add(q)
                    c.host(q)
        c.end()
    return vmlinuz, pkg, rel


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layout", choices=["v2", "v1", "hybrid"], default="v2")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--mem", type=int, default=2048)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--append", default="", help="more kernel command line")
    ap.add_argument("--file", action="append", default=[], help="a host file or dir to copy in at its path")
    ap.add_argument("--env", action="append", default=[], help="K=V for the commands")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    words = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    cmds, cur = [], []
    for w in words:
        if w == ";;":
            if cur:
                cmds.append(cur)
            cur = []
        else:
            cur.append(w)
    if cur:
        cmds.append(cur)
    if not cmds:
        die("no command (usage: vm.py [options] -- CMD [ARGS...] [';;' CMD ...])")
    if not shutil.which("qemu-system-x86_64"):
        die("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    work = tempfile.mkdtemp(prefix="skiff-vm.")
    try:
        t0 = time.monotonic()
        initrd = os.path.join(work, "initrd.cpio")
        vmlinuz, pkg, rel = build(args, cmds, initrd)
        size = os.path.getsize(initrd) >> 20
        print(f"vm: {pkg} ({rel}), initramfs {size} MB built in {time.monotonic() - t0:.1f} s; layout {args.layout}", flush=True)
        append = "console=ttyS0 panic=-1 quiet loglevel=3"
        if args.layout == "v2":
            append += " cgroup_no_v1=all"
        append += " " + args.append
        accel = "tcg"
        qemu = ["qemu-system-x86_64", "-accel", accel, "-cpu", "max", "-smp", str(args.cpus), "-m", str(args.mem),
                "-kernel", vmlinuz, "-initrd", initrd, "-append", append.strip(), "-nographic", "-no-reboot",
                "-nic", "none", "-monitor", "none", "-serial", "stdio"]
        p = subprocess.Popen(qemu, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        result = None
        deadline = time.monotonic() + args.timeout
        os.set_blocking(p.stdout.fileno(), False)
        buf = b""
        summary = Summary(args.layout)
        while True:
            r = select.select([p.stdout], [], [], 1.0)[0]
            if r:
                chunk = p.stdout.read()
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    text = ESCAPES.sub("", line.decode(errors="replace")).rstrip("\r")
                    m = re.match(rf"^{MARK} (\d+)$", text)
                    if m:
                        result = int(m.group(1))
                    summary.see(text)
                    print(text, flush=True)
            if time.monotonic() > deadline:
                p.kill()
                p.wait()
                summary.print()
                print(f"vm: timed out after {args.timeout:.0f} s", flush=True)
                return 2
            if p.poll() is not None and not r:
                break
        p.wait()
        summary.print()
        print(f"vm: guest ran {time.monotonic() - t0:.1f} s", flush=True)
        if result is None:
            print(f"vm: the guest stopped without a result (qemu exit {p.returncode})", flush=True)
            return 2
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
