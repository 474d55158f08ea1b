//! A small DNS server per skiff network, so that containers resolve each other by name (podman's
//! aardvark-dns is the model).
//!
//! The library is what the engine links: it keeps the network's records file (one [`Entry`] per
//! container) in the network's DNS state dir and makes sure a server (the `skiff-dns` binary,
//! built with the `server` feature) runs for the network while it has entries. The server
//! watches the records file, answers the names it lists and forwards everything else to the
//! host's resolvers; it exits by itself once the last entry is removed.
//!
//! State dir layout (all under `dir`):
//! - `records.json`: the entries, replaced atomically (temp file + rename) on every change;
//! - `lock`: `flock`ed around every change of `records.json` and of `server.pid`;
//! - `server.pid`: `<pid> <start time>` of the live server, written by the server once it has
//!   bound its sockets, removed by the server (under the lock) when it exits;
//! - `server.log`: the server's errors.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

mod lifecycle;
mod pidfile;
mod records;
#[cfg(feature = "server")]
pub mod server;

pub use records::{entries, RECORDS_FILE};

/// File names inside a network's DNS state dir.
pub const LOCK_FILE: &str = "lock";
pub const PID_FILE: &str = "server.pid";
pub const LOG_FILE: &str = "server.log";

/// One container on the network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub container_id: String,
    /// Container name, aliases, short id (12 hex); matched case-insensitively.
    pub names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: malformed records file: {source}", path.display())]
    Records {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid DNS entry: {0}")]
    InvalidEntry(String),
    #[error("spawn DNS server {}: {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The server reported why it could not start (e.g. port 53 taken), or died before it was
    /// ready; the message says which, and the server's log in the dir may say more.
    #[error("DNS server for {} did not start: {message}", dir.display())]
    ServerStart { dir: PathBuf, message: String },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Adds or replaces the entry of `entry.container_id` in the network's DNS state dir `dir`
/// (created if missing), then makes sure a server for the network runs, listening on `listen`
/// port 53 (UDP and TCP), by spawning `server_exe` detached if no live server is recorded.
/// Returns once the server answers the new entry, or with the reason it could not start.
pub fn add(dir: &Path, listen: &[IpAddr], server_exe: &Path, entry: &Entry) -> Result<()> {
    lifecycle::add(dir, listen, server_exe, entry)
}

/// Removes the container's entry (idempotent; a missing dir is fine). The server exits by itself
/// once no entry is left.
pub fn remove(dir: &Path, container_id: &str) -> Result<()> {
    lifecycle::remove(dir, container_id)
}

/// Pid of the live server of the network, if any.
pub fn server_pid(dir: &Path) -> Option<i32> {
    pidfile::live_server(dir).map(|p| p.pid)
}
