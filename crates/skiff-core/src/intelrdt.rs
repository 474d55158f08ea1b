//! `linux.intelRdt`: Intel Resource Director Technology through the resctrl filesystem.
//!
//! As runc: the container gets the resctrl group `closID` when one is given (shared, made by
//! someone else unless a schema is given too, and never removed by us), else a group named
//! after the container, removed at delete. `l3CacheSchema`, `memBwSchema` and the `schemata`
//! lines are written to the group's `schemata` file in one write; the init's pid goes to its
//! `tasks` (its children inherit the group). `enableMonitoring` with a `closID` makes a
//! monitoring group `mon_groups/<container id>` in it for the container (without one the
//! container's own group monitors it already).
//!
//! Everything goes through [`Resctrl`], the mount's root directory, so the logic is
//! unit-tested against a fake tree in a temporary directory. A host without resctrl mounted
//! fails `create` before anything is made ([`validate`]), naming the problem, as runc refuses
//! such a config.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIntelRdt, Spec};

use crate::error::{Error, Result};

/// Where resctrl is mounted by convention (the mount table is what counts).
pub const DEFAULT_ROOT: &str = "/sys/fs/resctrl";

/// A resctrl filesystem, by its root directory.
#[derive(Debug, Clone)]
pub struct Resctrl {
    root: PathBuf,
}

fn rdt_of(spec: &Spec) -> Option<&LinuxIntelRdt> {
    spec.linux().as_ref().and_then(|l| l.intel_rdt().as_ref())
}

fn err(msg: impl Into<String>) -> Error {
    Error::field("linux.intelRdt", msg)
}

/// The mount point of the first resctrl filesystem in a mountinfo text.
pub fn find_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        (post.split_whitespace().next()? == "resctrl").then(|| pre.split_whitespace().nth(4).map(|m| PathBuf::from(m.replace("\\040", " "))))?
    })
}

/// The schema lines to write, in order: `l3CacheSchema`, `memBwSchema`, then `schemata`.
fn schema_lines(rdt: &LinuxIntelRdt) -> Vec<&str> {
    let mut out: Vec<&str> = [rdt.l3_cache_schema(), rdt.mem_bw_schema()].into_iter().flatten().map(String::as_str).collect();
    out.extend(rdt.schemata().iter().flatten().map(String::as_str));
    out.retain(|l| !l.trim().is_empty());
    out
}

/// Checks that need no resctrl: a `closID` must be a plain directory name.
pub fn check_fields(rdt: &LinuxIntelRdt) -> Result<()> {
    if let Some(id) = rdt.clos_id() {
        if id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0') || id == "info" || id == "mon_groups" || id == "mon_data" {
            return Err(Error::field("linux.intelRdt.closID", format!("{id:?} is not a valid resctrl group name")));
        }
    }
    Ok(())
}

impl Resctrl {
    /// The resctrl filesystem rooted at `root` (tests: a fake tree).
    pub fn at(root: impl Into<PathBuf>) -> Resctrl {
        Resctrl { root: root.into() }
    }

    /// The host's resctrl mount, if there is one.
    pub fn mounted() -> Option<Resctrl> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        find_mount(&text).filter(|p| p.is_dir()).map(Resctrl::at)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The group of a container `id`: its `closID`, or its own.
    pub fn group(&self, rdt: &LinuxIntelRdt, id: &str) -> PathBuf {
        self.root.join(rdt.clos_id().as_deref().unwrap_or(id))
    }

    /// The container's monitoring group inside a shared `closID` group, when asked for.
    fn mon_group(&self, rdt: &LinuxIntelRdt, id: &str) -> Option<PathBuf> {
        (rdt.enable_monitoring() == &Some(true) && rdt.clos_id().is_some()).then(|| self.group(rdt, id).join("mon_groups").join(id))
    }

