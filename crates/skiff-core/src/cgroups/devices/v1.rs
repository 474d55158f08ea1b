//! The v1 devices controller: `a` to the default's file, then one line per exception.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use super::{v1_line, State};
use crate::error::{Error, Result};

/// The writes, in order: (file name, line). Deny-all (or allow-all) first, then the exceptions.
pub(crate) fn lines(state: &State) -> Vec<(&'static str, String)> {
    let (reset, except) = if state.default_allow { ("devices.allow", "devices.deny") } else { ("devices.deny", "devices.allow") };
    let mut out = vec![(reset, "a".to_string())];
    for (&(kind, major, minor), &access) in &state.exceptions {
        out.push((except, v1_line(kind, major, minor, access)));
    }
    out
}

/// Writes `lines(state)` into the cgroup directory `dir`, each line with one write(2) (the
/// kernel takes one rule per write). Meant for a new cgroup without tasks: between the reset
/// and the last exception, access is narrower than either the old or the new rules.
pub(crate) fn apply(dir: &Path, state: &State) -> Result<()> {
    for (file, line) in lines(state) {
        let path = dir.join(file);
        let mut f = OpenOptions::new().append(true).open(&path).map_err(|e| Error::io("open", &path, e))?;
        f.write_all(format!("{line}\n").as_bytes())
            .map_err(|e| Error::Cgroup(format!("write {line:?} to {}: {e}", path.display())))?;
    }
    Ok(())
}
