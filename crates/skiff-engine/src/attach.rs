//! The client side of attach: connect to a container's monitor, copy our stdin to it and its
//! output to our stdout/stderr, forward terminal resizes, and detach on ctrl-p ctrl-q.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use skiff_monitor::proto;

use crate::error::{Error, Result};

/// How an attach session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container exited with this status (and, for a session we started, the monitor's
    /// cleanup has finished).
    Exited(i32),
    /// The user typed the detach keys.
    Detached,
    /// The monitor went away without telling us an exit status.
    Lost,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    /// Forward our stdin.
    pub stdin: bool,
    /// Our stdin is a terminal that goes raw, and resizes are forwarded.
    pub tty: bool,
    /// Close the container's stdin when ours ends (`run -i`).
    pub close_stdin: bool,
    /// Detach keys (ctrl-p ctrl-q by default); empty disables.
    pub detach_keys: Vec<u8>,
    /// Signals received are sent to the container through this (`--sig-proxy`); set by the
    /// caller, which knows how to signal the container.
    pub proxy_signals: bool,
    /// The caller cleans up after the exit itself (see `proto::CLEANUP`): the session ends at
    /// the exit status instead of waiting for the monitor's cleanup, and the caller sends
    /// [`cleaned`] when done.
    pub cleanup: bool,
}

/// Tells the monitor the caller's cleanup is done (after [`AttachOptions::cleanup`]).
pub fn cleaned(sock: &OwnedFd) {
    send(sock, proto::CLEANED, &[]);
}

/// Connects to the monitor's attach socket (through `/proc/self/fd` for long paths).
pub fn connect(dir: &std::path::Path) -> Result<OwnedFd> {
    let d = std::fs::File::open(dir).map_err(|e| Error::io("open", dir, e))?;
    let path = format!("/proc/self/fd/{}/attach.sock", d.as_raw_fd());
    let s = UnixStream::connect(&path).map_err(|e| Error::Conflict(format!("cannot attach: the container's monitor does not answer ({e})")))?;
    Ok(s.into())
}

pub const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Parses Docker's `--detach-keys` (`ctrl-p,ctrl-q`, `ctrl-a,x`).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    s.split(',')
        .map(|k| {
            let k = k.trim();
            if let Some(c) = k.strip_prefix("ctrl-") {
                let b = c.as_bytes();
                match b {
                    [c @ b'a'..=b'z'] => Ok(c - b'a' + 1),
                    [b'@'] => Ok(0),
                    [b'['] => Ok(27),
                    [b'\\'] => Ok(28),
                    [b']'] => Ok(29),
                    [b'^'] => Ok(30),
                    [b'_'] => Ok(31),
                    _ => Err(Error::Invalid(format!("Invalid detach keys ({s}) provided"))),
                }
            } else if k.len() == 1 {
                Ok(k.as_bytes()[0])
            } else {
                Err(Error::Invalid(format!("Invalid detach keys ({s}) provided")))
            }
        })
        .collect()
}

fn winsize(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ into a winsize we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
    }
}

/// Our terminal's size, if stdin is a terminal.
pub fn terminal_size() -> Option<(u16, u16)> {
    winsize(0)
}

fn send(sock: &OwnedFd, kind: u8, payload: &[u8]) -> bool {
    let f = proto::frame(kind, payload);
    let mut off = 0;
    while off < f.len() {
        match nix::unistd::write(sock, &f[off..]) {
            Ok(n) => off += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Runs an attach session on `sock` until the container exits, the user detaches or the
/// monitor goes away. `on_signal` is called for each signal to forward.
pub fn session(sock: &OwnedFd, opts: &AttachOptions, on_signal: &mut dyn FnMut(Signal)) -> Result<Ended> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGWINCH);
    if opts.proxy_signals {
        for s in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGQUIT,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
        ] {
            set.add(s);
        }
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(|e| Error::Other(format!("sigprocmask: {e}")))?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| Error::Other(format!("signalfd: {e}")))?;
    if opts.cleanup {
        send(sock, proto::CLEANUP, &[]);
    }
    let raw = if opts.tty { skiff_core::terminal::RawMode::enter(0) } else { None };
    if opts.tty {
        if let Some((r, c)) = terminal_size() {
            let mut p = r.to_be_bytes().to_vec();
            p.extend_from_slice(&c.to_be_bytes());
            send(sock, proto::RESIZE, &p);
        }
    }
    let mut stdin_open = opts.stdin;
    let mut inbuf = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut matched = 0usize;
    let mut exit = None;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let result = 'session: loop {
        // SAFETY: fd 0 stays open for the life of the process.
        let stdin_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
        let mut fds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN), PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => break Err(Error::Other(format!("poll: {e}"))),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        if ready[0] {
            match nix::unistd::read(sock, &mut buf) {
                Ok(0) | Err(_) => break Ok(exit.map_or(Ended::Lost, Ended::Exited)),
                Ok(n) => {
                    inbuf.extend_from_slice(&buf[..n]);
                    let frames = proto::take_frames(&mut inbuf).map_err(Error::Other)?;
                    for (kind, data) in frames {
                        match kind {
                            proto::STDOUT => {
                                let mut o = stdout.lock();
                                let _ = o.write_all(&data);
                                let _ = o.flush();
                            }
                            proto::STDERR => {
                                let mut e = stderr.lock();
                                let _ = e.write_all(&data);
                                let _ = e.flush();
                            }
                            proto::EXIT if data.len() == 4 => {
                                exit = Some(i32::from_be_bytes([data[0], data[1], data[2], data[3]]));
                                // Nothing more to send; wait for the monitor's cleanup to close,
                                // unless the cleanup is ours.
                                stdin_open = false;
                                if opts.cleanup {
                                    break 'session Ok(Ended::Exited(exit.unwrap_or(0)));
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        if ready[1] {
            while let Ok(Some(info)) = sfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGWINCH) => {
                        if let Some((r, c)) = terminal_size() {
                            let mut p = r.to_be_bytes().to_vec();
                            p.extend_from_slice(&c.to_be_bytes());
                            send(sock, proto::RESIZE, &p);
                        }
                    }
                    Ok(s) => on_signal(s),
                    Err(_) => {}
                }
            }
        }
        if stdin_open && ready.get(2) == Some(&true) {
            match nix::unistd::read(stdin_fd, &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    if opts.close_stdin {
                        send(sock, proto::STDIN_CLOSE, &[]);
                    }
                }
                Ok(n) => {
                    let data = &buf[..n];
                    if !opts.detach_keys.is_empty() {
                        // The detach sequence may span reads; bytes of a partial match are
                        // held back until it completes or breaks.
                        let mut out = Vec::with_capacity(n);
                        let mut detached = false;
                        for &b in data {
                            if b == opts.detach_keys[matched] {
                                matched += 1;
                                if matched == opts.detach_keys.len() {
                                    detached = true;
                                    break;
                                }
                            } else {
                                out.extend_from_slice(&opts.detach_keys[..matched]);
                                matched = 0;
                                if b == opts.detach_keys[0] {
                                    matched = 1;
                                } else {
                                    out.push(b);
                                }
                            }
                        }
                        if !out.is_empty() && !send(sock, proto::STDIN, &out) {
                            stdin_open = false;
                        }
                        if detached {
                            break Ok(Ended::Detached);
                        }
                    } else if !send(sock, proto::STDIN, data) {
                        stdin_open = false;
                    }
                }
            }
        }
    };
    drop(raw);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), DEFAULT_DETACH_KEYS.to_vec());
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert!(parse_detach_keys("ctrl-pp").is_err());
    }
}
