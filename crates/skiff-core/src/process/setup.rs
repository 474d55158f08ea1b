//! The last steps before a container process runs its program, shared by the container's init
//! and `exec`: rlimits, user and groups, capabilities, cwd, no_new_privs, and the exec itself.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::Process;

use super::channel::{Channel, Msg};
use crate::error::{Error, Result, SysContext};
use crate::seccomp::Filter;
use crate::security::{self, CapSets};
use crate::timing;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A resolved program ready for execve.
///
/// `dir` is the directory holding the program, opened when it is resolved (before the user
/// switch and the seccomp filter) and `name` its last path component: the exec is
/// `execveat(dir, name)` (see [`exec`] for why not the file itself).
#[derive(Debug)]
pub struct Program {
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub dir: Option<OwnedFd>,
    pub name: CString,
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::field(what, format!("{s:?} holds a NUL byte")))
}

/// Resolves `process.args[0]` against the process's PATH (in the current root, i.e. inside the
/// container), as runc does. Errors name the program.
pub fn resolve(process: &Process) -> Result<Program> {
    let args = process.args().as_deref().unwrap_or(&[]);
    let Some(arg0) = args.first() else { return Err(Error::field("process.args", "empty")) };
    let env = process.env().as_deref().unwrap_or(&[]);
    let path_var = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    let path = if arg0.contains('/') {
        let p = if Path::new(arg0).is_absolute() { Path::new(arg0).to_path_buf() } else { process.cwd().join(arg0) };
        check_executable(arg0, &p)?;
        p
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(arg0))
            .find(|p| is_executable(p))
            .ok_or_else(|| Error::Init(format!("exec: {arg0:?}: executable file not found in $PATH")))?
    };
    let (dir, name) = open_parent(&path);
    Ok(Program {
        path: CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::field("process.args[0]", "NUL byte"))?,
        argv: args.iter().map(|a| cstring(a, "process.args")).collect::<Result<_>>()?,
        envp: env.iter().map(|e| cstring(e, "process.env")).collect::<Result<_>>()?,
        dir,
        name,
    })
}

/// The directory holding `path`, opened `O_PATH`, and the last component of `path`. `None` (the
/// exec then goes by path alone) when the path has no plain last component (`..`) or the
/// directory cannot be opened here; the exec reports what is wrong, as runc's would.
fn open_parent(path: &Path) -> (Option<OwnedFd>, CString) {
    let name = path.file_name().and_then(|n| CString::new(n.as_bytes()).ok());
    let parent = match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => Path::new("/"),
    };
    match name {
        Some(name) => {
            let dir = nix::fcntl::open(parent, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).ok();
            (dir, name)
        }
        None => (None, CString::default()),
    }
}


/// Go's `exec.LookPath` on a path, which runc calls before `create` returns: a missing file, a
/// directory or a file without any execute bit fails `create` (podman maps "permission denied"
/// to exit status 126 and "no such file or directory" to 127), not the container's exec later.
fn check_executable(arg0: &str, p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(p) {
        Ok(m) if !m.is_dir() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(Error::Init(format!("exec: {arg0:?}: permission denied"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Init(format!("exec: {arg0:?}: no such file or directory"))),
        Err(e) => Err(Error::Init(format!("exec: {arg0:?}: stat {}: {e}", p.display()))),
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `process.oomScoreAdj`. Written while still on the host side, before the process becomes
/// non-dumpable and joins a user namespace: a non-dumpable process's /proc files belong to the
/// host's root, which container root cannot write.
pub fn apply_oom_score_adj(process: &Process) -> Result<()> {
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| Error::io("write oomScoreAdj", "/proc/self/oom_score_adj", e))?;
    }
    Ok(())
}

/// rlimits, user, capabilities and cwd, in runc's order: bounding set first (needs
/// CAP_SETPCAP), then the user switch keeping capabilities, then the other sets.
///
/// Without no_new_privs the seccomp filter is loaded here, while CAP_SYS_ADMIN is still held
/// (as runc does); with it, `exec` loads it last. A notifying filter loaded here is handed to
/// the runtime over `chan` at once (see `notify_late`), before any further syscall could
/// wait for an agent that does not have the fd yet.
pub fn apply_process(process: &Process, seccomp: Option<&Filter>, preserve_fds: u32, chan: &Channel) -> Result<()> {
    // Before the filter and the user switch (see `sched`).
    super::sched::apply_process(process)?;
    if let Some(limits) = process.rlimits() {
        security::apply_rlimits(limits)?;
    }
    let caps = process.capabilities().as_ref().map(CapSets::from_spec).transpose()?;
    // AppArmor/SELinux labels for the exec, while /proc/self/attr is still writable to us.
    crate::lsm::apply(process)?;
    timing::mark("process: rlimits, capability names, LSM labels");
    let nnp = process.no_new_privileges() == Some(true);
    if seccomp.is_some() && !nnp {
        // Before the filter, which may deny close_range (or predate it): see `exec`.
        super::cloexec_from(3 + preserve_fds)?;
    }
    if let Some(fd) = crate::seccomp::load_early(seccomp, nnp)? {
        hand_over(fd, chan)?;
    }
    timing::mark("process: seccomp (early)");
    if let Some(c) = &caps {
        c.apply_bounding()?;
    }
    let user = process.user();
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    nix::sys::prctl::set_keepcaps(true).ctx(|| "prctl(PR_SET_KEEPCAPS)")?;
    let gids: Vec<Gid> = user.additional_gids().iter().flatten().map(|g| Gid::from_raw(*g)).collect();
    // setgroups is denied in a user namespace whose setgroups file says so; only fail when
    // groups were really asked for.
    if let Err(e) = nix::unistd::setgroups(&gids) {
        if !gids.is_empty() {
            return Err(Error::sys("setgroups (process.user.additionalGids)", e));
        }
    }
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("setgid {gid} (process.user.gid)"))?;
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setuid {uid} (process.user.uid)"))?;
    nix::sys::prctl::set_keepcaps(false).ctx(|| "prctl(PR_SET_KEEPCAPS)")?;
    if let Some(c) = &caps {
        c.apply()?;
    }
    timing::mark("process: capabilities, user switch");
    let cwd = process.cwd();
    nix::unistd::chdir(cwd.as_path()).map_err(|e| Error::field("process.cwd", format!("chdir {}: {e}", cwd.display())))?;
    check_cwd_inside(cwd)?;
    notify_late(process, seccomp, preserve_fds, chan)
}

/// CVE-2024-21626: a cwd such as `/proc/self/fd/N` naming a leaked host directory would put the
/// process outside its root. The kernel then reports the cwd as unreachable (glibc: ENOENT).
fn check_cwd_inside(cwd: &Path) -> Result<()> {
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        Ok(p) => Err(Error::field("process.cwd", format!("{} resolves outside the container ({})", cwd.display(), p.display()))),
        Err(e) => Err(Error::field("process.cwd", format!("{} resolves outside the container: getcwd: {e}", cwd.display()))),
    }
}

