//! Starting a network helper detached from the caller, with a keeper process that ties the
//! helper's life to the container's.
//!
//! ```text
//! caller ── fork ──> A: setsid, fork, _exit(0)         (reaped at once by the caller)
//!                    └─> keeper: fork+exec helper, then poll(container pidfd, helper pidfd)
//!                         └─> helper (pasta -f / slirp4netns): fds 0=/dev/null, 1,2=log,
//!                             3.. = the fds it was given, nothing else
//! ```
//!
//! The keeper writes the helper's pid on `info`, then waits: when the container's init exits it
//! sends the helper SIGTERM (SIGKILL after 5 s) and closes its end of the helper's exit pipe
//! (slirp4netns `--exit-fd`); when the helper exits first it writes the wait status on `info`
//! (the caller may still be waiting for readiness) and exits. Its stdio is /dev/null and it
//! holds no fd of the caller's but the container's pidfd, `info` and `keep`.
//!
//! Everything between `fork` and `execve`/`_exit` is raw async-signal-safe calls on data
//! prepared beforehand: the caller may be multithreaded.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// What the helper is started with.
pub(super) struct Command<'a> {
    /// Absolute path of the program.
    pub program: &'a std::path::Path,
    /// argv, argv[0] included.
    pub args: Vec<String>,
    /// Become fds 3, 4, ... in the helper, in this order.
    pub fds: Vec<RawFd>,
    /// stdout and stderr of the helper.
    pub log: RawFd,
    /// pidfd of the container's init: the keeper ends the helper when it exits.
    pub container: RawFd,
    /// Held by the keeper only (the write end of slirp4netns's exit pipe).
    pub keep: Option<OwnedFd>,
}

/// Opens a pidfd on `pid` (CLOEXEC).
pub(super) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd_open returned a bad fd"))?;
    // SAFETY: the kernel just gave us this fd, nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `sig` to the process of `pidfd`.
pub(super) fn pidfd_signal(pidfd: RawFd, sig: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal with a NULL siginfo and no flags only reads its arguments.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd, sig, std::ptr::null::<libc::siginfo_t>(), 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `ms` for `fd` to become readable (or hung up). `Ok(false)` on timeout.
pub(super) fn wait_readable(fd: RawFd, ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n >= 0 {
            return Ok(n > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A pipe, both ends CLOEXEC: (read, write).
pub(super) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in an argument"))
}

/// Starts the keeper and the helper. Returns the read end of `info` (the helper's pid comes
/// first, see [`read_i32`]) once the intermediate process is reaped.
pub(super) fn start(cmd: Command<'_>) -> io::Result<OwnedFd> {
    let program = cstring(cmd.program.as_os_str())?;
    let args = cmd.args.iter().map(|a| cstring(OsStr::new(a))).collect::<io::Result<Vec<_>>>()?;
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstring(OsStr::from_bytes(&kv))
        })
        .collect::<io::Result<Vec<_>>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let devnull = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    let (info_r, info_w) = pipe()?;
    let keep = cmd.keep.as_ref().map_or(-1, |f| f.as_raw_fd());
    let prepared = Prepared {
        program: &program,
        argv: &argv,
        envp: &envp,
        fds: &cmd.fds,
        log: cmd.log,
        devnull: devnull.as_raw_fd(),
        container: cmd.container,
        info: info_w.as_raw_fd(),
        keep,
    };
    // SAFETY: the child only runs async-signal-safe calls (see `intermediate`) on `prepared`,
    // which was fully built before the fork.
    let a = unsafe { libc::fork() };
    if a < 0 {
        return Err(io::Error::last_os_error());
    }
    if a == 0 {
        intermediate(&prepared);
    }
    drop(info_w);
    drop(cmd.keep);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child `a`.
        let r = unsafe { libc::waitpid(a, &mut status, 0) };
        if r >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(io::Error::other("could not start the helper's keeper process (fork failed)"));
    }
    Ok(info_r)
}

/// Reads one native-endian i32 from a blocking pipe; `None` on EOF.
pub(super) fn read_i32(fd: RawFd) -> io::Result<Option<i32>> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        // SAFETY: reads at most 4 - got bytes into our buffer.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), 4 - got) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(None);
        }
        got += n.unsigned_abs();
    }
    Ok(Some(i32::from_ne_bytes(buf)))
}

struct Prepared<'a> {
    program: &'a CString,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    fds: &'a [RawFd],
    log: RawFd,
    devnull: RawFd,
    container: RawFd,
    info: RawFd,
    keep: RawFd,
}

