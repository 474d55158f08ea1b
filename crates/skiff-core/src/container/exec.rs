//! `exec`: run another process in a running container.

use std::os::fd::AsFd;

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use oci_spec::runtime::Process;

use super::{write_pid_file, Container, ExecOptions};
use crate::cgroups::Manager;
use crate::error::{Error, Result, SysContext};
use crate::process::{exec, supervise};
use crate::state::Status;
use crate::timing;

impl Container {
    /// Runs `process` in the container; returns its exit status, or 0 when detached.
    pub fn exec(&self, process: &Process, opts: &ExecOptions) -> Result<i32> {
        match self.status() {
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
        let joins = exec::target_namespaces(self.rec.pid, &self.rec.spec)?;
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
        let cgroup = (!self.rec.cgroup_paths.is_empty()).then(|| Manager { paths: self.rec.cgroup_paths.clone() });
        // exec'd processes get the container's seccomp filter, as in runc.
        let seccomp = crate::seccomp::cache::for_spec(&self.rec.spec, self.store.root())?;
        timing::mark("exec: signals, console, seccomp filter");
        let state = || serde_json::to_string(&self.state()).unwrap_or_default();
        let from_spec = exec::FromSpec { seccomp: seccomp.as_ref().map(|f| (f, &self.rec.spec)), personality: crate::personality::of(&self.rec.spec) };
        let pid = exec::spawn(joins, process, console, opts.preserve_fds, cgroup.as_ref(), from_spec, &state)?;
        crate::intelrdt::join_exec(self.rec.pid, pid);
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
}
