//! skiff-image: the local image store of the skiff engine.
//!
//! Layout under the root (e.g. `/var/lib/skiff/image`):
//! - `blobs/sha256/<hex>`: manifests, configs and layer blobs, checked on write and read;
//! - `layers/<diffid-hex>/{diff/,meta.json}`: each layer unpacked once in overlayfs format;
//! - `images/<id-hex>.json` and `repositories.json`: the image records and the tags;
//! - `lock`: the store-wide `flock`; `tmp/`: per-operation work dirs, each `flock`ed.

mod archive_load;
mod archive_save;
mod blobs;
mod changes;
mod commit;
mod compress;
mod diff;
pub mod digest;
mod error;
mod history;
mod import;
mod incoming;
mod index;
mod layers;
mod lock;
mod manifest;
pub mod reference;
mod remove;
mod store;
pub mod unpack;
mod usage;
mod xattr;

pub use archive_save::ArchiveFormat;
pub use commit::Commit;
pub use error::{Error, Result};
pub use history::{history, HistoryEntry};
pub use import::ImportOptions;
pub use incoming::{Incoming, LayerDesc, Partial};
pub use remove::Removed;
pub use store::{Image, Layer, Store, StoreOptions};
pub use usage::{ImageUsage, LayerUsage, Usage};

#[cfg(test)]
mod archive_tests;
#[cfg(test)]
mod commit_tests;
#[cfg(test)]
mod incoming_tests;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod testutil;
#[cfg(test)]
mod unpack_tests;
