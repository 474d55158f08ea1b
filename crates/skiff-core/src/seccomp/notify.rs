//! `SCMP_ACT_NOTIFY`: handing the filter's notify fd to the seccomp agent, as runc does.
//!
//! The container's process loads the filter and sends the fd to the runtime over the channel;
//! the runtime connects to `linux.seccomp.listenerPath` (a unix stream socket) and sends one
//! message: runc's `specs.ContainerProcessState` as JSON, with the fd in SCM_RIGHTS.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::socket::{self, ControlMessage, MsgFlags};
use oci_spec::runtime::LinuxSeccomp;
use serde::Serialize;

use crate::error::{Error, Result};

/// The name of the one fd sent, in `fds` (runc's `specs.SeccompFdName`).
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// runc's `specs.ContainerProcessState`.
#[derive(Serialize)]
struct ContainerProcessState<'a> {
    #[serde(rename = "ociVersion")]
    version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    state: serde_json::Value,
}

/// The message the agent receives: `state` is the container's OCI state JSON.
pub fn process_state(seccomp: &LinuxSeccomp, pid: i32, state: &str) -> Result<Vec<u8>> {
    let state: serde_json::Value = serde_json::from_str(state).map_err(|e| Error::Other(format!("seccomp notify: container state: {e}")))?;
    let msg = ContainerProcessState {
        version: crate::spec::OCI_VERSION,
        fds: [SECCOMP_FD_NAME],
        pid,
        metadata: seccomp.listener_metadata().as_deref().unwrap_or(""),
        state,
    };
    serde_json::to_vec(&msg).map_err(|e| Error::Other(format!("seccomp notify: encode state: {e}")))
}

/// Connects to `listenerPath` and sends the process state with `fd`.
pub fn send_to_agent(seccomp: &LinuxSeccomp, pid: i32, state: &str, fd: BorrowedFd) -> Result<()> {
    let path = seccomp.listener_path().as_ref().ok_or_else(|| Error::field("linux.seccomp.listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath"))?;
    let bad = |what: &str, e: nix::Error| Error::field("linux.seccomp.listenerPath", format!("{what} {}: {e}", path.display()));
    let data = process_state(seccomp, pid, state)?;
    let sock = socket::socket(socket::AddressFamily::Unix, socket::SockType::Stream, socket::SockFlag::SOCK_CLOEXEC, None).map_err(|e| bad("socket for", e))?;
    let addr = socket::UnixAddr::new(path.as_path()).map_err(|e| bad("address", e))?;
    socket::connect(sock.as_raw_fd(), &addr).map_err(|e| bad("connect to", e))?;
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(&data)];
    let n = loop {
        match socket::sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r.map_err(|e| bad("send the notify fd to", e))?,
        }
    };
    if n != data.len() {
        return Err(Error::field("linux.seccomp.listenerPath", format!("short write to {} ({n} of {} bytes)", path.display(), data.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_state_has_runcs_shape() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock", "listenerMetadata": "hello"
        }))
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&process_state(&s, 42, r#"{"ociVersion":"1.2.0","id":"c","status":"creating","pid":42}"#).unwrap()).unwrap();
        assert_eq!(v["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(v["pid"], 42);
        assert_eq!(v["metadata"], "hello");
        assert_eq!(v["state"]["id"], "c");
        assert!(v["ociVersion"].is_string());
        let mut s = s;
        s.set_listener_metadata(None);
        let v: serde_json::Value = serde_json::from_slice(&process_state(&s, 1, "{}").unwrap()).unwrap();
        assert!(v.get("metadata").is_none(), "{v}");
    }
}
