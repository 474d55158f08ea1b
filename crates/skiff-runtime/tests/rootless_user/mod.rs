//! The throwaway user of the rootless tests: made with useradd, given a range in /etc/subuid
//! and /etc/subgid, optionally a delegated cgroup, and removed again on drop (files restored
//! byte for byte). Tests holding one run one at a time.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use crate::common::*;

static LOCK: Mutex<()> = Mutex::new(());
static USERS: AtomicUsize = AtomicUsize::new(0);

/// The delegated range every test user gets.
pub const RANGE_START: u32 = 400000;
pub const RANGE_SIZE: u32 = 65536;

/// A throwaway user that owns a temp dir holding a copy of the runtime, its bundles and its
/// XDG_RUNTIME_DIR. Dropping it deletes its containers, the user and its home, and restores
/// /etc/subuid and /etc/subgid exactly.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    dir: tempfile::TempDir,
    pub subuid: Option<String>,
    pub subgid: Option<String>,
    /// Cgroup dirs (one per hierarchy) delegated to the user; its runtime starts in them.
    delegated: Vec<PathBuf>,
    _lock: MutexGuard<'static, ()>,
}

pub fn skip_rootless() -> bool {
    if skip() {
        return true;
    }
    for tool in ["/usr/bin/setpriv", "/usr/sbin/useradd", "/usr/sbin/userdel", "/usr/bin/newuidmap", "/usr/bin/newgidmap"] {
        if !Path::new(tool).exists() {
            eprintln!("skipping: {tool} is missing (scripts/setup.sh installs uidmap)");
            return true;
        }
    }
    false
}

