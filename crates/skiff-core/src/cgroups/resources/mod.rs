//! Writing `linux.resources` into a container's cgroups.
//!
//! Two steps: [`plan`] validates the whole request and turns it into an ordered list of
//! [`Write`]s (reading, never writing, the host's files: which controllers exist, current
//! limits that decide an order); `execute` then performs them. So a bad request writes
//! nothing, and fake-tree tests can compare the plan with the exact files and values.
//!
//! Each resource group goes to the hierarchy that carries its controller: a v1 hierarchy
//! listing it, else the cgroup2 mount when its root's `cgroup.controllers` offers it (on this
//! hybrid host: everything on v1 except hugetlb, which only cgroup2 has). A non-default
//! request for a controller no hierarchy has is an error naming the field.
//!
//! Devices are not handled here (see the devices module).

mod validate;
mod v1;
mod v2;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{Cgroups, Manager};
use crate::error::{Error, Result};

/// One file write of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub dir: PathBuf,
    pub file: String,
    pub value: String,
    /// The `linux.resources` field this write serves, for error messages.
    pub field: &'static str,
}

impl Write {
    fn new(dir: &Path, file: impl Into<String>, value: impl Into<String>, field: &'static str) -> Write {
        Write { dir: dir.to_path_buf(), file: file.into(), value: value.into(), field }
    }
}

/// Where a controller's files are: the container's directory in that hierarchy.
#[derive(Debug, Clone)]
struct Target {
    dir: PathBuf,
    /// The hierarchy's mount (for v2: where enabling controllers starts).
    mount: PathBuf,
    v2: bool,
}

