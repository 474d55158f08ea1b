//! skiff-engine: Docker's model of containers over images, daemonless.
//!
//! An [`Engine`] owns a store directory (`/var/lib/skiff` by default): the image store
//! (`image/`, see `skiff-image`), containers (`containers/<id>/`: the engine's record, the
//! overlay upper/work/merged dirs, the OCI bundle, the log, the monitor's exit record and attach
//! socket), named volumes (`volumes/`), and the runtime state of `skiff-core` (`runtime/`).
//!
//! Each running container has a `skiff-monitor` process beside it; there is no daemon. Every
//! command reads the store, does its work under file locks, and exits.

pub mod attach;
pub mod commit;
pub mod container;
pub mod error;
pub mod fs;
pub mod inspect;
pub mod layout;
pub mod lock;
pub mod logs;
pub mod names;
pub mod network;
pub mod options;
pub mod ports;
pub mod record;
pub mod rootfs;
pub mod rootless;
pub mod spec;
pub mod start;
pub mod stats;
pub mod units;
pub mod users;
pub mod vfs;
pub mod volumes;

pub mod engine;

pub use engine::{Engine, EngineOptions};
pub use error::{Error, Result};
pub use record::{ContainerRecord, Status};
