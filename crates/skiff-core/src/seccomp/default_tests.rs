//! The default profile: capability and architecture gating, and its effect in a real process.

use oci_spec::runtime::{Arch, LinuxSeccompAction};

use super::default_profile::CLONE_NS_MASK;
use super::tests::in_child;
use super::*;

fn caps(c: &[&str]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}

/// A rule as (names, action, errnoRet, first arg as (index, value)).
type Rule = (Vec<String>, LinuxSeccompAction, Option<u32>, Option<(usize, u64)>);

/// Every rule of `p`.
fn rules(p: &LinuxSeccomp) -> Vec<Rule> {
    p.syscalls()
        .iter()
        .flatten()
        .map(|s| (s.names().clone(), s.action(), s.errno_ret(), s.args().as_ref().and_then(|a| a.first()).map(|a| (a.index(), a.value()))))
        .collect()
}

/// Whether `name` is allowed without argument conditions.
fn allowed(p: &LinuxSeccomp, name: &str) -> bool {
    rules(p).iter().any(|(n, a, _, arg)| *a == LinuxSeccompAction::ScmpActAllow && arg.is_none() && n.iter().any(|x| x == name))
}

#[test]
fn without_caps_the_gated_groups_are_left_out() {
    let p = default_profile(&caps(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]), "amd64");
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(p.default_errno_ret(), Some(1));
    assert_eq!(p.architectures().as_deref(), Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..]));
    for name in ["read", "write", "execve", "arch_prctl", "modify_ldt", "ptrace", "name_to_handle_at"] {
        assert!(allowed(&p, name), "{name} should be allowed");
    }
    for name in ["mount", "umount2", "unshare", "setns", "clone", "clone3", "reboot", "chroot", "init_module", "kexec_load", "keyctl", "add_key", "bpf", "perf_event_open", "syslog", "kcmp", "iopl", "settimeofday", "acct", "vhangup", "mbind", "open_by_handle_at", "socket", "personality", "set_tls"] {
        assert!(!allowed(&p, name), "{name} should not be allowed unconditionally");
    }
    let r = rules(&p);
    // clone without namespace flags, clone3 -> ENOSYS, socket unless AF_VSOCK, 5 personalities.
    assert!(r.iter().any(|(n, _, _, arg)| n == &["clone"] && *arg == Some((0, CLONE_NS_MASK))));
    assert!(r.iter().any(|(n, a, e, _)| n == &["clone3"] && *a == LinuxSeccompAction::ScmpActErrno && *e == Some(38)));
    assert!(r.iter().any(|(n, _, _, arg)| n == &["socket"] && *arg == Some((0, 40))));
    assert_eq!(r.iter().filter(|(n, ..)| n == &["personality"]).count(), 5);
}

#[test]
fn each_capability_adds_its_group_only_with_the_cap() {
    let cases: &[(&str, &[&str])] = &[
        ("CAP_SYS_ADMIN", &["mount", "unshare", "setns", "clone", "clone3", "sethostname", "fsopen", "bpf", "syslog"]),
        ("CAP_SYS_BOOT", &["reboot"]),
        ("CAP_SYS_CHROOT", &["chroot"]),
        ("CAP_SYS_MODULE", &["init_module", "finit_module", "delete_module"]),
        ("CAP_SYS_PACCT", &["acct"]),
        ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd", "process_madvise"]),
        ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
        ("CAP_SYS_TIME", &["settimeofday", "clock_settime"]),
        ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
        ("CAP_SYS_NICE", &["mbind", "set_mempolicy", "get_mempolicy"]),
        ("CAP_SYSLOG", &["syslog"]),
        ("CAP_BPF", &["bpf"]),
        ("CAP_PERFMON", &["perf_event_open"]),
        ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    ];
    let none = default_profile(&[], "amd64");
    for (cap, names) in cases {
        let with = default_profile(&caps(&[cap]), "amd64");
        for n in *names {
            assert!(!allowed(&none, n), "{n} allowed without {cap}");
            assert!(allowed(&with, n), "{n} not allowed with {cap}");
        }
    }
    // CAP_SYS_ADMIN lifts the clone mask and the clone3 ENOSYS.
    let admin = rules(&default_profile(&caps(&["CAP_SYS_ADMIN"]), "amd64"));
    assert!(!admin.iter().any(|(n, _, _, arg)| n == &["clone"] && arg.is_some()));
    assert!(!admin.iter().any(|(n, a, ..)| n == &["clone3"] && *a == LinuxSeccompAction::ScmpActErrno));
}

