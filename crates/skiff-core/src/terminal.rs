//! Terminals: the container's pty (made inside the container's devpts), handing its master to
//! the caller over a console socket with SCM_RIGHTS as runc does, and the foreground proxy that
//! wires a pty to the caller's own terminal.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;

use crate::error::{Error, Result, SysContext};

/// Connects to a console socket given by path (a unix stream socket the caller listens on).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let fd = socket::socket(socket::AddressFamily::Unix, socket::SockType::Stream, socket::SockFlag::SOCK_CLOEXEC, None)
        .ctx(|| "console socket")?;
    let addr = socket::UnixAddr::new(path).ctx(|| format!("console socket {}", path.display()))?;
    socket::connect(fd.as_raw_fd(), &addr).ctx(|| format!("connect to console socket {}", path.display()))?;
    Ok(fd)
}

/// Sends `fd` over a unix socket with `name` as payload (runc's SendFd).
pub fn send_fd(sock: BorrowedFd, name: &str, fd: RawFd) -> Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    socket::sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).ctx(|| "send pty master on console socket")?;
    Ok(())
}

/// Receives one fd sent with [`send_fd`].
pub fn recv_fd(sock: BorrowedFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = socket::recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .ctx(|| "receive pty master")?;
    for c in msg.cmsgs().ctx(|| "receive pty master")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel installed this fd in our table for us; we own it now.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(Error::Other("console socket closed without sending a pty master".into()))
}

/// In the container's init (after pivot_root): opens a pty in the container's devpts, sends the
/// master over `sock`, and makes the slave the controlling terminal and stdio.
pub fn setup_console(sock: &OwnedFd) -> Result<()> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).ctx(|| "open /dev/ptmx")?;
    nix::pty::grantpt(&master).ctx(|| "grantpt")?;
    nix::pty::unlockpt(&master).ctx(|| "unlockpt")?;
    let name = nix::pty::ptsname_r(&master).ctx(|| "ptsname")?;
    let slave = nix::fcntl::open(name.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open {name}"))?;
    send_fd(sock.as_fd(), &name, master.as_raw_fd())?;
    drop(master);
    for target in 0..3 {
        // SAFETY: dup2 onto stdio fds; the source fd stays open until the loop ends.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(Error::sys(format!("dup2 pty onto fd {target}"), nix::errno::Errno::last()));
        }
    }
    // SAFETY: TIOCSCTTY takes an int argument; fd 0 is the pty slave now.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(Error::sys("make the pty the controlling terminal", nix::errno::Errno::last()));
    }
    drop(slave);
    Ok(())
}

/// Puts the caller's terminal in raw mode while alive; restores it on drop.
pub struct RawMode {
    fd: RawFd,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    /// Raw mode on `fd` if it is a terminal.
    pub fn enter(fd: RawFd) -> Option<RawMode> {
        // SAFETY: fd is one of our stdio fds, valid for the lifetime of the process.
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        let saved = nix::sys::termios::tcgetattr(b).ok()?;
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(b, nix::sys::termios::SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: see `enter`.
        let b = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = nix::sys::termios::tcsetattr(b, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

/// Copies the window size of `from` (the caller's terminal) to the pty `to`.
pub fn copy_winsize(from: RawFd, to: RawFd) {
    let mut ws: libc::winsize = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write a winsize struct we own.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}
