//! The runtime <-> child channel: a SOCK_SEQPACKET socketpair carrying one small message per
//! packet. Children are forked (not re-executed), so they already hold the parsed spec; the
//! channel only synchronises steps and carries errors back.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

/// Messages between the runtime (parent) and its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Child: namespaces joined and user namespace made; write id maps and join cgroups.
    Stage1,
    /// Parent: go on.
    Go,
    /// First child: the init's pid (in the runtime's pid namespace).
    InitPid(i32),
    /// Init: mounts done; run createRuntime hooks and send the state.
    Hooks,
    /// Parent: the OCI state JSON for in-container hooks.
    State(String),
    /// Init: set up, waiting for start.
    Ready,
    /// Child: the seccomp filter is loaded; its notify fd travels with this message
    /// (SCM_RIGHTS). The parent hands it to the agent at `listenerPath` and answers `Go`.
    SeccompFd,
    /// A child failed; the text is the error.
    Error(String),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair (parent end, child end), both close-on-exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .ctx(|| "socketpair")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let data = serde_json::to_vec(msg).map_err(|e| Error::Other(format!("encode message: {e}")))?;
        loop {
            match socket::send(std::os::fd::AsRawFd::as_raw_fd(&self.fd), &data, MsgFlags::MSG_NOSIGNAL) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r.map(|_| ()).ctx(|| "send to channel"),
            }
        }
    }

    /// Sends `msg` with `fd` attached (SCM_RIGHTS) in the same packet.
    pub fn send_with_fd(&self, msg: &Msg, fd: BorrowedFd) -> Result<()> {
        let data = serde_json::to_vec(msg).map_err(|e| Error::Other(format!("encode message: {e}")))?;
        let fds = [fd.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [IoSlice::new(&data)];
        loop {
            match socket::sendmsg::<()>(self.fd.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r.map(|_| ()).ctx(|| "send to channel"),
            }
        }
    }

    /// Receives one message; `None` when the other side closed the channel. An fd sent along
    /// is closed; see [`Channel::recv_with_fd`].
    pub fn recv(&self) -> Result<Option<Msg>> {
        Ok(self.recv_with_fd()?.map(|(m, _)| m))
    }

    /// Receives one message and the fd sent with it, if any.
    pub fn recv_with_fd(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        // A buffer of the packet's size: a fixed 64 KB one was zeroed (and so made resident)
        // on every message, for packets that are mostly a few bytes.
        let mut buf = vec![0u8; self.next_len()?.max(1)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match socket::recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => {
                    let msg = r.ctx(|| "receive from channel")?;
                    let mut fd = None;
                    for c in msg.cmsgs().ctx(|| "receive from channel")? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for raw in fds {
                                // SAFETY: the kernel installed these fds in our table for us.
                                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (msg.bytes, fd);
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..n]).map_err(|e| Error::Other(format!("decode message: {e}")))?;
        Ok(Some((msg, fd)))
    }

    /// The length of the next packet, without taking it (MSG_PEEK | MSG_TRUNC gives the real
    /// length whatever the buffer); 0 at EOF.
    fn next_len(&self) -> Result<usize> {
        loop {
            // SAFETY: a zero-length peek into no buffer; the kernel only reports the size.
            let r = unsafe { libc::recv(self.fd.as_raw_fd(), std::ptr::null_mut(), 0, libc::MSG_PEEK | libc::MSG_TRUNC) };
            if r >= 0 {
                return Ok(r as usize);
            }
            match nix::errno::Errno::last() {
                nix::errno::Errno::EINTR => continue,
                e => return Err(e).ctx(|| "receive from channel"),
            }
        }
    }

    /// Receives a message and requires it to be `want` (an `Error` becomes an error).
    pub fn expect(&self, want: &Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if &m == want => Ok(()),
            Some(Msg::Error(e)) => Err(Error::Init(e)),
            Some(m) => Err(Error::Other(format!("unexpected message {m:?}, wanted {want:?}"))),
            None => Err(Error::Init("the other side of the channel exited".into())),
        }
    }

    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_eof() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::InitPid(42)).unwrap();
        a.send(&Msg::Error("boom".into())).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::InitPid(42)));
        let e = b.expect(&Msg::Go).unwrap_err().to_string();
        assert_eq!(e, "boom");
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn big_messages_arrive_whole() {
        let (a, b) = pair().unwrap();
        let big = "x".repeat(100 * 1024);
        a.send(&Msg::State(big.clone())).unwrap();
        a.send(&Msg::Go).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Msg::State(big)));
        assert_eq!(b.recv().unwrap(), Some(Msg::Go));
    }

    #[test]
    fn fd_travels_with_its_message() {
        let (a, b) = pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        a.send_with_fd(&Msg::SeccompFd, w.as_fd()).unwrap();
        drop(w);
        let (m, fd) = b.recv_with_fd().unwrap().unwrap();
        assert_eq!(m, Msg::SeccompFd);
        nix::unistd::write(fd.unwrap(), b"x").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(&r, &mut buf).unwrap(), 1);
        a.send(&Msg::Go).unwrap();
        assert!(matches!(b.recv_with_fd().unwrap(), Some((Msg::Go, None))));
    }
}
