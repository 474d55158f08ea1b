//! Persistent container state under the runtime root (`<root>/<id>/state.json`), and the
//! live status derived from it.
//!
//! The status is never trusted from disk alone: a container is `stopped` when its init is gone
//! (or is a zombie, or the pid was reused: the start time recorded at create is compared),
//! `created` while the exec fifo exists, and `running` otherwise.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
/// What a `create` in progress has done so far; see [`Intent`].
pub const INTENT_FILE: &str = "creating.json";

/// OCI status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What we persist per container. The spec is kept as it was at create time so that later
/// commands (exec, delete's poststop hooks) do not depend on the bundle staying unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat).
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: String,
    /// The cgroup directories the container joined, one per hierarchy.
    pub cgroup_paths: Vec<PathBuf>,
    /// Cgroup directories created by us (deepest last), removed on delete.
    pub cgroup_created: Vec<PathBuf>,
    pub spec: Spec,
}

/// What `create` records before its first side effect, and updates as it goes, so that a
/// create killed half-way (SIGKILL, OOM) can be undone: `delete -f`, or a later `create` of the
/// same id, reads it to find the cgroups to remove and the processes to kill. `state.json`,
/// once written, supersedes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Intent {
    /// The creating runtime, and its start time (so that a reused pid is not taken for it).
    pub runtime_pid: i32,
    pub runtime_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    /// The container's cgroup directories, one per hierarchy.
    pub cgroup_paths: Vec<PathBuf>,
    /// The directories the create makes: those missing when it began, parents first.
    pub cgroup_created: Vec<PathBuf>,
    /// The container's init once forked (0 before), and its start time.
    pub init_pid: i32,
    pub init_start: u64,
}

impl Intent {
    /// True while the runtime that wrote this still runs: the create is in progress.
    pub fn creator_alive(&self) -> bool {
        alive(self.runtime_pid, self.runtime_start)
    }

    /// True while the init it forked still runs.
    pub fn init_alive(&self) -> bool {
        alive(self.init_pid, self.init_start)
    }

    /// How `list` shows a container still being made: `creating` while its runtime works on
    /// it, `stopped` once that died (`delete -f` removes what it left).
    pub fn oci_state(&self, id: &str) -> OciState {
        let creating = self.creator_alive();
        OciState {
            oci_version: crate::spec::OCI_VERSION.to_string(),
            id: id.to_string(),
            pid: if creating && self.init_alive() { self.init_pid } else { 0 },
            status: if creating { Status::Creating } else { Status::Stopped },
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            annotations: HashMap::new(),
            owner: self.owner.clone(),
        }
    }
}

/// True while `pid` runs (not a zombie) and is the process that started at `start`.
fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && matches!(proc_stat(pid), Some((s, t)) if s != 'Z' && s != 'X' && t == start)
}

/// An exclusive lock on the state root (flock on the directory), released on drop. Taken
/// around making a state dir and writing its first [`Intent`], and by whoever judges a state
/// dir without `state.json`, so that a create that just made its dir is never taken for one
/// that died.
#[derive(Debug)]
pub struct RootLock {
    _fd: std::os::fd::OwnedFd,
}

/// The OCI state document, as `state` prints it and hooks read it on stdin.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    pub owner: String,
}

/// A process's state letter and start time from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<(char, u64)> {
    // comm may hold spaces and parens: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3 (state); starttime is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl Record {
    /// True while the recorded init process still runs (not a zombie, not a reused pid).
    pub fn init_alive(&self) -> bool {
        alive(self.pid, self.pid_start)
    }

    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: crate::spec::OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped { 0 } else { self.pid },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            annotations: self.spec.annotations().clone().unwrap_or_default(),
            owner: self.owner.clone(),
        }
    }
}

