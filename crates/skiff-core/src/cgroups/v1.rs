//! cgroup v1 specifics: cpuset inheritance and the freezer.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};

const CPUSET_FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

/// True if `dir` is a directory of a v1 hierarchy carrying the cpuset controller.
fn is_v1_cpuset(dir: &Path) -> bool {
    dir.join("cpuset.cpus").is_file() && !dir.join("cgroup.controllers").exists()
}

/// A new v1 cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems`, and no task can join it
/// (ENOSPC) until they are set. Copies each from the nearest ancestor that has it, as runc does.
/// `dir` must be one we just created; its ancestors are only read. `Ok(false)`: `dir` was
/// removed meanwhile. A shared parent we made is empty until this is done, so another
/// container's delete may remove it (and its next create make it again) under us.
pub(super) fn init_cpuset(dir: &Path) -> Result<bool> {
    let Some(parent) = dir.parent() else {
        return Ok(true);
    };
    if !is_v1_cpuset(parent) {
        return Ok(true);
    }
    for file in CPUSET_FILES {
        let own = dir.join(file);
        match fs::read_to_string(&own) {
            Ok(v) if !v.trim().is_empty() => continue,
            Ok(_) => {}
            // A fake tree has no kernel to create the file; the copy below creates it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if vanished(&e) => return Ok(false),
            Err(e) => return Err(Error::io("read", own, e)),
        }
        wait_for_parent(parent, file);
        let mut value = None;
        for anc in dir.ancestors().skip(1) {
            let f = anc.join(file);
            if !f.is_file() {
                break;
            }
            let v = fs::read_to_string(&f).map_err(|e| Error::io("read", &f, e))?;
            if !v.trim().is_empty() {
                value = Some((v.trim().to_string(), anc));
                break;
            }
        }
        let Some((value, from)) = value else {
            return Err(Error::Cgroup(format!(
                "{}: no parent cgroup has a non-empty {file} to inherit",
                dir.display()
            )));
        };
        if let Err(e) = fs::write(&own, &value) {
            if e.kind() == std::io::ErrorKind::NotFound || vanished(&e) {
                return Ok(false);
            }
            // The kernel wants a subset of the immediate parent's set; an empty parent we did
            // not create (and must not change) is the usual reason.
            let hint = if from != parent {
                format!(" (the parent {} has an empty {file})", parent.display())
            } else {
                String::new()
            };
            return Err(Error::Cgroup(format!(
                "write {} ({value:?} from {}): {e}{hint}",
                own.display(),
                from.display()
            )));
        }
    }
    Ok(true)
}

/// ENODEV: the file was opened, then its cgroup was removed.
fn vanished(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::ENODEV)
}

/// A shared parent (the default `/skiff`) made a moment ago by a concurrent create is empty
/// until its maker copies the values in; the kernel refuses a child anything then. Waits briefly
/// for that instead of failing (a parent that stays empty is reported by the caller).
fn wait_for_parent(parent: &Path, file: &str) {
    let f = parent.join(file);
    for _ in 0..100 {
        match fs::read_to_string(&f) {
            Ok(v) if v.trim().is_empty() => std::thread::sleep(std::time::Duration::from_millis(10)),
            _ => return,
        }
    }
}

/// `Some(true)` if `dir/freezer.state` says FROZEN, `None` if the file is absent.
pub(super) fn frozen(dir: &Path) -> Option<bool> {
    let s = fs::read_to_string(dir.join("freezer.state")).ok()?;
    Some(s.trim() == "FROZEN")
}
