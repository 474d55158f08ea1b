//! A synchronous rtnetlink client: bridges, veth pairs, addresses, routes, links up and down.
//!
//! One [`Netlink`] handle owns one `NETLINK_ROUTE` socket; each operation is one or a few
//! request/ack round trips (no async runtime, no `ip` command), so the container start path
//! stays in the tens of microseconds per call. A socket belongs to the network namespace of the
//! thread that opened it: [`Netlink::open_in`] opens one inside a container's namespace (on a
//! short-lived helper thread, see [`in_netns`]) and the handle then works there from any thread.
//!
//! Kernel refusals become [`Error::Netlink`] naming the operation and the link or address (with
//! the kernel's extended ack text when it sends one); the errno stays in `source`
//! (`raw_os_error()`), so callers can test for `EEXIST`, `ENODEV`...

mod addr;
mod link;
mod netdev;

use std::io;
use std::os::fd::BorrowedFd;

use netlink_packet_core::{NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sched::{setns, CloneFlags};

pub use addr::{setup_container_iface, IfaceConfig};
pub use link::{LinkInfoSummary, VethSpec};

use crate::{Error, Result};

/// Receive buffer: the kernel sends dump parts of at most 32 KiB; twice that leaves headroom.
const RECV_BUF: usize = 64 * 1024;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_DUMP_INTR: u16 = 16;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Longest interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// A handle on one rtnetlink socket, in the network namespace it was opened in.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// A kernel refusal before it is given a name: the errno and the extended ack text.
#[derive(Debug)]
pub(crate) struct KernelError {
    pub(crate) errno: i32,
    pub(crate) io: io::Error,
    pub(crate) ext: Option<String>,
}

impl KernelError {
    fn io(io: io::Error) -> KernelError {
        KernelError {
            errno: io.raw_os_error().unwrap_or(0),
            io,
            ext: None,
        }
    }

    /// This refusal as the crate's error, naming what was being done.
    pub(crate) fn named(self, op: impl Into<String>) -> Error {
        let op = op.into();
        let op = match self.ext {
            Some(ext) => format!("{op} ({ext})"),
            None => op,
        };
        Error::Netlink { op, source: self.io }
    }
}

pub(crate) type KResult<T> = std::result::Result<T, KernelError>;

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        let sock = Socket::new(NETLINK_ROUTE).map_err(|e| KernelError::io(e).named("open a netlink socket"))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| KernelError::io(e).named("connect the netlink socket"))?;
        // Best effort: the kernel's error text in acks, and acks without the echoed request.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        Ok(Netlink {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Opens a socket in the network namespace `netns` (an fd on `/proc/<pid>/ns/net` or a
    /// bind mount of it); the calling thread's namespace does not change.
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink> {
        in_netns(netns, Netlink::open)
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> KResult<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut bytes = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.sock.send(&bytes, 0).map_err(KernelError::io)?;
        Ok(self.seq)
    }

    /// Receives one datagram into `self.buf`.
    fn recv(&mut self) -> KResult<()> {
        self.buf.clear();
        let n = self.sock.recv(&mut self.buf, 0).map_err(KernelError::io)?;
        if n > self.buf.capacity() {
            return Err(KernelError::io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("netlink reply truncated ({n} bytes)"),
            )));
        }
        Ok(())
    }

    /// Sends `msg` with `NLM_F_ACK` (and `flags`), waits for the kernel's ack or refusal.
    pub(crate) fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> KResult<()> {
        let seq = self.send(msg, NLM_F_ACK | flags)?;
        loop {
            self.recv()?;
            for part in Parts::new(&self.buf) {
                let part = part?;
                if part.seq != seq {
                    continue;
                }
                if part.kind == NLMSG_ERROR {
                    return part.status();
                }
            }
        }
    }

    /// Sends a get request for one object, returns the kernel's answer.
    pub(crate) fn get(&mut self, msg: RouteNetlinkMessage) -> KResult<RouteNetlinkMessage> {
        let seq = self.send(msg, 0)?;
        loop {
            self.recv()?;
            for part in Parts::new(&self.buf) {
                let part = part?;
                if part.seq != seq {
                    continue;
                }
                if part.kind == NLMSG_ERROR {
                    part.status()?;
                    return Err(KernelError::io(io::Error::new(io::ErrorKind::InvalidData, "netlink: ack without an answer")));
                }
                return part.message();
            }
        }
    }

    /// Sends a dump request, returns every object of the answer (retried when the kernel says
    /// the dump was interrupted by a change).
    pub(crate) fn dump(&mut self, msg: RouteNetlinkMessage) -> KResult<Vec<RouteNetlinkMessage>> {
        let mut attempts = 0;
        loop {
            let (out, interrupted) = self.dump_once(msg.clone())?;
            attempts += 1;
            if !interrupted || attempts >= 5 {
                return Ok(out);
            }
        }
    }

    fn dump_once(&mut self, msg: RouteNetlinkMessage) -> KResult<(Vec<RouteNetlinkMessage>, bool)> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            self.recv()?;
            for part in Parts::new(&self.buf) {
                let part = part?;
                if part.seq != seq {
                    continue;
                }
                interrupted |= part.flags & NLM_F_DUMP_INTR != 0;
                match part.kind {
                    NLMSG_DONE | NLMSG_ERROR => {
                        part.status()?;
                        return Ok((out, interrupted));
                    }
                    _ => out.push(part.message()?),
                }
            }
        }
    }
}