/// The directory tree of all containers' state.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Makes the container's state dir; fails if the id is taken.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf> {
        crate::spec::validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .map_err(|e| Error::io("create state root", &self.root, e))?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Exists(id.to_string())),
            Err(e) => Err(Error::io("create state dir", dir, e)),
        }
    }

    pub fn save(&self, rec: &Record) -> Result<()> {
        let data = serde_json::to_vec(rec).map_err(|e| Error::Other(format!("encode state: {e}")))?;
        self.write_atomic(&rec.id, STATE_FILE, &data)
    }

    /// Writes `<id>/<name>` whole or not at all (a temporary file renamed over it).
    fn write_atomic(&self, id: &str, name: &str, data: &[u8]) -> Result<()> {
        let dir = self.dir(id);
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io("write state", &tmp, e))?;
        f.write_all(data).map_err(|e| Error::io("write state", &tmp, e))?;
        fs::rename(&tmp, dir.join(name)).map_err(|e| Error::io("write state", &dir, e))
    }

    /// Records (or updates) what a create in progress has done; see [`Intent`].
    pub fn write_intent(&self, id: &str, intent: &Intent) -> Result<()> {
        let data = serde_json::to_vec(intent).map_err(|e| Error::Other(format!("encode state: {e}")))?;
        self.write_atomic(id, INTENT_FILE, &data)
    }

    /// The intent of a create that has not written `state.json` (yet); None without one (a
    /// dir from before intents, or whose creator died before writing it).
    pub fn intent(&self, id: &str) -> Result<Option<Intent>> {
        crate::spec::validate_id(id)?;
        let path = self.dir(id).join(INTENT_FILE);
        match fs::read(&path) {
            Ok(d) => Ok(serde_json::from_slice(&d).map_err(|e| tracing::warn!("{}: corrupt: {e}", path.display())).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read state", path, e)),
        }
    }

    /// Whether the id's state dir exists (with or without `state.json`).
    pub fn exists(&self, id: &str) -> bool {
        self.dir(id).is_dir()
    }

    /// Locks the state root (see [`RootLock`]); None when there is no root yet, and so
    /// nothing to guard, unless `make` asks for it to be made.
    pub fn lock(&self, make: bool) -> Result<Option<RootLock>> {
        if make {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(&self.root)
                .map_err(|e| Error::io("create state root", &self.root, e))?;
        }
        let fd = match nix::fcntl::open(&self.root, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) if !make => return Ok(None),
            Err(e) => return Err(Error::io("open state root", &self.root, e.into())),
        };
        loop {
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Some(RootLock { _fd: fd }));
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(Error::io("lock state root", &self.root, e));
            }
        }
    }

    /// Loads a container's record; `NotExist` when there is none.
    pub fn load(&self, id: &str) -> Result<Record> {
        crate::spec::validate_id(id)?;
        let path = self.dir(id).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotExist(id.to_string())),
            Err(e) => return Err(Error::io("read state", path, e)),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Other(format!("{}: corrupt state: {e}", path.display())))
    }

    /// The ids of all containers with a state dir, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read state root", &self.root, e)),
        };
        let mut ids: Vec<String> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The live status of a recorded container.
    pub fn status(&self, rec: &Record) -> Status {
        if !rec.init_alive() {
            return Status::Stopped;
        }
        // Frozen first, as runc: a created container can be paused too.
        if crate::cgroups::is_frozen(&rec.cgroup_paths) {
            return Status::Paused;
        }
        if self.dir(&rec.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        Status::Running
    }

    /// Removes a container's state dir and everything in it.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove state dir", dir, e)),
        }
    }
}

/// Now, as RFC 3339 with nanoseconds (what runc writes as `created`).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10 18446744073709551615";
        assert_eq!(parse_stat(line), Some(('S', 123456)));
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id() as i32;
        let (s, t) = proc_stat(me).expect("own stat");
        assert_ne!(s, 'Z');
        assert!(t > 0);
    }

    #[test]
    fn store_refuses_duplicates_and_bad_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("root"));
        store.create_dir("a").unwrap();
        assert!(matches!(store.create_dir("a"), Err(Error::Exists(_))));
        assert!(matches!(store.create_dir("../x"), Err(Error::InvalidId(_))));
        assert!(matches!(store.load("b"), Err(Error::NotExist(_))));
        assert_eq!(store.ids().unwrap(), vec!["a".to_string()]);
        store.remove("a").unwrap();
        assert!(store.ids().unwrap().is_empty());
    }

    #[test]
    fn intent_round_trip_and_liveness() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("root"));
        // No root yet: nothing to lock, and nothing made.
        assert!(store.lock(false).unwrap().is_none());
        assert!(!store.root().exists());
        let lock = store.lock(true).unwrap();
        assert!(lock.is_some());
        store.create_dir("a").unwrap();
        assert!(store.intent("a").unwrap().is_none());
        let me = std::process::id() as i32;
        let start = proc_stat(me).unwrap().1;
        let i = Intent { runtime_pid: me, runtime_start: start, init_pid: me, init_start: start, ..Intent::default() };
        store.write_intent("a", &i).unwrap();
        let back = store.intent("a").unwrap().unwrap();
        assert!(back.creator_alive() && back.init_alive());
        assert_eq!(back.oci_state("a").status, Status::Creating);
        assert_eq!(back.oci_state("a").pid, me);
        // Another start time: a reused pid, so the creator is gone.
        let dead = Intent { runtime_start: start + 1, ..back };
        assert!(!dead.creator_alive());
        assert_eq!(dead.oci_state("a").status, Status::Stopped);
        assert_eq!(dead.oci_state("a").pid, 0);
        assert!(matches!(store.load("a"), Err(Error::NotExist(_))));
    }
}
