//! `restore`: a container made again from a bundle and criu's images.
//!
//! Order: the state dir with an [`Intent`] (so that a restore killed half-way is undone by
//! `delete -f`, as a create is), the cgroups (made and configured as `create` does), then
//! `criu restore` started inside them, in a mount namespace of its own where the rootfs is
//! bound at `<state dir>/criu-root` (the bind dies with criu: nothing to unmount, even after a
//! SIGKILL), and last the container's state, written as `create` writes it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::criu::{self, Common, Restore};
use super::{bind_mounts, cgroup_binds, criu_failed, ensure_dir, hooks, netns_path, RestoreOptions, DESCRIPTORS};
use crate::cgroups::{Cgroups, Manager};
use crate::container::{Container, Runtime};
use crate::error::{Error, Result};
use crate::process::supervise;
use crate::spec::Bundle;
use crate::state::{self, Intent, Record, Status, STATE_FILE};

/// Where criu sees the rootfs, in the container's state dir.
const CRIU_ROOT: &str = "criu-root";
/// Where criu writes the restored init's pid, in the state dir.
const PID_FILE: &str = "restore.pid";

/// Undoes a half-made restore unless disarmed: the restored init (if any), the cgroups made,
/// the state dir, a work directory made.
struct Cleanup<'a> {
    rt: &'a Runtime,
    id: &'a str,
    /// Set once the state dir is ours.
    own_dir: bool,
    cgroups: Vec<PathBuf>,
    pid: Option<i32>,
    work: Option<PathBuf>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if !self.cgroups.is_empty() {
            let m = Manager { paths: self.cgroups.clone() };
            for pid in m.pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            if let Err(e) = crate::cgroups::remove(&self.cgroups) {
                tracing::warn!("cleanup: {e}");
            }
        }
        if self.own_dir {
            if let Err(e) = self.rt.store.remove(self.id) {
                tracing::warn!("cleanup: {e}");
            }
        }
        if let Some(w) = &self.work {
            let _ = std::fs::remove_dir_all(w);
        }
    }
}

impl Runtime {
    /// Restores container `id` from `opts.image_path` into `opts.bundle`. With `detach`,
    /// returns 0 once it runs; else waits for its init, deletes the container and returns
    /// the init's exit status (128+N for a signal), as `run` does.
    pub fn restore(&self, id: &str, opts: &RestoreOptions) -> Result<i32> {
        crate::spec::validate_id(id)?;
        let bundle = Bundle::load(&opts.bundle)?;
        let spec = &bundle.spec;
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned());
        if self.systemd_cgroup {
            return Err(crate::cgroups::systemd::driver_error(
                cgroups_path.as_deref(),
                id,
                crate::cgroups::systemd::running(),
            ));
        }
        if self.rootless {
            return Err(Error::Criu("restore is not supported in rootless mode (criu restores as root)".into()));
        }
        let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
        if terminal || opts.console_socket.is_some() {
            return Err(Error::Criu(
                "restoring a container with a terminal is not supported yet (criu hands the pty master back only over its RPC interface)".into(),
            ));
        }
        if self.store.dir(id).join(STATE_FILE).exists() {
            return Err(Error::Exists(id.to_string()));
        }
        criu::version(&opts.criu)?;
        if !opts.image_path.is_dir() {
            return Err(Error::Criu(format!("image directory {} does not exist", opts.image_path.display())));
        }
        if !opts.image_path.join("inventory.img").exists() {
            return Err(Error::Criu(format!("{} holds no checkpoint (no inventory.img)", opts.image_path.display())));
        }
        let descriptors = read_descriptors(&opts.image_path)?;
        let cgroups = Cgroups::detect()?;
        let manager = cgroups.resolve(cgroups_path.as_deref(), id)?;

