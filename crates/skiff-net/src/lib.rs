//! skiff-net: container networks for the skiff engine (issue 12), without a daemon.
//!
//! - [`config`]: network definitions (`<root>/networks/<name>.json`), validation (CIDRs, overlap
//!   with host routes and other networks), the default `bridge` network;
//! - [`ipam`]: addresses handed out per network, persisted and locked, freed on removal,
//!   recovered after a crash;
//! - [`netlink`]: bridges, veth pairs, addresses, routes, links up, over a synchronous netlink
//!   socket (no async runtime on the container start path, no `ip` command);
//! - [`nft`]: our own nftables table: masquerade for a network's outbound traffic, DNAT for
//!   published ports, per container rules added and removed;
//! - [`rootless`]: rootless containers' networks through a user-mode helper (pasta or
//!   slirp4netns): interface, address, route and published ports in the container's namespace.

pub mod config;
mod error;
mod fsutil;
pub mod ipam;
pub mod netlink;
pub mod nft;
pub mod rootless;
pub mod routes;

pub use error::{Error, Result};
