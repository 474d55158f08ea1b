//! Starting a container: mount its rootfs, write its OCI config, and spawn its monitor.
//!
//! The engine double-forks. The grandchild (the future monitor) starts a new session, takes
//! the container's stdio ends, creates and starts the container in-process through
//! `skiff-core` (so the container's init is its child), reports the init's pid on a pipe, and
//! execs `skiff-monitor`, which keeps that pid and that child. The caller returns once the
//! container runs (or with the error that stopped it).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::unistd::{fork, ForkResult};

use crate::error::{Error, Result};
use crate::record::{ContainerRecord, Status};
use crate::{rootfs, spec, users, Engine};

/// How the caller wants to be attached.
#[derive(Debug, Default)]
pub struct StartOptions {
    /// Our end of a socketpair is kept by the caller; this end goes to the monitor as its
    /// first attach client (so no output is missed).
    pub client: Option<OwnedFd>,
    /// The caller's terminal size, set on the pty before the program runs.
    pub winsize: Option<(u16, u16)>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Other(format!("pipe: {e}")))
}

fn clear_cloexec(fd: RawFd) {
    // SAFETY: fcntl on an fd we hold.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
}

/// The container's stdio, our ends and the container's ends.
struct Stdio {
    /// (monitor's end, container's end)
    stdin: Option<(OwnedFd, OwnedFd)>,
    stdout: Option<(OwnedFd, OwnedFd)>,
    stderr: Option<(OwnedFd, OwnedFd)>,
}

impl Engine {
    pub fn start(&self, id: &str, opts: StartOptions) -> Result<ContainerRecord> {
        let (lock, rec) = self.lock(id)?;
        self.start_with(lock, rec, opts, false)
    }

    /// The restart policy's start, by the cleanup process `monitor` that set the container
    /// `restarting`; nothing happens if the user stopped or removed it meanwhile.
    pub fn restart(&self, id: &str, monitor: i32) -> Result<()> {
        let (lock, rec) = match self.lock(id) {
            Ok(x) => x,
            Err(Error::NoSuchContainer(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if rec.state.status != Status::Restarting || rec.state.monitor_pid != monitor || rec.manually_stopped {
            return Ok(());
        }
        self.start_with(lock, rec, StartOptions::default(), true).map(|_| ())
    }

    /// `restarting`: the restart policy's own start of a `restarting` container (whose
    /// runtime state its cleanup already released).
    fn start_with(&self, _lock: crate::lock::Lock, mut rec: ContainerRecord, opts: StartOptions, restarting: bool) -> Result<ContainerRecord> {
        let id = rec.id.clone();
        let id = id.as_str();
        match rec.state.status {
            Status::Restarting if restarting => {}
            Status::Running | Status::Restarting => return Ok(rec),
            Status::Paused => return Err(Error::State(format!("cannot start a paused container {id}, try unpause instead"))),
            _ => {}
        }
        self.reconcile(&mut rec)?;
        let dir = self.layout.container(id);
        let r = self.start_locked(&mut rec, opts);
        if let Err(e) = &r {
            self.net_teardown(&mut rec);
            let _ = rootfs::unmount(&dir);
            if rec.state.status == Status::Restarting {
                rec.state.status = Status::Exited;
            }
            rec.state.error = e.to_string();
            rec.state.exit_code = e.exit_code();
            let _ = rec.save(&dir.record());
        }
        r.map(|()| rec)
    }

    fn start_locked(&self, rec: &mut ContainerRecord, opts: StartOptions) -> Result<()> {
        let dir = self.layout.container(&rec.id);
        let image = self.images.resolve(&rec.image_id)?;
        let layers = self.images.layer_dirs(&image)?;
        skiff_core::timing::mark("engine: image resolved");
        let rootfs = rootfs::prepare(rec, &dir, &layers, self.rootless)?;
        skiff_core::timing::mark("engine: overlay mounted");
        self.populate_volumes(rec, &rootfs)?;
        let user = users::lookup(&rootfs, &rec.config.user)?;
        let image_env = image.config.config().as_ref().and_then(|c| c.env().clone()).unwrap_or_default();
        let env = spec::environment(rec, &image_env, &user);
        let cwd = if rec.config.working_dir.is_empty() {
            "/".to_string()
        } else {
            rec.config.working_dir.clone()
        };
        let plan = self.net_prepare(rec)?;
        skiff_core::timing::mark("engine: network prepared");
        let seccomp_file = match std::fs::read(dir.path().join("seccomp.json")) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| Error::Invalid(format!("seccomp profile: {e}")))?),
            Err(_) => None,
        };
        let inputs = spec::Inputs {
            rootfs: &rootfs,
            dir: &dir,
            user: &user,
            env,
            cwd,
            seccomp_file,
            rootless: self.rootless,
            netns: plan.join.clone(),
        };
        // The config goes to skiff-core in memory: no config.json is written or parsed.
        let config = spec::build(rec, &inputs)?;
        let config = skiff_core::spec::parse_value(config).map_err(|e| Error::Other(format!("the engine made an invalid config: {e}")))?;
        let bundle = dir.bundle();
        std::fs::create_dir_all(&bundle).map_err(|e| Error::io("create", &bundle, e))?;
        let _ = std::fs::remove_file(dir.exit());
        let _ = std::fs::remove_file(dir.monitor_file());
        // The log exists once `start` returns, as Docker's json-file does: the monitor opens
        // it only after it has reported the container started, and `logs -f` may come first.
        let log = dir.log(&rec.id);
        skiff_monitor::create_log(&log).map_err(|e| Error::io("create", &log, e))?;
        skiff_core::timing::mark("engine: OCI config made");
        let (init, monitor) = self.spawn(rec, opts, config, &plan)?;
        skiff_core::timing::mark("engine: monitor reports the container started");
        rec.state.status = Status::Running;
        rec.state.pid = init;
        rec.state.monitor_pid = monitor;
        rec.state.monitor_start = skiff_core::state::proc_stat(monitor).map(|(_, t)| t).unwrap_or(0);
        rec.state.started_at = skiff_monitor::time::now();
        rec.state.exit_code = 0;
        rec.state.error.clear();
        rec.state.oom_killed = false;
        self.net_started(rec);
        rec.save(&dir.record())
    }

