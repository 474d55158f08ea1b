//! `exec`: run another process in a running container.
//!
//! What it takes of the container comes from its exec record ([`super::exec_record`]) when
//! there is one ([`Runtime::load_for_exec`]), else from its full state: both go through the
//! same [`ExecRecord`] here.

use std::os::fd::AsFd;

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use oci_spec::runtime::{Process, Spec};

use super::exec_record::{self, ExecRecord};
use super::{write_pid_file, Container, ExecOptions, Runtime};
use crate::cgroups::Manager;
use crate::error::{Error, Result, SysContext};
use crate::process::{exec, supervise};
use crate::seccomp::Filter;
use crate::state::{Status, Store};
use crate::timing;

/// A container as `exec` sees it: its exec record, or its full state.
#[derive(Debug)]
pub enum ExecTarget {
    /// The exec record written at create.
    Record { store: Store, rec: Box<ExecRecord> },
    /// The full state: a container made by a skiff without exec records, or whose record is
    /// missing or unusable (see [`super::exec_record`]).
    Container(Box<Container>),
}

impl Runtime {
    /// Loads container `id` for `exec`: its exec record when it has a usable one (a small
    /// file: the config is not read), else its full state.
    pub fn load_for_exec(&self, id: &str) -> Result<ExecTarget> {
        crate::spec::validate_id(id)?;
        match exec_record::read(&self.store, id) {
            Some(rec) => Ok(ExecTarget::Record {
                store: self.store.clone(),
                rec: Box::new(rec),
            }),
            None => Ok(ExecTarget::Container(Box::new(self.load(id)?))),
        }
    }
}

impl ExecTarget {
    pub fn id(&self) -> &str {
        match self {
            ExecTarget::Record { rec, .. } => &rec.id,
            ExecTarget::Container(c) => c.id(),
        }
    }

    pub fn status(&self) -> Status {
        match self {
            ExecTarget::Record { store, rec } => rec.status(store),
            ExecTarget::Container(c) => c.status(),
        }
    }

    /// The container's own `process` (the base of `exec ID COMMAND`).
    pub fn process(&self) -> Option<&Process> {
        match self {
            ExecTarget::Record { rec, .. } => rec.process.as_ref(),
            ExecTarget::Container(c) => c.rec.spec.process().as_ref(),
        }
    }

    /// [`Container::exec`].
    pub fn exec(&self, process: &Process, opts: &ExecOptions) -> Result<i32> {
        match self {
            ExecTarget::Record { store, rec } => run(rec, rec.status(store), process, opts, &|| rec.filter(), None, &String::new),
            ExecTarget::Container(c) => c.exec(process, opts),
        }
    }
}

impl Container {
    /// Runs `process` in the container; returns its exit status, or 0 when detached.
    pub fn exec(&self, process: &Process, opts: &ExecOptions) -> Result<i32> {
        let rec = ExecRecord::of(&self.rec);
        // exec'd processes get the container's seccomp filter, as in runc.
        let seccomp = || crate::seccomp::cache::for_spec(&self.rec.spec, self.store.root());
        let state = || serde_json::to_string(&self.state()).unwrap_or_default();
        run(&rec, self.status(), process, opts, &seccomp, Some(&self.rec.spec), &state)
    }
}

/// exec in the container `rec` describes, whose status is `status`. `seccomp` gives its filter;
/// `spec` is its config, for a notifying filter's agent, which also gets `state`.
fn run(
    rec: &ExecRecord,
    status: Status,
    process: &Process,
    opts: &ExecOptions,
    seccomp: &dyn Fn() -> Result<Option<Filter>>,
    spec: Option<&Spec>,
    state: &dyn Fn() -> String,
) -> Result<i32> {
    match status {
        Status::Running | Status::Created => {}
        // runc's --ignore-paused: the process joins the frozen cgroup and runs on resume.
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => return Err(Error::State("cannot exec in a paused container (use --ignore-paused to override)".into())),
        _ => return Err(Error::State("cannot exec in a stopped container".into())),
    }
    crate::spec::validate_process(process)?;
    let terminal = process.terminal() == Some(true);
    if terminal && opts.detach && opts.console_socket.is_none() {
        return Err(Error::Other("cannot allocate a tty for a detached exec without --console-socket".into()));
    }
    timing::mark("exec: status and process checks");
    let joins = exec::target_namespaces(rec.pid, &rec.namespaces)?;
    timing::mark("exec: open namespaces");
    let signals = if opts.detach { None } else { Some(supervise::block()?) };
    let (console, ours) = match &opts.console_socket {
        Some(p) => (Some(crate::terminal::connect(p)?), None),
        None if terminal => {
            let (a, b) = socket::socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).ctx(|| "socketpair")?;
            (Some(b), Some(a))
        }
        None => (None, None),
    };
    let cgroup = (!rec.cgroup_paths.is_empty()).then(|| Manager {
        paths: rec.cgroup_paths.clone(),
    });
    let seccomp = seccomp()?;
    timing::mark("exec: signals, console, seccomp filter");
    let from_spec = exec::FromSpec {
        seccomp: seccomp.as_ref(),
        spec,
        personality: rec.personality.as_ref(),
    };
    let pid = exec::spawn(joins, process, console, opts.preserve_fds, cgroup.as_ref(), from_spec, state)?;
    crate::intelrdt::join_exec(rec.pid, pid);
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    let master = match &ours {
        Some(s) => Some(crate::terminal::recv_fd(s.as_fd())?),
        None => None,
    };
    match signals {
        None => Ok(0),
        Some(sig) => {
            let r = supervise::wait(&sig, pid, master);
            timing::mark("exec: process exited");
            r
        }
    }
}