    /// Checks a config against what this resctrl offers (CAT for L3 lines, MBA for MB lines,
    /// monitoring).
    pub fn check(&self, rdt: &LinuxIntelRdt) -> Result<()> {
        check_fields(rdt)?;
        for line in schema_lines(rdt) {
            let resource = line.split(':').next().unwrap_or("").trim();
            if resource.is_empty() || !line.contains(':') {
                return Err(err(format!(
                    "schema line {line:?} does not start with a resource name (\"L3:...\", \"MB:...\")"
                )));
            }
            if !self.root.join("info").join(resource).is_dir() {
                return Err(err(format!(
                    "schema line {line:?}: this host's resctrl has no resource {resource} (no {})",
                    self.root.join("info").join(resource).display()
                )));
            }
        }
        if rdt.enable_monitoring() == &Some(true) && !self.root.join("info").join("L3_MON").is_dir() {
            return Err(err(format!(
                "enableMonitoring: this host's resctrl has no monitoring (no {})",
                self.root.join("info/L3_MON").display()
            )));
        }
        Ok(())
    }

    /// The kernel's explanation of the last refused write, when it gives one.
    fn last_status(&self) -> String {
        std::fs::read_to_string(self.root.join("info/last_cmd_status"))
            .map(|s| format!(" ({})", s.trim()))
            .unwrap_or_default()
    }

    /// Puts `pid` (the container's init) into the container's group, made and configured
    /// first. What this made is removed again when a step fails.
    pub fn apply(&self, rdt: &LinuxIntelRdt, id: &str, pid: i32) -> Result<()> {
        let group = self.group(rdt, id);
        let lines = schema_lines(rdt);
        let existed = group.is_dir();
        if rdt.clos_id().is_some() && lines.is_empty() && !existed {
            return Err(Error::field(
                "linux.intelRdt.closID",
                format!(
                    "the resctrl group {} does not exist, and without a schema it is not made (it must be made beforehand)",
                    group.display()
                ),
            ));
        }
        if !existed {
            std::fs::create_dir(&group).map_err(|e| err(format!("mkdir {}: {e}{}", group.display(), self.last_status())))?;
        }
        let mon = self.mon_group(rdt, id);
        let r = (|| {
            if !lines.is_empty() {
                let path = group.join("schemata");
                let text = lines.join("\n") + "\n";
                std::fs::write(&path, text).map_err(|e| err(format!("write {}: {e}{}", path.display(), self.last_status())))?;
            }
            let tasks_dir = match &mon {
                Some(m) => {
                    std::fs::create_dir(m).map_err(|e| err(format!("mkdir {}: {e}{}", m.display(), self.last_status())))?;
                    m.clone()
                }
                None => group.clone(),
            };
            let tasks = tasks_dir.join("tasks");
            std::fs::write(&tasks, pid.to_string()).map_err(|e| err(format!("write pid {pid} to {}: {e}{}", tasks.display(), self.last_status())))
        })();
        if r.is_err() {
            if let Some(m) = &mon {
                remove_group(m);
            }
            if !existed {
                remove_group(&group);
            }
        }
        r
    }

    /// The group (a monitoring group when it is in one) whose `tasks` list `pid`; `None` for
    /// the default group at the root.
    pub fn group_of(&self, pid: i32) -> Option<PathBuf> {
        let holds = |dir: &Path| std::fs::read_to_string(dir.join("tasks")).is_ok_and(|t| t.lines().any(|l| l.trim() == pid.to_string()));
        let subdirs = |dir: &Path| -> Vec<PathBuf> {
            let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            v.sort();
            v
        };
        let reserved = |p: &Path| matches!(p.file_name().and_then(|n| n.to_str()), Some("info" | "mon_groups" | "mon_data"));
        let mut groups = vec![self.root.clone()];
        groups.extend(subdirs(&self.root).into_iter().filter(|p| !reserved(p)));
        for g in groups {
            if let Some(m) = subdirs(&g.join("mon_groups")).into_iter().find(|m| holds(m)) {
                return Some(m);
            }
            if g != self.root && holds(&g) {
                return Some(g);
            }
        }
        None
    }

    /// Removes what [`Resctrl::apply`] made for container `id` and keeps for its lifetime: its
    /// monitoring group, and its group unless it is a shared `closID` one.
    pub fn destroy(&self, rdt: &LinuxIntelRdt, id: &str) {
        if let Some(m) = self.mon_group(rdt, id) {
            remove_group(&m);
        }
        if rdt.clos_id().is_none() {
            remove_group(&self.group(rdt, id));
        }
    }
}

/// rmdir of a resctrl group (its files go with it); a plain directory tree (tests) is removed
/// recursively. A group already gone is fine.
fn remove_group(dir: &Path) {
    let r = match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => std::fs::remove_dir_all(dir),
        r => r,
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => tracing::warn!("intelRdt: remove {}: {e}", dir.display()),
        _ => {}
    }
}

