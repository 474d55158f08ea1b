//! Making the rootfs a mount point that can become `/`, and making it `/`: runc's
//! `prepareRoot`, `rootfsParentMountPrivate`, `pivotRoot` and `msMoveRoot` (simplified).

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::mount::propagation;
use super::RootfsCtx;
use crate::error::{Error, Result};
use crate::syscall::Syscall;

/// `linux.rootfsPropagation` as flags, `None` when unset.
pub fn rootfs_propagation(ctx: &RootfsCtx) -> Result<Option<MsFlags>> {
    match ctx.spec.linux().as_ref().and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => Ok(None),
        Some(s) => propagation(s)
            .map(Some)
            .ok_or_else(|| Error::field("linux.rootfsPropagation", format!("unknown propagation {s:?}"))),
    }
}

/// `/` recursively slave (or per rootfsPropagation), the rootfs parent private if it is shared,
/// then the rootfs bound onto itself so it is a mount point.
pub(crate) fn prepare_root(sys: &dyn Syscall, ctx: &RootfsCtx) -> Result<()> {
    let flags = rootfs_propagation(ctx)?.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    sys.mount(None, Path::new("/"), None, flags, None)?;
    if let Some(parent) = shared_parent_mount(&sys.mountinfo()?, ctx.rootfs) {
        // pivot_root refuses a shared parent, and a shared parent would propagate the rootfs
        // bind back to the host.
        sys.mount(None, &parent, None, MsFlags::MS_PRIVATE, None)?;
    }
    sys.mount(Some(ctx.rootfs), ctx.rootfs, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
}

/// The mount point holding `path` if that mount is shared (per mountinfo).
pub fn shared_parent_mount(mountinfo: &str, path: &Path) -> Option<PathBuf> {
    let mut best: Option<(PathBuf, bool)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(mp) = fields.get(4) else { continue };
        let mp = PathBuf::from(unescape(mp));
        if !path.starts_with(&mp) {
            continue;
        }
        if best.as_ref().is_some_and(|(b, _)| b.as_os_str().len() > mp.as_os_str().len()) {
            continue;
        }
        let optional = fields.iter().skip(6).take_while(|f| **f != "-");
        let shared = optional.clone().any(|f| f.starts_with("shared:"));
        // Later lines for the same mount point are mounts on top: they win.
        best = Some((mp, shared));
    }
    best.and_then(|(mp, shared)| shared.then_some(mp))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// runc's `pivotRoot`: pivot onto the rootfs stacking the old root on top, then detach it.
pub(crate) fn pivot_root(sys: &dyn Syscall, rootfs: &Path) -> Result<()> {
    let old = sys.open_dir(Path::new("/"))?;
    let new = sys.open_dir(rootfs)?;
    sys.fchdir(&new)?;
    sys.pivot_root(Path::new("."), Path::new("."))?;
    // The old root is now on top of "."; go there and get rid of it without propagating the
    // unmount to the host.
    sys.fchdir(&old)?;
    sys.mount(None, Path::new("."), None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)?;
    sys.umount2(Path::new("."), MntFlags::MNT_DETACH)?;
    sys.chdir(Path::new("/"))
}

/// `no_pivot`: move the rootfs mount onto `/` and chroot into it.
pub(crate) fn move_root(sys: &dyn Syscall, rootfs: &Path) -> Result<()> {
    sys.chdir(rootfs)?;
    sys.mount(Some(rootfs), Path::new("/"), None, MsFlags::MS_MOVE, None)?;
    sys.chroot(Path::new("."))?;
    sys.chdir(Path::new("/"))
}
