//! The container's root filesystem: mounts, devices, pivot_root, masked and read-only paths.
//!
//! OWNER: rootfs helper. Called from the container's init (already in its new mount namespace),
//! in three steps around the createRuntime/createContainer hooks.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::Result;
use crate::syscall::Syscall;

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
pub fn prepare(_sys: &dyn Syscall, _ctx: &RootfsCtx) -> Result<()> {
    todo!()
}

/// After the createContainer hooks: pivot_root (or move + chroot with `no_pivot`), then masked
/// paths, read-only paths, a read-only root, and the final rootfsPropagation.
pub fn finish(_sys: &dyn Syscall, _ctx: &RootfsCtx) -> Result<()> {
    todo!()
}
