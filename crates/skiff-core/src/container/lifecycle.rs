//! `start`, `kill` and `delete`.

use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;

use super::{Container, Runtime};
use crate::error::{Error, Result};
use crate::hooks::{self, Kind};
use crate::process;
use crate::state::{Intent, Status, EXEC_FIFO};
use crate::timing;

impl Container {
    /// Releases a created container: its init execs the user's program.
    pub fn start(&self) -> Result<()> {
        match self.status() {
            Status::Created => {}
            Status::Stopped => return Err(Error::State("cannot start a container that has stopped".into())),
            Status::Running => return Err(Error::State("cannot start an already running container".into())),
            Status::Paused => return Err(Error::State("cannot start a container in the paused state".into())),
            Status::Creating => return Err(Error::State("cannot start a container that is still being created".into())),
        }
        let fifo = self.store.dir(self.id()).join(EXEC_FIFO);
        let fd = nix::fcntl::open(&fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::State(format!("cannot start container {}: init is not waiting ({e})", self.id())))?;
        nix::unistd::write(&fd, b"0").map_err(|e| Error::sys("write exec fifo", e))?;
        drop(fd);
        std::fs::remove_file(&fifo).map_err(|e| Error::io("remove", &fifo, e))?;
        timing::mark("start: exec fifo written");
        let state = serde_json::to_vec(&self.rec.oci_state(Status::Running)).unwrap_or_default();
        let r = hooks::run(&self.rec.spec, Kind::Poststart, &state);
        timing::mark("start: poststart hooks");
        r
    }

    /// Sends `sig` to the init, or with `all` to every process of the container.
    ///
    /// As runc 1.1: with `all`, a stopped container is no error. What is left in its cgroup
    /// (the children of an init that shared the host pid namespace and exited) is signalled,
    /// and a cgroup already gone means there is nothing to signal. containerd-shim-runc-v2
    /// sends exactly this when the init of a `--pid host` container exits.
    pub fn kill(&self, sig: Signal, all: bool) -> Result<()> {
        if self.status() == Status::Stopped {
            if !all {
                return Err(Error::State("container not running".into()));
            }
            if !self.rec.cgroup_paths.iter().any(|p| p.exists()) {
                return Ok(());
            }
        }
        if all {
            return self.signal_all(sig);
        }
        self.signal_init(sig)
    }

    fn signal_init(&self, sig: Signal) -> Result<()> {
        let fd = process::pidfd_open(self.rec.pid).map_err(|_| Error::State("container not running".into()))?;
        // The pidfd pins the process; check it is still our init and not a reused pid.
        if !self.rec.init_alive() {
            return Err(Error::State("container not running".into()));
        }
        process::pidfd_signal(&fd, sig as i32).map_err(|e| Error::Other(format!("signal {sig} to pid {}: {e}", self.rec.pid)))?;
        self.thaw_after_kill(sig);
        Ok(())
    }

    /// Signals every pid of the cgroup; after SIGKILL a frozen cgroup is thawed so it is
    /// delivered.
    fn signal_all(&self, sig: Signal) -> Result<()> {
        let pids = self.pids()?;
        for pid in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
        self.thaw_after_kill(sig);
        Ok(())
    }

    /// Deletes the container: a stopped one at once, a created one by killing its init first,
    /// a running one only with `force`.
    pub fn delete(&self, force: bool) -> Result<()> {
        match self.status() {
            Status::Stopped => {}
            Status::Created => self.kill_and_wait()?,
            _ if force => self.kill_and_wait()?,
            s => return Err(Error::State(format!("cannot delete container {} that is not stopped: {s}", self.id()))),
        }
        timing::mark("delete: status and kill");
        self.destroy()
    }

    fn kill_and_wait(&self) -> Result<()> {
        let fd = process::pidfd_open(self.rec.pid).ok();
        if self.rec.init_alive() {
            if let Some(fd) = &fd {
                let _ = process::pidfd_signal(fd, Signal::SIGKILL as i32);
            }
        }
        let _ = self.signal_all(Signal::SIGKILL);
        if let Some(fd) = &fd {
            if !process::pidfd_wait(fd, Duration::from_secs(10)) {
                return Err(Error::Other(format!("container {} init (pid {}) did not exit after SIGKILL", self.id(), self.rec.pid)));
            }
        }
        Ok(())
    }

    /// Removes what the container left: its processes, cgroups, state; runs poststop hooks.
    fn destroy(&self) -> Result<()> {
        if !self.rec.cgroup_paths.is_empty() {
            let _ = self.signal_all(Signal::SIGKILL);
            crate::cgroups::remove(&self.rec.cgroup_created)?;
            crate::cgroups::remove_default_parents(&self.rec.cgroup_paths);
            timing::mark("delete: cgroups removed");
        }
        crate::intelrdt::destroy(&self.rec.spec, self.id());
        let state = serde_json::to_vec(&self.rec.oci_state(Status::Stopped)).unwrap_or_default();
        hooks::run(&self.rec.spec, Kind::Poststop, &state)?;
        self.store.remove(self.id())?;
        timing::mark("delete: poststop hooks and state dir");
        Ok(())
    }
}

impl Runtime {
    /// Deletes a container; with `force` an id that no longer exists is not an error, as
    /// containerd expects, and what a create killed half-way left (state dir, cgroups,
    /// processes; see [`Intent`]) is removed. A create still in progress is not disturbed.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        match self.load(id) {
            Ok(c) => c.delete(force),
            Err(Error::NotExist(_)) if force => {
                let Some(lock) = self.store.lock(false)? else { return Ok(()) };
                // The create may have finished since we looked.
                match self.load(id) {
                    Ok(c) => {
                        drop(lock);
                        c.delete(force)
                    }
                    Err(Error::NotExist(_)) => self.reclaim(id),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Undoes what a create whose runtime died left in the state dir of `id` (one without
    /// `state.json`): kills its processes, removes its cgroups, then the dir. Refused while
    /// the creating runtime still runs. The caller holds the root lock.
    pub(super) fn reclaim(&self, id: &str) -> Result<()> {
        if !self.store.exists(id) {
            return Ok(());
        }
        if let Some(i) = self.store.intent(id)? {
            if i.creator_alive() {
                return Err(Error::State(format!("container {id} is being created (by pid {}); wait for that to finish", i.runtime_pid)));
            }
            tracing::debug!("container {id}: undoing a create whose runtime (pid {}) died", i.runtime_pid);
            kill_half_made(&i)?;
            crate::cgroups::remove(&i.cgroup_created)?;
            crate::cgroups::remove_default_parents(&i.cgroup_paths);
        }
        self.store.remove(id)
    }
}

/// Kills the processes of a half-made container: its init (by pidfd, if it was recorded) and
/// whatever is in its cgroups, until they are empty. Its first child needs nothing: it dies
/// with the runtime (parent-death signal).
fn kill_half_made(i: &Intent) -> Result<()> {
    let fd = if i.init_pid > 0 { process::pidfd_open(i.init_pid).ok() } else { None };
    // The pidfd pins the process; check it is still the init and not a reused pid.
    if let Some(fd) = fd.filter(|_| i.init_alive()) {
        let _ = process::pidfd_signal(&fd, Signal::SIGKILL as i32);
        process::pidfd_wait(&fd, Duration::from_secs(10));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids: Vec<i32> = i
            .cgroup_paths
            .iter()
            .filter_map(|p| std::fs::read_to_string(p.join("cgroup.procs")).ok())
            .flat_map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect::<Vec<i32>>())
            .collect();
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Other(format!("processes {pids:?} of a half-made container did not exit after SIGKILL")));
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
