use super::*;

fn spec(json: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(json).expect("valid linux.seccomp")
}

/// Runs `body` in a forked child with the filter loaded (no_new_privs set first, so no
/// privilege is needed); returns the child's exit code.
pub(super) fn in_child(f: &Filter, body: fn() -> i32) -> i32 {
    // SAFETY: the child only makes raw syscalls and leaves with _exit.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            let code = if crate::security::set_no_new_privs().is_err() || f.load().is_err() { 99 } else { body() };
            // SAFETY: _exit ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None).expect("waitpid") {
            nix::sys::wait::WaitStatus::Exited(_, c) => c,
            nix::sys::wait::WaitStatus::Signaled(_, s, _) => 128 + s as i32,
            other => panic!("child: {other:?}"),
        },
    }
}

/// errno of a raw `getppid`-free, side-effect-free syscall: uname with a null buffer fails with
/// EFAULT unless the filter answers first.
fn uname_errno() -> i32 {
    // SAFETY: a null pointer makes the kernel return EFAULT; nothing is written.
    let r = unsafe { libc::syscall(libc::SYS_uname, std::ptr::null_mut::<libc::c_void>()) };
    if r < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    }
}

#[test]
fn errno_rule_with_errno_ret_applies() {
    let f = compile(&spec(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    })))
    .unwrap();
    assert_eq!(in_child(&f, uname_errno), libc::ENOSYS);
}

#[test]
fn errno_without_errno_ret_is_eperm_and_default_errno_ret_is_used() {
    let f = compile(&spec(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap();
    assert_eq!(in_child(&f, uname_errno), libc::EPERM);
    // Default ERRNO with defaultErrnoRet; exit_group, write and friends allowed explicitly.
    let f = compile(&spec(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "syscalls": [{"names": ["exit", "exit_group", "rt_sigreturn", "write"], "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    assert_eq!(in_child(&f, uname_errno), libc::EPERM);
}

#[test]
fn argument_conditions_select_the_call() {
    // Block personality(0xffffffff) (a query) only; personality(PER_LINUX) stays allowed.
    let f = compile(&spec(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                      "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]}]
    })))
    .unwrap();
    fn query_and_set() -> i32 {
        // SAFETY: personality with these values only queries / sets the default domain.
        let q = unsafe { libc::personality(0xffff_ffff) };
        let q_errno = if q < 0 { std::io::Error::last_os_error().raw_os_error().unwrap_or(0) } else { 0 };
        // SAFETY: as above.
        let s = unsafe { libc::personality(0) };
        if q_errno == libc::EINVAL && s >= 0 { 0 } else { 1 }
    }
    assert_eq!(in_child(&f, query_and_set), 0);
}

#[test]
fn masked_eq_and_same_index_conditions_compile_like_runc() {
    let f = compile(&spec(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["clone"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 2114060288u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 17, "op": "SCMP_CMP_EQ"}]}
        ]
    })))
    .unwrap();
    let pfc = f.pfc().unwrap();
    assert!(pfc.contains("clone"), "{pfc}");
    // Two conditions on argument 0 cannot be ANDed: two separate rules for socket.
    assert!(pfc.contains("socket"), "{pfc}");
    fn netlink_and_packet() -> i32 {
        // SAFETY: socket() with these args creates (or refuses) a socket we close at once.
        let a = unsafe { libc::socket(16, libc::SOCK_RAW, 0) };
        let a_err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        // SAFETY: as above.
        let b = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
        if a < 0 && a_err == libc::EPERM && b >= 0 { 0 } else { 1 }
    }
    assert_eq!(in_child(&f, netlink_and_packet), 0);
}

#[test]
fn unknown_syscalls_are_skipped_and_reported() {
    let f = compile(&spec(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall_xyz", "uname"], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap();
    assert_eq!(f.unknown, vec!["no_such_syscall_xyz".to_string()]);
    assert_eq!(in_child(&f, uname_errno), libc::EPERM);
}

#[test]
fn rule_equal_to_default_is_skipped_and_architectures_are_added() {
    let f = compile(&spec(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]
    })))
    .unwrap();
    let pfc = f.pfc().unwrap();
    assert!(pfc.contains("x86_64") && pfc.contains("x86") && pfc.contains("x32"), "{pfc}");
    assert_eq!(in_child(&f, uname_errno), 128 + libc::SIGSYS);
}

