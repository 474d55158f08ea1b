//! The crate's error type: what failed, naming the registry, the reference or the layer.

/// Everything talking to a registry can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The local store refused or failed (includes digest and size mismatches of layers).
    #[error(transparent)]
    Store(#[from] skiff_image::Error),
    /// A reference that cannot be pulled or pushed as written.
    #[error("invalid reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },
    /// The registry has no manifest for the tag or digest (Docker's wording).
    #[error("manifest for {0} not found: manifest unknown")]
    ManifestUnknown(String),
    /// The registry refused our credentials, or wants some.
    #[error("{registry}: unauthorized: {reason}")]
    Unauthorized { registry: String, reason: String },
    /// A manifest, index or config that cannot be used.
    #[error("{what}: {reason}")]
    BadContent { what: String, reason: String },
    /// No manifest of an index matches the platform.
    #[error("no matching manifest for {platform} in the manifest list entries (found: {found})")]
    NoPlatform { platform: String, found: String },
    /// The registry answered with an error, or could not be reached.
    #[error("{registry}: {message}")]
    Registry { registry: String, message: String },
    /// Credentials files, certificate dirs.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn bad(what: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::BadContent {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
