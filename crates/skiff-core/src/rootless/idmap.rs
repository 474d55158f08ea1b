//! Writing a new user namespace's uid and gid maps. As root they go straight into
//! `/proc/PID/{uid,gid}_map`. An unprivileged caller may write only the single mapping of its
//! own id itself (after `deny` into `/proc/PID/setgroups`, as the kernel requires for gids);
//! anything more, or whenever it has delegated ranges, goes through the setuid helpers
//! `newuidmap`/`newgidmap` (Debian's `uidmap`), which check `/etc/subuid`/`/etc/subgid`.
//! Every range is checked up front, so a bad mapping fails before anything is made.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, Spec};

use super::subid::{self, Range};
use crate::error::{Error, Result};

/// Who runs the runtime, and what they may map.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub subuid: Vec<Range>,
    pub subgid: Vec<Range>,
    pub newuidmap: Option<PathBuf>,
    pub newgidmap: Option<PathBuf>,
}

impl Caller {
    /// The calling user: effective ids, delegated ranges, helpers found.
    pub fn current() -> Caller {
        let uid = nix::unistd::geteuid().as_raw();
        Caller {
            uid,
            gid: nix::unistd::getegid().as_raw(),
            subuid: subid::of_user("/etc/subuid", uid),
            subgid: subid::of_user("/etc/subgid", uid),
            newuidmap: find_helper("newuidmap"),
            newgidmap: find_helper("newgidmap"),
        }
    }
}

/// `name` in $PATH, else in /usr/bin or /bin.
fn find_helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join(name))
        .find(|p| nix::unistd::access(p.as_path(), nix::unistd::AccessFlags::X_OK).is_ok())
}

/// One of the two maps and how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Side {
    file: &'static str,
    maps: Vec<LinuxIdMapping>,
    /// newuidmap/newgidmap, or None to write the proc file directly.
    helper: Option<PathBuf>,
}

/// The maps of a new user namespace, checked and ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    uid: Side,
    gid: Side,
    /// Write `deny` into /proc/PID/setgroups before the gid map.
    deny_setgroups: bool,
}

fn mappings(spec: &Spec, gid: bool) -> Vec<LinuxIdMapping> {
    let linux = spec.linux().as_ref();
    let m = if gid { linux.and_then(|l| l.gid_mappings().clone()) } else { linux.and_then(|l| l.uid_mappings().clone()) };
    m.unwrap_or_default()
}

impl IdMaps {
    /// As root: the configured maps, written directly.
    pub fn privileged(spec: &Spec) -> IdMaps {
        IdMaps {
            uid: Side { file: "uid_map", maps: mappings(spec, false), helper: None },
            gid: Side { file: "gid_map", maps: mappings(spec, true), helper: None },
            deny_setgroups: false,
        }
    }

    /// For an unprivileged caller: every range must be the caller's own id or inside one of
    /// its delegated ranges; errors name `linux.uidMappings[i]` / `linux.gidMappings[i]`.
    pub fn unprivileged(spec: &Spec, c: &Caller) -> Result<IdMaps> {
        let uid = side(mappings(spec, false), Kind { field: "linux.uidMappings", what: "uid", file: "uid_map", subfile: "/etc/subuid" }, c.uid, &c.subuid, &c.newuidmap)?;
        let gid = side(mappings(spec, true), Kind { field: "linux.gidMappings", what: "gid", file: "gid_map", subfile: "/etc/subgid" }, c.gid, &c.subgid, &c.newgidmap)?;
        let deny_setgroups = gid.helper.is_none();
        Ok(IdMaps { uid, gid, deny_setgroups })
    }

    /// Whether a helper writes either map (for tests and logs).
    pub fn uses_helpers(&self) -> (bool, bool) {
        (self.uid.helper.is_some(), self.gid.helper.is_some())
    }

    /// Writes both maps of process `pid`, which waits in its new user namespace.
    pub fn write(&self, pid: i32) -> Result<()> {
        write_side(pid, &self.uid)?;
        if self.deny_setgroups && !self.gid.maps.is_empty() {
            let path = format!("/proc/{pid}/setgroups");
            std::fs::write(&path, "deny").map_err(|e| Error::io("write", &path, e))?;
        }
        write_side(pid, &self.gid)
    }
}

struct Kind {
    field: &'static str,
    what: &'static str,
    file: &'static str,
    subfile: &'static str,
}

