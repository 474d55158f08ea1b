//! The container's root filesystem: mounts, devices, pivot_root, masked and read-only paths.
//!
//! OWNER: rootfs helper. Called from the container's init (already in its new mount namespace),
//! in three steps around the createRuntime/createContainer hooks.

//!
//! One concern per file: [`mount`] parses options, [`mounts`] does `spec.mounts`, [`cgroup`] the
//! `cgroup` mounts, [`devices`] /dev, [`paths`] confined path resolution, [`pivot`] the root
//! switch and [`masked`] what happens after it.

pub mod cgroup;
pub mod copyup;
pub mod devices;
pub mod masked;
pub mod mount;
pub mod mounts;
pub mod paths;
pub mod pivot;

#[cfg(test)]
mod real_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::syscall::{lexical_in_root, Create, Syscall};

/// What the rootfs steps need to know.
pub struct RootfsCtx<'a> {
    pub spec: &'a Spec,
    /// Absolute host path of the rootfs.
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    /// The container has a new user namespace (devices are bind-mounted, not created).
    pub in_userns: bool,
    /// The container's cgroups, for `cgroup` mounts.
    pub cgroups: &'a [CgroupMount],
    /// The container has a cgroup namespace of its own.
    pub cgroupns: bool,
    /// `linux.mountLabel`, where SELinux is enabled (see [`crate::lsm::mount_label`]).
    pub mount_label: Option<&'a str>,
}

/// One hierarchy as a `cgroup` mount should show it.
#[derive(Debug, Clone)]
pub struct CgroupMount {
    /// Directory name under the mount destination (`cpu,cpuacct`, `memory`, `systemd`); empty for
    /// a pure-v2 host where the cgroup2 tree is the mount itself.
    pub name: String,
    /// The container's cgroup directory on the host.
    pub host_dir: PathBuf,
    pub v2: bool,
}

/// Before the hooks: propagation, the rootfs bind, every mount of `spec.mounts` in order,
/// default and configured devices, /dev links and /dev/pts/ptmx.
pub fn prepare(sys: &dyn Syscall, ctx: &RootfsCtx) -> Result<()> {
    pivot::prepare_root(sys, ctx)?;
    mounts::mount_all(sys, ctx)?;
    if devices::needs_setup_dev(ctx.spec) {
        devices::setup_dev(sys, ctx)?;
    }
    Ok(())
}

/// After the createContainer hooks: pivot_root (or move + chroot with `no_pivot`), the
/// process's cwd made if missing, then masked paths, read-only paths, a read-only root, and the
/// final rootfsPropagation.
///
/// Read-only paths go before masked paths (runc's order), so a masked path under a read-only one
/// is still masked.
pub fn finish(sys: &dyn Syscall, ctx: &RootfsCtx) -> Result<()> {
    if ctx.no_pivot {
        pivot::move_root(sys, ctx.rootfs)?;
    } else {
        pivot::pivot_root(sys, ctx.rootfs)?;
    }
    make_cwd(sys, ctx.spec)?;
    let linux = ctx.spec.linux().as_ref();
    if let Some(paths) = linux.and_then(|l| l.readonly_paths().as_ref()) {
        masked::readonly_paths(sys, paths)?;
    }
    if let Some(paths) = linux.and_then(|l| l.masked_paths().as_ref()) {
        masked::masked_paths(sys, paths)?;
    }
    masked::remount_dev_readonly(sys, ctx.spec)?;
    if ctx.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        masked::readonly_root(sys)?;
    }
    if let Some(flags) = pivot::rootfs_propagation(ctx)? {
        sys.mount(None, Path::new("/"), None, flags, None)?;
    }
    Ok(())
}

/// runc creates a missing `process.cwd` (mode 0755) once inside the new root, before the root
/// turns read-only; containerd and CRI rely on it for an image's `WorkingDir`. It is resolved
/// inside the root like a mount destination. An existing non-directory is left for the chdir to
/// refuse.
fn make_cwd(sys: &dyn Syscall, spec: &Spec) -> Result<()> {
    let Some(cwd) = spec.process().as_ref().map(|p| p.cwd()) else { return Ok(()) };
    sys.open_in_root(Path::new("/"), cwd, Create::Dir, true)
        .map(drop)
        .map_err(|e| Error::field("process.cwd", format!("create {}: {e}", cwd.display())))
}

/// A container path made absolute and lexically clean (`..` clamped at `/`), for comparisons
/// only: never used to reach the filesystem.
pub(crate) fn clean(p: &Path) -> PathBuf {
    lexical_in_root(Path::new("/"), p)
}
