//! After the pivot: read-only paths, masked paths, a read-only /dev or root, as runc's
//! `readonlyPath`, `maskPath` and `finalizeRootfs` do. Paths are resolved inside the new root.

use std::path::Path;

use nix::mount::MsFlags;

use super::clean;
use super::mount::parse_options;
use super::mounts::{remount_keep_locked, resolve};
use crate::error::Result;
use crate::syscall::{Create, FileKind, Syscall};
use oci_spec::runtime::Spec;

const ROOT: &str = "/";
const KEEP: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC);

/// Bind each existing path onto itself, then remount it read-only keeping nosuid/nodev/noexec.
pub(crate) fn readonly_paths(sys: &dyn Syscall, paths: &[String]) -> Result<()> {
    let root = Path::new(ROOT);
    for p in paths {
        let Some(t) = sys.open_in_root(root, Path::new(p), Create::No, true)? else { continue };
        sys.mount(Some(&t.at()), &t.at(), None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        drop(t);
        let t = resolve(sys, root, Path::new(p), Create::No, true)?;
        let keep = sys.mount_flags(&t.at())? & KEEP;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep;
        sys.mount(Some(&t.at()), &t.at(), None, flags, None)?;
    }
    Ok(())
}

/// /dev/null over files, an empty read-only tmpfs over directories; missing paths skipped.
pub(crate) fn masked_paths(sys: &dyn Syscall, paths: &[String]) -> Result<()> {
    for p in paths {
        let Some(t) = sys.open_in_root(Path::new(ROOT), Path::new(p), Create::No, true)? else { continue };
        if t.kind() == FileKind::Dir {
            sys.mount(Some(Path::new("tmpfs")), &t.at(), Some("tmpfs"), MsFlags::MS_RDONLY, None)?;
        } else {
            sys.mount(Some(Path::new("/dev/null")), &t.at(), None, MsFlags::MS_BIND, None)?;
        }
    }
    Ok(())
}

/// A `/dev` mount asked `ro`: it was mounted writable to be populated; now make it read-only.
pub(crate) fn remount_dev_readonly(sys: &dyn Syscall, spec: &Spec) -> Result<()> {
    for m in spec.mounts().iter().flatten() {
        if clean(m.destination()) != Path::new("/dev") {
            continue;
        }
        let o = parse_options(m.options().as_deref().unwrap_or(&[]));
        if !o.readonly() {
            continue;
        }
        let t = resolve(sys, Path::new(ROOT), Path::new("/dev"), Create::No, true)?;
        let flags = (o.flags - MsFlags::MS_REC) | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        sys.mount(None, &t.at(), None, flags, None)?;
    }
    Ok(())
}

/// `root.readonly`: remount `/` read-only, keeping locked flags if the kernel insists.
pub(crate) fn readonly_root(sys: &dyn Syscall) -> Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    remount_keep_locked(sys, Path::new(ROOT), Path::new(ROOT), flags, None)
}
