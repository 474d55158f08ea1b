//! The crate's error type: one enum, lower-case messages naming the thing that failed.

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything the runtime core can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config.json is missing, unreadable or invalid.
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    /// A config field holds a value we cannot honour.
    #[error("invalid config: {field}: {msg}")]
    InvalidField { field: String, msg: String },
    /// A container id that is empty, too long, or unsafe as a path name.
    #[error("invalid container id {0:?}: ids may only hold letters, digits, '_', '+', '-' and '.' and must not be '.' or '..'")]
    InvalidId(String),
    #[error("container {0} does not exist")]
    NotExist(String),
    #[error("container {0} already exists")]
    Exists(String),
    /// A lifecycle operation that does not fit the container's status.
    #[error("{0}")]
    State(String),
    /// A syscall failed; `what` says which and on what.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    /// A file operation failed on `path`.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("hook {name} ({path}): {msg}")]
    Hook { name: String, path: PathBuf, msg: String },
    #[error("cgroup: {0}")]
    Cgroup(String),
    #[error("rootfs: {0}")]
    Rootfs(String),
    /// An error reported by the container's init process.
    #[error("{0}")]
    Init(String),
    #[error("{0}")]
    Other(String),
    /// Checkpoint or restore failed (criu missing or too old, a bad option, criu's own failure
    /// with the tail of its log).
    #[error("{0}")]
    Criu(String),
}

impl Error {
    pub(crate) fn sys(what: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys { what: what.into(), source }
    }
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { what, path: path.into(), source }
    }
    /// The errno of a failed syscall, if this is one.
    pub fn errno(&self) -> Option<nix::errno::Errno> {
        match self {
            Error::Sys { source, .. } => Some(*source),
            Error::Io { source, .. } => source.raw_os_error().map(nix::errno::Errno::from_raw),
            _ => None,
        }
    }
    pub(crate) fn field(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::InvalidField { field: field.into(), msg: msg.into() }
    }
}

/// Attach a description to nix results: `mount(...).ctx(|| format!("mount {dst}"))`.
pub(crate) trait SysContext<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::sys(what(), e))
    }
}
