//! OOM notifications for a container's memory cgroup.
//!
//! v1: an eventfd registered with `cgroup.event_control` for `memory.oom_control`; the kernel
//! adds 1 to it at each OOM in the cgroup (and once when the cgroup is removed). v2: an inotify
//! watch on `memory.events`, whose `oom` (else `oom_kill`) counter grows at each OOM. Either
//! way [`OomWatch::fd`] becomes readable and [`OomWatch::read`] tells how many OOMs happened.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::Manager;
use crate::error::{Error, Result};

/// A registered OOM notification.
#[derive(Debug)]
pub struct OomWatch {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    V1 {
        efd: OwnedFd,
        /// Kept open: the registration lives as long as this fd.
        _control: fs::File,
        dir: PathBuf,
    },
    V2 {
        inotify: OwnedFd,
        events: PathBuf,
        last: u64,
    },
}

fn last_os_error(what: &'static str, path: &Path) -> Error {
    Error::io(what, path, std::io::Error::last_os_error())
}

impl OomWatch {
    /// Registers for OOM notifications of the memory cgroup among `m`'s directories (the v1
    /// memory hierarchy, else a cgroup2 directory with `memory.events`).
    pub fn new(m: &Manager) -> Result<OomWatch> {
        if let Some(dir) = m.paths.iter().find(|p| p.join("memory.oom_control").is_file()) {
            return v1(dir);
        }
        if let Some(dir) = m.paths.iter().find(|p| p.join("memory.events").is_file()) {
            return v2(dir);
        }
        Err(Error::Cgroup(format!("no memory cgroup to watch for OOM in {:?}", m.paths)))
    }

    /// Readable when an OOM (or, v1, the cgroup's removal) was signalled.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { efd, .. } => efd.as_fd(),
            Kind::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// The number of OOMs since the last call; 0 when there were none (never blocks).
    pub fn read(&mut self) -> Result<u64> {
        match &mut self.kind {
            Kind::V1 { efd, dir, .. } => {
                let mut buf = [0u8; 8];
                match nix::unistd::read(efd.as_fd(), &mut buf) {
                    Ok(8) => {}
                    Ok(_) | Err(nix::errno::Errno::EAGAIN) => return Ok(0),
                    Err(e) => return Err(Error::sys("read OOM eventfd", e)),
                }
                // The kernel also signals the eventfd when the cgroup goes away.
                if !dir.join("cgroup.event_control").exists() {
                    return Ok(0);
                }
                Ok(u64::from_ne_bytes(buf))
            }
            Kind::V2 { inotify, events, last } => {
                let mut buf = [0u8; 4096];
                // Drain the inotify queue; only the counter matters.
                while matches!(nix::unistd::read(inotify.as_fd(), &mut buf), Ok(n) if n > 0) {}
                let now = v2_count(events)?;
                let new = now.saturating_sub(*last);
                *last = now;
                Ok(new)
            }
        }
    }
}

fn v1(dir: &Path) -> Result<OomWatch> {
    let oc_path = dir.join("memory.oom_control");
    let control = fs::File::open(&oc_path).map_err(|e| Error::io("open", &oc_path, e))?;
    // SAFETY: eventfd takes two integers and returns a new fd or -1; no memory is shared.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if raw < 0 {
        return Err(last_os_error("eventfd for", &oc_path));
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    let efd = unsafe { OwnedFd::from_raw_fd(raw) };
    let ec = dir.join("cgroup.event_control");
    fs::write(&ec, format!("{} {}", efd.as_raw_fd(), control.as_raw_fd())).map_err(|e| Error::io("register OOM eventfd in", &ec, e))?;
    Ok(OomWatch { kind: Kind::V1 { efd, _control: control, dir: dir.to_path_buf() } })
}

/// The OOM counter of a cgroup2 memory.events file.
fn v2_count(events: &Path) -> Result<u64> {
    let text = fs::read_to_string(events).map_err(|e| Error::io("read", events, e))?;
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
    };
    Ok(get("oom").or_else(|| get("oom_kill")).unwrap_or(0))
}

fn v2(dir: &Path) -> Result<OomWatch> {
    let events = dir.join("memory.events");
    let c = CString::new(events.as_os_str().as_bytes()).map_err(|_| Error::Cgroup(format!("{}: NUL in path", events.display())))?;
    // SAFETY: inotify_init1 takes flags and returns a new fd or -1.
    let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if raw < 0 {
        return Err(last_os_error("inotify watch on", &events));
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    let inotify = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call; the fd is ours.
    let wd = unsafe { libc::inotify_add_watch(inotify.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
    if wd < 0 {
        return Err(last_os_error("inotify watch on", &events));
    }
    let last = v2_count(&events)?;
    Ok(OomWatch { kind: Kind::V2 { inotify, events, last } })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a fake tree inotify works on plain files too: a growing counter is reported once.
    #[test]
    fn v2_counts_new_ooms() {
        let tmp = tempfile::tempdir().unwrap();
        let ev = tmp.path().join("memory.events");
        fs::write(&ev, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
        let mut w = OomWatch::new(&Manager { paths: vec![tmp.path().to_path_buf()] }).unwrap();
        assert_eq!(w.read().unwrap(), 0);
        fs::write(&ev, "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\n").unwrap();
        let mut fds = [nix::poll::PollFd::new(w.fd(), nix::poll::PollFlags::POLLIN)];
        assert_eq!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16)).unwrap(), 1);
        assert_eq!(w.read().unwrap(), 2);
        assert_eq!(w.read().unwrap(), 0);
    }

    #[test]
    fn no_memory_cgroup_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let e = OomWatch::new(&Manager { paths: vec![tmp.path().to_path_buf()] }).unwrap_err();
        assert!(e.to_string().contains("no memory cgroup"), "{e}");
    }
}