/// Checks `linux.intelRdt` against the host, at create: refused where resctrl is not mounted.
pub fn validate(spec: &Spec) -> Result<()> {
    let Some(rdt) = rdt_of(spec) else { return Ok(()) };
    check_fields(rdt)?;
    let Some(fs) = Resctrl::mounted() else {
        return Err(err(format!(
            "resctrl is not mounted at {DEFAULT_ROOT} (no resctrl filesystem in /proc/self/mountinfo): this host cannot apply Intel RDT settings"
        )));
    };
    fs.check(rdt)
}

/// Puts the container's init `pid` into its resctrl group (nothing without `linux.intelRdt`).
pub fn apply(spec: &Spec, id: &str, pid: i32) -> Result<()> {
    let Some(rdt) = rdt_of(spec) else { return Ok(()) };
    let fs = Resctrl::mounted().ok_or_else(|| err(format!("resctrl is not mounted at {DEFAULT_ROOT}")))?;
    fs.apply(rdt, id, pid)
}

/// Removes the container's resctrl group at delete (best effort).
pub fn destroy(spec: &Spec, id: &str) {
    let Some(rdt) = rdt_of(spec) else { return };
    if let Some(fs) = Resctrl::mounted() {
        fs.destroy(rdt, id);
    }
}

/// Undoes [`apply`] when a create fails after it: the container's own group is removed unless
/// disarmed.
pub struct Undo<'a> {
    spec: &'a Spec,
    id: &'a str,
    pub armed: bool,
}

impl<'a> Undo<'a> {
    pub fn new(spec: &'a Spec, id: &'a str) -> Undo<'a> {
        Undo {
            spec,
            id,
            armed: rdt_of(spec).is_some(),
        }
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.armed {
            destroy(self.spec, self.id);
        }
    }
}

