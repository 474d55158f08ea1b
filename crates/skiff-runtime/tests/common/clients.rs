//! Helpers for the tests that drive real clients (containerd's `ctr`, the CRI plugin, Docker)
//! and clean up after their daemons: running a client with a timeout, finding and reaping
//! processes, the host's cgroup hierarchies, and the blobs of an OCI archive.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `name` found on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// What a client printed, and how it exited.
pub struct Out {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

/// Runs `cmd` with `input` on stdin (None: /dev/null), killing it after `timeout`. Output goes
/// through files, not pipes: a container may inherit the client's stdio and hold a pipe open.
pub fn run_captured(mut cmd: Command, input: Option<&str>, timeout: Duration, what: &str) -> Out {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = cmd
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let status = super::wait_timeout(&mut child, timeout, what);
    Out { status, stdout: read_file(out), stderr: read_file(err) }
}

/// The whole content of `f`, from its start.
pub fn read_file(mut f: std::fs::File) -> String {
    let mut s = String::new();
    f.rewind().unwrap();
    let _ = f.read_to_string(&mut s);
    s
}

/// Polls `f` every 20 ms; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The mount points of every cgroup hierarchy (v1 controllers and cgroup2), from mountinfo:
/// right on hybrid, pure v1 and pure v2 hosts alike.
pub fn hierarchies() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = mi
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split_whitespace().next()?;
            let mountpoint = pre.split_whitespace().nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(mountpoint))
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Whether `pid` runs (exists and is neither a zombie nor dead).
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').and_then(|i| s[i + 2..].chars().next()))
        .is_some_and(|st| st != 'Z' && st != 'X')
}

/// Pids whose command line has `needle` as one whole argument (e.g. a daemon's socket path:
/// that daemon's shims only).
pub fn pids_with_arg(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmdline.split(|b| *b == 0).any(|a| a == needle.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

/// Reaps our exited children that are zombies (orphaned shims reparented to us), by pid:
/// children the test still waits for are left alone.
pub fn reap_zombie_children() {
    let me = std::process::id().to_string();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(str::trim).unwrap_or("");
        if field("PPid:") == me && field("State:").starts_with('Z') {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
    }
}

/// Writes `data` as a blob of the OCI layout in `dir`; returns its digest and size.
pub fn blob(dir: &Path, data: &[u8]) -> (String, usize) {
    let tmp = dir.join("blob.tmp");
    std::fs::write(&tmp, data).unwrap();
    let hex = sha256(&tmp);
    std::fs::rename(&tmp, dir.join("blobs/sha256").join(&hex)).unwrap();
    (format!("sha256:{hex}"), data.len())
}

/// The hex sha256 of a file (through sha256sum: the tests need no hashing crate).
pub fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    let hex = s.split_whitespace().next().unwrap_or_default().to_string();
    assert_eq!(hex.len(), 64, "sha256sum said {s}");
    hex
}

/// What a stopped daemon may leave, swept away: SIGKILL to every process in the cgroups under
/// `cgroup_parent` (in every hierarchy), the zombies among our children reaped, the mounts
/// under `dir` unmounted deepest first, then those cgroups and `cgroup_parent` removed.
pub fn sweep_after_daemon(dir: &Path, cgroup_parent: &str) {
    use nix::sys::signal::{kill, Signal};
    let parent = cgroup_parent.trim_start_matches('/');
    for h in hierarchies() {
        for e in std::fs::read_dir(h.join(parent)).into_iter().flatten().flatten() {
            for pid in std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default().lines() {
                if let Ok(pid) = pid.trim().parse() {
                    let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    reap_zombie_children();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = format!("{}/", dir.display());
    let mut mps: Vec<&str> = mi.lines().filter_map(|l| l.split(' ').nth(4)).filter(|mp| mp.starts_with(&prefix)).collect();
    mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for mp in mps {
        let _ = nix::mount::umount2(mp, nix::mount::MntFlags::MNT_DETACH);
    }
    for h in hierarchies() {
        let p = h.join(parent);
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                let _ = std::fs::remove_dir(e.path());
            }
        }
        let _ = std::fs::remove_dir(&p);
    }
}

/// Stops a daemon we started, by its pid: SIGTERM, then SIGKILL after `grace`; reaped either way.
pub fn terminate(mut c: std::process::Child, grace: Duration) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let t0 = Instant::now();
    while c.try_wait().ok().flatten().is_none() && t0.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
}
