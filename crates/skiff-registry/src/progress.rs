//! What a pull or push reports as it goes; the CLI draws bars or prints lines from it.

/// Receives progress; every method may be called from several threads at once.
pub trait Progress: Sync {
    /// A line of its own (`latest: Pulling from library/busybox`, `Digest: ...`).
    fn message(&self, _msg: &str) {}
    /// A layer is known: `id` is the short digest Docker prints, `size` the blob's bytes.
    fn layer_queued(&self, _id: &str, _size: u64) {}
    /// A blob is being uploaded (push).
    fn layer_pushing(&self, id: &str, size: u64) {
        self.layer_queued(id, size)
    }
    /// The layer is in the store already: nothing to fetch.
    fn layer_exists(&self, _id: &str) {}
    /// `done` of `size` bytes are in (a resumed download starts above 0).
    fn layer_progress(&self, _id: &str, _done: u64) {}
    /// A dropped connection is being resumed.
    fn layer_retry(&self, _id: &str, _attempt: u32, _error: &str) {}
    /// The layer is verified and unpacked (pull) or stored remotely (push).
    fn layer_done(&self, _id: &str, _verb: &str) {}
}

/// Reports nothing (`-q`, or a library caller).
pub struct Silent;

impl Progress for Silent {}

/// The 12 hex digits of a digest Docker shows for layers.
pub fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}
