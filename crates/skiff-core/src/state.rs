//! Persistent container state under the runtime root (`<root>/<id>/state.json`), and the
//! live status derived from it.
//!
//! The status is never trusted from disk alone: a container is `stopped` when its init is gone
//! (or is a zombie, or the pid was reused: the start time recorded at create is compared),
//! `created` while the exec fifo exists, and `running` otherwise.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

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
        self.pid > 0 && matches!(proc_stat(self.pid), Some((s, t)) if s != 'Z' && s != 'X' && t == self.pid_start)
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
        let dir = self.dir(&rec.id);
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(rec).map_err(|e| Error::Other(format!("encode state: {e}")))?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io("write state", &tmp, e))?;
        f.write_all(&data).map_err(|e| Error::io("write state", &tmp, e))?;
        fs::rename(&tmp, dir.join(STATE_FILE)).map_err(|e| Error::io("write state", &dir, e))
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
}