/// The controllers the cgroup2 root offers (its `cgroup.controllers`), empty if unreadable.
fn v2_available(mount: &Path) -> BTreeSet<String> {
    fs::read_to_string(mount.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The container's directories, looked up by controller.
struct Targets {
    v1: BTreeMap<String, Target>,
    v2: Option<(Target, BTreeSet<String>)>,
}

impl Targets {
    fn new(cgroups: &Cgroups, m: &Manager) -> Targets {
        let mut v1 = BTreeMap::new();
        let mut v2 = None;
        for p in &m.paths {
            let Some(h) = cgroups.hierarchy_of(p) else { continue };
            let t = Target { dir: p.clone(), mount: h.mount.clone(), v2: h.v2 };
            if h.v2 {
                if v2.is_none() {
                    v2 = Some((t, v2_available(&h.mount)));
                }
            } else {
                for c in &h.controllers {
                    v1.entry(c.clone()).or_insert_with(|| t.clone());
                }
            }
        }
        Targets { v1, v2 }
    }

    /// The directory for `controller`: v1 first, then cgroup2 if its root offers it.
    fn get(&self, controller: &str) -> Option<&Target> {
        self.v1.get(controller).or_else(|| match &self.v2 {
            Some((t, avail)) if avail.contains(controller) => Some(t),
            _ => None,
        })
    }
}

/// The error for a requested resource whose controller the host lacks.
fn absent(field: &str, controller: &str) -> Error {
    Error::field(field, format!("the {controller} controller is not available on this host"))
}

/// Validates `res` against the host and turns it into writes (in order). Reads files, writes none.
pub(crate) fn plan(cgroups: &Cgroups, m: &Manager, res: &LinuxResources) -> Result<Vec<Write>> {
    validate::resources(res)?;
    let t = Targets::new(cgroups, m);
    let mut out = Vec::new();
    // cgroup2 controllers the writes need enabled on the way down to the container.
    let mut needed: BTreeSet<String> = BTreeSet::new();

    if let Some(mem) = res.memory() {
        match t.get("memory") {
            Some(tg) if tg.v2 => {
                let w = v2::memory(&tg.dir, mem)?;
                if !w.is_empty() {
                    use_v2(tg, "memory", &mut needed);
                }
                out.extend(w);
            }
            Some(tg) => out.extend(v1::memory(&tg.dir, mem)?),
            None if validate::memory_requested(mem) => return Err(absent("linux.resources.memory", "memory")),
            None => {}
        }
    }
    if let Some(cpu) = res.cpu() {
        let cpuset = cpu.cpus().as_deref().is_some_and(|s| !s.is_empty()) || cpu.mems().as_deref().is_some_and(|s| !s.is_empty());
        match t.get("cpu") {
            Some(tg) if tg.v2 => {
                let w = v2::cpu(&tg.dir, cpu)?;
                if !w.is_empty() {
                    use_v2(tg, "cpu", &mut needed);
                }
                out.extend(w);
            }
            Some(tg) => out.extend(v1::cpu(&tg.dir, cpu)?),
            None if validate::cpu_requested(cpu) => return Err(absent("linux.resources.cpu", "cpu")),
            None => {}
        }
        if cpuset {
            match t.get("cpuset") {
                Some(tg) => {
                    use_v2(tg, "cpuset", &mut needed);
                    out.extend(cpuset_writes(&tg.dir, cpu));
                }
                None => return Err(absent("linux.resources.cpu.cpus", "cpuset")),
            }
        }
    }
    if let Some(pids) = res.pids() {
        match t.get("pids") {
            Some(tg) => {
                use_v2(tg, "pids", &mut needed);
                let v = if pids.limit() > 0 { pids.limit().to_string() } else { "max".to_string() };
                out.push(Write::new(&tg.dir, "pids.max", v, "linux.resources.pids.limit"));
            }
            None if pids.limit() > 0 => return Err(absent("linux.resources.pids.limit", "pids")),
            None => {}
        }
    }
    if let Some(bio) = res.block_io() {
        let (ctrl, tg) = match t.v1.get("blkio") {
            Some(tg) => ("blkio", Some(tg)),
            None => ("io", t.get("io")),
        };
        match tg {
            Some(tg) if tg.v2 => {
                let w = v2::block_io(&tg.dir, bio)?;
                if !w.is_empty() {
                    use_v2(tg, "io", &mut needed);
                }
                out.extend(w);
            }
            Some(tg) => out.extend(v1::block_io(&tg.dir, bio)?),
            None if validate::block_io_requested(bio) => return Err(absent("linux.resources.blockIO", ctrl)),
            None => {}
        }
    }
    if let Some(limits) = res.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
        match t.get("hugetlb") {
            Some(tg) => {
                use_v2(tg, "hugetlb", &mut needed);
                for l in limits {
                    let (file, value) = if tg.v2 {
                        (format!("hugetlb.{}.max", l.page_size()), if l.limit() < 0 { "max".to_string() } else { l.limit().to_string() })
                    } else {
                        v1::hugetlb_file(&tg.dir, l.page_size())?;
                        (format!("hugetlb.{}.limit_in_bytes", l.page_size()), l.limit().to_string())
                    };
                    out.push(Write::new(&tg.dir, file, value, "linux.resources.hugepageLimits"));
                }
            }
            None => return Err(absent("linux.resources.hugepageLimits", "hugetlb")),
        }
    }
    if let Some(net) = res.network() {
        if let Some(id) = net.class_id() {
            let tg = t.v1.get("net_cls").ok_or_else(|| absent("linux.resources.network.classID", "net_cls"))?;
            out.push(Write::new(&tg.dir, "net_cls.classid", id.to_string(), "linux.resources.network.classID"));
        }
        if let Some(prios) = net.priorities().as_ref().filter(|p| !p.is_empty()) {
            let tg = t.v1.get("net_prio").ok_or_else(|| absent("linux.resources.network.priorities", "net_prio"))?;
            for p in prios {
                out.push(Write::new(&tg.dir, "net_prio.ifpriomap", format!("{} {}", p.name(), p.priority()), "linux.resources.network.priorities"));
            }
        }
    }
    if let Some(rdma) = res.rdma().as_ref().filter(|r| !r.is_empty()) {
        let tg = t.get("rdma").ok_or_else(|| absent("linux.resources.rdma", "rdma"))?;
        use_v2(tg, "rdma", &mut needed);
        let mut devs: Vec<_> = rdma.iter().collect();
        devs.sort_by(|a, b| a.0.cmp(b.0));
        for (dev, r) in devs {
            let mut v = dev.clone();
            if let Some(h) = r.hca_handles() {
                v.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = r.hca_objects() {
                v.push_str(&format!(" hca_object={o}"));
            }
            if v != *dev {
                out.push(Write::new(&tg.dir, "rdma.max", v, "linux.resources.rdma"));
            }
        }
    }
    if let Some(unified) = res.unified().as_ref().filter(|u| !u.is_empty()) {
        let Some((tg, avail)) = &t.v2 else {
            return Err(Error::field("linux.resources.unified", "this host has no cgroup v2 hierarchy"));
        };
        let mut keys: Vec<_> = unified.iter().collect();
        keys.sort();
        for (k, v) in keys {
            let ctrl = v2::unified_controller(k, avail)?;
            if let Some(c) = ctrl {
                needed.insert(c.to_string());
            }
            out.push(Write::new(&tg.dir, k.clone(), v.clone(), "linux.resources.unified"));
        }
    }

    if let (false, Some((tg, _))) = (needed.is_empty(), &t.v2) {
        let mut enable = v2::enable_controllers(&tg.mount, &tg.dir, &needed)?;
        enable.append(&mut out);
        out = enable;
    }
    Ok(out)
}

/// Notes that a write goes to cgroup2, whose controller must then be enabled from the root down.
fn use_v2(tg: &Target, ctrl: &str, needed: &mut BTreeSet<String>) {
    if tg.v2 {
        needed.insert(ctrl.to_string());
    }
}

/// cpuset.cpus / cpuset.mems (same names on v1 and v2).
fn cpuset_writes(dir: &Path, cpu: &oci_spec::runtime::LinuxCpu) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(c) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        out.push(Write::new(dir, "cpuset.cpus", c, "linux.resources.cpu.cpus"));
    }
    if let Some(m) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        out.push(Write::new(dir, "cpuset.mems", m, "linux.resources.cpu.mems"));
    }
    out
}

