//! skiff-registry: the engine's client of OCI distribution registries (Docker Hub, GHCR,
//! Quay, a company's `registry:2`): `pull` into the local image store, `push` out of it,
//! `login`/`logout` with credentials kept in a file only the user reads.
//!
//! The protocol (token and basic auth, manifests, blob streams and ranges, uploads, mounts) is
//! `oci-client`'s; this crate decides what to fetch, streams each layer once into the store's
//! pipeline (sha256, decompression, unpack), resumes cut downloads and reports progress. The
//! async runtime lives only inside these calls: nothing of it is on the container start path.

pub mod auth;
mod connect;
mod error;
mod fetch;
mod login;
mod media;
pub mod platform;
mod progress;
mod pull;
mod push;

pub use connect::RegistryOptions;
pub use error::{Error, Result};
pub use login::{login, logout};
pub use platform::Platform;
pub use progress::{Progress, Silent};
pub use pull::{pull, pull_all_tags, PullOptions, Pulled};
pub use push::{push, PushFormat, PushOptions, Pushed};
