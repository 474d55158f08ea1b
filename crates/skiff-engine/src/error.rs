//! The engine's error type. Each error knows the exit status Docker gives it: 125 for the
//! engine's own failures, 126 when the program cannot be executed, 127 when it is not found.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("No such volume: {0}")]
    NoSuchVolume(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    State(String),
    /// The container's program could not be started; `code` is 126 or 127.
    #[error("{msg}")]
    Exec { msg: String, code: i32 },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mount overlay on {target}: {source}")]
    Mount {
        target: PathBuf,
        errno: i32,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] skiff_image::Error),
    #[error(transparent)]
    Runtime(#[from] skiff_core::Error),
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// Docker's exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec { code, .. } => *code,
            _ => 125,
        }
    }

    /// Classifies a runtime failure to start the program as Docker's CLI does (by runc's
    /// texts): not found → 127, cannot execute → 126.
    pub fn from_start_failure(msg: String) -> Error {
        let lower = msg.to_lowercase();
        if lower.contains("executable file not found") || lower.contains("no such file or directory") {
            Error::Exec { msg, code: 127 }
        } else if lower.contains("permission denied") || lower.contains("exec format error") || lower.contains("is a directory") {
            Error::Exec { msg, code: 126 }
        } else {
            Error::Other(msg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_to_docker_codes() {
        assert_eq!(
            Error::from_start_failure("exec: \"nope\": executable file not found in $PATH".into()).exit_code(),
            127
        );
        assert_eq!(Error::from_start_failure("open /x: no such file or directory".into()).exit_code(), 127);
        assert_eq!(Error::from_start_failure("exec /etc/passwd: permission denied".into()).exit_code(), 126);
        assert_eq!(Error::from_start_failure("cgroup: no space".into()).exit_code(), 125);
        assert_eq!(Error::NoSuchContainer("x".into()).to_string(), "No such container: x");
    }
}
