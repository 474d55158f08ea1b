//! Processes: the channel between the runtime and the processes it forks, the container's
//! init, exec'd processes, and small helpers for waiting on and signalling processes by pidfd.

pub mod channel;
pub mod exec;
pub mod init;
pub mod launch;
pub mod sched;
pub mod setup;
pub mod supervise;

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout};

/// Makes a panic abort the process, as the release profile's `panic = "abort"` does, whatever
/// the profile. For the binaries' `main`: the `ci` profile must unwind (the test harness needs
/// it), and a panic that unwound in a forked child of the runtime would run its parent's
/// destructors (removing state dirs and cgroups that are not the child's to remove).
pub fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
}

/// fork(2) into a cgroup v2 directory (`clone3` with `CLONE_INTO_CGROUP`, Linux ≥ 5.7): the
/// child starts in `cgroup` without the migration that writing its pid into `cgroup.procs`
/// costs (an RCU grace period under the global threadgroup lock, several milliseconds). On
/// success returns like fork; `Err` means clone3 refused (old kernel, no permission) and the
/// caller forks the usual way.
///
/// Only for the runtime's single-threaded process, as [`init::unsafe_fork`]: the child runs on
/// without glibc's fork bookkeeping, which a single-threaded process without atfork handlers
/// does not need (glibc ≥ 2.34 signals itself by the kernel's tid, not a cached one).
pub fn fork_into_cgroup(cgroup: std::os::fd::BorrowedFd) -> nix::Result<nix::unistd::ForkResult> {
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: std::os::fd::AsRawFd::as_raw_fd(&cgroup) as u64,
    };
    // SAFETY: clone3 without a new stack or CLONE_VM is fork(2): the child gets a copy of our
    // address space and returns 0 here; `args` outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match r {
        -1 => Err(nix::errno::Errno::last()),
        0 => Ok(nix::unistd::ForkResult::Child),
        pid => Ok(nix::unistd::ForkResult::Parent { child: nix::unistd::Pid::from_raw(pid as i32) }),
    }
}

/// Forks; when `by_pid` is a single v2 cgroup (pure v2, or hybrid's unified hierarchy) the
/// child is born in it ([`fork_into_cgroup`]) and `true` says so; otherwise the caller still
/// has to join the child to `by_pid`.
pub(crate) fn fork_joined(by_pid: Option<&crate::cgroups::Manager>) -> crate::error::Result<(nix::unistd::ForkResult, bool)> {
    use crate::error::SysContext;
    let into = match by_pid.map(|m| m.paths.as_slice()) {
        Some([dir]) => nix::fcntl::open(dir, nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ok(),
        _ => None,
    };
    if let Some(fd) = &into {
        if let Ok(f) = fork_into_cgroup(std::os::fd::AsFd::as_fd(fd)) {
            return Ok((f, true));
        }
    }
    Ok((init::unsafe_fork().ctx(|| "fork")?, false))
}

/// How a new process joins a manager's cgroups: the v1 ones by itself (see
/// [`crate::cgroups::SelfJoin`]), the v2 ones by pid (or at the fork).
pub(crate) fn split_join(m: Option<&crate::cgroups::Manager>) -> crate::error::Result<(crate::cgroups::SelfJoin, Option<crate::cgroups::Manager>)> {
    match m {
        Some(m) => {
            let (j, v2) = m.self_join(&crate::cgroups::Cgroups::detect()?)?;
            Ok((j, (!v2.paths.is_empty()).then_some(v2)))
        }
        None => Ok((crate::cgroups::SelfJoin::default(), None)),
    }
}

/// Opens a pidfd for `pid`.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is shared.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `sig` through a pidfd (immune to pid reuse).
pub fn pidfd_signal(fd: &OwnedFd, sig: i32) -> std::io::Result<()> {
    // SAFETY: plain syscall on a pidfd we own; the siginfo pointer is null as allowed.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// Waits until the process behind `fd` has exited (it may stay a zombie), up to `timeout`.
pub fn pidfd_wait(fd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, ms) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Waits for `pid` (any process) to exit, up to `timeout`; true if it did. A process that is
/// already gone counts as exited.
pub fn wait_exit_timeout(pid: i32, timeout: Duration) -> bool {
    match pidfd_open(pid) {
        Ok(fd) => pidfd_wait(&fd, timeout),
        Err(_) => true,
    }
}

/// Marks every fd from `first` upwards close-on-exec (CVE-2024-21626: no runtime fd may reach the
/// container).
///
/// Called before the seccomp filter goes on (see `setup::exec`), yet it may still meet a
/// refusal: a kernel older than 5.11 (ENOSYS, or EINVAL for the flag) or a filter around the
/// runtime itself (EPERM). Then it does what runc does without close_range: reads
/// `/proc/self/fd` and sets FD_CLOEXEC with fcntl on each fd, and, where /proc is not mounted,
/// tries every fd up to RLIMIT_NOFILE.
pub fn cloexec_from(first: u32) -> crate::error::Result<()> {
    use nix::errno::Errno;
    // SAFETY: close_range only changes fd flags of this process.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if r == 0 {
        return Ok(());
    }
    match Errno::last() {
        Errno::ENOSYS | Errno::EINVAL | Errno::EPERM | Errno::EACCES => cloexec_each(first),
        e => Err(crate::error::Error::sys("close_range", e)),
    }
}

/// close_range's fallback: FD_CLOEXEC on each open fd from `first` on.
fn cloexec_each(first: u32) -> crate::error::Result<()> {
    let open: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        // The directory's own fd is in the list too; it is close-on-exec already and gone
        // before the exec, so marking it is harmless.
        Ok(dir) => dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => {
            let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map_err(|e| crate::error::Error::sys("getrlimit(RLIMIT_NOFILE)", e))?;
            (0..i32::try_from(soft).unwrap_or(i32::MAX).min(1 << 20)).collect()
        }
    };
    for fd in open.into_iter().filter(|fd| u32::try_from(*fd).is_ok_and(|fd| fd >= first)) {
        // SAFETY: F_GETFD/F_SETFD only read and change the flags of an fd number of this
        // process; a number that is not open fails with EBADF and is skipped.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            continue;
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
            return Err(crate::error::Error::sys(
                format!("fcntl(F_SETFD, FD_CLOEXEC) on fd {fd}"),
                nix::errno::Errno::last(),
            ));
        }
    }
    Ok(())
}

/// A shell-style exit status: the code, or 128 + signal.
pub fn exit_code(status: nix::sys::wait::WaitStatus) -> Option<i32> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    fn cloexec(fd: i32) -> bool {
        // SAFETY: F_GETFD reads the flags of an fd this test holds open.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert!(flags >= 0, "F_GETFD: {}", std::io::Error::last_os_error());
        flags & libc::FD_CLOEXEC != 0
    }

    /// close_range's fallback (used where the kernel or a filter refuses close_range): an fd
    /// without FD_CLOEXEC at or above `first` gets it.
    #[test]
    fn the_proc_self_fd_fallback_marks_fds_close_on_exec() {
        let (a, b) = nix::unistd::pipe().expect("pipe");
        for fd in [&a, &b] {
            // SAFETY: clears the flags of an fd this test owns.
            assert_eq!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) }, 0);
        }
        let first = a.as_raw_fd().max(b.as_raw_fd());
        super::cloexec_each(first as u32).expect("cloexec_each");
        assert!(cloexec(first), "fd {first} is not close-on-exec");
        assert!(!cloexec(a.as_raw_fd().min(b.as_raw_fd())), "an fd below `first` was marked");
    }
}
