//! The runtime side of `create`: forks stage 1 and answers its requests (id maps, cgroup,
//! createRuntime hooks) until the container's init reports `Ready`.

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use super::channel::{Channel, Msg};
use super::init::{self, InitArgs};
use crate::cgroups::Manager;
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, Kind};
use crate::rootless::IdMaps;
use crate::timing;

/// Forks the container. `parent` is our end of the channel whose other end is in `args`.
/// `state` renders the OCI state JSON for a given init pid (for hooks); `record_init` is told
/// the init's pid as soon as it is known. `id_maps` are written while stage 1 waits in its new
/// user namespace (None: no new one).
///
/// Returns the init pid and the channel to it, on which the init waits for one last `Go`: the
/// caller sends it once the container is recorded, and until then the init exits if the
/// channel closes (the runtime died).
pub fn spawn(
    args: InitArgs,
    parent: Channel,
    id_maps: Option<&IdMaps>,
    cgroup: Option<&Manager>,
    state: &dyn Fn(i32) -> String,
    record_init: &dyn Fn(i32) -> Result<()>,
) -> Result<(i32, Channel)> {
    // The init is reparented to us when stage 1 exits, so that `run` can wait for it and a
    // failed create can reap it.
    nix::sys::prctl::set_child_subreaper(true).ctx(|| "prctl(PR_SET_CHILD_SUBREAPER)")?;
    let spec = args.bundle.spec.clone();
    let runtime = nix::unistd::getpid();
    let (forked, joined) = super::fork_joined(cgroup)?;
    let cgroup = if joined { None } else { cgroup };
    let stage1 = match forked {
        ForkResult::Child => {
            drop(parent);
            init::stage1(args, runtime)
        }
        ForkResult::Parent { child } => child,
    };
    timing::mark("create: fork stage 1");
    drop(args);
    let mut init_pid = None;
    let result = drive(&parent, stage1, id_maps, cgroup, &spec, state, record_init, &mut init_pid);
    if result.is_err() {
        for pid in [Some(stage1.as_raw()), init_pid].into_iter().flatten() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = waitpid(stage1, None);
        if let Some(p) = init_pid {
            let _ = waitpid(Pid::from_raw(p), None);
        }
    }
    result.map(|pid| (pid, parent))
}

#[allow(clippy::too_many_arguments)]
fn drive(
    chan: &Channel,
    stage1: Pid,
    id_maps: Option<&IdMaps>,
    cgroup: Option<&Manager>,
    spec: &oci_spec::runtime::Spec,
    state: &dyn Fn(i32) -> String,
    record_init: &dyn Fn(i32) -> Result<()>,
    init_pid: &mut Option<i32>,
) -> Result<i32> {
    chan.expect(&Msg::Stage1)?;
    timing::mark("create: stage 1 in its namespaces");
    if let Some(maps) = id_maps {
        maps.write(stage1.as_raw())?;
        timing::mark("create: id maps written");
    }
    if let Some(cg) = cgroup {
        cg.add(stage1.as_raw())?;
        timing::mark("create: v2 cgroup join");
    }
    chan.send(&Msg::Go)?;
    let pid = match chan.recv()? {
        Some(Msg::InitPid(p)) => p,
        Some(Msg::Error(e)) => return Err(Error::Init(e)),
        other => return Err(Error::Init(format!("container setup failed before init started ({other:?})"))),
    };
    *init_pid = Some(pid);
    record_init(pid)?;
    // Into the init's new network namespace before it sets up (hooks see them), as runc.
    crate::netdev::attach(spec, pid)?;
    let _ = waitpid(stage1, None);
    timing::mark("create: init forked, stage 1 reaped");
    loop {
        let (msg, fd) = match chan.recv_with_fd()? {
            Some((m, fd)) => (Some(m), fd),
            None => (None, None),
        };
        match msg {
            Some(Msg::Ready) => return Ok(pid),
            Some(Msg::SeccompFd) => {
                forward_seccomp_fd(spec, pid, &state(pid), fd)?;
                chan.send(&Msg::Go)?;
            }
            Some(Msg::Hooks) => {
                let s = state(pid);
                hooks::run(spec, Kind::Prestart, s.as_bytes())?;
                hooks::run(spec, Kind::CreateRuntime, s.as_bytes())?;
                chan.send(&Msg::State(s))?;
            }
            Some(Msg::Error(e)) => return Err(Error::Init(e)),
            Some(m) => return Err(Error::Other(format!("unexpected message from init: {m:?}"))),
            None => return Err(Error::Init("container init exited during setup".into())),
        }
    }
}

/// Hands the notify fd the container sent to the seccomp agent of `spec`'s `linux.seccomp`.
pub(crate) fn forward_seccomp_fd(spec: &oci_spec::runtime::Spec, pid: i32, state: &str, fd: Option<std::os::fd::OwnedFd>) -> Result<()> {
    let fd = fd.ok_or_else(|| Error::Other("the container sent no seccomp notify fd".into()))?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()).ok_or_else(|| Error::Other("seccomp notify fd without linux.seccomp".into()))?;
    crate::seccomp::notify::send_to_agent(seccomp, pid, state, std::os::fd::AsFd::as_fd(&fd))
}