    /// Docker's copy-up: an empty volume mounted over a directory the image has content in
    /// gets that content (owners and modes kept) before the container first sees it, unless
    /// the mount said `nocopy`.
    fn populate_volumes(&self, rec: &ContainerRecord, rootfs: &std::path::Path) -> Result<()> {
        for m in rec.mounts.iter().filter(|m| m.kind == "volume" && !m.mode.split(',').any(|o| o == "nocopy")) {
            let data = std::path::Path::new(&m.source);
            let empty = std::fs::read_dir(data).map(|mut d| d.next().is_none()).unwrap_or(false);
            if !empty {
                continue;
            }
            let src = crate::fs::secure_join(rootfs, &m.destination)?;
            let Ok(entries) = std::fs::read_dir(&src) else { continue };
            for e in entries.flatten() {
                crate::fs::copy_tree(&e.path(), &data.join(e.file_name()), None)?;
            }
            // The volume's root takes the directory's owner and mode too.
            if let Ok(md) = std::fs::metadata(&src) {
                use std::os::unix::fs::{MetadataExt, PermissionsExt};
                let _ = std::os::unix::fs::chown(data, Some(md.uid()), Some(md.gid()));
                let _ = std::fs::set_permissions(data, std::fs::Permissions::from_mode(md.mode() & 0o7777));
            }
        }
        Ok(())
    }