        let created = state::now_rfc3339();
        let me = std::process::id() as i32;
        let intent = Intent {
            runtime_pid: me,
            runtime_start: state::proc_stat(me).map_or(0, |(_, t)| t),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: created.clone(),
            owner: String::new(),
            cgroup_paths: manager.paths.clone(),
            cgroup_created: crate::container::create::missing_dirs(&manager.paths),
            init_pid: 0,
            init_start: 0,
        };
        let mut cleanup = Cleanup {
            rt: self,
            id,
            own_dir: false,
            cgroups: Vec::new(),
            pid: None,
            work: None,
            armed: true,
        };
        let dir = {
            let _lock = self.store.lock(true)?;
            let dir = self.store.create_dir(id)?;
            cleanup.own_dir = true;
            self.store.write_intent(id, &intent)?;
            dir
        };
        let work = opts.work_path.clone().unwrap_or_else(|| opts.image_path.clone());
        if ensure_dir(&work, "work directory")? {
            cleanup.work = Some(work.clone());
        }
        cleanup.cgroups = manager.create()?;
        self.store.write_intent(
            id,
            &Intent {
                cgroup_created: cleanup.cgroups.clone(),
                ..intent.clone()
            },
        )?;
        manager.apply_linux(&cgroups, spec.linux().as_ref(), true)?;

        let criu_root = dir.join(CRIU_ROOT);
        std::fs::create_dir(&criu_root).map_err(|e| Error::io("create", &criu_root, e))?;
        let pidfile = dir.join(PID_FILE);
        let mut ext_mounts: Vec<(String, String)> = bind_mounts(spec, &bundle.dir)
            .into_iter()
            .map(|(d, s)| (d, s.to_string_lossy().into_owned()))
            .collect();
        let masked = spec.linux().as_ref().and_then(|l| l.masked_paths().clone()).unwrap_or_default();
        ext_mounts.extend(masked.into_iter().map(|p| (p, "/dev/null".to_string())));
        ext_mounts.extend(
            cgroup_binds(spec, &manager.paths)?
                .into_iter()
                .map(|(d, h)| (d, h.to_string_lossy().into_owned())),
        );
        let mut inherit_fds = criu::inherit_stdio(&descriptors);
        // Kept open (and inheritable) until criu is done.
        let netns: Option<OwnedFd> = match netns_path(spec) {
            Some(p) => {
                let fd = nix::fcntl::open(&p, OFlag::O_RDONLY, Mode::empty()).map_err(|e| Error::sys(format!("open network namespace {}", p.display()), e))?;
                inherit_fds.push((fd.as_raw_fd(), criu::EXT_NETNS.to_string()));
                Some(fd)
            }
            None => None,
        };
        let mut bridge = if hooks::wanted(spec) { Some(hooks::Bridge::new(&dir)?) } else { None };
        let args = criu::restore_args(&Restore {
            common: Common {
                images: opts.image_path.clone(),
                work: work.clone(),
                flags: opts.flags,
                ext_mounts,
            },
            root: criu_root.clone(),
            pidfile: pidfile.clone(),
            inherit_fds,
            cgroup_roots: cgroup_roots(&cgroups, &manager),
            action_script: bridge.as_ref().map(|b| b.script().to_path_buf()),
        });
        let join = cgroup_procs(&manager)?;
        let signals = if opts.detach { None } else { Some(supervise::block()?) };
        tracing::debug!("running {} {:?}", opts.criu.display(), args);
        let hook_state = |pid: i32| {
            let mut s = intent.oci_state(id);
            (s.pid, s.status, s.annotations) = (pid, Status::Creating, spec.annotations().clone().unwrap_or_default());
            serde_json::to_string(&s).unwrap_or_default()
        };
        let mut hook_failure = None;
        let with_hooks = bridge.is_some();
        let mut serve_hooks = |wait| {
            if let Some(Err(e)) = bridge.as_mut().map_or(Ok(None), |b| b.serve(wait, spec, hook_state))? {
                hook_failure = Some(e);
            }
            Ok(())
        };
        let hooks_served: Option<&mut dyn FnMut(std::time::Duration) -> Result<()>> = if with_hooks { Some(&mut serve_hooks) } else { None };
        let status = run_criu(&opts.criu, &args, &join, &bundle.rootfs, &criu_root, hooks_served);
        drop(bridge);
        drop(netns);
        drop(join);
        let _ = std::fs::remove_dir(&criu_root);
        let status = status?;
        if let Some(e) = hook_failure {
            return Err(e);
        }
        if !status.success() {
            return Err(criu_failed("restore", status, &work.join(criu::RESTORE_LOG)));
        }
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| Error::Criu(format!("criu restore succeeded but wrote no pid to {}", pidfile.display())))?;
        cleanup.pid = Some(pid);
        let _ = std::fs::remove_file(&pidfile);

        let rec = Record {
            id: id.to_string(),
            pid,
            pid_start: state::proc_stat(pid).map_or(0, |(_, t)| t),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created,
            owner: String::new(),
            cgroup_paths: manager.paths.clone(),
            cgroup_created: cleanup.cgroups.clone(),
            spec: spec.clone(),
        };
        self.store.save(&rec)?;
        if let Some(p) = &opts.pid_file {
            crate::container::write_pid_file(p, pid)?;
        }
        // The exec record, as create writes it (without one exec reads the full state).
        match crate::seccomp::cache::for_spec(spec, self.store.root()) {
            Ok(filter) => crate::container::exec_record::write(&self.store, &rec, filter.as_ref()),
            Err(e) => tracing::debug!("exec record of {id}: {e}"),
        }
        cleanup.armed = false;
        let Some(signals) = signals else { return Ok(0) };
        let code = supervise::wait(&signals, pid, None);
        Container {
            store: self.store.clone(),
            rec,
        }
        .delete(true)?;
        code
    }
}

