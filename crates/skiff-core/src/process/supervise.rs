//! Foreground supervision for `run` and `exec`: wait for the container process, forward the
//! signals the runtime receives, and proxy a pty to the caller's terminal.
//!
//! Signals are blocked and read from a signalfd that exists before the child is forked, so
//! an early exit cannot be missed.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Result, SysContext};
use crate::terminal;

const FORWARDED: [Signal; 10] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
    Signal::SIGWINCH,
    Signal::SIGALRM,
    Signal::SIGPIPE,
];

/// Blocked signals, readable from a signalfd.
pub struct Signals {
    fd: SignalFd,
}

/// Blocks SIGCHLD and the forwarded signals; call before forking the child to wait for.
pub fn block() -> Result<Signals> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).ctx(|| "block signals")?;
    let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ctx(|| "signalfd")?;
    Ok(Signals { fd })
}

/// Waits for `pid` to exit, forwarding signals to it and proxying `master` (if any) to our
/// stdin/stdout. Returns the shell-style exit status.
pub fn wait(sig: &Signals, pid: i32, master: Option<OwnedFd>) -> Result<i32> {
    let target = Pid::from_raw(pid);
    let raw = master.as_ref().and_then(|_| terminal::RawMode::enter(0));
    if let Some(m) = &master {
        terminal::copy_winsize(0, m.as_raw_fd());
    }
    let mut stdin_open = master.is_some();
    // Only a pty is proxied; without one the buffer is never used (nor allocated).
    let mut buf = if master.is_some() { vec![0u8; 32 * 1024] } else { Vec::new() };
    let status = 'outer: loop {
        let mut fds = vec![PollFd::new(sig.fd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                // SAFETY: fd 0 stays open for the life of the process.
                fds.push(PollFd::new(unsafe { std::os::fd::BorrowedFd::borrow_raw(0) }, PollFlags::POLLIN));
            }
        }
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => {
                r.ctx(|| "poll")?;
            }
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        if let (Some(m), Some(true)) = (&master, ready.get(1)) {
            if !copy(m.as_raw_fd(), 1, &mut buf) {
                // EIO: every slave closed; the exit follows.
            }
        }
        if let (Some(m), Some(true)) = (&master, ready.get(2)) {
            if !copy(0, m.as_raw_fd(), &mut buf) {
                stdin_open = false;
            }
        }
        if ready[0] {
            while let Ok(Some(info)) = sig.fd.read_signal() {
                let s = Signal::try_from(info.ssi_signo as i32).ok();
                match s {
                    Some(Signal::SIGCHLD) => loop {
                        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                            Ok(WaitStatus::StillAlive) | Err(_) => break,
                            Ok(st) if st.pid() == Some(target) => {
                                if let Some(code) = super::exit_code(st) {
                                    break 'outer code;
                                }
                            }
                            Ok(_) => {}
                        }
                    },
                    Some(Signal::SIGWINCH) => {
                        if let Some(m) = &master {
                            terminal::copy_winsize(0, m.as_raw_fd());
                        }
                    }
                    Some(other) => {
                        let _ = kill(target, other);
                    }
                    None => {}
                }
            }
        }
    };
    if let Some(m) = &master {
        // Drain what the process wrote before exiting.
        let _ = nix::fcntl::fcntl(m, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        while copy(m.as_raw_fd(), 1, &mut buf) {}
    }
    drop(raw);
    Ok(status)
}

/// Copies one read's worth from `from` to `to`; false on EOF or error.
fn copy(from: i32, to: i32, buf: &mut [u8]) -> bool {
    // SAFETY: reading into a buffer we own from an fd we hold.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    let mut off = 0usize;
    while off < n as usize {
        // SAFETY: writing bytes of our own buffer to an fd we hold.
        let w = unsafe { libc::write(to, buf[off..].as_ptr().cast(), n as usize - off) };
        if w <= 0 {
            return false;
        }
        off += w as usize;
    }
    true
}
