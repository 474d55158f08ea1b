//! A profile of the Docker 17.x / early Kubernetes era: an allow-list (default EPERM) that knows
//! none of the syscalls added since (close_range, execveat in some, clone3, faccessat2, openat2,
//! rseq, statx, pidfd_*). The runtime's own steps after the filter must still get the program
//! started, with and without no_new_privs.

use super::*;

/// The unconditional part of Docker 17.03's default profile (x86_64), without execveat, statx
/// and copy_file_range, plus clone and arch_prctl, which it allowed under conditions.
const OLD_ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "clone",
    "close",
    "connect",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "exit",
    "exit_group",
    "faccessat",
    "fadvise64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "kill",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "memfd_create",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlockall",
    "mmap",
    "mprotect",
    "mremap",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "pause",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "prlimit64",
    "pselect6",
    "pwrite64",
    "pwritev",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setxattr",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socket",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
];

fn old_profile(with_execveat: bool) -> serde_json::Value {
    let mut names: Vec<&str> = OLD_ALLOWED.to_vec();
    if with_execveat {
        names.push("execveat");
    }
    json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]})
}

#[test]
fn an_old_allow_list_profile_starts_the_program_with_and_without_no_new_privs() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    for nnp in [false, true] {
        for with_execveat in [false, true] {
            let mut cfg = with_profile(
                "echo old-era-ok; cat /proc/self/comm; echo $(cat /proc/$$/comm)-is-pid1",
                old_profile(with_execveat),
            );
            cfg["process"]["noNewPrivileges"] = json!(nnp);
            let b = Bundle::new(&cfg);
            let id = unique_id("secold");
            let (code, out, err) = rt.run_container(&id, &b);
            let what = format!("noNewPrivileges {nnp}, execveat allowed {with_execveat}");
            assert_eq!(code, 0, "{what}: {out} {err}");
            assert_eq!(out, "old-era-ok\ncat\nsh-is-pid1\n", "{what}: {err}");
            assert!(!err.contains("close_range") && !err.contains("EPERM"), "{what}: {err}");
            assert_no_leftovers(&rt, &id);
        }
    }
}

#[test]
fn exec_under_an_old_allow_list_profile() {
    if skip() {
        return;
    }
    let rt = Runtime::new();
    for nnp in [false, true] {
        let mut cfg = with_profile("sleep 30", old_profile(false));
        cfg["process"]["noNewPrivileges"] = json!(nnp);
        let b = Bundle::new(&cfg);
        let id = unique_id("secoldx");
        rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
        let out = rt.run(&["exec", &id, "cat", "/proc/self/comm"]);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        rt.ok(&["delete", "--force", &id]);
        assert_eq!(out.status.code(), Some(0), "noNewPrivileges {nnp}: {stdout} {stderr}");
        assert_eq!(stdout, "cat\n", "noNewPrivileges {nnp}: {stderr}");
        assert_no_leftovers(&rt, &id);
    }
}

/// CVE-2024-21626 with the filter loaded early (no no_new_privs) under a profile without
/// close_range: an fd the caller leaks into `run` (fd 3, not close-on-exec) still does not reach
/// the container's program, and nor does any fd of the runtime's.
#[test]
fn fds_are_closed_before_an_old_profile_goes_on() {
    if skip() {
        return;
    }
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let rt = Runtime::new();
    let mut cfg = with_profile("sleep 60", old_profile(false));
    cfg["process"]["noNewPrivileges"] = json!(false);
    let b = Bundle::new(&cfg);
    let id = unique_id("secoldfd");
    let leaked = tempfile::tempfile().unwrap();
    let fd = leaked.as_raw_fd();
    let mut cmd = rt.cmd(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    // SAFETY: dup2 and fcntl are async-signal-safe; they run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let r = if fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let err = tempfile::NamedTempFile::new().unwrap();
    let status = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err.reopen().unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "run -d: {}", std::fs::read_to_string(err.path()).unwrap_or_default());
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    let fds = fds_once_execd(init);
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id);
    assert_eq!(fds, vec![0, 1, 2], "the init's program holds more than stdio");
}
