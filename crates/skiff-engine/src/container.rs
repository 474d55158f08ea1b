//! Verbs on existing containers: the monitor's exit command (cleanup, `--rm`, restart
//! policy), stop, kill, wait, pause, unpause, rename, exec.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::record::{ContainerRecord, ExitRecord, Status};
use crate::{names, users, Engine};

/// What `exec` runs.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub privileged: bool,
}

/// Waits up to `timeout` for `pid` (started at `start`) to exit; true if it did.
fn wait_pid(pid: i32, start: u64, timeout: Option<Duration>) -> bool {
    let Ok(fd) = skiff_core::process::pidfd_open(pid) else { return true };
    if !Engine::alive(pid, start) {
        return true;
    }
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    let mut pfd = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&fd), nix::poll::PollFlags::POLLIN)];
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::NONE)) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(nix::errno::Errno::EINTR) if deadline.is_none_or(|d| Instant::now() < d) => continue,
            Err(_) => return !Engine::alive(pid, start),
        }
    }
}

impl Engine {
    /// The init's pid and start time, from the runtime's state.
    fn init_of(&self, id: &str) -> Option<(i32, u64)> {
        self.runtime.load(id).ok().map(|c| (c.rec.pid, c.rec.pid_start))
    }

    /// The monitor's exit command: record the exit, release the container's resources, then
    /// `--rm` or the restart policy. `attached` are client fds inherited from the monitor;
    /// they are closed once cleanup is done, which is what a foreground `run` waits for.
    ///
    /// `monitor` is the pid of the monitor whose container exited: the exit command runs in
    /// that very process; a foreground `run` that took the cleanup on passes it too.
    pub fn cleanup(&self, id: &str, attached: &[i32], monitor: i32) -> Result<()> {
        let me = monitor;
        let release = || {
            for &fd in attached {
                // SAFETY: closing fds the monitor handed us and nothing else uses.
                unsafe { libc::close(fd) };
            }
        };
        let restart = (|| -> Result<Option<Duration>> {
            let (lock, mut rec) = match self.lock(id) {
                Ok(x) => x,
                Err(Error::NoSuchContainer(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            // A newer start replaced us: nothing of ours is left to clean.
            if rec.state.monitor_pid != me || matches!(rec.state.status, Status::Running | Status::Paused) {
                return Ok(None);
            }
            skiff_core::timing::mark("cleanup: locked");
            if rec.host_config.auto_remove {
                drop(lock);
                return self.remove(id, true, true).map(|()| None);
            }
            // The exit is recorded before the (slower) unmount: a foreground `run` may go.
            if let Ok(c) = self.runtime.load(id) {
                c.delete(true)?;
            }
            rec.save(&self.layout.container(id).record())?;
            release();
            self.reconcile(&mut rec)?;
            skiff_core::timing::mark("cleanup: runtime deleted, rootfs unmounted");
            if !should_restart(&rec) {
                return Ok(None);
            }
            rec.state.status = Status::Restarting;
            rec.restart_count += 1;
            rec.save(&self.layout.container(id).record())?;
            // Docker's back-off: 100 ms, doubling per restart, at most a minute.
            let n = rec.restart_count.clamp(1, 11) - 1;
            Ok(Some(Duration::from_millis((100u64 << n).min(60_000))))
        })();
        release();
        if let Some(delay) = restart? {
            std::thread::sleep(delay);
            self.restart(id, me)?;
        }
        Ok(())
    }

    /// Sends the stop signal, waits `timeout` seconds (the container's, else 10), then
    /// SIGKILL. A stopped container is left as it is.
    pub fn stop(&self, id: &str, timeout: Option<i64>) -> Result<ContainerRecord> {
        let (lock, mut rec) = self.lock(id)?;
        if rec.state.status == Status::Restarting {
            rec.manually_stopped = true;
            rec.state.status = Status::Exited;
            rec.save(&self.layout.container(id).record())?;
            return Ok(rec);
        }
        if !rec.state.status.is_active() {
            return Ok(rec);
        }
        rec.manually_stopped = true;
        rec.save(&self.layout.container(id).record())?;
        drop(lock);
        let sig = match &rec.config.stop_signal {
            Some(s) => crate::units::signal(s)?,
            None => Signal::SIGTERM,
        };
        let secs = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        if let (Ok(c), Some((pid, start))) = (self.runtime.load(id), self.init_of(id)) {
            let paused = c.status() == skiff_core::Status::Paused;
            let sent = c.kill(sig, false).is_ok();
            if paused {
                let _ = c.resume();
            }
            let waited = sent && secs >= 0 && wait_pid(pid, start, Some(Duration::from_secs(secs as u64)));
            if !waited {
                let _ = c.kill(Signal::SIGKILL, true);
                wait_pid(pid, start, Some(Duration::from_secs(30)));
            }
        }
        self.wait_exit_record(id, &rec);
        // And for the monitor's cleanup (runtime state, cgroups, unmount) to finish, so that
        // what follows a stop sees a container fully stopped.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Engine::alive(rec.state.monitor_pid, rec.state.monitor_start) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.load(id)
    }

    /// After the init's death the monitor writes the exit record; give it a moment so that
    /// what we report next carries the real exit code.
    fn wait_exit_record(&self, id: &str, rec: &ContainerRecord) {
        let path = self.layout.container(id).exit();
        let deadline = Instant::now() + Duration::from_secs(5);
        while ExitRecord::load(&path).is_none() && Instant::now() < deadline && Engine::alive(rec.state.monitor_pid, rec.state.monitor_start) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn kill(&self, id: &str, sig: Signal) -> Result<()> {
        let (_lock, mut rec) = self.lock(id)?;
        if !rec.state.status.is_active() {
            return Err(Error::Conflict(format!("Cannot kill container: {id}: Container {id} is not running")));
        }
        rec.manually_stopped = true;
        rec.save(&self.layout.container(id).record())?;
        let c = self.runtime.load(id)?;
        c.kill(sig, false)?;
        Ok(())
    }

    /// Blocks until the container is not running; returns its exit code.
    pub fn wait(&self, id: &str) -> Result<i32> {
        loop {
            let rec = self.load(id)?;
            if !rec.state.status.is_active() {
                return Ok(rec.state.exit_code);
            }
            if rec.state.status == Status::Restarting {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            if let Some((pid, start)) = self.init_of(id) {
                wait_pid(pid, start, None);
            }
            self.wait_exit_record(id, &rec);
            let again = self.load(id)?;
            if !again.state.status.is_active() {
                return Ok(again.state.exit_code);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let (_l, rec) = self.lock(id)?;
        match rec.state.status {
            Status::Running => Ok(self.runtime.load(id)?.pause()?),
            Status::Paused => Err(Error::Conflict(format!("Container {id} is already paused"))),
            _ => Err(Error::Conflict(format!("Container {id} is not running"))),
        }
    }

    pub fn unpause(&self, id: &str) -> Result<()> {
        let (_l, rec) = self.lock(id)?;
        if rec.state.status != Status::Paused {
            return Err(Error::Conflict(format!("Container {id} is not paused")));
        }
        Ok(self.runtime.load(id)?.resume()?)
    }

    pub fn rename(&self, id: &str, new: &str) -> Result<()> {
        let new = names::validate(new)?;
        let (_l, mut rec) = self.lock(id)?;
        if rec.name == new {
            return Err(Error::Conflict("Renaming a container with the same name as its current name".into()));
        }
        names::reserve(&self.layout.names(), &new, id)?;
        let old = std::mem::replace(&mut rec.name, new);
        rec.save(&self.layout.container(id).record())?;
        names::release(&self.layout.names(), &old, id);
        Ok(())
    }

    /// Runs a process in a running container; returns its exit status (0 when detached).
    /// The process's stdio is ours (a pty is proxied to our terminal).
    pub fn exec(&self, id: &str, req: &ExecRequest) -> Result<i32> {
        let rec = self.load(id)?;
        match rec.state.status {
            Status::Running => {}
            Status::Paused => return Err(Error::Conflict(format!("Container {id} is paused, unpause the container before exec"))),
            _ => return Err(Error::Conflict(format!("Container {id} is not running"))),
        }
        if req.cmd.is_empty() {
            return Err(Error::Invalid("No exec command specified".into()));
        }
        let c = self.runtime.load(id)?;
        let mut p = c.rec.spec.process().clone().ok_or_else(|| Error::Other("container has no process".into()))?;
        let rootfs = self.rootfs_path(&rec);
        if let Some(u) = &req.user {
            let eu = users::lookup(&rootfs, u)?;
            let mut user = p.user().clone();
            user.set_uid(eu.uid)
                .set_gid(eu.gid)
                .set_additional_gids((!eu.additional_gids.is_empty()).then_some(eu.additional_gids));
            p.set_user(user);
        }
        let mut env = p.env().clone().unwrap_or_default();
        for e in req.env.iter().filter_map(|e| crate::options::expand_env(e)) {
            let key = e.split('=').next().unwrap_or("").to_string();
            env.retain(|x| x.split('=').next() != Some(key.as_str()));
            env.push(e);
        }
        if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        p.set_env(Some(env));
        p.set_args(Some(req.cmd.clone()));
        p.set_terminal(Some(req.tty));
        if let Some(w) = &req.workdir {
            p.set_cwd(w.into());
        }
        if req.privileged {
            let all: std::collections::HashSet<caps::Capability> = caps::read(None, caps::CapSet::Bounding).unwrap_or_default();
            let mut cs = p.capabilities().clone().unwrap_or_default();
            let conv: std::collections::HashSet<oci_spec::runtime::Capability> = all.iter().filter_map(|c| c.to_string().parse().ok()).collect();
            cs.set_bounding(Some(conv.clone())).set_effective(Some(conv.clone())).set_permitted(Some(conv));
            p.set_capabilities(Some(cs));
        }
        let opts = skiff_core::ExecOptions {
            detach: req.detach,
            ..Default::default()
        };
        if req.detach {
            // A detached process must not write to the terminal we return to.
            if let Ok(dn) = nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty()) {
                let raw = std::os::fd::AsRawFd::as_raw_fd(&dn);
                // SAFETY: dup2 onto our own stdio; we exit right after.
                unsafe {
                    libc::dup2(raw, 0);
                    libc::dup2(raw, 1);
                    libc::dup2(raw, 2);
                }
            }
        } else if !req.interactive && !req.tty {
            if let Ok(dn) = nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDONLY, nix::sys::stat::Mode::empty()) {
                // SAFETY: stdin is replaced by /dev/null, as Docker does without -i.
                unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&dn), 0) };
            }
        }
        c.exec(&p, &opts).map_err(|e| Error::from_start_failure(e.to_string()))
    }
}

/// Docker's restart rules (a manual stop ends them).
pub fn should_restart(rec: &ContainerRecord) -> bool {
    let p = &rec.host_config.restart_policy;
    if rec.manually_stopped {
        return false;
    }
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => rec.state.exit_code != 0 && (p.maximum_retry_count == 0 || rec.restart_count < p.maximum_retry_count),
        _ => false,
    }
}
