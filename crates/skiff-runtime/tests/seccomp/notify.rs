//! SCMP_ACT_NOTIFY with a real agent: a listener thread receives runc's ContainerProcessState
//! and the notify fd, then answers the container's mkdir calls itself (a fake success, then an
//! errno), and the container observes both answers.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use super::*;

/// What the agent saw: the state JSON and the syscall numbers it answered.
struct Seen {
    state: serde_json::Value,
    answered: Vec<i32>,
}

fn recv_state_and_fd(listener: &UnixListener) -> (serde_json::Value, OwnedFd) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (conn, _) = listener.accept().expect("accept the runtime");
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).expect("recvmsg");
    let mut fd = None;
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed this fd for us.
            fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
        }
    }
    let n = msg.bytes;
    let state = serde_json::from_slice(&buf[..n]).expect("state JSON");
    (state, fd.expect("an fd with the state"))
}

/// Answers notifications on `fd`: the first with success (0) without doing anything, later
/// ones with EROFS; stops when the filter's last user is gone or after 20 s.
fn answer(fd: &OwnedFd) -> Vec<i32> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut answered = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let mut p = [PollFd::new(std::os::fd::AsFd::as_fd(fd), PollFlags::POLLIN)];
        match poll(&mut p, PollTimeout::from(200u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let ev = p[0].revents().unwrap_or(PollFlags::empty());
        if !ev.contains(PollFlags::POLLIN) {
            break; // POLLHUP: no task uses the filter any more.
        }
        // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed and fills it in.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: NOTIF_RECV writes one seccomp_notif into `req`.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
            continue; // the task went away meanwhile (ENOENT) or EINTR
        }
        let error = if answered.is_empty() { 0 } else { -libc::EROFS };
        let mut resp = libc::seccomp_notif_resp { id: req.id, val: 0, error, flags: 0 };
        // SAFETY: NOTIF_SEND reads one seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
        answered.push(req.data.nr);
    }
    answered
}

fn agent(listener: UnixListener) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let (state, fd) = recv_state_and_fd(&listener);
        let answered = answer(&fd);
        Seen { state, answered }
    })
}

/// A listening agent socket in a fresh temp dir (kept alive by the returned guard), and a
/// profile that allows everything but hands `names` to that agent.
fn agent_socket(names: &[&str]) -> (tempfile::TempDir, UnixListener, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}]
    });
    (dir, listener, profile)
}

#[test]
fn notify_hands_the_fd_to_the_agent_which_answers_the_container() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    for nnp in [true, false] {
        let (_dir, listener, mut profile) = agent_socket(&["mkdir", "mkdirat"]);
        profile["listenerMetadata"] = json!("skiff-test-meta");
        if nnp {
            // Loaded by us, not libseccomp: these flags need the listener's own handling.
            profile["flags"] = json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"]);
        }
        let mut cfg = with_profile("mkdir /tmp/a; echo a=$?; mkdir /tmp/b 2>&1; echo b=$?; ls /tmp; echo listed", profile);
        cfg["process"]["noNewPrivileges"] = json!(nnp);
        let b = Bundle::new(&cfg);
        let id = unique_id("secnotify");
        let seen = agent(listener);
        let (code, out, err) = rt.run_container(&id, &b);
        let seen = seen.join().expect("agent thread");
        assert_eq!(code, 0, "nnp={nnp}: {out} {err}");
        assert!(!err.contains("not supported"), "a flag was dropped: {err}");
        assert!(out.contains("a=0"), "the agent's fake success was not seen (nnp={nnp}): {out}");
        assert!(out.contains("Read-only file system") && out.contains("b=1"), "the agent's EROFS was not seen (nnp={nnp}): {out}");
        assert!(out.contains("listed") && !out.contains("\na\n") && !out.contains("\nb\n"), "mkdir really ran: {out}");
        assert_eq!(seen.answered.len(), 2, "{:?}", seen.answered);
        let s = &seen.state;
        assert_eq!(s["fds"], json!(["seccompFd"]), "{s}");
        assert_eq!(s["metadata"], "skiff-test-meta", "{s}");
        assert!(s["pid"].as_i64().is_some_and(|p| p > 0), "{s}");
        assert_eq!(s["state"]["id"], json!(id), "{s}");
        assert_eq!(s["state"]["status"], "creating", "{s}");
        assert_eq!(s["state"]["pid"], s["pid"], "{s}");
        assert!(s["ociVersion"].is_string(), "{s}");
        assert_no_leftovers(&rt, &id);
    }
}

#[test]
fn an_agent_that_is_not_listening_fails_create_cleanly() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let dir = tempfile::tempdir().unwrap();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": dir.path().join("nobody-here.sock"),
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let b = Bundle::new(&with_profile("true", profile));
    let id = unique_id("secnoagent");
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("linux.seccomp.listenerPath") && err.contains("nobody-here.sock"), "{err}");
    assert_no_leftovers(&rt, &id);
}

#[test]
fn exec_hands_its_own_fd_to_the_agent() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let (_dir, listener, profile) = agent_socket(&["mkdir", "mkdirat"]);
    let b = Bundle::new(&with_profile("sleep 30", profile));
    let id = unique_id("secnotx");
    // First connection: the container's init (kept, never notified); second: the exec.
    let agent = std::thread::spawn(move || {
        let (init_state, init_fd) = recv_state_and_fd(&listener);
        let (exec_state, exec_fd) = recv_state_and_fd(&listener);
        let answered = answer(&exec_fd);
        drop(init_fd);
        (init_state, Seen { state: exec_state, answered })
    });
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = rt.ok(&["exec", &id, "sh", "-c", "mkdir /tmp/e; echo e=$?; [ -d /tmp/e ] || echo absent"]);
    let (init_state, seen) = agent.join().expect("agent thread");
    assert!(out.contains("e=0") && out.contains("absent"), "the agent's fake success was not seen: {out}");
    assert_eq!(seen.answered.len(), 1, "{:?}", seen.answered);
    assert_eq!(init_state["state"]["status"], "creating", "{init_state}");
    let s = &seen.state;
    assert_eq!(s["state"]["status"], "running", "{s}");
    assert_eq!(s["state"]["id"], json!(id), "{s}");
    assert_ne!(s["pid"], s["state"]["pid"], "the exec'd process has its own pid: {s}");
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
}

/// Without noNewPrivileges the filter goes on before the user switch: a notifying rule on the
/// init's own setresuid must reach the agent (the fd is handed over right after the load), not
/// leave the init waiting for an agent that has no fd yet.
#[test]
fn notify_on_the_inits_own_setup_call_reaches_the_agent() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    let (_dir, listener, profile) = agent_socket(&["setresuid"]);
    let mut cfg = with_profile("echo ran", profile);
    cfg["process"]["noNewPrivileges"] = json!(false);
    let b = Bundle::new(&cfg);
    let id = unique_id("secnotset");
    let seen = agent(listener);
    let (code, out, err) = rt.run_container(&id, &b);
    let seen = seen.join().expect("agent thread");
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("ran"), "{out}");
    assert_eq!(seen.answered, vec![libc::SYS_setresuid as i32]);
    assert_no_leftovers(&rt, &id);
}