fn sh(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run command");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

impl User {
    pub fn new() -> User {
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let subuid = std::fs::read_to_string("/etc/subuid").ok();
        let subgid = std::fs::read_to_string("/etc/subgid").ok();
        let name = format!("sktrl{}n{}", std::process::id(), USERS.fetch_add(1, Ordering::SeqCst));
        // A system account gets no automatic subordinate ids: we add exactly ours.
        sh(Command::new("useradd").args(["-r", "-m", "-U", "-s", "/bin/sh", &name]));
        let u = nix::unistd::User::from_name(&name).ok().flatten().expect("new user exists");
        let dir = tempfile::Builder::new().prefix("skt-rl").tempdir().unwrap();
        let user = User { name, uid: u.uid.as_raw(), gid: u.gid.as_raw(), dir, subuid, subgid, delegated: Vec::new(), _lock: lock };
        let line = format!("{}:{RANGE_START}:{RANGE_SIZE}\n", user.name);
        for (file, orig) in [("/etc/subuid", &user.subuid), ("/etc/subgid", &user.subgid)] {
            let mut text = orig.clone().unwrap_or_default();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&line);
            std::fs::write(file, text).unwrap();
        }
        std::fs::create_dir(user.path("bin")).unwrap();
        std::fs::copy(BIN, user.path("bin/skiff-runtime")).unwrap();
        std::fs::create_dir(user.path("xdg")).unwrap();
        std::fs::set_permissions(user.path("xdg"), std::fs::Permissions::from_mode(0o700)).unwrap();
        user.chown(user.dir.path());
        user
    }

    /// Delegates a cgroup per hierarchy to the user (as systemd's Delegate= does): a dir it
    /// owns with its cgroup.procs (and v1 tasks), where its runtime then starts. On pure v2
    /// its runtime starts in a leaf of the subtree (`session`, like systemd's init.scope):
    /// cgroup2 keeps processes out of a cgroup that hands controllers to its children.
    pub fn delegate_cgroups(&mut self) {
        let layout = crate::common::cgroups::CgroupLayout::detect();
        for h in layout.mounts.iter().map(|m| m.dir.clone()).collect::<Vec<_>>() {
            let d = h.join(format!("skt-rl-{}", self.name));
            std::fs::create_dir(&d).unwrap();
            self.delegated.push(d.clone());
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(h.join(f)) {
                    std::fs::write(d.join(f), v.trim()).unwrap();
                }
            }
            let own = |p: &Path| nix::unistd::chown(p, Some(nix::unistd::Uid::from_raw(self.uid)), Some(nix::unistd::Gid::from_raw(self.gid))).unwrap();
            own(&d);
            let mut owned = vec![d.clone()];
            if layout.is_v2() {
                let leaf = d.join("session");
                std::fs::create_dir(&leaf).unwrap();
                own(&leaf);
                owned.push(leaf);
            }
            for d in owned {
                for f in ["cgroup.procs", "tasks", "cgroup.threads", "cgroup.subtree_control"] {
                    if d.join(f).exists() {
                        own(&d.join(f));
                    }
                }
            }
        }
    }

    /// Where the user's runtime starts: each delegated cgroup, or its leaf on pure v2.
    fn start_cgroups(&self) -> Vec<PathBuf> {
        self.delegated
            .iter()
            .map(|d| if d.join("session").is_dir() { d.join("session") } else { d.clone() })
            .collect()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn chown(&self, p: &Path) {
        sh(Command::new("chown").args(["-R", "-h", &format!("{}:{}", self.uid, self.gid)]).arg(p));
    }

    /// A bundle owned by the user, with a busybox rootfs and `config`.
    pub fn bundle(&self, tag: &str, config: &Value) -> PathBuf {
        let b = self.path(tag);
        make_rootfs(&b.join("rootfs"));
        std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(config).unwrap()).unwrap();
        self.chown(&b);
        b
    }

    /// Runs the runtime as the user; `xdg` sets XDG_RUNTIME_DIR to the user's dir.
    pub fn runtime(&self, args: &[&str], xdg: bool) -> Output {
        self.runtime_with_xdg(args, xdg.then(|| self.path("xdg")).as_deref())
    }

    /// Runs the runtime as the user with XDG_RUNTIME_DIR set to `xdg` (unset for None).
    pub fn runtime_with_xdg(&self, args: &[&str], xdg: Option<&Path>) -> Output {
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        let mut c = Command::new("sh");
        // As root, move this shell into the delegated cgroups, then become the user.
        let script = "for d in $DELEGATED; do echo $$ > $d/cgroup.procs || exit 97; done; exec \"$0\" \"$@\"";
        // By path: a busybox sh would run its own setpriv applet for a bare name.
        c.args(["-c", script, "/usr/bin/setpriv"]);
        c.args(["--reuid", &self.uid.to_string(), "--regid", &self.gid.to_string(), "--init-groups"])
            .arg(self.path("bin/skiff-runtime"))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", format!("/home/{}", self.name))
            .env("USER", &self.name)
            .env(
                "DELEGATED",
                self.start_cgroups()
                    .iter()
                    .map(|d| d.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
            )
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap());
        if let Some(dir) = xdg {
            c.env("XDG_RUNTIME_DIR", dir);
        }
        let status = c.status().expect("run sh + setpriv");
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
            let mut v = Vec::new();
            f.rewind().unwrap();
            f.read_to_end(&mut v).unwrap();
            String::from_utf8_lossy(&v).into_owned()
        };
        Output { status, stdout: read(out).into_bytes(), stderr: read(err).into_bytes() }
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.runtime(args, true);
        assert!(o.status.success(), "{args:?} as {}: {}\nstdout: {}", self.name, String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.path("xdg/skiff").join(id)
    }

    pub fn init_pid(&self, id: &str) -> i32 {
        let st: Value = serde_json::from_str(&self.ok(&["state", id])).expect("state JSON");
        st["pid"].as_i64().expect("pid") as i32
    }

    pub fn delete(&self, id: &str) {
        let pid = std::fs::read_to_string(self.state_dir(id).join("state.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["pid"].as_i64());
        self.ok(&["delete", "--force", id]);
        if let Some(pid) = pid {
            reap_pid(pid as i32);
        }
    }

    /// Nothing of `id` left: state dir, cgroups, mounts.
    pub fn assert_clean(&self, id: &str) {
        assert!(!self.state_dir(id).exists(), "state dir of {id} left behind");
        assert!(cgroup_leftovers(id).is_empty(), "cgroups left: {:?}", cgroup_leftovers(id));
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mi.contains(id), "mounts of {id} left behind");
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.path("xdg/skiff")) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.runtime(&["delete", "--force", &id], true);
            }
        }
        // userdel refuses while the user has processes: end the ones left (ours, by pid).
        for _ in 0..50 {
            let left = pids_of(self.uid);
            if left.is_empty() {
                break;
            }
            for pid in left {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                reap_pid(pid);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for d in &self.delegated {
            // Anything the runtime left below (it should have removed its own), then ours.
            let mut subdirs: Vec<PathBuf> = walk_dirs(d);
            subdirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for sub in subdirs {
                let _ = std::fs::remove_dir(sub);
            }
        }
        let _ = Command::new("userdel").args(["-r", &self.name]).stderr(Stdio::null()).status();
        for (file, orig) in [("/etc/subuid", &self.subuid), ("/etc/subgid", &self.subgid)] {
            match orig {
                Some(text) => std::fs::write(file, text).unwrap(),
                None => {
                    let _ = std::fs::remove_file(file);
                }
            }
        }
    }
}

/// `dir` and every directory below it.
fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk_dirs(&e.path()));
        }
    }
    out
}

/// Pids whose real uid is `uid`.
fn pids_of(uid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        if status_uid(&st) == Some(uid) {
            out.push(pid);
        }
    }
    out
}

/// The real uid from the `Uid:` line of /proc/PID/status.
pub fn status_uid(status: &str) -> Option<u32> {
    status.lines().find(|l| l.starts_with("Uid:"))?.split_whitespace().nth(1)?.parse().ok()
}