fn side(maps: Vec<LinuxIdMapping>, k: Kind, own: u32, ranges: &[Range], helper: &Option<PathBuf>) -> Result<Side> {
    if maps.is_empty() {
        return Err(Error::field(k.field, format!("a rootless container's new user namespace needs a mapping (e.g. container {0} 0 to your own {0} {own})", k.what)));
    }
    for (i, m) in maps.iter().enumerate() {
        let field = format!("{}[{i}]", k.field);
        let (host, size) = (u64::from(m.host_id()), u64::from(m.size()));
        if size == 0 {
            return Err(Error::field(field, "size is 0"));
        }
        if host == 0 && own != 0 {
            return Err(Error::field(field, format!("maps host {} 0 (root), which an unprivileged user cannot map", k.what)));
        }
        let own_id = host == u64::from(own) && size == 1;
        if !own_id && !ranges.iter().any(|r| r.covers(host, size)) {
            let have: Vec<String> = ranges.iter().map(|r| format!("{}-{}", r.start, r.start + r.count - 1)).collect();
            let have = if have.is_empty() { "none".to_string() } else { have.join(", ") };
            return Err(Error::field(
                field,
                format!("host {}s {}-{} are neither your own {} {own} nor inside your ranges in {} ({have})", k.what, host, host + size - 1, k.what, k.subfile),
            ));
        }
    }
    let only_own = maps.len() == 1 && u64::from(maps[0].host_id()) == u64::from(own) && maps[0].size() == 1;
    let tool = if k.what == "uid" { "newuidmap" } else { "newgidmap" };
    let helper = if !only_own {
        Some(helper.clone().ok_or_else(|| Error::field(k.field, format!("mapping more than your own {} needs {tool} (Debian package uidmap), which was not found", k.what)))?)
    } else if !ranges.is_empty() {
        helper.clone()
    } else {
        None
    };
    Ok(Side { file: k.file, maps, helper })
}

fn write_side(pid: i32, s: &Side) -> Result<()> {
    if s.maps.is_empty() {
        return Ok(());
    }
    match &s.helper {
        None => {
            let path = format!("/proc/{pid}/{}", s.file);
            std::fs::write(&path, crate::namespaces::map_text(&s.maps)).map_err(|e| Error::io("write id mapping", &path, e))
        }
        Some(h) => run_helper(h, pid, &s.maps),
    }
}

fn run_helper(helper: &Path, pid: i32, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([m.container_id().to_string(), m.host_id().to_string(), m.size().to_string()]);
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().map_err(|e| Error::io("run", helper, e))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Other(format!("{} {pid} {}: {} ({})", helper.display(), crate::namespaces::map_text(maps).trim().replace('\n', " "), msg.trim(), out.status)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(uids: &str, gids: &str) -> Spec {
        let json = format!(r#"{{"ociVersion":"1.0.2","linux":{{"uidMappings":{uids},"gidMappings":{gids}}}}}"#);
        crate::spec::parse(json.as_bytes()).expect("spec")
    }

    fn caller(ranges: bool) -> Caller {
        let r = if ranges { vec![Range { start: 400000, count: 65536 }] } else { vec![] };
        Caller { uid: 1000, gid: 1001, subuid: r.clone(), subgid: r, newuidmap: Some("/usr/bin/newuidmap".into()), newgidmap: Some("/usr/bin/newgidmap".into()) }
    }

    const OWN_U: &str = r#"[{"containerID":0,"hostID":1000,"size":1}]"#;
    const OWN_G: &str = r#"[{"containerID":0,"hostID":1001,"size":1}]"#;

    #[test]
    fn own_id_without_ranges_is_written_directly_with_setgroups_denied() {
        let m = IdMaps::unprivileged(&spec(OWN_U, OWN_G), &caller(false)).unwrap();
        assert_eq!(m.uses_helpers(), (false, false));
        assert!(m.deny_setgroups);
    }

    #[test]
    fn ranges_go_through_the_helpers() {
        let u = r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":400000,"size":65536}]"#;
        let m = IdMaps::unprivileged(&spec(u, OWN_G), &caller(true)).unwrap();
        assert_eq!(m.uses_helpers(), (true, true));
        assert!(!m.deny_setgroups);
    }

    #[test]
    fn ranges_without_helper_are_refused() {
        let u = r#"[{"containerID":0,"hostID":400000,"size":10}]"#;
        let mut c = caller(true);
        c.newuidmap = None;
        let e = IdMaps::unprivileged(&spec(u, OWN_G), &c).unwrap_err().to_string();
        assert!(e.contains("linux.uidMappings") && e.contains("newuidmap"), "{e}");
    }

    #[test]
    fn outside_ranges_names_the_field() {
        let g = r#"[{"containerID":0,"hostID":1001,"size":1},{"containerID":1,"hostID":465000,"size":1000}]"#;
        let e = IdMaps::unprivileged(&spec(OWN_U, g), &caller(true)).unwrap_err().to_string();
        assert!(e.contains("linux.gidMappings[1]") && e.contains("465000-465999") && e.contains("400000-465535"), "{e}");
        let u = r#"[{"containerID":0,"hostID":0,"size":1}]"#;
        let e = IdMaps::unprivileged(&spec(u, OWN_G), &caller(true)).unwrap_err().to_string();
        assert!(e.contains("linux.uidMappings[0]") && e.contains("root"), "{e}");
        let e = IdMaps::unprivileged(&spec("[]", OWN_G), &caller(false)).unwrap_err().to_string();
        assert!(e.contains("linux.uidMappings") && e.contains("needs a mapping"), "{e}");
    }

    #[test]
    fn own_id_plus_more_without_ranges_is_refused() {
        let u = r#"[{"containerID":0,"hostID":1000,"size":2}]"#;
        let e = IdMaps::unprivileged(&spec(u, OWN_G), &caller(false)).unwrap_err().to_string();
        assert!(e.contains("linux.uidMappings[0]") && e.contains("(none)"), "{e}");
    }
}
