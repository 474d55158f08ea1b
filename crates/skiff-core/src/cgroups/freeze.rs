//! Freezing and thawing a container's cgroup (`pause` / `resume`).
//!
//! Which freezer is used: the v1 freezer whenever one of the container's directories belongs to
//! a v1 freezer hierarchy (has `freezer.state`), else cgroup2's `cgroup.freeze`. On a hybrid
//! host (v1 controllers plus a cgroup2 mount, like this one) that means the v1 freezer only and
//! the cgroup2 directory is left alone, as runc does: the container's tasks are in both, and
//! freezing one of them stops them all; freezing both would only double the ways to get stuck.
//! [`is_frozen`] reads the same freezer, so `paused` is consistent with what `freeze` did.

use std::fs;
use std::io::{Read, Seek};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::Manager;
use crate::error::{Error, Result};

const V1_STATE: &str = "freezer.state";
const V2_FREEZE: &str = "cgroup.freeze";
const V2_EVENTS: &str = "cgroup.events";

/// v1: how many write-and-check rounds before giving up (as runc: 1000).
const V1_ROUNDS: u32 = 1000;
/// v2: how long to wait for `cgroup.events` to report the new state.
const V2_TIMEOUT: Duration = Duration::from_secs(10);

/// The freezer(s) of a container's cgroup, per the rule in the module docs.
enum Freezer {
    V1(PathBuf),
    V2(Vec<PathBuf>),
    None,
}

fn freezer_of(paths: &[PathBuf]) -> Freezer {
    if let Some(p) = paths.iter().find(|p| p.join(V1_STATE).is_file()) {
        return Freezer::V1(p.clone());
    }
    let v2: Vec<PathBuf> = paths.iter().filter(|p| p.join(V2_FREEZE).is_file()).cloned().collect();
    if v2.is_empty() {
        Freezer::None
    } else {
        Freezer::V2(v2)
    }
}

fn no_freezer(paths: &[PathBuf]) -> Error {
    Error::Cgroup(format!(
        "no freezer for this container's cgroup (neither {V1_STATE} nor {V2_FREEZE} in {paths:?})"
    ))
}

impl Manager {
    /// Freezes every task of the cgroup; returns once the kernel reports it frozen. On a
    /// timeout the cgroup is thawed again and an error returned.
    pub fn freeze(&self) -> Result<()> {
        match freezer_of(&self.paths) {
            Freezer::V1(dir) => v1_freeze(&dir),
            Freezer::V2(dirs) => {
                for (i, d) in dirs.iter().enumerate() {
                    if let Err(e) = v2_set(d, true) {
                        for done in &dirs[..=i] {
                            let _ = v2_set(done, false);
                        }
                        return Err(e);
                    }
                }
                Ok(())
            }
            Freezer::None => Err(no_freezer(&self.paths)),
        }
    }

    /// Thaws the cgroup; returns once the kernel reports it thawed.
    pub fn thaw(&self) -> Result<()> {
        match freezer_of(&self.paths) {
            Freezer::V1(dir) => v1_thaw(&dir),
            Freezer::V2(dirs) => dirs.iter().try_for_each(|d| v2_set(d, false)),
            Freezer::None => Err(no_freezer(&self.paths)),
        }
    }
}

/// True if the container's freezer (the one `freeze` uses) says frozen.
pub(super) fn is_frozen(paths: &[PathBuf]) -> bool {
    match freezer_of(paths) {
        Freezer::V1(dir) => super::v1::frozen(&dir).unwrap_or(false),
        Freezer::V2(dirs) => dirs.iter().any(|d| super::v2::frozen(d).unwrap_or(false)),
        Freezer::None => false,
    }
}

fn read_trim(p: &Path) -> Result<String> {
    fs::read_to_string(p).map(|s| s.trim().to_string()).map_err(|e| Error::io("read", p, e))
}

fn write(p: &Path, v: &str) -> Result<()> {
    fs::write(p, v).map_err(|e| Error::io("write", p, e))
}

/// runc's loop: write FROZEN and read back until the state leaves FREEZING; every 50 rounds
/// thaw briefly so tasks stuck in a syscall (e.g. a vfork parent) can get to a freezable point.
fn v1_freeze(dir: &Path) -> Result<()> {
    let state = dir.join(V1_STATE);
    for i in 0..V1_ROUNDS {
        if i % 50 == 49 {
            let _ = write(&state, "THAWED");
            std::thread::sleep(Duration::from_millis(10));
        }
        write(&state, "FROZEN")?;
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_micros(10));
        }
        match read_trim(&state)?.as_str() {
            "FROZEN" => return Ok(()),
            "FREEZING" => continue,
            other => {
                let _ = write(&state, "THAWED");
                return Err(Error::Cgroup(format!("{}: unexpected state {other:?} while freezing", state.display())));
            }
        }
    }
    let _ = write(&state, "THAWED");
    Err(Error::Cgroup(format!("{}: unable to freeze (tasks stayed FREEZING); thawed again", dir.display())))
}

fn v1_thaw(dir: &Path) -> Result<()> {
    let state = dir.join(V1_STATE);
    for _ in 0..V1_ROUNDS {
        write(&state, "THAWED")?;
        if read_trim(&state)? == "THAWED" {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(Error::Cgroup(format!("{}: unable to thaw", dir.display())))
}

/// `frozen N` from the text of cgroup.events.
fn events_frozen(text: &str) -> Option<bool> {
    text.lines().find_map(|l| l.strip_prefix("frozen ")).map(|v| v.trim() == "1")
}

/// v2: writes cgroup.freeze and waits until cgroup.events agrees. The kernel wakes pollers of
/// cgroup.events (POLLPRI) when it changes; a short poll timeout also covers files that never
/// notify (a test's fake tree).
fn v2_set(dir: &Path, freeze: bool) -> Result<()> {
    let events = dir.join(V2_EVENTS);
    let mut f = fs::File::open(&events).map_err(|e| Error::io("open", &events, e))?;
    write(&dir.join(V2_FREEZE), if freeze { "1" } else { "0" })?;
    let deadline = Instant::now() + V2_TIMEOUT;
    let mut text = String::new();
    loop {
        text.clear();
        f.rewind().map_err(|e| Error::io("read", &events, e))?;
        f.read_to_string(&mut text).map_err(|e| Error::io("read", &events, e))?;
        if events_frozen(&text) == Some(freeze) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
        // Errors (EINTR) only shorten the wait; the loop re-reads either way.
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(10u16));
    }
    if freeze {
        let _ = write(&dir.join(V2_FREEZE), "0");
    }
    let what = if freeze { "freeze" } else { "thaw" };
    Err(Error::Cgroup(format!(
        "{}: unable to {what}: {V2_EVENTS} did not report it within {V2_TIMEOUT:?}",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frozen_line() {
        assert_eq!(events_frozen("populated 1\nfrozen 1\n"), Some(true));
        assert_eq!(events_frozen("populated 0\nfrozen 0\n"), Some(false));
        assert_eq!(events_frozen("populated 0\n"), None);
    }
}