    /// Forks the monitor; returns (init pid, monitor pid) once the container runs.
    fn spawn(&self, rec: &ContainerRecord, opts: StartOptions, config: oci_spec::runtime::Spec, plan: &crate::network::Plan) -> Result<(i32, i32)> {
        let tty = rec.config.tty;
        let stdio = Stdio {
            stdin: if !tty && rec.config.open_stdin { Some(swap(pipe()?)) } else { None },
            stdout: if tty { None } else { Some(pipe()?) },
            stderr: if tty { None } else { Some(pipe()?) },
        };
        let (sync_r, sync_w) = pipe()?;
        let argv = self.monitor_argv(rec)?;
        // SAFETY: the engine is single-threaded here; the child only runs our code and execs.
        match unsafe { fork() }.map_err(|e| Error::Other(format!("fork: {e}")))? {
            ForkResult::Child => {
                drop(sync_r);
                // SAFETY: as above, for the second fork.
                match nix::unistd::setsid().and_then(|_| unsafe { fork() }) {
                    // SAFETY: leaving the intermediate child without running destructors.
                    Ok(ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
                    Ok(ForkResult::Child) => {}
                    Err(e) => {
                        let _ = nix::unistd::write(&sync_w, format!("err fork the monitor: {e}\n").as_bytes());
                        // SAFETY: exiting the forked child.
                        unsafe { libc::_exit(1) };
                    }
                }
                let err = self.monitor_child(rec, stdio, opts, &sync_w, argv, (config, plan));
                let _ = nix::unistd::write(&sync_w, format!("err {err}\n").as_bytes());
                // SAFETY: exiting the forked child.
                unsafe { libc::_exit(1) };
            }
            ForkResult::Parent { child } => {
                drop(sync_w);
                drop(stdio);
                let _ = nix::sys::wait::waitpid(child, None);
                let mut text = String::new();
                let mut f = std::fs::File::from(sync_r);
                let _ = f.read_to_string(&mut text);
                parse_sync(&text)
            }
        }
    }

    /// The monitor's command line, up to the fds that are added in the child.
    fn monitor_argv(&self, rec: &ContainerRecord) -> Result<Vec<String>> {
        let dir = self.layout.container(&rec.id);
        let mut a = vec![
            self.monitor.to_string_lossy().into_owned(),
            "--dir".into(),
            dir.path().to_string_lossy().into_owned(),
            "--log".into(),
            dir.log(&rec.id).to_string_lossy().into_owned(),
        ];
        if let Some(s) = rec.host_config.log_config.config.get("max-size") {
            a.extend(["--log-max-size".into(), crate::units::ram_in_bytes(s)?.to_string()]);
        }
        if let Some(n) = rec.host_config.log_config.config.get("max-file") {
            a.extend(["--log-max-file".into(), n.clone()]);
        }
        Ok(a)
    }

    /// Runs in the forked monitor-to-be; returns only on failure.
    fn monitor_child(
        &self,
        rec: &ContainerRecord,
        stdio: Stdio,
        opts: StartOptions,
        sync: &OwnedFd,
        mut argv: Vec<String>,
        (config, plan): (oci_spec::runtime::Spec, &crate::network::Plan),
    ) -> String {
        let devnull = match nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => return format!("open /dev/null: {e}"),
        };
        let dn = devnull.as_raw_fd();
        let (c_in, c_out, c_err) = (
            stdio.stdin.as_ref().map_or(dn, |p| p.1.as_raw_fd()),
            stdio.stdout.as_ref().map_or(dn, |p| p.1.as_raw_fd()),
            stdio.stderr.as_ref().map_or(dn, |p| p.1.as_raw_fd()),
        );
        // SAFETY: dup2 onto our own stdio; the container's init inherits these.
        unsafe {
            libc::dup2(c_in, 0);
            libc::dup2(c_out, 1);
            libc::dup2(c_err, 2);
        }
        let copts = skiff_core::CreateOptions {
            bundle: self.layout.container(&rec.id).bundle(),
            spec: Some(config),
            ..Default::default()
        };
        let (c, master) = match self.runtime.create_with_terminal(&rec.id, &copts) {
            Ok(x) => x,
            Err(e) => return e.to_string(),
        };
        if let (Some(m), Some((rows, cols))) = (&master, opts.winsize) {
            let ws = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCSWINSZ with a winsize we own on the pty master.
            unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        }
        // The network, between create and start: the namespace exists, the program waits.
        if let Err(e) = self.net_attach(plan, rec, c.rec.pid) {
            let _ = c.delete(true);
            return e.to_string();
        }
        if let Err(e) = c.start() {
            let _ = c.delete(true);
            return e.to_string();
        }
        // Our copies of the container's ends go; the monitor's stdio is /dev/null.
        // SAFETY: as above.
        unsafe {
            libc::dup2(dn, 0);
            libc::dup2(dn, 1);
            libc::dup2(dn, 2);
        }
        let mut pass = |flag: &str, fd: RawFd| {
            clear_cloexec(fd);
            argv.push(flag.to_string());
            argv.push(fd.to_string());
        };
        if let Some(m) = master {
            pass("--pty", m.into_raw_fd());
        }
        if let Some((ours, _)) = stdio.stdin {
            pass("--stdin", ours.into_raw_fd());
        }
        if let Some((ours, _)) = stdio.stdout {
            pass("--stdout", ours.into_raw_fd());
        }
        if let Some((ours, _)) = stdio.stderr {
            pass("--stderr", ours.into_raw_fd());
        }
        if let Some(cl) = opts.client {
            pass("--client", cl.into_raw_fd());
        }
        let me = std::process::id();
        let mf = crate::record::MonitorFile {
            pid: me as i32,
            start: skiff_core::state::proc_stat(me as i32).map(|(_, t)| t).unwrap_or(0),
            init: c.rec.pid,
            started_at: skiff_monitor::time::now(),
        };
        let mpath = self.layout.container(&rec.id).monitor_file();
        let _ = std::fs::write(&mpath, serde_json::to_vec(&mf).unwrap_or_default());
        argv.extend([
            "--pid".into(),
            c.rec.pid.to_string(),
            "--".into(),
            self.exe.to_string_lossy().into_owned(),
            "--root".into(),
            self.layout.root.to_string_lossy().into_owned(),
        ]);
        if self.rootless {
            argv.push("--rootless".into());
        }
        argv.extend(["container-cleanup".into(), rec.id.clone()]);
        let _ = nix::unistd::write(sync, format!("ok {} {me}\n", c.rec.pid).as_bytes());
        let cargs: Vec<CString> = argv.iter().filter_map(|a| CString::new(a.as_bytes()).ok()).collect();
        let path = match CString::new(self.monitor.as_os_str().as_bytes()) {
            Ok(p) => p,
            Err(e) => return e.to_string(),
        };
        let err = nix::unistd::execv(&path, &cargs).err().map(|e| e.to_string()).unwrap_or_default();
        // No monitor: the container must not run unwatched.
        let _ = c.delete(true);
        format!("exec {}: {err}", self.monitor.display())
    }
}

