//! The systemd cgroup driver's `slice:prefix:name` paths.
//!
//! skiff manages cgroups through cgroupfs only. With `--systemd-cgroup` (or a cgroupsPath in
//! the systemd form) the path is still checked and expanded the way runc does, so the error can
//! say where the container would have gone, and why it does not: no systemd running, or the
//! driver (transient scopes over D-Bus) not implemented yet.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const FIELD: &str = "linux.cgroupsPath";

/// `a-b-c.slice` -> `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root slice `/`.
pub fn expand_slice(slice: &str) -> Result<PathBuf> {
    let bad = |why: &str| Error::field(FIELD, format!("slice {slice:?}: {why}"));
    let Some(name) = slice.strip_suffix(".slice") else {
        return Err(bad("a slice name ends in .slice"));
    };
    if slice.contains('/') {
        return Err(bad("a slice name has no '/'"));
    }
    if name == "-" {
        return Ok(PathBuf::from("/"));
    }
    if name.is_empty() || name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(bad("empty parts between '-' are not allowed"));
    }
    let mut out = PathBuf::from("/");
    let mut prefix = String::new();
    for part in name.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        out.push(format!("{prefix}.slice"));
    }
    Ok(out)
}

/// `slice:prefix:name` -> the cgroup the systemd driver would use, relative to a hierarchy's
/// root: `<expanded slice>/<prefix>-<name>.scope` (or the slice `<name>` itself when it ends
/// in `.slice`). An empty slice means `system.slice`, as in runc.
pub fn expand(path: &str) -> Result<PathBuf> {
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(Error::field(FIELD, format!("{path:?}: the systemd driver wants slice:prefix:name")));
    };
    if name.is_empty() || name.contains('/') || prefix.contains('/') {
        return Err(Error::field(FIELD, format!("{path:?}: name must be non-empty, and no part may contain '/'")));
    }
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    let mut dir = expand_slice(slice)?;
    if name.ends_with(".slice") {
        dir.push(name);
    } else if prefix.is_empty() {
        dir.push(format!("{name}.scope"));
    } else {
        dir.push(format!("{prefix}-{name}.scope"));
    }
    Ok(dir)
}

/// Whether systemd is the init system here (the test systemd itself uses).
pub fn running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The error for `--systemd-cgroup` with this cgroupsPath (default: `:skiff:<id>`).
pub fn driver_error(path: Option<&str>, id: &str, systemd_running: bool) -> Error {
    let path = path.filter(|p| !p.is_empty()).map_or_else(|| format!(":skiff:{id}"), str::to_string);
    let target = match expand(&path) {
        Ok(t) => t,
        Err(e) => return e,
    };
    if !systemd_running {
        return Error::Cgroup(format!(
            "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system), so it cannot manage {}; use the default cgroupfs driver",
            target.display()
        ));
    }
    Error::Cgroup(format!(
        "--systemd-cgroup: the systemd cgroup driver (transient units over D-Bus) is not supported yet; it would place the container in {}; use the default cgroupfs driver",
        target.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_like_runc() {
        assert_eq!(expand_slice("-.slice").unwrap(), PathBuf::from("/"));
        assert_eq!(expand_slice("system.slice").unwrap(), PathBuf::from("/system.slice"));
        assert_eq!(expand_slice("a-b-c.slice").unwrap(), PathBuf::from("/a.slice/a-b.slice/a-b-c.slice"));
        for bad in ["system", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice", ".slice"] {
            let e = expand_slice(bad).unwrap_err().to_string();
            assert!(e.contains(FIELD) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn paths_expand_to_scopes() {
        assert_eq!(expand("system.slice:docker:abc").unwrap(), PathBuf::from("/system.slice/docker-abc.scope"));
        assert_eq!(expand(":skiff:x1").unwrap(), PathBuf::from("/system.slice/skiff-x1.scope"));
        assert_eq!(expand("user-1000.slice::c").unwrap(), PathBuf::from("/user.slice/user-1000.slice/c.scope"));
        assert_eq!(expand("machine.slice:p:pod-1.slice").unwrap(), PathBuf::from("/machine.slice/pod-1.slice"));
        for bad in ["a:b", "a:b:c:d", "system.slice:p:", "system.slice:p:a/b"] {
            assert!(expand(bad).unwrap_err().to_string().contains(FIELD), "{bad}");
        }
    }

    #[test]
    fn driver_error_says_why_and_where() {
        let e = driver_error(None, "c1", false).to_string();
        assert!(e.contains("systemd is not running") && e.contains("/system.slice/skiff-c1.scope"), "{e}");
        let e = driver_error(Some("machine.slice:skiff:c2"), "c2", true).to_string();
        assert!(e.contains("not supported yet") && e.contains("/machine.slice/skiff-c2.scope"), "{e}");
        let e = driver_error(Some("nonsense"), "c3", false).to_string();
        assert!(e.contains(FIELD), "{e}");
    }
}
