//! The crate's error type: one flat enum, lower-case messages naming what failed.

use std::io;
use std::path::PathBuf;

/// Everything the image store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name, id or digest that matches no image (Docker's own text).
    #[error("No such image: {0}")]
    ImageNotFound(String),
    /// An id prefix that matches more than one image.
    #[error("image id prefix {0} matches more than one image")]
    AmbiguousId(String),
    /// A reference that does not follow Docker's grammar.
    #[error("invalid reference format {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// A filesystem operation on a path failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Content whose sha256 is not the one it was announced with.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: String, actual: String },
    /// Content whose length is not the one it was announced with (None: longer).
    #[error("size mismatch for {what}: expected {expected} bytes, got {}", actual.map_or("more".to_string(), |a| a.to_string()))]
    SizeMismatch { what: String, expected: u64, actual: Option<u64> },
    /// A malformed digest string.
    #[error("invalid digest {0:?}: expected sha256:<64 lower-case hex digits>")]
    InvalidDigest(String),
    /// A layer tar entry that is refused (unsafe or malformed).
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    BadEntry { layer: String, entry: String, reason: String },
    /// A layer tar stream that cannot be read.
    #[error("layer {layer}: {source}")]
    LayerRead {
        layer: String,
        #[source]
        source: io::Error,
    },
    /// An archive (docker-archive / oci-archive) that cannot be used.
    #[error("archive: {0}")]
    Archive(String),
    /// A JSON document that cannot be parsed or written.
    #[error("{what}: {reason}")]
    Json { what: String, reason: String },
    /// A Dockerfile-style change (`--change`) that cannot be applied.
    #[error("invalid change {change:?}: {reason}")]
    InvalidChange { change: String, reason: String },
    /// `remove` refused because of references or users (Docker's conflict messages).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Content another process removed while this one was about to use it (retried inside).
    #[error("{0} was removed concurrently")]
    Vanished(String),
    /// Writing an archive or a commit failed.
    #[error("{0}")]
    Other(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Maps an `io::Error` into [`Error::Io`] naming the operation and the path.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::result::Result<T, io::Error> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io { op, path: path.into(), source })
    }
}

impl<T> IoContext<T> for std::result::Result<T, nix::errno::Errno> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            op,
            path: path.into(),
            source: io::Error::from_raw_os_error(e as i32),
        })
    }
}

pub(crate) fn json_err(what: impl Into<String>, e: impl std::fmt::Display) -> Error {
    Error::Json {
        what: what.into(),
        reason: e.to_string(),
    }
}
