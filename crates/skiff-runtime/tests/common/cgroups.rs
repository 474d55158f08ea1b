//! The host's cgroup layout as the tests see it (pure v2, pure v1 or hybrid, from
//! /proc/self/mountinfo), and where the runtime puts a container's cgroup on it: the default
//! cgroupsPath is `/skiff/<id>` below the top of every hierarchy (crates/skiff-core/src/cgroups/
//! path.rs), so `/sys/fs/cgroup/skiff/<id>` on pure v2 and `/sys/fs/cgroup/<hierarchy>/skiff/<id>`
//! (plus `unified/skiff/<id>` on hybrid) otherwise.

use std::path::{Path, PathBuf};

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only cgroup2.
    V2,
    /// Only v1 hierarchies.
    V1,
    /// v1 hierarchies plus a cgroup2 mount (the v1 ones hold the controllers).
    Hybrid,
}

/// One mounted hierarchy.
#[derive(Debug, Clone)]
pub struct Mount {
    pub dir: PathBuf,
    pub v2: bool,
    /// v1: the controllers (and `name=...`) of the hierarchy; v2: the controllers available at
    /// its top (cgroup.controllers).
    pub controllers: Vec<String>,
}

/// The host's cgroup hierarchies.
#[derive(Debug, Clone)]
pub struct CgroupLayout {
    pub kind: Kind,
    pub mounts: Vec<Mount>,
}

/// v1 mount options that are not controllers.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "xattr",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "favordynmods",
    "nofavordynmods",
    "none",
    "all",
];

impl CgroupLayout {
    /// From /proc/self/mountinfo (each hierarchy once: the first mount of it).
    pub fn detect() -> CgroupLayout {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
        let mut mounts: Vec<Mount> = Vec::new();
        for l in mi.lines() {
            let Some((pre, post)) = l.split_once(" - ") else { continue };
            let post: Vec<&str> = post.split_whitespace().collect();
            let Some(dir) = pre.split_whitespace().nth(4) else { continue };
            let dir = PathBuf::from(dir);
            let m = match post.first() {
                Some(&"cgroup2") => {
                    let top = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
                    Mount {
                        dir,
                        v2: true,
                        controllers: top.split_whitespace().map(str::to_string).collect(),
                    }
                }
                Some(&"cgroup") => {
                    let opts = post.get(2).copied().unwrap_or_default();
                    let mut controllers: Vec<String> = opts
                        .split(',')
                        .filter(|o| !o.is_empty() && !NOT_CONTROLLERS.contains(o) && (o.starts_with("name=") || !o.contains('=')))
                        .map(str::to_string)
                        .collect();
                    controllers.sort();
                    Mount { dir, v2: false, controllers }
                }
                _ => continue,
            };
            if !mounts.iter().any(|x| x.v2 == m.v2 && (m.v2 || x.controllers == m.controllers)) {
                mounts.push(m);
            }
        }
        let v1 = mounts.iter().any(|m| !m.v2);
        let v2 = mounts.iter().any(|m| m.v2);
        let kind = match (v1, v2) {
            (true, true) => Kind::Hybrid,
            (true, false) => Kind::V1,
            (false, true) => Kind::V2,
            (false, false) => panic!("no cgroup hierarchy is mounted"),
        };
        CgroupLayout { kind, mounts }
    }

    pub fn is_v2(&self) -> bool {
        self.kind == Kind::V2
    }

    /// The cgroup2 mount, if any.
    pub fn unified(&self) -> Option<&Path> {
        self.mounts.iter().find(|m| m.v2).map(|m| m.dir.as_path())
    }

    /// The hierarchy that holds `controller`: its v1 hierarchy, else the cgroup2 mount when the
    /// controller is available there (on hybrid, e.g. hugetlb may live on cgroup2).
    pub fn mount_of(&self, controller: &str) -> Option<&Mount> {
        let v1 = self.mounts.iter().find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller));
        v1.or_else(|| self.mounts.iter().find(|m| m.v2 && m.controllers.iter().any(|c| c == controller)))
    }

    /// Whether `controller` is a cgroup2 controller here.
    pub fn on_v2(&self, controller: &str) -> bool {
        self.mount_of(controller).is_some_and(|m| m.v2)
    }

    /// The container's cgroup (default cgroupsPath) in the hierarchy of `controller`; panics,
    /// naming it, when the kernel has no such controller.
    pub fn dir(&self, id: &str, controller: &str) -> PathBuf {
        let m = self
            .mount_of(controller)
            .unwrap_or_else(|| panic!("no {controller} controller in {:?}", self.mounts));
        m.dir.join("skiff").join(id)
    }

    /// A control file of the container's cgroup: `v1` in the controller's v1 hierarchy, or `v2`
    /// in its cgroup2 directory, whichever holds the controller on this host.
    pub fn file(&self, id: &str, controller: &str, v1: &str, v2: &str) -> PathBuf {
        self.dir(id, controller).join(if self.on_v2(controller) { v2 } else { v1 })
    }

    /// The container's cgroup directories in every hierarchy (default cgroupsPath).
    pub fn container_dirs(&self, id: &str) -> Vec<PathBuf> {
        self.mounts.iter().map(|m| m.dir.join("skiff").join(id)).collect()
    }

    /// The directory whose cgroup.procs lists the container's processes: cgroup2's on pure v2,
    /// else a v1 hierarchy's (memory, or the first).
    pub fn procs_dir(&self, id: &str) -> PathBuf {
        match self.kind {
            Kind::V2 => self.dir(id, "memory"),
            _ => {
                let m = self
                    .mounts
                    .iter()
                    .find(|m| !m.v2 && m.controllers.iter().any(|c| c == "memory"))
                    .or_else(|| self.mounts.iter().find(|m| !m.v2))
                    .unwrap();
                m.dir.join("skiff").join(id)
            }
        }
    }
}

/// [`CgroupLayout::detect`] as a function.
pub fn layout() -> CgroupLayout {
    CgroupLayout::detect()
}

/// The container's cgroup directories (default path) in every mounted hierarchy.
pub fn container_cgroup_dirs(id: &str) -> Vec<PathBuf> {
    CgroupLayout::detect().container_dirs(id)
}

/// See [`CgroupLayout::file`].
pub fn controller_file(id: &str, controller: &str, v1: &str, v2: &str) -> PathBuf {
    CgroupLayout::detect().file(id, controller, v1, v2)
}

/// The pids in the container's cgroup (its cgroup.procs; empty when it is gone).
pub fn cgroup_procs(id: &str) -> Vec<i32> {
    std::fs::read_to_string(CgroupLayout::detect().procs_dir(id).join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The value of `key` in a flat keyed file (`key value` per line: cpu.stat, memory.events,
/// memory.oom_control, cgroup.events).
pub fn keyed(p: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(p).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}
