//! cgroups: layout detection (v1, v2, hybrid) and a manager that creates, joins, lists and removes
//! a container's cgroup in every hierarchy the host has.
//!
//! OWNER: cgroups helper. Interface used by the rest of the crate (keep these signatures):

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 hierarchies plus a cgroup2 mount (this machine: /sys/fs/cgroup/unified).
    Hybrid,
    /// Only cgroup2 (most current distributions).
    Unified,
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. /sys/fs/cgroup/cpu,cpuacct or /sys/fs/cgroup/unified.
    pub mount: PathBuf,
    /// v1 controllers (and `name=...`) of this hierarchy; empty for cgroup2.
    pub controllers: Vec<String>,
    pub v2: bool,
    /// This process's own cgroup in the hierarchy, relative to the mount (for relative paths).
    pub own: PathBuf,
}

/// The host's cgroup hierarchies.
#[derive(Debug, Clone)]
pub struct Cgroups {
    pub layout: Layout,
    pub hierarchies: Vec<Hierarchy>,
}

impl Cgroups {
    /// Reads /proc/self/mountinfo and /proc/self/cgroup.
    pub fn detect() -> Result<Cgroups> {
        let _ = (Path::new("/"), Error::Cgroup(String::new()));
        todo!()
    }

    /// The container's cgroup directories, one per hierarchy. `path` is `linux.cgroupsPath`:
    /// absolute (from each hierarchy's root), relative (from our own cgroup), or absent
    /// (default `/skiff/<id>`).
    pub fn resolve(&self, _path: Option<&str>, _id: &str) -> Result<Manager> {
        todo!()
    }
}

/// A container's cgroup across all hierarchies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    pub paths: Vec<PathBuf>,
}

impl Manager {
    /// Creates the directories; returns the ones that did not exist before (parents first).
    pub fn create(&self) -> Result<Vec<PathBuf>> {
        todo!()
    }
    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add(&self, _pid: i32) -> Result<()> {
        todo!()
    }
    /// All pids in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        todo!()
    }
}

/// Removes the directories `created` (deepest first), waiting briefly for exiting tasks.
pub fn remove(_created: &[PathBuf]) -> Result<()> {
    todo!()
}

/// True if the container's freezer (v1) or cgroup.freeze (v2) says frozen.
pub fn is_frozen(_paths: &[PathBuf]) -> bool {
    false
}