#[test]
fn arch_specific_entries_follow_the_arch() {
    let arm = default_profile(&[], "arm64");
    assert_eq!(arm.architectures().as_deref(), Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..]));
    assert!(allowed(&arm, "set_tls") && !allowed(&arm, "arch_prctl") && !allowed(&arm, "modify_ldt"));
    let s390 = rules(&default_profile(&[], "s390x"));
    assert!(s390.iter().any(|(n, _, _, arg)| n == &["clone"] && *arg == Some((1, CLONE_NS_MASK))));
    assert!(!s390.iter().any(|(n, _, _, arg)| n == &["clone"] && *arg == Some((0, CLONE_NS_MASK))));
    // Not in moby's archMap: no architectures list (the native one only).
    assert!(default_profile(&[], "ppc64le").architectures().is_none());
    assert!(allowed(&default_profile(&[], "ppc64le"), "swapcontext"));
}

fn errno_of(r: libc::c_long) -> i32 {
    if r < 0 { std::io::Error::last_os_error().raw_os_error().unwrap_or(0) } else { 0 }
}

/// What Docker refuses without capabilities, as raw syscalls that change nothing when allowed
/// (bad arguments): each must fail with the profile's EPERM, clone3 with ENOSYS.
fn refused_and_allowed() -> i32 {
    // SAFETY: raw syscalls with invalid or null arguments; none has an effect when refused,
    // and the allowed ones (getpid, personality query, AF_UNIX socket) are harmless.
    unsafe {
        // errno is read right after each call.
        let checks: [(i32, i32, i32); 10] = [
            (errno_of(libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER)), libc::EPERM, 1),
            (errno_of(libc::syscall(libc::SYS_mount, 0, 0, 0, 0, 0)), libc::EPERM, 2),
            (errno_of(libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0)), libc::EPERM, 3),
            (errno_of(libc::syscall(libc::SYS_add_key, 0, 0, 0, 0, 0)), libc::EPERM, 4),
            (errno_of(libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0)), libc::EPERM, 5),
            (errno_of(libc::syscall(libc::SYS_init_module, 0, 0, 0)), libc::EPERM, 6),
            // PTRACE_PEEKDATA of ourselves (not traced): allowed by the profile on >= 4.8, the
            // kernel answers ESRCH.
            (errno_of(libc::syscall(libc::SYS_ptrace, libc::PTRACE_PEEKDATA, libc::getpid(), 0, 0)), libc::ESRCH, 7),
            (errno_of(libc::syscall(libc::SYS_personality, 0x0040_0000)), libc::EPERM, 8),
            (errno_of(libc::syscall(libc::SYS_socket, 40, libc::SOCK_STREAM, 0)), libc::EPERM, 9),
            (errno_of(libc::syscall(libc::SYS_clone3, 0, 0)), libc::ENOSYS, 10),
        ];
        for (e, want, code) in checks {
            if e != want {
                return code;
            }
        }
        if libc::syscall(libc::SYS_getpid) <= 0 || libc::syscall(libc::SYS_personality, 0xffff_ffffu64) < 0 {
            return 20;
        }
        let s = libc::syscall(libc::SYS_socket, libc::AF_UNIX, libc::SOCK_STREAM, 0);
        if s < 0 {
            return 21;
        }
        libc::close(s as i32);
    }
    0
}

#[test]
fn compiled_default_profile_allows_and_refuses_in_a_real_process() {
    let f = compile(&default_profile(&caps(&["CAP_KILL"]), native_arch())).unwrap();
    assert_eq!(in_child(&f, refused_and_allowed), 0);
}