/// One netlink message of a received datagram.
struct Part<'a> {
    kind: u16,
    flags: u16,
    seq: u32,
    /// The whole message, header included.
    bytes: &'a [u8],
}

impl Part<'_> {
    fn payload(&self) -> &[u8] {
        &self.bytes[16..]
    }

    /// The status of an `NLMSG_ERROR` (0: an ack) or `NLMSG_DONE` message.
    fn status(&self) -> KResult<()> {
        let p = self.payload();
        let code = match p.get(..4) {
            Some(b) => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        };
        if code == 0 {
            return Ok(());
        }
        let errno = code.abs();
        Err(KernelError {
            errno,
            io: io::Error::from_raw_os_error(errno),
            ext: self.ext_ack(),
        })
    }

    /// The `NLMSGERR_ATTR_MSG` text of an error with extended ack TLVs.
    fn ext_ack(&self) -> Option<String> {
        if self.flags & NLM_F_ACK_TLVS == 0 {
            return None;
        }
        let p = self.payload();
        let mut off = 4;
        if self.kind == NLMSG_ERROR {
            // The refused request's header, and its payload unless capped.
            let orig_len = u32::from_ne_bytes(p.get(4..8)?.try_into().ok()?) as usize;
            off += if self.flags & NLM_F_CAPPED != 0 { 16 } else { orig_len };
        }
        while off + 4 <= p.len() {
            let len = u16::from_ne_bytes([p[off], p[off + 1]]) as usize;
            let kind = u16::from_ne_bytes([p[off + 2], p[off + 3]]) & 0x3fff;
            if len < 4 || off + len > p.len() {
                return None;
            }
            if kind == NLMSGERR_ATTR_MSG {
                let text = &p[off + 4..off + len];
                let text = text.split(|b| *b == 0).next().unwrap_or(text);
                return Some(String::from_utf8_lossy(text).into_owned());
            }
            off += (len + 3) & !3;
        }
        None
    }

    fn message(&self) -> KResult<RouteNetlinkMessage> {
        let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(self.bytes)
            .map_err(|e| KernelError::io(io::Error::new(io::ErrorKind::InvalidData, format!("netlink: bad message from the kernel: {e}"))))?;
        match parsed.payload {
            NetlinkPayload::InnerMessage(m) => Ok(m),
            other => Err(KernelError::io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("netlink: unexpected message {other:?}"),
            ))),
        }
    }
}

/// The messages of one datagram, in order.
struct Parts<'a> {
    buf: &'a [u8],
}

impl<'a> Parts<'a> {
    fn new(buf: &'a [u8]) -> Parts<'a> {
        Parts { buf }
    }
}

impl<'a> Iterator for Parts<'a> {
    type Item = KResult<Part<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let checked = NetlinkBuffer::new_checked(self.buf);
        let Ok(header) = checked else {
            self.buf = &[];
            return Some(Err(KernelError::io(io::Error::new(
                io::ErrorKind::InvalidData,
                "netlink: truncated message from the kernel",
            ))));
        };
        let len = header.length() as usize;
        let part = Part {
            kind: header.message_type(),
            flags: header.flags(),
            seq: header.sequence_number(),
            bytes: &self.buf[..len],
        };
        let next = ((len + 3) & !3).min(self.buf.len());
        self.buf = &self.buf[next..];
        Some(Ok(part))
    }
}

/// Runs `f` on a helper thread that joined the network namespace `netns`; the calling
/// thread's namespaces never change. Sockets opened by `f` belong to `netns` for good.
pub fn in_netns<T: Send>(netns: BorrowedFd<'_>, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("skiff-netns".into())
            .spawn_scoped(scope, move || {
                setns(netns, CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netlink {
                    op: "join the container's network namespace (setns)".into(),
                    source: e.into(),
                })?;
                f()
            })
            .map_err(|e| Error::Netlink {
                op: "start a thread to join a network namespace".into(),
                source: e,
            })?;
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Checks an interface name as the kernel would (`dev_valid_name`), naming it when refused.
pub fn check_ifname(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > IFNAME_MAX {
        "it is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "it is . or .."
    } else if name.bytes().any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace()) {
        "it contains '/', ':', a NUL or a space"
    } else {
        return Ok(());
    };
    Err(Error::Invalid(format!("invalid interface name {name:?}: {why}")))
}
