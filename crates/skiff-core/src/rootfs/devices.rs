//! Device nodes in /dev (runc's defaults plus `linux.devices`), the /dev symlinks and
//! /dev/ptmx. In a user namespace, where mknod is not allowed, the host's node is bind-mounted
//! onto an empty file instead.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::{makedev, Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::mounts::resolve;
use super::{clean, RootfsCtx};
use crate::error::{Error, Result};
use crate::syscall::{Create, Syscall};

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

fn chr(path: &str, major: u64, minor: u64) -> Device {
    Device { path: PathBuf::from(path), kind: SFlag::S_IFCHR, major, minor, mode: 0o666, uid: 0, gid: 0 }
}

/// runc's default devices (`AllowedDevices` with a path).
pub fn default_devices() -> Vec<Device> {
    vec![
        chr("/dev/null", 1, 3),
        chr("/dev/zero", 1, 5),
        chr("/dev/full", 1, 7),
        chr("/dev/random", 1, 8),
        chr("/dev/urandom", 1, 9),
        chr("/dev/tty", 5, 0),
    ]
}

/// The defaults, overridden and extended by `linux.devices` (same path: the config wins).
pub fn devices(spec: &Spec) -> Result<Vec<Device>> {
    let mut out = default_devices();
    let configured = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for d in configured.into_iter().flatten() {
        let field = || format!("linux.devices[{}]", d.path().display());
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => return Err(Error::field(field(), "type must be c, b, u or p")),
        };
        let num = |v: i64, what: &str| u64::try_from(v).map_err(|_| Error::field(field(), format!("negative {what}")));
        let (major, minor) = if kind == SFlag::S_IFIFO { (0, 0) } else { (num(d.major(), "major")?, num(d.minor(), "minor")?) };
        let path = clean(d.path());
        if path == Path::new("/") {
            return Err(Error::field(field(), "a device cannot be the root"));
        }
        let dev = Device {
            path,
            kind,
            major,
            minor,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        out.retain(|o| o.path != dev.path);
        out.push(dev);
    }
    Ok(out)
}

/// Whether runc would set up /dev: not when /dev is a bind mount from the host.
pub fn needs_setup_dev(spec: &Spec) -> bool {
    !spec.mounts().iter().flatten().any(|m| {
        clean(m.destination()) == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind"))
    })
}

/// Whether a devpts is mounted at /dev/pts.
fn has_devpts(spec: &Spec) -> bool {
    spec.mounts()
        .iter()
        .flatten()
        .any(|m| clean(m.destination()) == Path::new("/dev/pts") && m.typ().as_deref() == Some("devpts"))
}

/// Devices, /dev links and /dev/ptmx, with umask 0 while creating nodes.
pub(crate) fn setup_dev(sys: &dyn Syscall, ctx: &RootfsCtx) -> Result<()> {
    let list = devices(ctx.spec)?;
    let old = sys.umask(Mode::empty());
    let r = list.iter().try_for_each(|d| create_device(sys, ctx, d));
    sys.umask(old);
    r?;
    if has_devpts(ctx.spec) {
        let dev = resolve(sys, ctx.rootfs, Path::new("/dev"), Create::Dir, true)?;
        sys.unlink(&dev.at().join("ptmx"))?;
        sys.symlink(Path::new("pts/ptmx"), &dev.at().join("ptmx"))?;
    }
    dev_symlinks(sys, ctx.rootfs)
}

fn create_device(sys: &dyn Syscall, ctx: &RootfsCtx, d: &Device) -> Result<()> {
    let (Some(parent), Some(name)) = (d.path.parent(), d.path.file_name()) else {
        return Err(Error::Rootfs(format!("bad device path {}", d.path.display())));
    };
    if ctx.in_userns {
        return bind_device(sys, ctx.rootfs, d);
    }
    let dir = resolve(sys, ctx.rootfs, parent, Create::Dir, true)?;
    let node = dir.at().join(name);
    let dev = makedev(d.major, d.minor);
    match sys.mknod(&node, d.kind, Mode::from_bits_truncate(d.mode), dev) {
        Ok(()) => sys.lchown(&node, d.uid, d.gid),
        Err(e) if e.errno() == Some(Errno::EEXIST) => Ok(()),
        Err(e) if e.errno() == Some(Errno::EPERM) => {
            drop(dir);
            bind_device(sys, ctx.rootfs, d)
        }
        Err(e) => Err(e),
    }
}

/// Bind the host's node (same path) onto an empty file in the rootfs, as runc does where
/// mknod is not allowed; a node the host lacks is an error naming the `linux.devices` entry.
fn bind_device(sys: &dyn Syscall, root: &Path, d: &Device) -> Result<()> {
    let t = resolve(sys, root, &d.path, Create::File, true)?;
    sys.mount(Some(&d.path), &t.at(), None, MsFlags::MS_BIND, None).map_err(|e| match e.errno() {
        Some(Errno::ENOENT) => Error::field(
            format!("linux.devices[{}]", d.path.display()),
            "no such node on the host: in a user namespace device nodes cannot be made (mknod) and are bind mounts of the host's node at the same path",
        ),
        _ => e,
    })
}

/// /dev/fd, /dev/std{in,out,err} and (if the kernel has it) /dev/core.
fn dev_symlinks(sys: &dyn Syscall, root: &Path) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if sys.stat(Path::new("/proc/kcore"))?.is_some() {
        links.push(("/proc/kcore", "core"));
    }
    let dev = resolve(sys, root, Path::new("/dev"), Create::Dir, true)?;
    for (src, name) in links {
        match sys.symlink(Path::new(src), &dev.at().join(name)) {
            Err(e) if e.errno() == Some(Errno::EEXIST) => {}
            r => r?,
        }
    }
    Ok(())
}