/// (read end, write end) → (write end, read end): for stdin the monitor writes.
fn swap((r, w): (OwnedFd, OwnedFd)) -> (OwnedFd, OwnedFd) {
    (w, r)
}

/// `ok INIT MONITOR` then nothing (the exec closed the pipe), or a line `err MSG`.
fn parse_sync(text: &str) -> Result<(i32, i32)> {
    if let Some(i) = text.find("err ") {
        let msg = text[i + 4..].trim_end().to_string();
        return Err(Error::from_start_failure(msg));
    }
    let mut it = text.strip_prefix("ok ").unwrap_or("").split_whitespace().map(|n| n.parse::<i32>().ok());
    match (it.next().flatten(), it.next().flatten()) {
        (Some(i), Some(m)) => Ok((i, m)),
        _ => Err(Error::Other("container monitor died before the container started".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_lines() {
        assert_eq!(parse_sync("ok 12 34\n").unwrap(), (12, 34));
        // The monitor itself failing to start is the engine's failure.
        assert_eq!(parse_sync("ok 12 34\nerr exec /x: ENOENT\n").unwrap_err().exit_code(), 125);
        assert_eq!(
            parse_sync("err exec: \"nope\": executable file not found in $PATH\n").unwrap_err().exit_code(),
            127
        );
        assert!(parse_sync("").is_err());
    }
}