/// Performs the writes in order; stops at the first failure, naming the field.
fn execute(writes: &[Write]) -> Result<()> {
    for w in writes {
        let path = w.dir.join(&w.file);
        tracing::debug!("cgroup write {} = {:?}", path.display(), w.value);
        if let Err(e) = fs::write(&path, &w.value) {
            return Err(Error::Cgroup(format!("{}: write {:?} to {}: {e}", w.field, w.value, path.display())));
        }
    }
    Ok(())
}

/// The writes enabling, on the way down from the cgroup2 mount to the container's cgroup, every
/// controller the mount's root offers (nothing where they are enabled already).
pub(crate) fn enable_all_v2_plan(cgroups: &Cgroups, m: &Manager) -> Result<Vec<Write>> {
    let t = Targets::new(cgroups, m);
    match &t.v2 {
        Some((tg, avail)) if !avail.is_empty() => v2::enable_controllers(&tg.mount, &tg.dir, avail),
        _ => Ok(Vec::new()),
    }
}

impl Manager {
    /// On a pure cgroup2 host, enables every controller the root offers down to the container's
    /// cgroup, as runc and crun do when they create it: a container without limits still gets
    /// memory.current, pids.current, the io and cpu statistics (`events --stats`) and, with a
    /// `cgroup` mount, the controllers' files. Best effort, like runc: a controller that cannot
    /// be enabled (an ancestor with processes in it, a rootless caller's subtree) is left out,
    /// and a limit that needs it fails on its own write.
    pub fn enable_all_v2(&self, cgroups: &Cgroups) {
        let writes = match enable_all_v2_plan(cgroups, self) {
            Ok(w) => w,
            Err(e) => return tracing::debug!("enabling cgroup2 controllers: {e}"),
        };
        for w in writes {
            // One write per controller: one the kernel refuses does not keep the others out.
            for c in w.value.split_whitespace() {
                let path = w.dir.join(&w.file);
                if let Err(e) = fs::write(&path, c) {
                    tracing::debug!("enable {c} in {}: {e}", path.display());
                }
            }
        }
    }

    /// Applies `linux.resources` (all but devices) to the container's cgroups: validates the
    /// whole request first (nothing is written if any field is invalid or needs a controller
    /// the host lacks), then writes each value to its hierarchy.
    pub fn apply_resources(&self, cgroups: &Cgroups, res: &LinuxResources) -> Result<()> {
        execute(&plan(cgroups, self, res)?)
    }
}
