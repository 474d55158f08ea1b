//! The seam between logic and the kernel: a narrow `Syscall` trait with the real Linux
//! implementation and a recording double, so mount and rootfs logic is unit-tested without root.
//!
//! OWNER: rootfs helper (extend as needed).

/// Kernel calls used by rootfs and namespace setup.
pub trait Syscall {}

/// The real thing.
pub struct Linux;
impl Syscall for Linux {}
