//! cgroups: layout detection (v1, v2, hybrid) and a manager that creates, joins, lists and removes
//! a container's cgroup in every hierarchy the host has.
//!
//! OWNER: cgroups helper. Interface used by the rest of the crate (keep these signatures):

mod detect;
mod devices;
mod freeze;
mod manager;
mod oom;
mod path;
mod resources;
pub mod stats;
pub mod systemd;
mod v1;
mod v2;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_stats;

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::rootfs::CgroupMount;

pub use oom::OomWatch;
pub use path::{is_systemd_path, systemd_unsupported, SYSTEMD_UNSUPPORTED};
pub use stats::Stats;

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
    /// This process's own cgroup in the hierarchy, relative to the mount (for relative paths):
    /// no leading '/', empty for the mount's top (also when our cgroup lies outside what a
    /// namespaced mount shows).
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
        detect::detect()
    }

    /// Parses the texts of /proc/self/mountinfo and /proc/self/cgroup. Mount points are taken
    /// as they are, so a test can describe a fake tree under a temporary directory.
    pub fn from_text(mountinfo: &str, proc_self_cgroup: &str) -> Result<Cgroups> {
        detect::from_text(mountinfo, proc_self_cgroup)
    }

    /// The container's cgroup directories, one per hierarchy. `path` is `linux.cgroupsPath`:
    /// absolute (from each hierarchy's root), relative (from our own cgroup), or absent
    /// (default `/skiff/<id>`).
    ///
    /// `..` components and the systemd `slice:prefix:name` form are refused; the directories
    /// are in the order of `hierarchies` (all v1 hierarchies and the cgroup2 mount in hybrid).
    pub fn resolve(&self, path: Option<&str>, id: &str) -> Result<Manager> {
        path::resolve(self, path, id)
    }

    /// The hierarchy a cgroup directory lies in (longest mount prefix).
    pub fn hierarchy_of(&self, dir: &Path) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .filter(|h| dir.starts_with(&h.mount))
            .max_by_key(|h| h.mount.components().count())
    }

    /// What `rootfs` needs for the container's `cgroup` mounts: one entry per directory of `m`,
    /// named after the host's mount directory (`cpu,cpuacct`, `systemd`, `unified`), with an
    /// empty name on a pure-v2 host.
    pub fn mounts_for(&self, m: &Manager) -> Vec<CgroupMount> {
        m.paths
            .iter()
            .filter_map(|p| {
                let h = self.hierarchy_of(p)?;
                let name = if self.layout == Layout::Unified {
                    String::new()
                } else {
                    h.mount
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                Some(CgroupMount {
                    name,
                    host_dir: p.clone(),
                    v2: h.v2,
                })
            })
            .collect()
    }
}

/// A container's cgroup across all hierarchies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    pub paths: Vec<PathBuf>,
}

impl Manager {
    /// Creates the directories; returns the ones that did not exist before (parents first).
    /// On failure the directories made so far are removed again. A new v1 cpuset cgroup gets
    /// `cpuset.cpus`/`cpuset.mems` copied from its nearest parent that has them.
    pub fn create(&self) -> Result<Vec<PathBuf>> {
        manager::create(self)
    }
    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add(&self, pid: i32) -> Result<()> {
        manager::add(self, pid)
    }
    /// Splits the join of a new process in two (see [`SelfJoin`]): the v1 hierarchies'
    /// `tasks` files, opened now for the process to write itself in, and the v2 ones, which
    /// the runtime joins by pid.
    pub fn self_join(&self, cgroups: &Cgroups) -> Result<(SelfJoin, Manager)> {
        manager::self_join(self, cgroups)
    }
    /// A config's `linux.resources`, then (with `devices`) its device rules: what `create`
    /// applies to a new cgroup. On a pure cgroup2 host every controller the root offers is
    /// enabled down to the cgroup first ([`Manager::enable_all_v2`]).
    pub fn apply_linux(&self, cgroups: &Cgroups, linux: Option<&oci_spec::runtime::Linux>, devices: bool) -> Result<()> {
        let resources = linux.and_then(|l| l.resources().as_ref());
        if cgroups.layout == Layout::Unified {
            self.enable_all_v2(cgroups);
        }
        if let Some(res) = resources {
            self.apply_resources(cgroups, res)?;
        }
        if devices {
            let rules = resources.and_then(|r| r.devices().as_deref()).unwrap_or_default();
            self.apply_devices(cgroups, rules, linux.and_then(|l| l.devices().as_deref()).unwrap_or_default())?;
        }
        Ok(())
    }
    /// All pids in the cgroup (from every hierarchy's cgroup.procs), sorted, without duplicates.
    pub fn pids(&self) -> Result<Vec<i32>> {
        manager::pids(self)
    }
}

/// The v1 `tasks` files of a new process's cgroups, opened by the runtime (the kernel checks
/// permission against the opener). The process writes `0` to each itself: on cgroup v1 a
/// thread that moves itself skips the global threadgroup lock, whose RCU grace period made
/// writing a pid into `cgroup.procs` cost several milliseconds per container start.
#[derive(Debug, Default)]
pub struct SelfJoin {
    pub(crate) tasks: Vec<(PathBuf, std::os::fd::OwnedFd)>,
}

impl SelfJoin {
    /// Moves the calling (single-threaded) process into each cgroup.
    pub fn join(&self) -> Result<()> {
        manager::join_self(self)
    }
}

/// Removes the directories `created` (deepest first), waiting briefly for exiting tasks.
/// Directories already gone are fine; one that still holds another cgroup is left in place.
pub fn remove(created: &[PathBuf]) -> Result<()> {
    manager::remove(created)
}

/// Removes the shared default parent (`/skiff`) of these cgroup dirs where it is empty; the
/// kernel refuses (EBUSY) while another container's cgroup is in it, so nothing is lost.
pub fn remove_default_parents(paths: &[PathBuf]) {
    for p in paths {
        if let Some(parent) = p.parent().filter(|d| d.file_name().is_some_and(|n| n == path::DEFAULT_PARENT)) {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// True if the container's freezer says frozen: the v1 freezer when the container has a v1
/// freezer directory, else cgroup2's cgroup.freeze (the same choice `Manager::freeze` makes).
pub fn is_frozen(paths: &[PathBuf]) -> bool {
    freeze::is_frozen(paths)
}
