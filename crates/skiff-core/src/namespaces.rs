//! Namespaces: which to create, which to join by path, and in what order; id mappings and
//! time-namespace offsets.
//!
//! The order follows the kernel's rules: namespace paths are opened before any are joined
//! (paths resolve in the host's mount namespace), the user namespace is joined or created
//! first (it owns the others), and a pid or time namespace only applies to children, so the
//! container's init is forked after they are set up.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType as Ns, Spec};

use crate::error::{Error, Result, SysContext};

/// Every namespace kind, in the order they are joined (user first).
pub const ORDER: [Ns; 8] = [Ns::User, Ns::Pid, Ns::Uts, Ns::Ipc, Ns::Network, Ns::Cgroup, Ns::Mount, Ns::Time];

/// The clone flag of a namespace kind.
pub fn flag(t: Ns) -> CloneFlags {
    match t {
        Ns::User => CloneFlags::CLONE_NEWUSER,
        Ns::Pid => CloneFlags::CLONE_NEWPID,
        Ns::Uts => CloneFlags::CLONE_NEWUTS,
        Ns::Ipc => CloneFlags::CLONE_NEWIPC,
        Ns::Network => CloneFlags::CLONE_NEWNET,
        Ns::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        Ns::Mount => CloneFlags::CLONE_NEWNS,
        Ns::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The `/proc/PID/ns/<name>` file name of a namespace kind.
pub fn proc_name(t: Ns) -> &'static str {
    match t {
        Ns::User => "user",
        Ns::Pid => "pid",
        Ns::Uts => "uts",
        Ns::Ipc => "ipc",
        Ns::Network => "net",
        Ns::Cgroup => "cgroup",
        Ns::Mount => "mnt",
        Ns::Time => "time",
    }
}

/// A namespace to join: its kind and an open fd of its path.
#[derive(Debug)]
pub struct Join {
    pub kind: Ns,
    pub fd: OwnedFd,
}

/// What the container's namespaces need, worked out before forking.
#[derive(Debug)]
pub struct Plan {
    /// Namespaces to join, user first.
    pub join: Vec<Join>,
    /// Namespaces to create (the user namespace is created on its own, first).
    pub new_user: bool,
    pub unshare: CloneFlags,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan { join: Vec::new(), new_user: false, unshare: CloneFlags::empty() }
    }
}

impl Plan {
    /// Opens every namespace path in the spec (errors name the path) and sorts the rest into
    /// namespaces to create.
    pub fn from_spec(spec: &Spec) -> Result<Plan> {
        let mut plan = Plan::default();
        let list = crate::spec::namespaces(spec);
        for kind in ORDER {
            let Some((i, ns)) = list.iter().enumerate().find(|(_, n)| n.typ() == kind) else { continue };
            match ns.path() {
                Some(path) => {
                    let f = File::open(path).map_err(|e| Error::field(format!("linux.namespaces[{i}].path"), format!("{}: {e}", path.display())))?;
                    plan.join.push(Join { kind, fd: f.into() });
                }
                None if kind == Ns::User => plan.new_user = true,
                None => plan.unshare |= flag(kind),
            }
        }
        Ok(plan)
    }

    pub fn creates(&self, kind: Ns) -> bool {
        if kind == Ns::User { self.new_user } else { self.unshare.contains(flag(kind)) }
    }

    /// Joins the namespaces given by path. Runs in the first child.
    pub fn join_all(&self) -> Result<()> {
        for j in &self.join {
            nix::sched::setns(j.fd.as_fd(), flag(j.kind)).ctx(|| format!("join {} namespace", proc_name(j.kind)))?;
        }
        Ok(())
    }
}

/// Renders mappings in the /proc/PID/uid_map format.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

/// Writes uid and gid maps of `pid` as root (see [`crate::rootless::IdMaps`] for the
/// unprivileged ways).
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    crate::rootless::IdMaps::privileged(spec).write(pid)
}

/// Writes `linux.timeOffsets` into /proc/self/timens_offsets: after unshare(CLONE_NEWTIME) and
/// before any process enters the new namespace.
///
/// In a new user namespace the writer has CAP_SYS_TIME there (the kernel's check), but after
/// `setresuid(0)` into a mapped id it is no longer dumpable, so its /proc files belong to the
/// host's root, which is not mapped: opening the file for writing fails with EACCES whatever
/// the capabilities. The process is made dumpable (its /proc files then belong to its own
/// uid) only for the open, and is put back as it was right after.
pub fn write_time_offsets(spec: &Spec) -> Result<()> {
    let Some(offsets) = spec.linux().as_ref().and_then(|l| l.time_offsets().as_ref()) else { return Ok(()) };
    let mut text = String::new();
    for (clock, off) in offsets {
        let id = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            other => return Err(Error::field(format!("linux.timeOffsets.{other}"), "unknown clock (monotonic or boottime)")),
        };
        text.push_str(&format!("{id} {} {}\n", off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0)));
    }
    let path = "/proc/self/timens_offsets";
    let was_dumpable = nix::sys::prctl::get_dumpable().map_err(|e| Error::sys("prctl(PR_GET_DUMPABLE)", e))?;
    if !was_dumpable {
        nix::sys::prctl::set_dumpable(true).map_err(|e| Error::sys("prctl(PR_SET_DUMPABLE, 1)", e))?;
    }
    let opened = std::fs::OpenOptions::new().write(true).open(path);
    if !was_dumpable {
        nix::sys::prctl::set_dumpable(false).map_err(|e| Error::sys("prctl(PR_SET_DUMPABLE, 0)", e))?;
    }
    let mut file = opened.map_err(|e| Error::io("open time offsets", path, e))?;
    // One write: the kernel parses the whole list at once.
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| Error::io("write time offsets", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        crate::spec::parse(json.as_bytes()).expect("spec")
    }

    #[test]
    fn plan_sorts_new_and_joined() {
        let s = spec(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"network","path":"/proc/self/ns/net"},{"type":"pid"},{"type":"user"},{"type":"time"},{"type":"mount"}]}}"#);
        let p = Plan::from_spec(&s).unwrap();
        assert!(p.new_user);
        assert_eq!(p.join.len(), 1);
        assert_eq!(p.join[0].kind, Ns::Network);
        assert!(p.creates(Ns::Pid) && p.creates(Ns::Time) && p.creates(Ns::Mount));
        assert!(!p.creates(Ns::Network) && !p.creates(Ns::Uts));
    }

    #[test]
    fn missing_namespace_path_is_named() {
        let s = spec(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"network","path":"/nonexistent/ns"}]}}"#);
        let e = Plan::from_spec(&s).unwrap_err().to_string();
        assert!(e.contains("linux.namespaces[0].path") && e.contains("/nonexistent/ns"), "{e}");
    }

    #[test]
    fn several_mapping_ranges() {
        let s = spec(r#"{"ociVersion":"1.0.2","linux":{"uidMappings":[{"containerID":0,"hostID":100000,"size":1},{"containerID":1,"hostID":200001,"size":65535}]}}"#);
        let maps = s.linux().as_ref().unwrap().uid_mappings().clone().unwrap();
        assert_eq!(map_text(&maps), "0 100000 1\n1 200001 65535\n");
    }
}
