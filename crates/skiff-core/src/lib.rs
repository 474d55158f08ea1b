//! skiff-core: the runtime core of skiff.
//!
//! Data flows one way: a bundle's `config.json` is loaded and checked ([`spec`]), a
//! [`container::Runtime`] turns it into a container whose init process is set up in its
//! namespaces ([`namespaces`], [`process`]), root filesystem ([`rootfs`]) and cgroups
//! ([`cgroups`]), and its lifecycle is recorded in [`state`].
//!
//! The library is what both `skiff-runtime` (the runc-compatible CLI) and the `skiff` engine
//! call; nothing here parses command lines or prints.

pub mod cgroups;
pub mod checkpoint;
pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod intelrdt;
pub mod lsm;
pub mod namespaces;
pub mod netdev;
pub mod personality;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod security;
pub mod signal;
pub mod spec;
pub mod state;
pub mod syscall;
pub mod template;
pub mod timing;
pub mod sysctl;
pub mod terminal;

pub use container::{Container, CreateOptions, ExecOptions, Runtime};
pub use error::{Error, Result};
pub use state::{OciState, Status};