/// What fds 0-2 of the checkpointed init pointed to (`descriptors.json`; none without one).
fn read_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    match std::fs::read(&path) {
        Ok(d) => serde_json::from_slice(&d).map_err(|e| Error::Criu(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// criu's `--cgroup-root` values: the container's cgroup, relative to each hierarchy's root.
/// One default when it is the same everywhere (the usual case), else one per v1 hierarchy.
fn cgroup_roots(cgroups: &Cgroups, m: &Manager) -> Vec<String> {
    let rel: Vec<(String, String)> = m
        .paths
        .iter()
        .filter_map(|p| {
            let h = cgroups.hierarchy_of(p)?;
            let r = p.strip_prefix(&h.mount).ok()?;
            Some((h.controllers.join(","), format!("/{}", r.to_string_lossy())))
        })
        .collect();
    let Some((_, first)) = rel.first() else { return Vec::new() };
    let mut out = vec![first.clone()];
    out.extend(
        rel.iter()
            .filter(|(ctrl, r)| r != first && !ctrl.is_empty())
            .map(|(ctrl, r)| format!("{ctrl}:{r}")),
    );
    out
}

/// `cgroup.procs` of each of the container's cgroups, open for criu to move itself in (so that
/// what it restores starts there, as runc puts its criu into the container's cgroups).
fn cgroup_procs(m: &Manager) -> Result<Vec<OwnedFd>> {
    m.paths
        .iter()
        .map(|p| {
            let f = p.join("cgroup.procs");
            nix::fcntl::open(&f, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| Error::sys(format!("open {}", f.display()), e))
        })
        .collect()
}

/// Runs criu: first (in the child) it joins the cgroups, takes a mount namespace of its own
/// (slave to ours: nothing it mounts reaches the host) and binds the rootfs at `criu_root`.
/// criu shares our stdio: `--inherit-fd fd[N]` names our fd N.
/// Runs criu until it exits; with `meanwhile`, polls criu and calls it with a slice of time to
/// wait in (the restore's hooks are served there).
fn run_criu(
    criu: &Path,
    args: &[std::ffi::OsString],
    join: &[OwnedFd],
    rootfs: &Path,
    criu_root: &Path,
    meanwhile: Option<&mut dyn FnMut(std::time::Duration) -> Result<()>>,
) -> Result<std::process::ExitStatus> {
    let cstr = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::Criu(format!("path with a NUL byte: {}", p.display())));
    let src = cstr(rootfs)?;
    let dst = cstr(criu_root)?;
    let join: Vec<RawFd> = join.iter().map(AsRawFd::as_raw_fd).collect();
    let mut cmd = Command::new(criu);
    cmd.args(args);
    // SAFETY: only async-signal-safe calls (write, unshare, mount) on data made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &join {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let root = b"/\0";
            if libc::mount(
                std::ptr::null(),
                root.as_ptr().cast(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_SLAVE,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::mount(src.as_ptr(), dst.as_ptr(), std::ptr::null(), libc::MS_BIND | libc::MS_REC, std::ptr::null()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| Error::Criu(format!("cannot run criu ({}): {e}", criu.display())))?;
    let Some(meanwhile) = meanwhile else {
        return child.wait().map_err(|e| Error::Criu(format!("wait for criu: {e}")));
    };
    loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::Criu(format!("wait for criu: {e}")))? {
            return Ok(status);
        }
        if let Err(e) = meanwhile(std::time::Duration::from_millis(20)) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    }
}
