"""What the engine benchmarks (engine.py, network.py, pull.py) share: running a command timed
without polling, finding and reaping the processes the peers leave (conmon, shims, podman's
cleanup), our own dockerd, unmounting a work dir, and the latency summary."""
import os, select, signal, statistics, subprocess, tempfile, time


class Failed(Exception):
    pass


def run(cmd, timeout=180, check=True, env=None):
    """Run a command; stdout and stderr go to files, not pipes (a monitor or daemon that
    inherits them could keep a pipe open long after the command exits). Returns
    (ms, rc, stdout, stderr); rc is None after a timeout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        # Not subprocess's own timeout: it polls with sleeps of up to 50 ms, which would be
        # measured as the command's latency. A pidfd wakes us when the child exits.
        fd = os.pidfd_open(p.pid)
        try:
            done = select.select([fd], [], [], timeout)[0]
        finally:
            os.close(fd)
        if done:
            rc = p.wait()
        else:
            p.kill()
            p.wait()
            rc = None
        ms = (time.perf_counter() - t0) * 1000.0
        out.seek(0)
        err.seek(0)
        o = out.read().decode(errors="replace")
        e = err.read().decode(errors="replace")
    if check and rc != 0:
        raise failure(cmd, rc, timeout, o, e)
    return ms, rc, o, e


def failure(cmd, rc, timeout, out, err):
    """The Failed for a command that exited `rc` (None: timed out), naming its last words."""
    what = f"timed out after {timeout} s" if rc is None else f"exit {rc}"
    msg = (err.strip() or out.strip()).splitlines()
    return Failed(f"`{' '.join(cmd)}`: {what}: {msg[-1] if msg else ''}")


def quiet(cmd, timeout=60, env=None):
    return run(cmd, timeout=timeout, check=False, env=env)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def ppid_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def pids_naming(text):
    """Pids (not ours) whose command line contains `text`."""
    me, t = os.getpid(), text.encode()
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and int(d) != me and any(t in a for a in cmdline(int(d)))]


def reap_naming(text, wait=10.0, keep=()):
    """Processes still working on `text` (a dir of ours) at the end, but those in `keep`: wait
    for them, then SIGKILL them by pid. Returns the pids killed."""
    def left():
        return [p for p in pids_naming(text) if p not in keep]
    deadline = time.monotonic() + wait
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = left()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return pids


def umount_under(d):
    """Every mount at or below `d` in this (private) mount namespace, innermost first."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == d or mp.startswith(d + "/"):
                mounts.append(mp)
    for mp in reversed(mounts):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)


def stats(xs):
    """(median, mean, p90) of a list of latencies."""
    s = sorted(xs)
    return statistics.median(s), statistics.fmean(s), s[max(0, int(len(s) * 0.9) - 1)]


def start_dockerd(d, daemon_json, net_args, log_name="dockerd.log"):
    """Our own dockerd (and the containerd it starts) with data root, exec root, socket and
    log in `d`. Returns (Popen, env for the docker CLI). A session of its own: a ^C of the
    benchmark must not reach dockerd before its containers are removed; it is stopped by pid."""
    for sub in ("data", "exec", "cli"):
        os.makedirs(f"{d}/{sub}", exist_ok=True)
    with open(f"{d}/daemon.json", "w") as f:
        f.write(daemon_json)
    sock = f"{d}/docker.sock"
    env = {"DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": f"{d}/cli"}
    log = open(f"{d}/{log_name}", "wb")
    p = subprocess.Popen(
        ["dockerd", "--config-file", f"{d}/daemon.json", "--data-root", f"{d}/data", "--exec-root", f"{d}/exec",
         "--pidfile", f"{d}/dockerd.pid", "-H", f"unix://{sock}"] + net_args,
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    return p, env


def wait_dockerd(p, d, ready, log_name="dockerd.log"):
    """Waits up to 60 s for `ready()` (the daemon answers). None when it does, else why not."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if p.poll() is not None:
            break
        if ready():
            return None
        time.sleep(0.2)
    with open(f"{d}/{log_name}", errors="replace") as f:
        tail = [l.strip() for l in f.read().splitlines() if "level=error" in l or "level=fatal" in l][-1:]
    state = f"exited with {p.returncode}" if p.poll() is not None else "not answering after 60 s"
    return f"dockerd {state}{': ' + tail[0] if tail else ''}"


def stop_dockerd(p, exec_root):
    """SIGTERM to our dockerd (it stops its containerd), SIGKILL after 60 s; then its containerd
    and any shim left, which name `exec_root` on their command lines. Returns the pids killed."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return reap_naming(exec_root, wait=15.0)