/// A notifying filter has to be loaded while the runtime still listens on `chan` (as in runc,
/// before the exec fifo wait), so with no_new_privs (where `apply_process` leaves the filter to
/// `exec`) a notifying one is loaded here: no_new_privs first, which it then needs, then the
/// filter, and its fd goes to the runtime. Nothing to do otherwise.
fn notify_late(process: &Process, seccomp: Option<&Filter>, preserve_fds: u32, chan: &Channel) -> Result<()> {
    match seccomp {
        Some(f) if f.notify && process.no_new_privileges() == Some(true) => {
            super::cloexec_from(3 + preserve_fds)?;
            security::set_no_new_privs()?;
            let fd = f.load()?.ok_or_else(|| Error::Other("seccomp: the notifying filter gave no listener fd".into()))?;
            hand_over(fd, chan)
        }
        _ => Ok(()),
    }
}

/// Sends the notify fd to the runtime and waits until it has handed it to the agent at
/// `listenerPath`.
fn hand_over(fd: OwnedFd, chan: &Channel) -> Result<()> {
    chan.send_with_fd(&Msg::SeccompFd, fd.as_fd())?;
    chan.expect(&Msg::Go)
}

/// Whether the seccomp filter is already on when [`exec`] runs: loaded by `apply_process`
/// without no_new_privs, or by `notify_late` when it notifies.
fn filter_loaded_before_exec(process: &Process, seccomp: Option<&Filter>) -> bool {
    seccomp.is_some_and(|f| process.no_new_privileges() != Some(true) || f.notify)
}

