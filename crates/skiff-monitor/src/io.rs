//! Thin wrappers over the few syscalls the monitor makes.

use std::io::{Error, Result};

/// Returns the last OS error unless `r` is non-negative.
pub fn check(r: libc::c_int) -> Result<libc::c_int> {
    if r < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// One read; `Ok(0)` is end of file (or EIO on a pty whose slaves are all closed).
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize> {
    loop {
        // SAFETY: reading into a buffer we own.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EIO) => return Ok(0),
            _ => return Err(e),
        }
    }
}

/// One write; returns how much was written.
pub fn write(fd: i32, buf: &[u8]) -> Result<usize> {
    loop {
        // SAFETY: writing from a buffer we own.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Writes all of `buf` to a blocking fd.
pub fn write_all(fd: i32, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

pub fn set_nonblocking(fd: i32, on: bool) {
    // SAFETY: fcntl on an fd we hold.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            let fl = if on { fl | libc::O_NONBLOCK } else { fl & !libc::O_NONBLOCK };
            libc::fcntl(fd, libc::F_SETFL, fl);
        }
    }
}

pub fn set_cloexec(fd: i32, on: bool) {
    // SAFETY: fcntl on an fd we hold.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFD);
        if fl >= 0 {
            let fl = if on { fl | libc::FD_CLOEXEC } else { fl & !libc::FD_CLOEXEC };
            libc::fcntl(fd, libc::F_SETFD, fl);
        }
    }
}

pub fn close(fd: i32) {
    // SAFETY: closing an fd we own and no longer use.
    unsafe { libc::close(fd) };
}

/// A signalfd for SIGCHLD (blocked first, so no exit is missed).
pub fn sigchld_fd() -> Result<i32> {
    // SAFETY: plain signal-mask calls on a set we build here.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        check(libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()))?;
        // A client going away must not kill us; the monitor outlives terminals.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        check(libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK))
    }
}

/// Drains a signalfd.
pub fn drain_signalfd(fd: i32) {
    let mut buf = [0u8; 128 * 4];
    while matches!(read(fd, &mut buf), Ok(n) if n > 0) {}
}

/// Reaps every exited child; returns the shell-style status of `target` if it was among them.
pub fn reap(target: i32) -> Option<i32> {
    let mut found = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return found;
        }
        if pid == target {
            found = Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                continue;
            });
        }
    }
}

/// Sets the window size of a pty master.
pub fn resize(fd: i32, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a winsize we own.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}
