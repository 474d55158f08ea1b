//! The crate's error type: what failed, naming the network, address, link or rule.

/// Everything network setup can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that cannot be used (a bad CIDR, a gateway outside its subnet, a name taken).
    #[error("{0}")]
    Invalid(String),
    /// A network that does not exist (Docker's text).
    #[error("network {0} not found")]
    NotFound(String),
    /// A network still used by containers, an address taken, a port taken.
    #[error("{0}")]
    Conflict(String),
    /// The subnet's addresses are all handed out.
    #[error("no available IPv4 addresses on network {0}")]
    Exhausted(String),
    /// The IPv6 subnet's (or range's) addresses are all handed out.
    #[error("no available IPv6 addresses on network {0}")]
    ExhaustedV6(String),
    /// A netlink request the kernel refused.
    #[error("netlink: {op}: {source}")]
    Netlink {
        op: String,
        #[source]
        source: std::io::Error,
    },
    /// nftables refused a ruleset.
    #[error("nftables: {0}")]
    Nft(String),
    /// A filesystem operation on a path failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }
}
