//! The container side of `create`: code that runs in the forked children.
//!
//! stage 1 (first child): joins namespaces given by path, makes the user namespace and waits
//! for the runtime to write its id maps and move it into the cgroup, makes the other
//! namespaces, writes time offsets, forks the init and exits.
//! stage 2 (the init, pid 1 of a new pid namespace): root filesystem, hooks, hostname,
//! sysctls, terminal, user and capabilities; reports `Ready`, then waits on the exec fifo for
//! `start` and execs the user's program. Neither stage ever returns into the caller.

use std::os::fd::OwnedFd;

use nix::unistd::{ForkResult, Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType as Ns, Process};

use super::channel::{Channel, Msg};
use super::setup;
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, Kind};
use crate::namespaces::Plan;
use crate::rootfs::{self, CgroupMount, RootfsCtx};
use crate::spec::Bundle;
use crate::timing;

/// Everything the children need; they are forked, so they share the parsed config.
pub struct InitArgs<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub plan: &'a Plan,
    pub chan: Channel,
    /// The exec fifo, opened read-write: the init blocks reading it until `start` writes.
    pub fifo: OwnedFd,
    /// Where to send the pty master when `process.terminal` is set.
    pub console: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub cgroup_mounts: Vec<CgroupMount>,
    /// `linux.seccomp`, compiled by the runtime before the fork.
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    /// The runtime runs as the host's root (see [`crate::security::protect_init`]).
    pub host_root: bool,
    /// The v1 cgroups stage 1 moves itself into (the runtime joins the v2 ones by pid).
    pub self_join: crate::cgroups::SelfJoin,
}

/// Leaves a forked child without running any of the parent's cleanup.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process immediately; nothing is touched afterwards.
    unsafe { libc::_exit(code) }
}

/// Runs stage 1 in the first child of `runtime`. Never returns.
pub fn stage1(a: InitArgs, runtime: nix::unistd::Pid) -> ! {
    // Dies with the runtime, at once (it would also exit at its next read of the channel).
    // Checked after setting it: the runtime may have died before. Not inherited by the init.
    if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_err() || nix::unistd::getppid() != runtime {
        exit_now(1);
    }
    if let Err(e) = stage1_inner(&a) {
        let _ = a.chan.send(&Msg::Error(e.to_string()));
        exit_now(1);
    }
    match fork_reporting_pid(&a.chan) {
        Ok(()) => stage2(a),
        Err(e) => {
            let _ = a.chan.send(&Msg::Error(format!("fork container init: {e}")));
            exit_now(1)
        }
    }
}

/// Forks the process that goes on talking on `chan`: the parent reports the child's pid
/// (`InitPid`) and exits; returns in the child only, once that report is sent. The child
/// waits for its parent's end of a pipe to close, so the runtime always hears the pid before
/// anything the child says: a child that ran ahead of a descheduled parent used to send
/// `Ready` first (seen under load).
pub(crate) fn fork_reporting_pid(chan: &Channel) -> nix::Result<()> {
    let (wait, done) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    match unsafe_fork()? {
        ForkResult::Parent { child } => {
            let _ = chan.send(&Msg::InitPid(child.as_raw()));
            // Closes `done`: the child goes on.
            exit_now(0)
        }
        ForkResult::Child => {
            drop(done);
            let mut b = [0u8; 1];
            // EOF once the parent has exited (a byte never comes).
            while let Err(nix::errno::Errno::EINTR) = nix::unistd::read(&wait, &mut b) {}
            Ok(())
        }
    }
}

/// fork(2); the runtime is single-threaded, so the child may allocate.
pub(crate) fn unsafe_fork() -> nix::Result<ForkResult> {
    // SAFETY: the runtime process has a single thread, so the child inherits no lock held by
    // another thread and may keep using the allocator.
    unsafe { nix::unistd::fork() }
}

fn stage1_inner(a: &InitArgs) -> Result<()> {
    if let Some(p) = a.bundle.spec.process() {
        setup::apply_oom_score_adj(p)?;
    }
    a.plan.join_all()?;
    if a.plan.new_user {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).ctx(|| "unshare user namespace")?;
    }
    timing::mark("stage 1: join namespaces, user namespace");
    a.chan.send(&Msg::Stage1)?;
    a.chan.expect(&Msg::Go)?;
    timing::mark("stage 1: waited for id maps and cgroup");
    // Before the cgroup namespace is made: its root is the cgroup we are in then.
    a.self_join.join()?;
    timing::mark("stage 1: joined its v1 cgroups");
    if a.plan.new_user {
        let root_g = Gid::from_raw(0);
        let root_u = Uid::from_raw(0);
        nix::unistd::setresgid(root_g, root_g, root_g).ctx(|| "setgid 0 in the user namespace (is gid 0 mapped?)")?;
        nix::unistd::setresuid(root_u, root_u, root_u).ctx(|| "setuid 0 in the user namespace (is uid 0 mapped?)")?;
    }
    if !a.plan.unshare.is_empty() {
        nix::sched::unshare(a.plan.unshare).ctx(|| format!("unshare namespaces {:?}", a.plan.unshare))?;
    }
    if a.plan.creates(Ns::Time) {
        crate::namespaces::write_time_offsets(&a.bundle.spec)?;
    }
    timing::mark("stage 1: unshare namespaces");
    Ok(())
}

