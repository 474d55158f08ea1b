//! Parsing /proc/self/mountinfo and /proc/self/cgroup into the host's cgroup hierarchies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Cgroups, Hierarchy, Layout};
use crate::error::{Error, Result};

/// Super options of a v1 cgroup mount that are mount flags, not controllers.
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

/// One cgroup (v1 or v2) line of mountinfo.
#[derive(Debug)]
struct CgroupMountLine {
    /// The "root" field: which directory of the hierarchy is mounted here.
    root: String,
    mount: PathBuf,
    v2: bool,
    /// v1 controllers and `name=...`, sorted; empty for v2.
    controllers: Vec<String>,
}

/// One line of /proc/self/cgroup.
#[derive(Debug)]
struct OwnLine {
    /// Sorted controllers (and `name=...`); empty for the v2 `0::` line.
    controllers: Vec<String>,
    path: String,
}

/// Undoes the octal escapes (`\040` for space etc.) mountinfo uses in paths.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(oct[0] - b'0') * 64
                    + u32::from(oct[1] - b'0') * 8
                    + u32::from(oct[2] - b'0');
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Result<Vec<CgroupMountLine>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || {
            Error::Cgroup(format!(
                "/proc/self/mountinfo line {}: malformed: {line:?}",
                n + 1
            ))
        };
        let (pre, post) = line.split_once(" - ").ok_or_else(bad)?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 6 || post.len() < 3 {
            return Err(bad());
        }
        let fstype = post[0];
        let v2 = match fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers = if v2 {
            Vec::new()
        } else {
            let set: BTreeSet<String> = post[2]
                .split(',')
                .filter(|o| !NOT_CONTROLLERS.contains(o))
                .filter(|o| o.starts_with("name=") || !o.contains('='))
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect();
            if set.is_empty() {
                continue;
            }
            set.into_iter().collect()
        };
        out.push(CgroupMountLine {
            root: unescape(pre[3]),
            mount: PathBuf::from(unescape(pre[4])),
            v2,
            controllers,
        });
    }
    Ok(out)
}

fn parse_proc_cgroup(text: &str) -> Result<Vec<OwnLine>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Cgroup(format!(
                "/proc/self/cgroup line {}: malformed: {line:?}",
                n + 1
            )));
        };
        let mut controllers: Vec<String> = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        controllers.sort();
        controllers.dedup();
        out.push(OwnLine {
            controllers,
            path: path.to_string(),
        });
    }
    Ok(out)
}

/// Our cgroup `own` (absolute, as /proc/self/cgroup shows it) relative to a mount of `root`.
/// A cgroup outside what the mount shows (possible inside a cgroup namespace) maps to the
/// mount's top.
fn relative_to_root(own: &str, root: &str) -> PathBuf {
    let own = Path::new(own);
    let root = Path::new(root);
    match own.strip_prefix(root) {
        Ok(rel) => rel.to_path_buf(),
        Err(_) => PathBuf::new(),
    }
}

pub(super) fn from_text(mountinfo: &str, proc_self_cgroup: &str) -> Result<Cgroups> {
    let mounts = parse_mountinfo(mountinfo)?;
    let own = parse_proc_cgroup(proc_self_cgroup)?;

    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    for m in mounts {
        // The same hierarchy may be mounted more than once: keep the first.
        let dup = hierarchies
            .iter()
            .any(|h| h.v2 == m.v2 && h.controllers == m.controllers);
        if dup {
            continue;
        }
        let own_line = own.iter().find(|l| {
            if m.v2 {
                l.controllers.is_empty()
            } else {
                l.controllers == m.controllers
            }
        });
        let own_path = match own_line {
            Some(l) => relative_to_root(&l.path, &m.root),
            None => PathBuf::new(),
        };
        hierarchies.push(Hierarchy {
            mount: m.mount,
            controllers: m.controllers,
            v2: m.v2,
            own: own_path,
        });
    }

    let v1 = hierarchies.iter().any(|h| !h.v2);
    let v2 = hierarchies.iter().any(|h| h.v2);
    let layout = match (v1, v2) {
        (true, true) => Layout::Hybrid,
        (true, false) => Layout::Legacy,
        (false, true) => Layout::Unified,
        (false, false) => {
            return Err(Error::Cgroup(
                "no cgroup hierarchy is mounted (see /proc/self/mountinfo)".into(),
            ))
        }
    };
    Ok(Cgroups {
        layout,
        hierarchies,
    })
}

pub(super) fn detect() -> Result<Cgroups> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    let cg = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| Error::io("read", "/proc/self/cgroup", e))?;
    from_text(&mi, &cg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_octal() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/a\134b"), r"/a\b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(from_text("garbage", "").is_err());
        assert!(from_text("", "nocolons").is_err());
    }
}
