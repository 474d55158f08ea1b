//! `linux.cgroupsPath` -> one directory per hierarchy.

use std::path::{Component, Path, PathBuf};

use super::{Cgroups, Manager};
use crate::error::{Error, Result};

/// The directory under each hierarchy root that holds containers without a cgroupsPath.
pub const DEFAULT_PARENT: &str = "skiff";

/// The message for the systemd cgroup driver, which skiff does not implement yet.
pub const SYSTEMD_UNSUPPORTED: &str =
    "systemd cgroup driver is not supported (no systemd on this host)";

/// The error for `--systemd-cgroup` or a `slice:prefix:name` cgroupsPath.
pub fn systemd_unsupported() -> Error {
    Error::Cgroup(SYSTEMD_UNSUPPORTED.to_string())
}

/// True if `path` has the systemd driver's `slice:prefix:name` form.
pub fn is_systemd_path(path: &str) -> bool {
    !path.starts_with('/') && path.split(':').count() == 3
}

/// Checks a cgroupsPath (or a container id used in the default path) and returns it as a
/// clean relative path: no `..`, no `.`, no empty components.
fn clean(path: &str) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                return Err(Error::Cgroup(format!(
                    "cgroups path {path:?}: '..' components are not allowed (they could escape the hierarchy)"
                )))
            }
            Component::Prefix(_) => return Err(Error::Cgroup(format!("cgroups path {path:?}: invalid"))),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(Error::Cgroup(format!(
            "cgroups path {path:?}: names no cgroup below the hierarchy's root"
        )));
    }
    Ok(out)
}

pub(super) fn resolve(cg: &Cgroups, path: Option<&str>, id: &str) -> Result<Manager> {
    let path = path.filter(|p| !p.is_empty());
    if let Some(p) = path {
        if is_systemd_path(p) {
            return Err(systemd_unsupported());
        }
    }
    let (rel, absolute) = match path {
        Some(p) => (clean(p)?, p.starts_with('/')),
        None => (clean(&format!("/{DEFAULT_PARENT}/{id}"))?, true),
    };
    // An id like "a/b" would silently nest; the default path must be exactly skiff/<id>.
    if path.is_none() && rel.components().count() != 2 {
        return Err(Error::Cgroup(format!(
            "container id {id:?} cannot name a cgroup"
        )));
    }
    let paths = cg
        .hierarchies
        .iter()
        .map(|h| {
            if absolute {
                h.mount.join(&rel)
            } else {
                // `own` is relative to the mount; tolerate a leading '/' so join cannot replace.
                h.mount
                    .join(h.own.strip_prefix("/").unwrap_or(&h.own))
                    .join(&rel)
            }
        })
        .collect();
    Ok(Manager { paths })
}