#[test]
fn bad_values_name_the_field() {
    let e = compile(&spec(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    })))
    .unwrap_err()
    .to_string();
    assert!(e.contains("linux.seccomp.syscalls[0].args[0].index"), "{e}");
    let e = compile(&spec(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap_err()
    .to_string();
    assert!(e.contains("linux.seccomp.listenerPath"), "{e}");
    // Unknown actions, architectures and operators are refused while parsing config.json.
    for bad in [
        serde_json::json!({"defaultAction": "SCMP_ACT_NOPE"}),
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}),
    ] {
        assert!(serde_json::from_value::<LinuxSeccomp>(bad).is_err());
    }
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// A child with a notifying filter on `uname` (flags `flags`) sends its listener to us; we take
/// its notification, send it SIGUSR1 (handled, so non-fatal) while it waits, then answer
/// EXDEV. Returns whether our answer reached the waiting syscall, and the child's exit code.
fn answer_after_signal(flags: serde_json::Value) -> (bool, i32) {
    use std::os::fd::AsRawFd;
    let f = compile(&spec(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/unused", "flags": flags,
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap();
    let (ours, theirs) = nix::sys::socket::socketpair(nix::sys::socket::AddressFamily::Unix, nix::sys::socket::SockType::Stream, None, nix::sys::socket::SockFlag::SOCK_CLOEXEC).unwrap();
    // SAFETY: the child makes raw syscalls only and leaves with _exit.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            let act = nix::sys::signal::SigAction::new(nix::sys::signal::SigHandler::Handler(ignore_signal), nix::sys::signal::SaFlags::empty(), nix::sys::signal::SigSet::empty());
            // SAFETY: the handler does nothing.
            let ok = unsafe { nix::sys::signal::sigaction(nix::sys::signal::SIGUSR1, &act) }.is_ok() && crate::security::set_no_new_privs().is_ok();
            let code = match f.load() {
                Ok(Some(fd)) if ok => {
                    let fds = [fd.as_raw_fd()];
                    let sent = nix::sys::socket::sendmsg::<()>(theirs.as_raw_fd(), &[std::io::IoSlice::new(b"x")], &[nix::sys::socket::ControlMessage::ScmRights(&fds)], nix::sys::socket::MsgFlags::empty(), None);
                    drop(fd);
                    if sent.is_ok() { uname_errno() } else { 98 }
                }
                _ => 99,
            };
            // SAFETY: _exit ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            let mut buf = [0u8; 1];
            let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let msg = nix::sys::socket::recvmsg::<()>(ours.as_raw_fd(), &mut iov, Some(&mut space), nix::sys::socket::MsgFlags::empty()).expect("recvmsg");
            let listener = msg.cmsgs().expect("cmsgs").find_map(|c| match c {
                nix::sys::socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            });
            let listener = listener.expect("the child sent its listener");
            // SAFETY: zeroed plain-old-data structs, filled in by the kernel or by us.
            let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY: RECV fills `req`; the fd is the listener the child sent.
            assert_eq!(unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) }, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
            nix::sys::signal::kill(child, nix::sys::signal::SIGUSR1).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            // SAFETY: a plain-old-data struct; all zeroes is a valid value.
            let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
            resp.id = req.id;
            resp.error = -libc::EXDEV;
            // SAFETY: SEND reads `resp`.
            let answered = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) } == 0;
            if !answered {
                // The syscall was interrupted and restarted; nobody will answer it.
                let _ = nix::sys::signal::kill(child, nix::sys::signal::SIGKILL);
            }
            // SAFETY: the fd came to us by SCM_RIGHTS and is ours to close.
            unsafe { libc::close(listener) };
            let code = match nix::sys::wait::waitpid(child, None).expect("waitpid") {
                nix::sys::wait::WaitStatus::Exited(_, c) => c,
                nix::sys::wait::WaitStatus::Signaled(_, s, _) => 128 + s as i32,
                other => panic!("child: {other:?}"),
            };
            (answered, code)
        }
    }
}

#[test]
fn wait_killable_recv_keeps_a_received_syscall_waiting_through_signals() {
    // With the flag the notified syscall ignores the SIGUSR1 and gets our answer.
    assert_eq!(answer_after_signal(serde_json::json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])), (true, libc::EXDEV));
    // Without it the signal interrupts the syscall and our answer finds no waiter.
    let (answered, code) = answer_after_signal(serde_json::json!([]));
    assert!(!answered, "answer reached the syscall without the flag (exit {code})");
}
