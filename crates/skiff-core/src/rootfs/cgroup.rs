//! `cgroup` mounts, as runc does them.
//!
//! Pure v2 host (one hierarchy with an empty name): a fresh `cgroup2` with a cgroup namespace,
//! else a bind of the container's cgroup directory. v1/hybrid: a tmpfs at the destination and a
//! bind per hierarchy at `<dest>/<name>`, symlinks for combined names (`cpu -> cpu,cpuacct`),
//! and the tmpfs remounted read-only when the mount asks for `ro`.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;

use super::mount::MountOptions;
use super::mounts::{bind, remount_keep_locked, resolve};
use super::RootfsCtx;
use crate::error::{Error, Result};
use crate::syscall::{Create, Syscall};

/// runc's flags for the tmpfs holding v1 hierarchies.
const TMPFS_FLAGS: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC);

pub(crate) fn mount_cgroup(sys: &dyn Syscall, ctx: &RootfsCtx, dest: &Path, opts: &MountOptions) -> Result<()> {
    // Bind-ish flags make no sense on a cgroup mount; the rest (ro, nosuid...) apply.
    let mut opts = opts.clone();
    opts.flags.remove(MsFlags::MS_BIND | MsFlags::MS_REC);
    match ctx.cgroups {
        [] => Err(Error::Rootfs("cgroup mount but no cgroup hierarchy was given".into())),
        [only] if only.name.is_empty() => {
            if ctx.cgroupns {
                let t = resolve(sys, ctx.rootfs, dest, Create::Dir, true)?;
                let data = opts.data();
                let r = sys.mount(Some(Path::new("cgroup2")), &t.at(), Some("cgroup2"), opts.flags, data.as_deref());
                drop(t);
                match r {
                    // runc: EPERM/EBUSY (e.g. rootless without the right to mount) -> bind.
                    Err(e) if matches!(e.errno(), Some(Errno::EPERM) | Some(Errno::EBUSY)) => {}
                    r => return apply_propagation(sys, ctx.rootfs, dest, &opts, r),
                }
            }
            let r = bind(sys, ctx.rootfs, &only.host_dir, dest, &bind_opts(&opts));
            apply_propagation(sys, ctx.rootfs, dest, &opts, r)
        }
        hierarchies => {
            let t = resolve(sys, ctx.rootfs, dest, Create::Dir, true)?;
            sys.mount(Some(Path::new("tmpfs")), &t.at(), Some("tmpfs"), TMPFS_FLAGS, Some("mode=755"))?;
            drop(t);
            let sub = bind_opts(&opts);
            for h in hierarchies {
                if h.name.is_empty() || h.name.contains('/') || h.name == "." || h.name == ".." {
                    return Err(Error::Rootfs(format!("invalid cgroup hierarchy name {:?}", h.name)));
                }
                bind(sys, ctx.rootfs, &h.host_dir, &dest.join(&h.name), &sub)?;
                if h.name.contains(',') {
                    let parent = resolve(sys, ctx.rootfs, dest, Create::No, true)?;
                    for part in h.name.split(',').filter(|p| !p.is_empty()) {
                        match sys.symlink(Path::new(&h.name), &parent.at().join(part)) {
                            Err(e) if e.errno() == Some(Errno::EEXIST) => {}
                            r => r?,
                        }
                    }
                }
            }
            let r = if opts.readonly() {
                let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | TMPFS_FLAGS;
                remount_keep_locked(sys, ctx.rootfs, dest, flags, None)
            } else {
                Ok(())
            };
            apply_propagation(sys, ctx.rootfs, dest, &opts, r)
        }
    }
}

/// The options for binding a hierarchy: the mount's flags, recursive, no propagation (that is
/// applied once, to the top mount).
fn bind_opts(opts: &MountOptions) -> MountOptions {
    MountOptions {
        flags: opts.flags | MsFlags::MS_BIND | MsFlags::MS_REC,
        propagation: Vec::new(),
        rec_set: 0,
        rec_clr: 0,
        data: Vec::new(),
        tmpcopyup: false,
    }
}

fn apply_propagation(sys: &dyn Syscall, root: &Path, dest: &Path, opts: &MountOptions, r: Result<()>) -> Result<()> {
    r?;
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let t = resolve(sys, root, dest, Create::No, true)?;
    for p in &opts.propagation {
        sys.mount(None, &t.at(), None, *p, None)?;
    }
    Ok(())
}
