//! The default seccomp profile: Docker's (moby `profiles/seccomp/default.json`, the version with
//! the AF_VSOCK socket rule, CAP_BPF and CAP_PERFMON groups) as a table of rule groups.
//!
//! Like moby's `setupSeccomp`, [`default_profile`] resolves the table against one process:
//! a group applies when all its `includes` hold (every listed capability is in the given set,
//! the architecture is listed, the kernel is recent enough) and none of its `excludes` does.
//! The result is a plain `linux.seccomp` (no includes/excludes left), as Docker writes into the
//! config it hands to runc. Docker checks capabilities against the bounding set; callers pass it.

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall};

/// Syscalls every container may make (moby's first, unconditional group).
const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir", "chmod", "chown",
    "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime",
    "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit",
    "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir",
    "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr",
    "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync",
    "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
    "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname",
    "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "io_uring_enter",
    "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
    "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create",
    "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2",
    "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
    "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2",
    "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
    "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
    "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename",
    "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
    "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt",
    "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
    "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
    "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
    "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
    "waitpid", "write", "writev",
];

/// CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.
pub const CLONE_NS_MASK: u64 = 0x7E02_0000;
/// AF_VSOCK.
const AF_VSOCK: u64 = 40;

/// What a group does: allow, or fail with an errno.
#[derive(Clone, Copy)]
enum Act {
    Allow,
    Errno(u32),
}

/// One argument condition: (index, value, op); MASKED_EQ compares `arg & value == 0`.
type Cond = (usize, u64, LinuxSeccompOperator);

/// When a group applies (moby's `includes`/`excludes` filter).
#[derive(Clone, Copy)]
struct When {
    caps: &'static [&'static str],
    /// Docker's architecture names (GOARCH style: amd64, arm64, x86, x32, s390x, ...).
    arches: &'static [&'static str],
    /// (major, minor).
    min_kernel: Option<(u32, u32)>,
}

const ANY: When = When { caps: &[], arches: &[], min_kernel: None };

const fn caps(c: &'static [&'static str]) -> When {
    When { caps: c, arches: &[], min_kernel: None }
}

const fn arches(a: &'static [&'static str]) -> When {
    When { caps: &[], arches: a, min_kernel: None }
}

struct Group {
    names: &'static [&'static str],
    act: Act,
    args: &'static [Cond],
    includes: When,
    excludes: When,
}

const fn allow(names: &'static [&'static str], includes: When) -> Group {
    Group { names, act: Act::Allow, args: &[], includes, excludes: ANY }
}

/// personality(value) allowed.
macro_rules! personality {
    ($v:expr) => {
        Group { names: &["personality"], act: Act::Allow, args: &[(0, $v, LinuxSeccompOperator::ScmpCmpEq)], includes: ANY, excludes: ANY }
    };
}

use LinuxSeccompOperator::{ScmpCmpMaskedEq as MaskedEq, ScmpCmpNe as Ne};

/// moby's groups after the unconditional allow list, in its order.
const GROUPS: &[Group] = &[
    allow(&["process_vm_readv", "process_vm_writev", "ptrace"], When { caps: &[], arches: &[], min_kernel: Some((4, 8)) }),
    Group { names: &["socket"], act: Act::Allow, args: &[(0, AF_VSOCK, Ne)], includes: ANY, excludes: ANY },
    // PER_LINUX, UNAME26, PER_LINUX32, UNAME26|PER_LINUX32, and the 0xffffffff query.
    personality!(0x0),
    personality!(0x8),
    personality!(0x20000),
    personality!(0x20008),
    personality!(0xffff_ffff),
    allow(&["sync_file_range2", "swapcontext"], arches(&["ppc64le"])),
    allow(&["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"], arches(&["arm", "arm64"])),
    allow(&["arch_prctl"], arches(&["amd64", "x32"])),
    allow(&["modify_ldt"], arches(&["amd64", "x32", "x86"])),
    allow(&["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"], arches(&["s390", "s390x"])),
    allow(&["riscv_flush_icache"], arches(&["riscv64"])),
    allow(&["open_by_handle_at"], caps(&["CAP_DAC_READ_SEARCH"])),
    allow(
        &[
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount",
            "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname",
            "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
        ],
        caps(&["CAP_SYS_ADMIN"]),
    ),
    // Without CAP_SYS_ADMIN, clone only without namespace flags (flags are argument 1 on s390).
    Group {
        names: &["clone"],
        act: Act::Allow,
        args: &[(0, CLONE_NS_MASK, MaskedEq)],
        includes: ANY,
        excludes: When { caps: &["CAP_SYS_ADMIN"], arches: &["s390", "s390x"], min_kernel: None },
    },
    Group { names: &["clone"], act: Act::Allow, args: &[(1, CLONE_NS_MASK, MaskedEq)], includes: arches(&["s390", "s390x"]), excludes: caps(&["CAP_SYS_ADMIN"]) },
    // clone3's flags are behind a pointer: ENOSYS makes libcs fall back to clone.
    Group { names: &["clone3"], act: Act::Errno(38), args: &[], includes: ANY, excludes: caps(&["CAP_SYS_ADMIN"]) },
    allow(&["reboot"], caps(&["CAP_SYS_BOOT"])),
    allow(&["chroot"], caps(&["CAP_SYS_CHROOT"])),
    allow(&["delete_module", "init_module", "finit_module"], caps(&["CAP_SYS_MODULE"])),
    allow(&["acct"], caps(&["CAP_SYS_PACCT"])),
    allow(&["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"], caps(&["CAP_SYS_PTRACE"])),
    allow(&["iopl", "ioperm"], caps(&["CAP_SYS_RAWIO"])),
    allow(&["settimeofday", "stime", "clock_settime", "clock_settime64"], caps(&["CAP_SYS_TIME"])),
    allow(&["vhangup"], caps(&["CAP_SYS_TTY_CONFIG"])),
    allow(&["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"], caps(&["CAP_SYS_NICE"])),
    allow(&["syslog"], caps(&["CAP_SYSLOG"])),
    allow(&["bpf"], caps(&["CAP_BPF"])),
    allow(&["perf_event_open"], caps(&["CAP_PERFMON"])),
];

