//! seccomp(2) filter flags, and installing a BPF program with them.
//!
//! Which flags the running kernel has is probed the way libseccomp does: seccomp() with the flag
//! and a null program fails with EFAULT when the flag is known and EINVAL when it is not.

use std::os::fd::{FromRawFd, OwnedFd};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag};

use crate::error::{Error, Result};

// linux/seccomp.h; `libc` lacks the newer ones.
const TSYNC: u32 = 1;
const LOG: u32 = 1 << 1;
const SPEC_ALLOW: u32 = 1 << 2;
const NEW_LISTENER: u32 = 1 << 3;
const TSYNC_ESRCH: u32 = 1 << 4;
const WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Whether any rule (or the default) hands syscalls to a seccomp agent.
pub(super) fn notifies(s: &LinuxSeccomp) -> bool {
    use LinuxSeccompAction::ScmpActNotify;
    s.default_action() == ScmpActNotify || s.syscalls().iter().flatten().any(|r| r.action() == ScmpActNotify)
}

fn bit(flag: LinuxSeccompFilterFlag) -> u32 {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => TSYNC,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => LOG,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => SPEC_ALLOW,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => WAIT_KILLABLE_RECV,
    }
}

/// The flags to install `s` with on this kernel: the spec's `flags` it has (the rest skipped
/// with a warning), NEW_LISTENER for a notifying filter, TSYNC_ESRCH when TSYNC meets it.
pub(super) fn load_flags(s: &LinuxSeccomp, notify: bool) -> Result<u32> {
    load_flags_with(s, notify, kernel_has)
}

fn load_flags_with(s: &LinuxSeccomp, notify: bool, has: impl Fn(u32) -> bool) -> Result<u32> {
    let mut flags = 0;
    for flag in s.flags().iter().flatten() {
        if has(bit(*flag)) {
            flags |= bit(*flag);
        } else {
            tracing::warn!("seccomp: flag {flag:?} not supported by this kernel, ignored");
        }
    }
    if flags & WAIT_KILLABLE_RECV != 0 && !notify {
        // The kernel refuses it without a listener; it means nothing then anyway.
        flags &= !WAIT_KILLABLE_RECV;
    }
    if notify {
        if !has(NEW_LISTENER) {
            return Err(Error::field("linux.seccomp", "SCMP_ACT_NOTIFY needs seccomp user notification (Linux 5.0 or later)"));
        }
        flags |= NEW_LISTENER;
        // TSYNC reports a thread it could not sync through the return value, which is the
        // listener fd here; TSYNC_ESRCH makes that an error instead.
        if flags & TSYNC != 0 {
            if !has(TSYNC_ESRCH) {
                return Err(Error::field("linux.seccomp.flags", "SECCOMP_FILTER_FLAG_TSYNC with SCMP_ACT_NOTIFY needs Linux 5.7 or later"));
            }
            flags |= TSYNC_ESRCH;
        }
    }
    Ok(flags)
}

fn kernel_has(flag: u32) -> bool {
    // The kernel takes WAIT_KILLABLE_RECV only together with a listener.
    let flag = if flag == WAIT_KILLABLE_RECV { flag | NEW_LISTENER } else { flag };
    // SAFETY: a null program pointer; the kernel checks the flags, then fails to copy it.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flag, std::ptr::null::<libc::c_void>()) };
    r == -1 && nix::errno::Errno::last() == nix::errno::Errno::EFAULT
}

/// Installs `prog` as this thread's seccomp filter with `flags`; returns the listener fd when
/// `flags` has NEW_LISTENER. Allocates nothing.
pub(super) fn install(prog: &[libc::sock_filter], flags: u32) -> Result<Option<OwnedFd>> {
    let len = u16::try_from(prog.len()).map_err(|_| Error::Other("seccomp: BPF program too long".into()))?;
    let fprog = libc::sock_fprog { len, filter: prog.as_ptr().cast_mut() };
    // SAFETY: fprog points at `len` instructions owned by `prog`, alive across the call; the
    // kernel copies the program and does not keep the pointer.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, &fprog as *const libc::sock_fprog) };
    if r < 0 {
        return Err(Error::sys("seccomp(SECCOMP_SET_MODE_FILTER)", nix::errno::Errno::last()));
    }
    if flags & NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = i32::try_from(r).map_err(|_| Error::Other(format!("seccomp: listener fd {r} out of range")))?;
    // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).expect("valid linux.seccomp")
    }

    #[test]
    fn spec_flags_map_to_kernel_bits_and_missing_ones_are_skipped() {
        let s = spec(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]}));
        assert_eq!(load_flags_with(&s, false, |_| true).unwrap(), LOG | SPEC_ALLOW | TSYNC);
        assert_eq!(load_flags_with(&s, false, |f| f != SPEC_ALLOW).unwrap(), LOG | TSYNC);
    }

    #[test]
    fn notify_adds_a_listener_and_wait_killable_needs_one() {
        let s = spec(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}));
        assert_eq!(load_flags_with(&s, false, |_| true).unwrap(), 0);
        assert_eq!(load_flags_with(&s, true, |_| true).unwrap(), NEW_LISTENER | WAIT_KILLABLE_RECV);
        assert_eq!(load_flags_with(&s, true, |f| f != WAIT_KILLABLE_RECV).unwrap(), NEW_LISTENER);
        let e = load_flags_with(&s, true, |f| f != NEW_LISTENER).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp") && e.contains("5.0"), "{e}");
    }

    #[test]
    fn tsync_with_notify_uses_esrch_or_is_refused() {
        let s = spec(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]}));
        assert_eq!(load_flags_with(&s, true, |_| true).unwrap(), TSYNC | NEW_LISTENER | TSYNC_ESRCH);
        let e = load_flags_with(&s, true, |f| f != TSYNC_ESRCH).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp.flags"), "{e}");
    }

    #[test]
    fn this_kernel_has_the_flags_we_rely_on() {
        // Kernel 5.19+ (this machine runs 6.x); an unknown bit is refused.
        for f in [TSYNC, LOG, SPEC_ALLOW, NEW_LISTENER, TSYNC_ESRCH, WAIT_KILLABLE_RECV] {
            assert!(kernel_has(f), "flag {f:#x}");
        }
        assert!(!kernel_has(1 << 30));
    }
}
