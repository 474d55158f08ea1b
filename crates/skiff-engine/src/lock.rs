//! Advisory file locks (`flock`): held for the life of the returned guard, released by the
//! kernel if the holder dies, so a SIGKILL never leaves a stale lock.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug)]
pub struct Lock {
    _file: File,
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("open lock", path, e))
}

/// Takes an exclusive lock on `path` (created if missing), waiting for it.
pub fn exclusive(path: &Path) -> Result<Lock> {
    let file = open(path)?;
    flock(&file, libc::LOCK_EX).map_err(|e| Error::io("lock", path, e))?;
    Ok(Lock { _file: file })
}

/// Takes an exclusive lock without waiting; `None` if someone holds it.
pub fn try_exclusive(path: &Path) -> Result<Option<Lock>> {
    let file = open(path)?;
    match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => Ok(Some(Lock { _file: file })),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
        Err(e) => Err(Error::io("lock", path, e)),
    }
}

fn flock(f: &File, op: i32) -> std::io::Result<()> {
    loop {
        // SAFETY: flock on an fd we hold.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}
