//! Rootless containers: an unprivileged user runs the runtime with a user namespace.
//!
//! What changes, as with `runc --rootless`:
//! - the config must create or join a user namespace, and its id mappings are checked against
//!   what the caller may map ([`idmap`]: its own id, or ranges in /etc/subuid, /etc/subgid);
//! - cgroups are used only when the container's cgroup directories (or, where they do not exist
//!   yet, their nearest parents) are writable, i.e. a subtree was delegated to the user.
//!   Otherwise the container runs in the caller's cgroup, `linux.resources` are ignored with a
//!   warning (runc's rootless mode ignores cgroup errors the same way), and `cgroup` mounts
//!   show the caller's own cgroups;
//! - the device cgroup is never programmed (it needs CAP_SYS_ADMIN on the host), and device
//!   nodes are bind mounts of the host's (see `rootfs::devices`);
//! - `process.oomScoreAdj` lower than the caller's own is refused: only a privileged process
//!   may lower it;
//! - `uid=`/`gid=` mount options must name ids mapped in the container, as runc checks.

pub mod idmap;
pub mod subid;

use std::path::{Path, PathBuf};

use nix::unistd::AccessFlags;
use oci_spec::runtime::{LinuxNamespaceType as Ns, Spec};

use crate::cgroups::{Cgroups, Manager};
use crate::error::{Error, Result};
use crate::namespaces::Plan;

pub use idmap::{Caller, IdMaps};

/// Whether this process runs in a user namespace other than the initial one: its uid map is
/// not the identity map of all ids.
pub fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(t) => t.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"],
        Err(_) => false,
    }
}

/// `--rootless auto` (and the default): not root, or inside a user namespace.
pub fn auto() -> bool {
    !nix::unistd::geteuid().is_root() || in_user_namespace()
}

/// The config checks of rootless mode (before anything is created).
pub fn check_spec(spec: &Spec, plan: &Plan) -> Result<()> {
    let joins_user = plan.join.iter().any(|j| j.kind == Ns::User);
    if !plan.new_user && !joins_user {
        return Err(Error::field("linux.namespaces", "rootless containers need a user namespace (add {\"type\": \"user\"} and uid/gid mappings)"));
    }
    if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        let current = own_oom_score_adj();
        if adj < current {
            return Err(Error::field("process.oomScoreAdj", format!("{adj} is lower than the caller's {current}; an unprivileged user cannot lower it")));
        }
    }
    if plan.new_user {
        check_mount_ids(spec)?;
    }
    Ok(())
}

/// How the maps of the container's new user namespace are written (None: it makes none).
/// As root they are written as given; otherwise they are checked against what the caller
/// may map, whatever the rootless mode says (the kernel would refuse them anyway).
pub fn id_maps(spec: &Spec, plan: &Plan) -> Result<Option<IdMaps>> {
    if !plan.new_user {
        return Ok(None);
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(Some(IdMaps::privileged(spec)));
    }
    IdMaps::unprivileged(spec, &Caller::current()).map(Some)
}

fn own_oom_score_adj() -> i32 {
    std::fs::read_to_string("/proc/self/oom_score_adj").ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

/// `uid=N` / `gid=N` mount options must name a container id that is mapped.
fn check_mount_ids(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let uids = linux.and_then(|l| l.uid_mappings().clone()).unwrap_or_default();
    let gids = linux.and_then(|l| l.gid_mappings().clone()).unwrap_or_default();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        for o in m.options().iter().flatten() {
            let (maps, v) = match (o.strip_prefix("uid="), o.strip_prefix("gid=")) {
                (Some(v), _) => (&uids, v),
                (_, Some(v)) => (&gids, v),
                _ => continue,
            };
            let id: u64 = v.parse().map_err(|_| Error::field(format!("mounts[{i}].options"), format!("{o}: not a number")))?;
            let mapped = maps.iter().any(|m| id >= u64::from(m.container_id()) && id < u64::from(m.container_id()) + u64::from(m.size()));
            if !mapped {
                return Err(Error::field(format!("mounts[{i}].options"), format!("{o}: id {id} is not mapped in the container's user namespace")));
            }
        }
    }
    Ok(())
}

