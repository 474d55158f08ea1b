//! `create` and `run`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;

use super::{write_pid_file, Container, CreateOptions, Runtime};
use crate::cgroups::Cgroups;
use crate::error::{Error, Result, SysContext};
use crate::namespaces::Plan;
use crate::process::channel::{self, Msg};
use crate::process::{init::InitArgs, launch, supervise};
use crate::rootless;
use crate::spec::Bundle;
use crate::state::{self, Intent, OciState, Record, Status, EXEC_FIFO, STATE_FILE};
use crate::timing;

/// Undoes a half-made container unless disarmed.
struct Cleanup<'a> {
    rt: &'a Runtime,
    id: &'a str,
    cgroups: Vec<PathBuf>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = crate::cgroups::remove(&self.cgroups) {
                tracing::warn!("cleanup: {e}");
            }
            if let Err(e) = self.rt.store.remove(self.id) {
                tracing::warn!("cleanup: {e}");
            }
        }
    }
}

impl Runtime {
    /// Creates a container: it waits in `created` for `start`.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<Container> {
        self.create_inner(id, opts, false).map(|(c, _)| c)
    }

    /// create for a caller that keeps the pty itself (an engine's monitor): when the config
    /// asks for a terminal, its master comes back here instead of through a console socket.
    pub fn create_with_terminal(&self, id: &str, opts: &CreateOptions) -> Result<(Container, Option<OwnedFd>)> {
        self.create_inner(id, opts, true)
    }

    /// create; with `foreground_tty` the pty master comes back to us instead of a socket.
    fn create_inner(&self, id: &str, opts: &CreateOptions, foreground_tty: bool) -> Result<(Container, Option<OwnedFd>)> {
        crate::spec::validate_id(id)?;
        let bundle = match &opts.spec {
            Some(spec) => Bundle::from_spec(&opts.bundle, spec.clone())?,
            None => Bundle::load(&opts.bundle)?,
        };
        timing::mark("create: load config.json");
        let cgroups_path = bundle.spec.linux().as_ref().and_then(|l| l.cgroups_path().as_ref()).map(|p| p.to_string_lossy().into_owned());
        if self.systemd_cgroup {
            return Err(crate::cgroups::systemd::driver_error(cgroups_path.as_deref(), id, crate::cgroups::systemd::running()));
        }
        let process = bundle.spec.process().as_ref().ok_or_else(|| Error::field("process", "missing (create needs a process to run)"))?;
        let terminal = process.terminal() == Some(true);
        if terminal && opts.console_socket.is_none() && !foreground_tty {
            return Err(Error::field("process.terminal", "set, but no --console-socket was given to receive the pty master"));
        }
        let plan = Plan::from_spec(&bundle.spec)?;
        if self.rootless {
            rootless::check_spec(&bundle.spec, &plan)?;
        }
        let id_maps = rootless::id_maps(&bundle.spec, &plan)?;
        timing::mark("create: namespace plan and id maps");
        let cgroups = Cgroups::detect()?;
        let manager = self.cgroup_manager(&cgroups, cgroups_path.as_deref(), id, &bundle.spec)?;
        timing::mark("create: cgroup layout");
        let console = match &opts.console_socket {
            Some(p) => Some(crate::terminal::connect(p)?),
            None => None,
        };
        let created = state::now_rfc3339();
        let owner = String::new();
        let mut intent = Intent {
            runtime_pid: std::process::id() as i32,
            runtime_start: state::proc_stat(std::process::id() as i32).map_or(0, |(_, t)| t),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: created.clone(),
            owner: owner.clone(),
            cgroup_paths: manager.as_ref().map(|m| m.paths.clone()).unwrap_or_default(),
            cgroup_created: Vec::new(),
            init_pid: 0,
            init_start: 0,
        };
        let dir = self.begin(id, &mut intent)?;
        let mut cleanup = Cleanup { rt: self, id, cgroups: Vec::new(), armed: true };
        let mut rdt_undo = crate::intelrdt::Undo::new(&bundle.spec, id);
        timing::mark("create: console socket and state dir");
        // After the state root exists: the compiled filter is cached there.
        let seccomp = crate::seccomp::cache::for_spec(&bundle.spec, self.store.root())?;
        timing::mark("create: seccomp filter");
        if let Some(manager) = &manager {
            cleanup.cgroups = manager.create()?;
            // The device cgroup needs privileges on the host a rootless caller lacks; its
            // device nodes are bind mounts of the host's, which it may open anyway.
            manager.apply_linux(&cgroups, bundle.spec.linux().as_ref(), !self.rootless)?;
            timing::mark("create: cgroup setup (mkdir, limits, devices)");
        }
        let fifo_path = dir.join(EXEC_FIFO);
        nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622)).ctx(|| format!("mkfifo {}", fifo_path.display()))?;
        let fifo = nix::fcntl::open(&fifo_path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| format!("open {}", fifo_path.display()))?;
        let (fg_ours, fg_theirs) = if terminal && foreground_tty && console.is_none() {
            let (a, b) = socket::socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).ctx(|| "socketpair")?;
            (Some(a), Some(b))
        } else {
            (None, None)
        };
        let annotations = bundle.spec.annotations().clone().unwrap_or_default();
        let state_json = |pid: i32| {
            let s = OciState {
                oci_version: crate::spec::OCI_VERSION.to_string(),
                id: id.to_string(),
                pid,
                status: Status::Creating,
                bundle: bundle.dir.clone(),
                rootfs: bundle.rootfs.clone(),
                created: created.clone(),
                annotations: annotations.clone(),
                owner: owner.clone(),
            };
            serde_json::to_string(&s).unwrap_or_default()
        };
        let (parent, child) = channel::pair()?;
        // Stage 1 moves itself into the v1 cgroups (cheap); we join it to the v2 ones by pid.
        let (self_join, by_pid) = match &manager {
            Some(m) => {
                let (j, v2) = m.self_join(&cgroups)?;
                (j, (!v2.paths.is_empty()).then_some(v2))
            }
            None => (crate::cgroups::SelfJoin::default(), None),
        };
        let args = InitArgs {
            id,
            bundle: &bundle,
            plan: &plan,
            chan: child,
            fifo,
            console: console.or(fg_theirs),
            no_pivot: opts.no_pivot,
            no_new_keyring: opts.no_new_keyring,
            preserve_fds: opts.preserve_fds,
            cgroup_mounts: cgroups.mounts_for(manager.as_ref().unwrap_or(&rootless::own_cgroups(&cgroups))),
            seccomp: seccomp.as_ref(),
            // Root of the host's user namespace only: a rootless engine is root in its pause
            // user namespace, and its init must open up to it (`/proc/<init>/ns/net` for pasta).
            host_root: nix::unistd::geteuid().is_root() && !rootless::in_user_namespace(),
            self_join,
        };
        timing::mark("create: exec fifo and channel");
        // From the fork on, the intent names the init and exactly the cgroups we made.
        let made = cleanup.cgroups.clone();
        let record_init = |pid: i32| {
            let init_start = state::proc_stat(pid).map_or(0, |(_, t)| t);
            self.store.write_intent(id, &Intent { init_pid: pid, init_start, cgroup_created: made.clone(), ..intent.clone() })
        };
        let (pid, chan) = launch::spawn(args, parent, id_maps.as_ref(), by_pid.as_ref(), &state_json, &record_init)?;
        timing::mark("create: init ready");
        let kill_init = || {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        };
        // The init, set up, waits: its program starts in the container's resctrl group.
        if let Err(e) = crate::intelrdt::apply(&bundle.spec, id, pid) {
            kill_init();
            return Err(e);
        }
        let master = match &fg_ours {
            Some(sock) => match crate::terminal::recv_fd(sock.as_fd()) {
                Ok(m) => Some(m),
                Err(e) => {
                    kill_init();
                    return Err(e);
                }
            },
            None => None,
        };
        let pid_start = state::proc_stat(pid).map(|(_, t)| t).unwrap_or(0);
        let rec = Record {
            id: id.to_string(),
            pid,
            pid_start,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created,
            owner,
            cgroup_paths: manager.map(|m| m.paths).unwrap_or_default(),
            cgroup_created: cleanup.cgroups.clone(),
            spec: bundle.spec.clone(),
        };
        let saved = self.store.save(&rec).and_then(|()| match &opts.pid_file {
            Some(p) => write_pid_file(p, pid),
            None => Ok(()),
        });
        if let Err(e) = saved {
            kill_init();
            return Err(e);
        }
        super::exec_record::write(&self.store, &rec, seccomp.as_ref());
        // The init waits for this before it waits for `start`: a runtime killed before here
        // takes its init along (it reads EOF and exits) instead of leaving one nobody knows.
        if let Err(e) = chan.send(&Msg::Go) {
            kill_init();
            return Err(Error::Init(format!("container init exited before create completed ({e})")));
        }
        timing::mark("create: save state");
        cleanup.armed = false;
        rdt_undo.armed = false;
        Ok((Container { store: self.store.clone(), rec }, master))
    }

    /// Makes the state dir of `id` and records `intent` in it, under the root lock, with the
    /// cgroup directories that do not exist yet as the ones we will make. A dir left by a
    /// create whose runtime died is undone first; one that holds a container, or whose create
    /// is still in progress, is `Exists`.
    fn begin(&self, id: &str, intent: &mut Intent) -> Result<PathBuf> {
        let _lock = self.store.lock(true)?;
        let dir = match self.store.create_dir(id) {
            Err(Error::Exists(_)) if !self.store.dir(id).join(STATE_FILE).exists() => {
                if self.store.intent(id)?.is_some_and(|i| i.creator_alive()) {
                    return Err(Error::Exists(id.to_string()));
                }
                self.reclaim(id)?;
                self.store.create_dir(id)?
            }
            r => r?,
        };
        intent.cgroup_created = missing_dirs(&intent.cgroup_paths);
        if let Err(e) = self.store.write_intent(id, intent) {
            let _ = self.store.remove(id);
            return Err(e);
        }
        Ok(dir)
    }

    /// The container's cgroup. In rootless mode None, with a warning (and one more when
    /// resources were asked for: runc's rootless mode ignores them too), unless the caller can
    /// write there (a delegated subtree).
    fn cgroup_manager(&self, cgroups: &Cgroups, path: Option<&str>, id: &str, spec: &oci_spec::runtime::Spec) -> Result<Option<crate::cgroups::Manager>> {
        let manager = cgroups.resolve(path, id)?;
        let unusable = if self.rootless { rootless::unusable_cgroup(cgroups, &manager) } else { None };
        let Some(dir) = unusable else { return Ok(Some(manager)) };
        tracing::warn!("rootless: cannot write cgroup {} (no delegated subtree): the container stays in the caller's cgroup", dir.display());
        let res = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        if res.is_some_and(|r| *r != oci_spec::runtime::LinuxResources::default()) {
            tracing::warn!("rootless: linux.resources are ignored without a writable cgroup");
        }
        Ok(None)
    }

    /// create, start, wait (foreground; a terminal config is wired to the caller's terminal)
    /// and delete. Returns the exit status as a shell would (128+N for a signal). With `detach`,
    /// returns 0 once started.
    pub fn run(&self, id: &str, opts: &CreateOptions, detach: bool) -> Result<i32> {
        let signals = if detach { None } else { Some(supervise::block()?) };
        let (c, master) = self.create_inner(id, opts, !detach)?;
        if let Some(m) = &master {
            // Before the program runs: it may ask for its size at once (`stty size`).
            crate::terminal::copy_winsize(0, std::os::fd::AsRawFd::as_raw_fd(m));
        }
        timing::mark("run: created");
        if let Err(e) = c.start() {
            let _ = c.delete(true);
            return Err(e);
        }
        let Some(signals) = signals else { return Ok(0) };
        let code = supervise::wait(&signals, c.rec.pid, master);
        timing::mark("run: container exited");
        c.delete(true)?;
        timing::mark("run: deleted");
        code
    }
}

/// The directories among `paths` and their ancestors that do not exist yet, parents first:
/// what making the cgroup will create (restore records them the same way).
pub(crate) fn missing_dirs(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        let start = out.len();
        out.extend(p.ancestors().take_while(|a| !a.exists()).map(Path::to_path_buf));
        out[start..].reverse();
    }
    out
}
