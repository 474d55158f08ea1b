//! Shared helpers for integration tests: a busybox bundle, a private runtime root, and the
//! `skiff-runtime` binary. Every helper cleans up after itself (Drop), so a failing test
//! leaves no state dir, cgroup or process behind.
#![allow(dead_code)]

pub mod cgroups;
pub mod clients;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_skiff-runtime");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique container id for this test process.
pub fn unique_id(tag: &str) -> String {
    format!("skt-{tag}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// Skips (returns true) when not root or busybox-static is missing.
pub fn skip() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let bb = Path::new("/bin/busybox").exists();
    if !root || !bb {
        eprintln!("skipping: needs root and /bin/busybox (busybox-static)");
        return true;
    }
    false
}

/// Builds a busybox rootfs in `dir`.
pub fn make_rootfs(dir: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "mnt", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").unwrap();
    let mut perms = std::fs::metadata(dir.join("tmp")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o1777);
    std::fs::set_permissions(dir.join("tmp"), perms).unwrap();
}

/// A runc-like config running `args`, with every namespace but user, cgroup and time.
pub fn base_config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SETUID", "CAP_SETGID"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SETUID", "CAP_SETGID"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SETUID", "CAP_SETGID"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "skiff-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// A bundle directory with a busybox rootfs and a config.
pub struct Bundle {
    pub dir: tempfile::TempDir,
}

impl Bundle {
    pub fn new(config: &Value) -> Bundle {
        let dir = tempfile::Builder::new().prefix("skt-bundle").tempdir().unwrap();
        make_rootfs(&dir.path().join("rootfs"));
        let b = Bundle { dir };
        b.write_config(config);
        b
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
    pub fn write_config(&self, config: &Value) {
        std::fs::write(self.dir.path().join("config.json"), serde_json::to_vec_pretty(config).unwrap()).unwrap();
    }
}

/// A runtime root dir; on drop force-deletes every container still in it.
pub struct Runtime {
    pub root: tempfile::TempDir,
}

impl Runtime {
    pub fn new() -> Runtime {
        // Detached inits are orphaned when the runtime exits; as a subreaper the test process
        // inherits them (instead of a pid 1 that may not reap) and reaps them after `delete`.
        let _ = nix::sys::prctl::set_child_subreaper(true);
        Runtime { root: tempfile::Builder::new().prefix("skt-root").tempdir().unwrap() }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    /// Runs the runtime, returning its output (any exit status). Output goes through files,
    /// not pipes: a detached container inherits the runtime's stdio and would keep a pipe open.
    pub fn run(&self, args: &[&str]) -> Output {
        let reap = if args.first() == Some(&"delete") { args.last().and_then(|id| self.init_pid(id)) } else { None };
        let output = self.run_raw(args);
        if let Some(pid) = reap {
            reap_pid(pid);
        }
        output
    }

    /// The recorded init pid of a container, if it has state.
    pub fn init_pid(&self, id: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.root.path().join(id).join("state.json")).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["pid"].as_i64().map(|p| p as i32)
    }

    fn run_raw(&self, args: &[&str]) -> Output {
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        let status = self
            .cmd(args)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .expect("run skiff-runtime");
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
            let mut v = Vec::new();
            f.rewind().unwrap();
            f.read_to_end(&mut v).unwrap();
            v
        };
        Output { status, stdout: read(out), stderr: read(err) }
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "skiff-runtime {args:?} failed: {}\nstdout: {}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and requires failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "skiff-runtime {args:?} succeeded unexpectedly: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state JSON")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or_default().to_string()
    }

    /// `run` in the foreground; returns (exit code, stdout, stderr).
    pub fn run_container(&self, id: &str, bundle: &Bundle) -> (i32, String, String) {
        let out = self.run(&["run", "--bundle", bundle.path().to_str().unwrap(), id]);
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.path().join(id)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.root.path()) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
    }
}

/// Reaps `pid` if it is an exited child of ours (an orphaned container init).
pub fn reap_pid(pid: i32) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    for _ in 0..200 {
        match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(std::time::Duration::from_millis(5)),
            _ => return,
        }
    }
}

/// The container's cgroup directories (default path, every mounted hierarchy: v1, hybrid or
/// pure v2) that exist on the host.
pub fn cgroup_leftovers(id: &str) -> Vec<PathBuf> {
    cgroups::container_cgroup_dirs(id).into_iter().filter(|p| p.exists()).collect()
}

/// Asserts that nothing of container `id` is left on the host.
pub fn assert_no_leftovers(rt: &Runtime, id: &str) {
    assert!(!rt.state_dir(id).exists(), "state dir of {id} left behind");
    assert!(cgroup_leftovers(id).is_empty(), "cgroups left behind: {:?}", cgroup_leftovers(id));
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(id), "mounts of {id} left behind");
}

/// The open fds of a container process, seen from the host (so the listing opens nothing in
/// it), sorted, once it has exec'd the container's program: `run -d` and `exec -d` return when
/// the process has been told to go, as runc's do, a moment before it has closed the runtime's
/// fds and exec'd.
pub fn fds_once_execd(pid: i64) -> Vec<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().starts_with("skiff") {
        assert!(std::time::Instant::now() < deadline, "pid {pid} never exec'd the container's program");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut v: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    v.sort();
    v
}

/// Waits for a file to appear with content (a container writing into its rootfs).
pub fn wait_for_file(p: &Path) -> String {
    for _ in 0..500 {
        if let Ok(s) = std::fs::read_to_string(p) {
            if !s.is_empty() {
                return s;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} never appeared", p.display());
}

/// The number a test's counter loop (`echo $i > FILE`) last wrote. The file is read again
/// while it is caught between its truncation and its write, for up to 10 s (a detached task
/// on a loaded CI may take a while to get going). A frozen or dumped counter may stay empty
/// for good: read its raw text instead.
pub fn count_in(file: &Path) -> u64 {
    for _ in 0..2000 {
        if let Some(n) = std::fs::read_to_string(file).ok().and_then(|s| s.trim().parse().ok()) {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("{} never held a number", file.display());
}

/// Runs `cmd` in a new session with `slave` (a pty) as stdio and controlling terminal, as a
/// shell on a terminal would be.
pub fn on_controlling_tty<'a>(cmd: &'a mut Command, slave: &std::fs::File) -> &'a mut Command {
    use std::os::unix::process::CommandExt;
    cmd.stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave.try_clone().unwrap());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Waits up to `timeout` for `child`; kills it and panics (naming `what`) past that.
pub fn wait_timeout(child: &mut std::process::Child, timeout: std::time::Duration, what: &str) -> std::process::ExitStatus {
    let t0 = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return st;
        }
        if t0.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: no exit within {timeout:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
