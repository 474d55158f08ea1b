//! `exec`: a new process inside a running container. It joins every namespace of the
//! container's init (user first), its cgroup, and gets the process settings of its own spec.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use nix::sys::wait::waitpid;
use nix::unistd::ForkResult;
use oci_spec::runtime::{LinuxNamespaceType, LinuxPersonality, Process, Spec};

use super::channel::{self, Channel, Msg};
use super::init::{exit_now, fork_reporting_pid};
use super::setup;
use crate::cgroups::Manager;
use crate::seccomp::Filter;
use crate::error::{Error, Result, SysContext};
use crate::namespaces::{self, Join, ORDER};
use crate::timing;

/// Opens the namespaces of `init_pid` that differ from ours, user first: those of the `kinds`
/// the container's config lists (new or joined).
pub fn target_namespaces(init_pid: i32, kinds: &[LinuxNamespaceType]) -> Result<Vec<Join>> {
    let mut out = Vec::new();
    for kind in ORDER {
        if !kinds.contains(&kind) {
            continue;
        }
        let name = namespaces::proc_name(kind);
        let theirs = format!("/proc/{init_pid}/ns/{name}");
        let f = std::fs::File::open(&theirs).map_err(|e| Error::io("open namespace", &theirs, e))?;
        let same = match (f.metadata(), std::fs::metadata(format!("/proc/self/ns/{name}"))) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            out.push(Join { kind, fd: f.into() });
        }
    }
    Ok(out)
}

/// What the exec'd process takes from the container's config besides its own process.
#[derive(Clone, Copy, Default)]
pub struct FromSpec<'a> {
    /// The container's seccomp filter.
    pub seccomp: Option<&'a Filter>,
    /// The container's config, for a notifying filter (its agent gets the listener fd).
    pub spec: Option<&'a Spec>,
    pub personality: Option<&'a LinuxPersonality>,
}

/// Forks the exec'd process; returns its pid once it has exec'd (or the error it hit).
/// `state` renders the container's OCI state for a seccomp agent (notifying filters).
pub fn spawn(joins: Vec<Join>, process: &Process, console: Option<OwnedFd>, preserve_fds: u32, cgroup: Option<&Manager>, from_spec: FromSpec, state: &dyn Fn() -> String) -> Result<i32> {
    let filter = from_spec.seccomp;
    nix::sys::prctl::set_child_subreaper(true).ctx(|| "prctl(PR_SET_CHILD_SUBREAPER)")?;
    let (parent, child) = channel::pair()?;
    // As at create: v1 cgroups joined by the child itself, a v2 one at the fork.
    let (self_join, by_pid) = super::split_join(cgroup)?;
    let (forked, joined) = super::fork_joined(by_pid.as_ref())?;
    let cgroup = if joined { None } else { by_pid.as_ref() };
    let first = match forked {
        ForkResult::Child => {
            drop(parent);
            first_child(child, &joins, process, console.as_ref(), preserve_fds, (filter, from_spec.personality), &self_join)
        }
        ForkResult::Parent { child } => child,
    };
    timing::mark("exec: fork");
    drop(child);
    drop(console);
    let r = (|| {
        if let Some(cg) = cgroup {
            cg.add(first.as_raw())?;
            timing::mark("exec: cgroup join");
        }
        parent.send(&Msg::Go)?;
        let pid = match parent.recv()? {
            Some(Msg::InitPid(p)) => p,
            Some(Msg::Error(e)) => return Err(Error::Init(e)),
            _ => return Err(Error::Init("exec setup failed".into())),
        };
        let _ = waitpid(first, None);
        timing::mark("exec: process forked in the container");
        // The channel is close-on-exec: EOF means the program is running.
        loop {
            match parent.recv_with_fd()? {
                None => {
                    timing::mark("exec: process exec'd");
                    return Ok(pid);
                }
                Some((Msg::SeccompFd, fd)) => {
                    let spec = from_spec.spec.filter(|_| filter.is_some()).ok_or_else(|| Error::Other("seccomp notify fd without a filter".into()))?;
                    if let Err(e) = super::launch::forward_seccomp_fd(spec, pid, &state(), fd) {
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                        let _ = waitpid(nix::unistd::Pid::from_raw(pid), None);
                        return Err(e);
                    }
                    parent.send(&Msg::Go)?;
                }
                Some((Msg::Error(e), _)) => {
                    let _ = waitpid(nix::unistd::Pid::from_raw(pid), None);
                    return Err(Error::Init(e));
                }
                Some((m, _)) => return Err(Error::Other(format!("unexpected message {m:?}"))),
            }
        }
    })();
    if r.is_err() {
        let _ = nix::sys::signal::kill(first, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(first, None);
    }
    r
}

type Extras<'a> = (Option<&'a Filter>, Option<&'a LinuxPersonality>);

fn first_child(chan: Channel, joins: &[Join], process: &Process, console: Option<&OwnedFd>, preserve_fds: u32, (seccomp, personality): Extras, self_join: &crate::cgroups::SelfJoin) -> ! {
    let r = (|| -> Result<()> {
        super::sched::apply_initial_affinity(process)?;
        chan.expect(&Msg::Go)?;
        self_join.join()?;
        timing::mark("exec child: waited for cgroup join");
        // Host-side settings first, then non-dumpable before entering the container: until it
        // execs, this process and its child are our binary (CVE-2019-5736).
        setup::apply_oom_score_adj(process)?;
        crate::personality::apply(personality)?;
        crate::security::set_non_dumpable()?;
        for j in joins {
            nix::sched::setns(j.fd.as_fd(), namespaces::flag(j.kind)).ctx(|| format!("join {} namespace", namespaces::proc_name(j.kind)))?;
        }
        timing::mark("exec child: setns");
        Ok(())
    })();
    if let Err(e) = r {
        let _ = chan.send(&Msg::Error(e.to_string()));
        exit_now(1);
    }
    match fork_reporting_pid(&chan) {
        Ok(()) => {
            let err = match prepare(process, console, seccomp, preserve_fds, &chan) {
                Ok(program) => setup::exec(process, &program, preserve_fds, seccomp),
                Err(e) => e,
            };
            let _ = chan.send(&Msg::Error(err.to_string()));
            exit_now(127)
        }
        Err(e) => {
            let _ = chan.send(&Msg::Error(format!("fork: {e}")));
            exit_now(1)
        }
    }
}

fn prepare(process: &Process, console: Option<&OwnedFd>, seccomp: Option<&Filter>, preserve_fds: u32, chan: &Channel) -> Result<setup::Program> {
    nix::unistd::setsid().ctx(|| "setsid")?;
    if process.terminal() == Some(true) {
        let sock = console.ok_or_else(|| Error::Other("process.terminal is set but no console socket was given".into()))?;
        crate::terminal::setup_console(sock)?;
    }
    let program = setup::resolve(process)?;
    timing::mark("exec child: setsid, console, resolve program");
    super::sched::apply_final_affinity(process, true)?;
    setup::apply_process(process, seccomp, preserve_fds, chan)?;
    Ok(program)
}