/// Runs the container's init. Never returns.
fn stage2(a: InitArgs) -> ! {
    // The init is our binary until it execs and processes `exec`'d into a created container
    // see it as pid 1: keep them away from /proc/1/exe and its fds (CVE-2019-5736).
    if let Err(e) = crate::security::protect_init(a.host_root) {
        let _ = a.chan.send(&Msg::Error(e.to_string()));
        exit_now(1)
    }
    let process = match a.bundle.spec.process() {
        Some(p) => p,
        None => {
            let _ = a.chan.send(&Msg::Error("config has no process".into()));
            exit_now(1)
        }
    };
    let (program, state) = match stage2_setup(&a, process) {
        Ok(v) => v,
        Err(e) => {
            let _ = a.chan.send(&Msg::Error(e.to_string()));
            exit_now(1)
        }
    };
    // Last, after every credential change (each resets dumpability).
    if let Err(e) = crate::security::open_init_to_caller(a.host_root) {
        let _ = a.chan.send(&Msg::Error(e.to_string()));
        exit_now(1)
    }
    if a.chan.send(&Msg::Ready).is_err() {
        exit_now(1);
    }
    // The runtime says `Go` once the container is recorded (state.json, pid file). Should it
    // die before, no `delete` could ever find us: the channel's EOF ends the init instead.
    match a.chan.recv() {
        Ok(Some(Msg::Go)) => {}
        _ => exit_now(1),
    }
    drop(a.chan);
    // Block until `start` writes a byte into the fifo.
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(&a.fifo, &mut b) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(1) => break,
            _ => exit_now(1),
        }
    }
    drop(a.fifo);
    timing::mark("init: waited for start");
    let result = match &state {
        Some(s) => hooks::run(&a.bundle.spec, Kind::StartContainer, &with_status(s, "created")),
        None => Ok(()),
    };
    let err = match result {
        Ok(()) => setup::exec(process, &program, a.preserve_fds, a.seccomp),
        Err(e) => e,
    };
    eprintln!("skiff-runtime: container {}: {err}", a.id);
    exit_now(if matches!(err, Error::Hook { .. }) { 1 } else { 127 })
}

fn with_status(state: &str, status: &str) -> Vec<u8> {
    state.replacen("\"status\":\"creating\"", &format!("\"status\":\"{status}\""), 1).into_bytes()
}

fn stage2_setup(a: &InitArgs, process: &Process) -> Result<(setup::Program, Option<String>)> {
    let spec = &a.bundle.spec;
    nix::unistd::setsid().ctx(|| "setsid")?;
    let ctx = RootfsCtx {
        spec,
        rootfs: &a.bundle.rootfs,
        bundle: &a.bundle.dir,
        no_pivot: a.no_pivot,
        in_userns: a.plan.new_user || a.plan.join.iter().any(|j| j.kind == Ns::User),
        cgroups: &a.cgroup_mounts,
        cgroupns: crate::spec::has_namespace(spec, Ns::Cgroup),
        mount_label: crate::lsm::mount_label(spec, crate::lsm::Enabled::probe),
    };
    let sys = crate::syscall::Linux;
    let own_mountns = a.plan.creates(Ns::Mount);
    timing::mark("init: setsid");
    if own_mountns {
        rootfs::prepare(&sys, &ctx)?;
        timing::mark("init: rootfs mounts");
    }
    let wants_state = [Kind::Prestart, Kind::CreateRuntime, Kind::CreateContainer, Kind::StartContainer]
        .iter()
        .any(|k| !hooks::of(spec, *k).is_empty());
    let state = if wants_state {
        a.chan.send(&Msg::Hooks)?;
        match a.chan.recv()? {
            Some(Msg::State(s)) => Some(s),
            Some(Msg::Error(e)) => return Err(Error::Init(e)),
            other => return Err(Error::Other(format!("unexpected message {other:?}"))),
        }
    } else {
        None
    };
    if let Some(s) = &state {
        hooks::run(spec, Kind::CreateContainer, s.as_bytes())?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| Error::field("hostname", format!("sethostname {h:?}: {e}")))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        set_domainname(d)?;
    }
    for (key, value) in spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()).into_iter().flatten() {
        let path = crate::sysctl::proc_path(key);
        std::fs::write(&path, value).map_err(|e| Error::field(format!("linux.sysctl.{key}"), format!("write {}: {e}", path.display())))?;
    }
    timing::mark("init: hooks, hostname, sysctls");
    if own_mountns {
        rootfs::finish(&sys, &ctx)?;
        crate::checkpoint::reopen_dev_null();
    } else {
        nix::unistd::chroot(&a.bundle.rootfs).ctx(|| format!("chroot {}", a.bundle.rootfs.display()))?;
        nix::unistd::chdir("/").ctx(|| "chdir /")?;
    }
    timing::mark("init: pivot_root, masked and readonly paths");
    if process.terminal() == Some(true) {
        let sock = a.console.as_ref().ok_or_else(|| Error::Other("process.terminal is set but no console socket was given".into()))?;
        crate::terminal::setup_console(sock)?;
    }
    if !a.no_new_keyring {
        crate::security::join_new_session_keyring(a.id)?;
    }
    let program = setup::resolve(process)?;
    timing::mark("init: console, keyring, resolve program");
    crate::personality::apply(crate::personality::of(spec))?;
    super::sched::apply_memory_policy(spec.linux().as_ref())?;
    super::sched::apply_final_affinity(process, false)?;
    setup::apply_process(process, a.seccomp, a.preserve_fds, &a.chan)?;
    Ok((program, state))
}

fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: setdomainname reads `len` bytes from a buffer we own.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if r != 0 {
        return Err(Error::field("domainname", format!("setdomainname {name:?}: {}", std::io::Error::last_os_error())));
    }
    Ok(())
}