/// no_new_privs, fds, signal mask, the seccomp filter (when no_new_privs is set), then the exec.
/// Returns only on failure.
///
/// # After the filter, only the exec
///
/// Profiles are allow-lists written for some kernel and libc (many predate `close_range`,
/// `execveat`, `clone3`, `faccessat2`), and deny the rest with EPERM. So nothing this process
/// needs may come after the filter but syscalls every profile allows and the exec:
///
/// - fds: every fd above the preserved ones is marked close-on-exec *before* the filter goes
///   on (here when it goes on last, in `apply_process`/`notify_late` when it goes on there),
///   with close_range or, where that is refused, `/proc/self/fd` + fcntl ([`super::cloexec_from`]).
///   What is opened after the marking is ours and opened close-on-exec (the exec fifo, the
///   channel, hook pipes, the notify fd), so nothing without the flag reaches the exec.
/// - with the filter loaded early (no no_new_privs: loading it needs CAP_SYS_ADMIN, which the
///   user switch drops, as in runc) what follows it is the user switch, capset, chdir and
///   getcwd, the `Ready` message and the exec fifo read (sendmsg, read, close), the signal
///   dispositions and mask (rt_sigaction, rt_sigprocmask) and the exec: all in every profile
///   Docker, Kubernetes and runc have shipped, besides memory for argv and envp (brk/mmap). No
///   file is opened after the filter: the program's directory was opened when it was resolved.
/// - the exec: `execveat` first, then `execve` by path when that is refused (a profile without
///   execveat, or a script, below), as runc execs (by path).
///
/// # The exec, and the process name
///
/// `execveat(dir, name)`, with `dir` the program's directory opened when it was resolved (before
/// the filter and the user switch) and `name` the last component of its path. The kernel names
/// the process (`/proc/PID/comm`, what ps, top, pgrep, killall and `docker top` show) after the
/// last component of the path it is given: `cat` for busybox's `/bin/cat -> busybox`, as runc
/// (`execve(path)`) and crun (`execvpe(name)`) give. An exec of the file's own fd
/// (`execveat(fd, "", AT_EMPTY_PATH)`) would name it after the fd or, on Linux ≥ 6.14, the file
/// behind the link (`busybox`).
///
/// What the directory fd keeps of an fd exec: every directory above the program is resolved once,
/// before the filter, so a profile that denies `openat` or path walks after it still starts the
/// program, and a directory swapped later does not redirect the exec. The last component is
/// looked up at the exec, as the container's user, inside the container's root: a symlink there
/// (busybox's applets are symlinks) is followed at that moment, as runc and crun follow the
/// whole path then. AT_SYMLINK_NOFOLLOW would refuse every applet, and resolving the link
/// ourselves would name the process after its target again; so the window left is the one of
/// runc's exec, narrowed to one name in a directory already pinned. The kernel checks exec
/// permission on the file and search permission on `dir` as the user at the exec.
///
/// A script (`#!`) cannot run from a close-on-exec dir fd (its interpreter would open
/// `/dev/fd/N/name` after the fd is gone; the kernel says ENOENT before the point of no return):
/// the `execve` by path runs it.
pub fn exec(process: &Process, program: &Program, preserve_fds: u32, seccomp: Option<&Filter>) -> Error {
    let nnp = process.no_new_privileges() == Some(true);
    if !filter_loaded_before_exec(process, seccomp) {
        if nnp {
            if let Err(e) = security::set_no_new_privs() {
                return e;
            }
        }
        if let Err(e) = super::cloexec_from(3 + preserve_fds) {
            return e;
        }
    }
    // Built before the filter goes on: nothing after it may need to allocate.
    let argv = nul_terminated(&program.argv);
    let envp = nul_terminated(&program.envp);
    reset_signals();
    timing::mark("process: no_new_privs, fds, signals; exec next");
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&nix::sys::signal::SigSet::empty()), None);
    if nnp {
        // A notifying filter is already on (notify_late).
        if let Some(f) = seccomp.filter(|f| !f.notify) {
            if let Err(e) = f.load() {
                return e;
            }
        }
    }
    let mut at_err = None;
    if let Some(dir) = &program.dir {
        // SAFETY: argv and envp are null-terminated arrays of pointers to C strings owned by
        // `program`, alive across the call; `name` is a NUL-terminated relative name looked up
        // in `dir`, an fd we own. It returns only on failure.
        unsafe {
            libc::syscall(libc::SYS_execveat, dir.as_raw_fd(), program.name.as_ptr(), argv.as_ptr(), envp.as_ptr(), 0);
        }
        at_err = Some(std::io::Error::last_os_error());
    }
    // SAFETY: as above; returns only on failure.
    unsafe { libc::execve(program.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let err = std::io::Error::last_os_error();
    // A filter that denies execve but let execveat try: execveat's error says what is wrong.
    let err = match (at_err, err.raw_os_error()) {
        (Some(at), Some(libc::EPERM | libc::ENOSYS)) if !matches!(at.raw_os_error(), Some(libc::EPERM | libc::ENOSYS | libc::ENOENT)) => at,
        _ => err,
    };
    Error::Init(format!("exec {:?}: {}", program.path, err))
}

/// The pointer array execve wants: one pointer per string, then a null.
fn nul_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
}

/// Restores default dispositions (the Rust runtime ignores SIGPIPE; an ignored signal would
/// survive execve into the container's program).
fn reset_signals() {
    for sig in nix::sys::signal::Signal::iterator() {
        if matches!(sig, nix::sys::signal::Signal::SIGKILL | nix::sys::signal::Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: setting SIG_DFL installs no handler code; this process execs next.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn process(args: &[&str]) -> Process {
        let mut p = Process::default();
        p.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
        p
    }

    fn err(args: &[&str]) -> String {
        resolve(&process(args)).map(|p| format!("{:?}", p.path)).expect_err("resolve should fail").to_string()
    }

    #[test]
    fn a_path_must_be_an_executable_file_as_go_lookpath_says() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = |p: &Path| p.to_str().expect("utf-8 temp path").to_string();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "data").expect("write");
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let exe = dir.path().join("exe");
        std::fs::write(&exe, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o700)).expect("chmod");

        assert_eq!(err(&[&s(&plain)]), format!("exec: {:?}: permission denied", s(&plain)));
        assert_eq!(err(&[&s(dir.path())]), format!("exec: {:?}: permission denied", s(dir.path())));
        let missing = s(&dir.path().join("missing"));
        assert_eq!(err(&[&missing]), format!("exec: {missing:?}: no such file or directory"));
        let program = resolve(&process(&[&s(&exe), "arg"])).expect("an executable file resolves");
        assert_eq!(program.path.to_str().expect("utf-8"), s(&exe));
        assert_eq!(program.argv.len(), 2);
    }
}
