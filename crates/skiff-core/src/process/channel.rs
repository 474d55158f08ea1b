//! The runtime <-> child channel: a SOCK_SEQPACKET socketpair carrying one small message per
//! packet. Children are forked (not re-executed), so they already hold the parsed spec; the
//! channel only synchronises steps and carries errors back.

use std::os::fd::{AsFd, OwnedFd};

use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};
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

    /// Receives one message; `None` when the other side closed the channel.
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match socket::recv(std::os::fd::AsRawFd::as_raw_fd(&self.fd), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.ctx(|| "receive from channel")?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(&buf[..n]).map(Some).map_err(|e| Error::Other(format!("decode message: {e}")))
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
}