/// Puts an exec'd process `pid` into the resctrl group of the container's init `init_pid`, as
/// runc does for `exec` (the exec record does not carry `linux.intelRdt`: the group is the one
/// holding the init). Best effort, and only where resctrl is mounted at its usual place (one
/// `stat` otherwise). It happens once the process runs: what it forks before is not moved.
pub fn join_exec(init_pid: i32, pid: i32) {
    if !Path::new(DEFAULT_ROOT).join("tasks").exists() {
        return;
    }
    let Some(fs) = Resctrl::mounted() else { return };
    if let Some(group) = fs.group_of(init_pid) {
        let tasks = group.join("tasks");
        if let Err(e) = std::fs::write(&tasks, pid.to_string()) {
            tracing::warn!("intelRdt: write pid {pid} to {}: {e}", tasks.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdt(json: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(json).expect("intelRdt json")
    }

    /// A resctrl tree as the kernel shows it, with CAT, MBA and monitoring.
    fn fake() -> (tempfile::TempDir, Resctrl) {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["info/L3", "info/MB", "info/L3_MON"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        std::fs::write(dir.path().join("info/last_cmd_status"), "ok\n").expect("write");
        let fs = Resctrl::at(dir.path());
        (dir, fs)
    }

    #[test]
    fn finds_the_mount_in_mountinfo() {
        let text = "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n40 22 0:35 / /sys/fs/resctrl rw,relatime shared:20 - resctrl resctrl rw,mba_MBps\n";
        assert_eq!(find_mount(text), Some(PathBuf::from("/sys/fs/resctrl")));
        assert_eq!(find_mount("22 1 0:21 / /sys rw - sysfs sysfs rw\n"), None);
    }

    #[test]
    fn own_group_gets_schemata_and_pid_and_goes_at_delete() {
        let (_d, fs) = fake();
        let r = rdt(serde_json::json!({"l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20", "schemata": ["L3CODE:0=f"]}));
        fs.apply(&r, "ctr1", 4242).expect("apply");
        let group = fs.root().join("ctr1");
        assert_eq!(
            std::fs::read_to_string(group.join("schemata")).expect("schemata"),
            "L3:0=7f0\nMB:0=20\nL3CODE:0=f\n"
        );
        assert_eq!(std::fs::read_to_string(group.join("tasks")).expect("tasks"), "4242");
        fs.destroy(&r, "ctr1");
        assert!(!group.exists());
    }

    #[test]
    fn a_clos_id_group_is_shared_and_kept() {
        let (_d, fs) = fake();
        let r = rdt(serde_json::json!({"closID": "gold"}));
        let e = fs.apply(&r, "ctr1", 1).unwrap_err().to_string();
        assert!(e.contains("linux.intelRdt.closID") && e.contains("does not exist"), "{e}");
        assert!(!fs.root().join("gold").exists());
        std::fs::create_dir(fs.root().join("gold")).expect("mkdir");
        fs.apply(&r, "ctr1", 7).expect("apply");
        assert_eq!(std::fs::read_to_string(fs.root().join("gold/tasks")).expect("tasks"), "7");
        assert!(!fs.root().join("ctr1").exists());
        fs.destroy(&r, "ctr1");
        assert!(fs.root().join("gold").is_dir(), "a closID group is not ours to remove");
    }

    #[test]
    fn monitoring_in_a_clos_id_group_has_its_own_mon_group() {
        let (_d, fs) = fake();
        std::fs::create_dir_all(fs.root().join("gold/mon_groups")).expect("mkdir");
        let r = rdt(serde_json::json!({"closID": "gold", "enableMonitoring": true}));
        fs.check(&r).expect("check");
        fs.apply(&r, "ctr1", 9).expect("apply");
        let mon = fs.root().join("gold/mon_groups/ctr1");
        assert_eq!(std::fs::read_to_string(mon.join("tasks")).expect("tasks"), "9");
        fs.destroy(&r, "ctr1");
        assert!(!mon.exists() && fs.root().join("gold").is_dir());
    }

    #[test]
    fn exec_joins_the_group_of_the_init() {
        let (_d, fs) = fake();
        std::fs::write(fs.root().join("tasks"), "1\n2\n").expect("write");
        fs.apply(&rdt(serde_json::json!({"l3CacheSchema": "L3:0=f"})), "ctr1", 42).expect("apply");
        assert_eq!(fs.group_of(42), Some(fs.root().join("ctr1")));
        assert_eq!(fs.group_of(1), None, "the default group");
        std::fs::create_dir_all(fs.root().join("gold/mon_groups")).expect("mkdir");
        fs.apply(&rdt(serde_json::json!({"closID": "gold", "enableMonitoring": true})), "ctr2", 43)
            .expect("apply");
        assert_eq!(fs.group_of(43), Some(fs.root().join("gold/mon_groups/ctr2")));
        assert_eq!(fs.group_of(44), None);
    }

    #[test]
    fn a_failed_apply_leaves_nothing() {
        let (_d, fs) = fake();
        // `schemata` as a directory: the write fails.
        let r = rdt(serde_json::json!({"memBwSchema": "MB:0=20"}));
        let group = fs.root().join("ctr2");
        std::fs::create_dir(&group).expect("mkdir");
        std::fs::create_dir(group.join("schemata")).expect("mkdir");
        // An existing group is not ours: kept on failure.
        let e = fs.apply(&r, "ctr2", 1).unwrap_err().to_string();
        assert!(e.contains("schemata") && e.contains("(ok)"), "{e}");
        assert!(group.is_dir());
        // A group we made is removed again.
        let r = rdt(serde_json::json!({"closID": "new", "l3CacheSchema": "L3:0=f", "enableMonitoring": true}));
        assert!(fs.apply(&r, "ctr4", 1).is_err(), "no mon_groups dir in the fake group");
        assert!(!fs.root().join("new").exists());
    }

    #[test]
    fn configs_the_host_cannot_honour_are_refused() {
        let (_d, fs) = fake();
        std::fs::remove_dir(fs.root().join("info/MB")).expect("rmdir");
        let e = fs.check(&rdt(serde_json::json!({"memBwSchema": "MB:0=20"}))).unwrap_err().to_string();
        assert!(e.contains("linux.intelRdt") && e.contains("no resource MB"), "{e}");
        assert!(fs.check(&rdt(serde_json::json!({"l3CacheSchema": "0=f"}))).is_err());
        for bad in [".", "..", "a/b", "info", ""] {
            let e = check_fields(&rdt(serde_json::json!({"closID": bad}))).unwrap_err().to_string();
            assert!(e.contains("linux.intelRdt.closID"), "{bad:?}: {e}");
        }
    }
}