/// The first of these cgroup directories the caller cannot use, if any: one is usable when
/// it, or where it does not exist yet its nearest existing parent, is writable, and so is an
/// existing one's cgroup.procs. On cgroup2 moving a process also needs write access to the
/// cgroup.procs of the common ancestor of its current cgroup and the new one (the kernel's
/// delegation rule), so that is checked too.
pub fn unusable_cgroup<'a>(cg: &Cgroups, m: &'a Manager) -> Option<&'a Path> {
    let writable = |p: &Path| nix::unistd::access(p, AccessFlags::W_OK | AccessFlags::X_OK).is_ok();
    let procs_writable = |p: &Path| nix::unistd::access(&p.join("cgroup.procs"), AccessFlags::W_OK).is_ok();
    m.paths.iter().map(PathBuf::as_path).find(|p| {
        let usable = if p.is_dir() { writable(p) && procs_writable(p) } else { p.ancestors().skip(1).find(|a| a.is_dir()).is_some_and(writable) };
        let ancestor_ok = match cg.hierarchy_of(p).filter(|h| h.v2) {
            Some(h) => procs_writable(&common_ancestor(&h.mount.join(&h.own), p)),
            None => true,
        };
        !(usable && ancestor_ok)
    })
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components().zip(b.components()).take_while(|(x, y)| x == y).map(|(x, _)| x).collect()
}

/// The caller's own cgroup in every hierarchy: what a container without a cgroup of its own
/// runs in, and what its `cgroup` mounts show.
pub fn own_cgroups(cg: &Cgroups) -> Manager {
    Manager { paths: cg.hierarchies.iter().map(|h| h.mount.join(&h.own)).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        crate::spec::parse(json.as_bytes()).expect("spec")
    }

    #[test]
    fn needs_a_user_namespace() {
        let s = spec(r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"}]}}"#);
        let e = check_spec(&s, &Plan::from_spec(&s).unwrap()).unwrap_err().to_string();
        assert!(e.contains("linux.namespaces") && e.contains("user namespace"), "{e}");
    }

    #[test]
    fn lower_oom_score_adj_is_refused() {
        let cur = own_oom_score_adj();
        let s = spec(&format!(r#"{{"ociVersion":"1.0.2","process":{{"cwd":"/","args":["sh"],"oomScoreAdj":{}}},"linux":{{"namespaces":[{{"type":"user"}}],"uidMappings":[{{"containerID":0,"hostID":1000,"size":1}}]}}}}"#, cur - 1));
        let e = check_spec(&s, &Plan::from_spec(&s).unwrap()).unwrap_err().to_string();
        assert!(e.contains("process.oomScoreAdj"), "{e}");
        let s = spec(&format!(r#"{{"ociVersion":"1.0.2","process":{{"cwd":"/","args":["sh"],"oomScoreAdj":{}}},"linux":{{"namespaces":[{{"type":"user"}}]}}}}"#, cur + 1));
        check_spec(&s, &Plan::from_spec(&s).unwrap()).unwrap();
    }

    #[test]
    fn unmapped_mount_ids_are_named() {
        let s = spec(r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/proc","type":"proc"},{"destination":"/dev/pts","type":"devpts","options":["gid=5"]}],"linux":{"namespaces":[{"type":"user"}],"gidMappings":[{"containerID":0,"hostID":1000,"size":1}]}}"#);
        let e = check_spec(&s, &Plan::from_spec(&s).unwrap()).unwrap_err().to_string();
        assert!(e.contains("mounts[1].options") && e.contains("gid=5"), "{e}");
    }

    #[test]
    fn cgroup_usability_checks_the_nearest_existing_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let v1 = tmp.path().join("v1");
        std::fs::create_dir(&v1).unwrap();
        let mountinfo = format!("30 20 0:26 / {} rw - cgroup cgroup rw,pids\n", v1.display());
        let cg = Cgroups::from_text(&mountinfo, "3:pids:/\n").unwrap();
        // root may write anywhere; the check is about permissions, which root bypasses.
        assert_eq!(unusable_cgroup(&cg, &Manager { paths: vec![v1.join("a/b")] }), None);
        std::fs::create_dir(v1.join("c")).unwrap();
        // An existing dir needs a writable cgroup.procs: a plain dir has none.
        let c = v1.join("c");
        assert_eq!(unusable_cgroup(&cg, &Manager { paths: vec![v1.join("a"), c.clone()] }), Some(c.as_path()));
    }

    #[test]
    fn v2_needs_the_common_ancestor_writable() {
        let tmp = tempfile::tempdir().unwrap();
        let v2 = tmp.path().join("v2");
        std::fs::create_dir_all(v2.join("user/me")).unwrap();
        let mountinfo = format!("30 20 0:26 / {} rw - cgroup2 cgroup2 rw\n", v2.display());
        let cg = Cgroups::from_text(&mountinfo, "0::/user/me\n").unwrap();
        assert_eq!(common_ancestor(&v2.join("user/me"), &v2.join("user/ctr")), v2.join("user"));
        // tmp/v2/user has no cgroup.procs: the move would be refused.
        let target = v2.join("user/ctr");
        assert_eq!(unusable_cgroup(&cg, &Manager { paths: vec![target.clone()] }), Some(target.as_path()));
        std::fs::write(v2.join("user/cgroup.procs"), "").unwrap();
        assert_eq!(unusable_cgroup(&cg, &Manager { paths: vec![target] }), None);
    }
}
