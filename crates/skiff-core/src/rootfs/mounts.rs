//! `spec.mounts`, in order: bind mounts, tmpfs, proc, sysfs, devpts, mqueue and pass-through
//! types (`cgroup` is in [`super::cgroup`]).
//!
//! Each destination is resolved inside the rootfs right before it is used, and re-resolved after
//! a mount so that remounts and propagation changes hit the new mount, not the one below it.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceType, Mount};

use super::cgroup;
use super::mount::{parse_options, MountOptions};
use super::RootfsCtx;
use crate::error::{Error, Result};
use crate::syscall::{Create, FileKind, Syscall, Target};

/// Flags that change what a bind mount looks like and so need a remount to take effect.
const NON_BIND: MsFlags = MsFlags::MS_REC.union(MsFlags::MS_REMOUNT).union(MsFlags::MS_BIND).complement();
/// Flags a less privileged mount namespace cannot drop from a mount ("locked"); kept on remount.
pub(crate) const LOCKED: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(ATIME);
const ATIME: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

/// Resolve `dest` inside `root`; `create` says what to make if missing.
pub(crate) fn resolve(sys: &dyn Syscall, root: &Path, dest: &Path, create: Create, follow: bool) -> Result<Target> {
    sys.open_in_root(root, dest, create, follow)?
        .ok_or_else(|| Error::Rootfs(format!("{} does not exist in {}", dest.display(), root.display())))
}

/// Mount every entry of `spec.mounts` in order.
pub(crate) fn mount_all(sys: &dyn Syscall, ctx: &RootfsCtx) -> Result<()> {
    for m in ctx.spec.mounts().iter().flatten() {
        // Kernel errors name /proc/self/fd/N; say which destination it was.
        let dest = m.destination().display();
        mount_one(sys, ctx, m).map_err(|e| match e {
            Error::Rootfs(msg) => Error::Rootfs(format!("mount {dest}: {msg}")),
            Error::Sys { what, source } => Error::Sys { what: format!("mount {dest}: {what}"), source },
            e => e,
        })?;
    }
    Ok(())
}

/// The container has a network namespace of its own (created or joined).
fn has_netns(ctx: &RootfsCtx) -> bool {
    ctx.spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network))
}

fn mount_one(sys: &dyn Syscall, ctx: &RootfsCtx, m: &Mount) -> Result<()> {
    let dest = m.destination();
    let typ = m.typ().as_deref().unwrap_or("");
    let mut opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    if opts.tmpcopyup && typ != "tmpfs" {
        return Err(Error::Rootfs("tmpcopyup is only for tmpfs".into()));
    }
    if typ == "cgroup" {
        return cgroup::mount_cgroup(sys, ctx, dest, &opts);
    }
    if typ == "bind" || typ == "rbind" || opts.is_bind() {
        opts.flags |= MsFlags::MS_BIND;
        if typ == "rbind" {
            opts.flags |= MsFlags::MS_REC;
        }
        let src = m.source().as_ref().ok_or_else(|| Error::Rootfs("bind mount without a source".into()))?;
        let src = if src.is_absolute() { src.clone() } else { ctx.bundle.join(src) };
        return bind(sys, ctx.rootfs, &src, dest, &opts);
    }
    if typ.is_empty() {
        return Err(Error::Rootfs("mount without a type".into()));
    }
    if typ == "sysfs" && ctx.in_userns && !has_netns(ctx) {
        // Without a network namespace of its own, a user namespace may not mount sysfs.
        return sysfs_fallback(sys, ctx.rootfs, dest, &opts);
    }

    // runc gives a tmpfs the mode of the directory it covers, when there was one (whatever
    // its `mode=`); one on a directory it had to create keeps the mount's mode.
    let mut covers_dir = false;
    let target = if typ == "proc" || typ == "sysfs" {
        // runc refuses to mount procfs/sysfs anywhere but on a real directory.
        let t = resolve(sys, ctx.rootfs, dest, Create::Dir, false)?;
        if t.kind() != FileKind::Dir {
            // runc 1.1.5's words, which clients match.
            let source = m.source().as_deref().unwrap_or(Path::new(typ)).display().to_string();
            let at = dest.display().to_string();
            return Err(Error::Rootfs(format!("error mounting {source:?} to rootfs at {at:?}: filesystem {typ:?} must be mounted on ordinary directory")));
        }
        t
    } else if typ == "tmpfs" {
        match sys.open_in_root(ctx.rootfs, dest, Create::No, true)? {
            Some(t) if t.kind() == FileKind::Dir => {
                covers_dir = true;
                t
            }
            _ => resolve(sys, ctx.rootfs, dest, Create::Dir, true)?,
        }
    } else {
        resolve(sys, ctx.rootfs, dest, Create::Dir, true)?
    };
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let data = crate::lsm::mount_data(opts.data(), typ, ctx.mount_label);
    // Like runc, tmpfs and /dev go read-only only after they are populated: tmpfs right after
    // the mount, /dev in `finish`.
    let is_dev = super::clean(dest) == Path::new("/dev");
    let mut flags = opts.flags;
    let delay_ro = typ == "tmpfs" || is_dev;
    if delay_ro {
        flags.remove(MsFlags::MS_RDONLY);
    }
    let r = sys.mount(Some(&source), &target.at(), Some(typ), flags, data.as_deref());
    match r {
        Err(e) if typ == "sysfs" && ctx.in_userns && e.errno() == Some(Errno::EPERM) => {
            return sysfs_fallback(sys, ctx.rootfs, dest, &opts);
        }
        r => r?,
    }
    if opts.tmpcopyup || covers_dir {
        // `target` was opened before the mount, so through it we still see the directory
        // underneath: copy that into the new tmpfs, and its mode onto it.
        let top = resolve(sys, ctx.rootfs, dest, Create::No, true)?;
        if opts.tmpcopyup {
            sys.copy_tree(&target.at(), &top.at())?;
        }
        if covers_dir {
            sys.copy_mode(&target.at(), &top.at())?;
        }
    }
    drop(target);
    if typ == "tmpfs" && opts.readonly() && !is_dev {
        let t = resolve(sys, ctx.rootfs, dest, Create::No, true)?;
        sys.mount(Some(&source), &t.at(), Some(typ), opts.flags | MsFlags::MS_REMOUNT, data.as_deref())?;
    }
    after_mount(sys, ctx.rootfs, dest, &opts)
}

