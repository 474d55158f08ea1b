//! Shared by the engine's integration tests: a store per test in a temp dir, a busybox image
//! imported from Debian's busybox-static, the built `skiff`, and a guard that removes every
//! container of the store and checks that nothing is left on the host.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub fn skiff_bin() -> &'static str {
    env!("CARGO_BIN_EXE_skiff")
}

/// The busybox rootfs tarball, made once (in cargo's target tmp dir) by `scripts/mkrootfs.sh`.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let tar = dir.join("busybox-rootfs.tar");
        if tar.exists() {
            return tar;
        }
        let work = dir.join(format!("bb-{}", std::process::id()));
        let rootfs = work.join("rootfs");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkrootfs.sh");
        let st = Command::new("sh").arg(&script).arg(&rootfs).status().expect("run mkrootfs.sh");
        assert!(st.success(), "mkrootfs.sh failed (is busybox-static installed?)");
        let tmp = work.join("busybox.tar");
        let st = Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tmp).arg(".").status().expect("tar");
        assert!(st.success());
        // Atomic: concurrent test binaries each make one, the last rename wins, all equal.
        std::fs::rename(&tmp, &tar).expect("place busybox tar");
        std::fs::remove_dir_all(&work).ok();
        tar
    })
}

/// A store of our own; dropping it force-removes its containers, checks that no mount,
/// cgroup or monitor of it is left, and deletes it.
pub struct Store {
    pub root: tempfile::TempDir,
}

impl Store {
    /// An empty store.
    pub fn empty() -> Store {
        Store {
            root: tempfile::Builder::new().prefix("skiff-test-").tempdir_in("/tmp").expect("tempdir"),
        }
    }

    /// A store with `busybox:latest` imported.
    pub fn new() -> Store {
        let s = Store::empty();
        let out = s.ok(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
        assert!(out.starts_with("sha256:"), "{out}");
        s
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(skiff_bin());
        c.arg("--root").arg(self.root.path()).args(args);
        c.stdin(Stdio::null());
        // Credentials files are per user: the store dir stands in for the home of a test.
        let home = self.root.path().join("home");
        c.env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("DOCKER_CONFIG", home.join(".docker"))
            .env_remove("REGISTRY_AUTH_FILE");
        // Tests outside `tests/network.rs` run on the host's network namespace: their
        // containers default to `none` there, so that no bridge or nftables table of ours is
        // left on the host. tests/network.rs runs skiff in namespaces of its own, with
        // Docker's default (`bridge`).
        if std::env::var_os("SKIFF_DEFAULT_NETWORK").is_none() {
            c.env("SKIFF_DEFAULT_NETWORK", "none");
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn skiff")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    /// Runs and asserts failure with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "skiff {args:?}: stdout: {} stderr: {}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stderr)
    }

    pub fn inspect(&self, name: &str, fmt: &str) -> String {
        self.ok(&["inspect", "-f", fmt, name]).trim().to_string()
    }

    /// Ids of every container of this store.
    pub fn ids(&self) -> Vec<String> {
        self.ok(&["ps", "-aq", "--no-trunc"]).lines().map(str::to_string).collect()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-aq", "--no-trunc"]);
        for id in text(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        let root = self.root.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
        for l in &left {
            if let Some(mp) = l.split(' ').nth(4) {
                let _ = Command::new("umount").arg("-l").arg(mp).status();
            }
        }
        if !std::thread::panicking() {
            assert!(left.is_empty(), "mounts left under {root}: {left:?}");
        }
    }
}

/// Asserts that skiff `args` succeeded; its stdout.
pub fn succeeded(args: &[&str], o: Output) -> String {
    assert!(
        o.status.success(),
        "skiff {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// The `skiff-monitor` processes of the store at `root`.
pub fn monitors_of(root: &Path) -> Vec<i32> {
    procs_with(&root.to_string_lossy())
        .into_iter()
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default().trim() == "skiff-monitor")
        .collect()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The cgroup dirs named after container `id` in every hierarchy.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            let p = h.path().join(format!("skiff-{id}"));
            if p.exists() {
                out.push(p);
            }
        }
    }
    let p = PathBuf::from("/sys/fs/cgroup").join(format!("skiff-{id}"));
    if p.exists() {
        out.push(p);
    }
    out
}

/// Whether this machine has the pure cgroup v2 layout (one cgroup2 mount at /sys/fs/cgroup),
/// as the tests/vm guest's v2 layout; false on v1 and hybrid hosts, where the v1 controllers
/// hold the limits.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The cgroup file `name` of container `id` (v1 `controller/skiff-ID/name`, or v2 `skiff-ID/name`).
pub fn cgroup_file(id: &str, controller: &str, name: &str) -> Option<String> {
    let v1 = PathBuf::from("/sys/fs/cgroup").join(controller).join(format!("skiff-{id}")).join(name);
    let v2 = PathBuf::from("/sys/fs/cgroup").join(format!("skiff-{id}")).join(name);
    std::fs::read_to_string(v1)
        .or_else(|_| std::fs::read_to_string(v2))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Waits up to `secs` for `f` to hold.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}

/// Processes whose command line mentions `needle` (for leak checks).
pub fn procs_with(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if let Ok(cl) = std::fs::read(e.path().join("cmdline")) {
            if text(&cl).contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}