fn write_i32(fd: RawFd, v: i32) {
    let b = v.to_ne_bytes();
    // SAFETY: writes 4 bytes from our buffer; a failure (the caller gone: EPIPE, SIGPIPE is
    // ignored in the keeper) is of no consequence.
    unsafe { libc::write(fd, b.as_ptr().cast(), 4) };
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Closes every fd >= 3 but those in `keep` (sorted here, no allocation: at most 4).
fn close_all_but(keep: &[RawFd]) {
    let mut k = [RawFd::MAX; 4];
    let mut n = 0;
    for &fd in keep {
        if fd >= 3 && n < k.len() {
            k[n] = fd;
            n += 1;
        }
    }
    k[..n].sort_unstable();
    let mut from: libc::c_uint = 3;
    for &fd in &k[..n] {
        let fd = fd.unsigned_abs();
        if fd > from {
            // SAFETY: closes a range of fds of this (forked) process.
            unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0) };
        }
        from = fd + 1;
    }
    // SAFETY: as above, up to the highest possible fd.
    unsafe { libc::syscall(libc::SYS_close_range, from, libc::c_uint::MAX, 0) };
}

/// A: a new session, then the keeper in it; A exits so that the keeper is not our child.
fn intermediate(p: &Prepared<'_>) -> ! {
    // SAFETY: setsid, fork and _exit are async-signal-safe; the keeper only runs `keeper`.
    unsafe {
        libc::setsid();
        match libc::fork() {
            0 => keeper(p),
            b if b < 0 => libc::_exit(1),
            _ => libc::_exit(0),
        }
    }
}

fn keeper(p: &Prepared<'_>) -> ! {
    // SAFETY: signal/fork/dup2 are async-signal-safe; the helper branch only runs `exec_helper`.
    let c = unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::fork()
    };
    if c == 0 {
        exec_helper(p);
    }
    if c < 0 {
        write_i32(p.info, -errno());
        // SAFETY: ends this forked process.
        unsafe { libc::_exit(1) };
    }
    write_i32(p.info, c);
    // SAFETY: dup2 onto our own stdio.
    unsafe {
        libc::dup2(p.devnull, 0);
        libc::dup2(p.devnull, 1);
        libc::dup2(p.devnull, 2);
    }
    close_all_but(&[p.container, p.info, p.keep]);
    // SAFETY: pidfd_open on our own unreaped child.
    let helper = unsafe { libc::syscall(libc::SYS_pidfd_open, c, 0) } as RawFd;
    let mut fds = [
        libc::pollfd {
            fd: p.container,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: helper,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: two valid pollfds (a negative fd, should pidfd_open have failed, is ignored).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        let mut status = 0;
        if n > 0 && fds[1].revents != 0 {
            // SAFETY: reaps our own child.
            unsafe { libc::waitpid(c, &mut status, 0) };
            write_i32(p.info, status);
            // SAFETY: ends this forked process.
            unsafe { libc::_exit(0) };
        }
        // The container is gone (or poll failed: do not leave the helper behind either).
        // SAFETY: signals and reaps our own child (not reaped yet, so its pid is not reused).
        unsafe {
            libc::kill(c, libc::SIGTERM);
            if p.keep >= 0 {
                libc::close(p.keep);
            }
            let mut h = libc::pollfd {
                fd: helper,
                events: libc::POLLIN,
                revents: 0,
            };
            if helper < 0 || libc::poll(&mut h, 1, 5000) <= 0 {
                libc::kill(c, libc::SIGKILL);
            }
            libc::waitpid(c, &mut status, 0);
            libc::_exit(0);
        }
    }
}

/// The helper: stdio, fds 3.. as given, nothing else open, default signal mask and SIGPIPE.
fn exec_helper(p: &Prepared<'_>) -> ! {
    // SAFETY: only async-signal-safe calls; the pointers in `p` were built before the fork and
    // the argv/envp arrays are NULL-terminated.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // Everything to >= 64 first, so that no source is overwritten by a target.
        let devnull = libc::fcntl(p.devnull, libc::F_DUPFD_CLOEXEC, 64);
        let log = libc::fcntl(p.log, libc::F_DUPFD_CLOEXEC, 64);
        let mut high = [-1 as RawFd; 8];
        for (i, &fd) in p.fds.iter().take(high.len()).enumerate() {
            high[i] = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 64);
        }
        if devnull < 0 || log < 0 || high[..p.fds.len().min(8)].iter().any(|&fd| fd < 0) {
            libc::_exit(126);
        }
        libc::dup2(devnull, 0);
        libc::dup2(log, 1);
        libc::dup2(log, 2);
        let mut next: RawFd = 3;
        for &fd in high.iter().take(p.fds.len().min(8)) {
            libc::dup2(fd, next);
            next += 1;
        }
        libc::syscall(libc::SYS_close_range, next.unsigned_abs(), libc::c_uint::MAX, 0);
        libc::execve(p.program.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
        libc::_exit(127);
    }
}