/// runc's fallback: rbind the host's /sys, keeping the requested flags.
fn sysfs_fallback(sys: &dyn Syscall, root: &Path, dest: &Path, opts: &MountOptions) -> Result<()> {
    let mut o = opts.clone();
    o.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
    o.data.clear();
    bind(sys, root, Path::new("/sys"), dest, &o)
}

/// A bind mount of host `src` at `dest`, then a remount for flags a bind ignores.
pub(crate) fn bind(sys: &dyn Syscall, root: &Path, src: &Path, dest: &Path, opts: &MountOptions) -> Result<()> {
    let kind = sys
        .stat(src)?
        .ok_or_else(|| Error::Rootfs(format!("bind source {} does not exist", src.display())))?;
    let create = if kind == FileKind::Dir { Create::Dir } else { Create::File };
    let t = resolve(sys, root, dest, create, true)?;
    let first = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    sys.mount(Some(src), &t.at(), None, first, None)?;
    drop(t);
    if !(opts.flags & NON_BIND).is_empty() {
        let flags = (opts.flags - MsFlags::MS_REC) | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
        remount_keep_locked(sys, root, dest, flags, Some(src))?;
    }
    after_mount(sys, root, dest, opts)
}

/// `MS_REMOUNT` of the mount at `dest`; if the kernel says EPERM (flags locked by a less
/// privileged namespace), retry keeping the locked flags of `flags_of` (default: the mount
/// itself) as runc does.
pub(crate) fn remount_keep_locked(
    sys: &dyn Syscall,
    root: &Path,
    dest: &Path,
    flags: MsFlags,
    flags_of: Option<&Path>,
) -> Result<()> {
    let t = resolve(sys, root, dest, Create::No, true)?;
    match sys.mount(None, &t.at(), None, flags, None) {
        Err(e) if e.errno() == Some(Errno::EPERM) => {
            let locked = sys.mount_flags(flags_of.unwrap_or(&t.at()))? & LOCKED;
            let mut flags = flags;
            if locked.intersects(ATIME) {
                flags.remove(ATIME);
            }
            sys.mount(None, &t.at(), None, flags | locked, None)
        }
        r => r,
    }
}

/// Propagation changes and recursive attributes, each on the freshly mounted `dest`.
fn after_mount(sys: &dyn Syscall, root: &Path, dest: &Path, opts: &MountOptions) -> Result<()> {
    if opts.propagation.is_empty() && opts.rec_set == 0 && opts.rec_clr == 0 {
        return Ok(());
    }
    let t = resolve(sys, root, dest, Create::No, true)?;
    for p in &opts.propagation {
        sys.mount(None, &t.at(), None, *p, None)?;
    }
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        sys.mount_setattr(&t.at(), opts.rec_set, opts.rec_clr, true)?;
    }
    Ok(())
}
