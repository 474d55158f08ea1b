//! cgroup v2 specifics.

use std::fs;
use std::path::Path;

/// `Some(true)` if `dir/cgroup.freeze` is 1, `None` if the file is absent (e.g. the root).
pub(super) fn frozen(dir: &Path) -> Option<bool> {
    let s = fs::read_to_string(dir.join("cgroup.freeze")).ok()?;
    Some(s.trim() == "1")
}