/// moby's archMap: the native architecture and the ones it also lets through.
const ARCH_MAP: &[(&str, &[Arch])] = &[
    ("amd64", &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]),
    ("arm64", &[Arch::ScmpArchAarch64, Arch::ScmpArchArm]),
    ("mips64", &[Arch::ScmpArchMips64, Arch::ScmpArchMips, Arch::ScmpArchMips64n32]),
    ("mips64n32", &[Arch::ScmpArchMips64n32, Arch::ScmpArchMips, Arch::ScmpArchMips64]),
    ("mipsel64", &[Arch::ScmpArchMipsel64, Arch::ScmpArchMipsel, Arch::ScmpArchMipsel64n32]),
    ("mipsel64n32", &[Arch::ScmpArchMipsel64n32, Arch::ScmpArchMipsel, Arch::ScmpArchMipsel64]),
    ("s390x", &[Arch::ScmpArchS390x, Arch::ScmpArchS390]),
    ("riscv64", &[Arch::ScmpArchRiscv64]),
];

/// This build's architecture in Docker's naming (the `arch` argument of [`default_profile`]).
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "mips64" => "mips64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The running kernel's (major, minor), if uname says.
fn kernel_version() -> Option<(u32, u32)> {
    let u = nix::sys::utsname::uname().ok()?;
    let release = u.release().to_str()?;
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl When {
    /// Whether this `includes` filter holds.
    fn holds(&self, caps: &[String], arch: &str, kernel: Option<(u32, u32)>) -> bool {
        self.caps.iter().all(|c| caps.iter().any(|h| h == c))
            && (self.arches.is_empty() || self.arches.contains(&arch))
            && self.min_kernel.is_none_or(|min| kernel.is_none_or(|k| k >= min))
    }

    /// Whether this `excludes` filter hits (any of its parts).
    fn hits(&self, caps: &[String], arch: &str, kernel: Option<(u32, u32)>) -> bool {
        self.caps.iter().any(|c| caps.iter().any(|h| h == c))
            || self.arches.contains(&arch)
            || self.min_kernel.is_some_and(|min| kernel.is_some_and(|k| k >= min))
    }
}

fn syscall(names: &[&str], act: Act, args: &[Cond]) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    match act {
        Act::Allow => {
            s.set_action(LinuxSeccompAction::ScmpActAllow);
        }
        Act::Errno(n) => {
            s.set_action(LinuxSeccompAction::ScmpActErrno).set_errno_ret(Some(n));
        }
    }
    if !args.is_empty() {
        let args = args
            .iter()
            .map(|&(index, value, op)| {
                let b = LinuxSeccompArgBuilder::default().index(index).value(value).op(op);
                let b = if op == MaskedEq { b.value_two(0u64) } else { b };
                // Every field of the builder has a default, so build cannot fail.
                b.build().unwrap_or_default()
            })
            .collect();
        s.set_args(Some(args));
    }
    s
}

/// Docker's default profile for a process whose bounding set is `caps` (names like
/// `CAP_SYS_ADMIN`), on `arch` (Docker's names: see [`native_arch`]).
pub fn default_profile(caps: &[String], arch: &str) -> LinuxSeccomp {
    let kernel = kernel_version();
    let mut syscalls = vec![syscall(ALLOWED, Act::Allow, &[])];
    for g in GROUPS {
        if g.includes.holds(caps, arch, kernel) && !g.excludes.hits(caps, arch, kernel) {
            syscalls.push(syscall(g.names, g.act, g.args));
        }
    }
    let mut p = LinuxSeccomp::default();
    p.set_default_action(LinuxSeccompAction::ScmpActErrno).set_default_errno_ret(Some(1)).set_syscalls(Some(syscalls));
    if let Some((_, archs)) = ARCH_MAP.iter().find(|(a, _)| *a == arch) {
        p.set_architectures(Some(archs.to_vec()));
    }
    p
}
