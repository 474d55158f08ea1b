//! The prestart and createRuntime hooks of a restore, run as runc runs them: once criu has made
//! the container's namespaces and before its processes resume (criu's `setup-namespaces`
//! action), with the restored init's pid in the state.
//!
//! criu runs an action script (`--action-script`) for each step of a restore. Ours ignores
//! every action but `setup-namespaces`, for which it writes the init's pid into a FIFO in the
//! container's state dir and waits for a verdict on a second FIFO. The runtime, waiting for
//! criu, reads the pid, runs the hooks in-process and answers `0`, or `1` when a hook failed:
//! the script then fails and criu aborts the restore. Nothing of this outlives the restore:
//! the script and FIFOs live in the state dir, which a failed restore removes.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::hooks::{self, Kind};

const SCRIPT: &str = "criu-action.sh";
const REQUEST: &str = "criu-hooks.req";
const REPLY: &str = "criu-hooks.rep";

/// True when `spec` has hooks a restore runs.
pub(super) fn wanted(spec: &Spec) -> bool {
    !hooks::of(spec, Kind::Prestart).is_empty() || !hooks::of(spec, Kind::CreateRuntime).is_empty()
}

/// `'text'` for sh, whatever `text` holds.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The action script and the runtime's ends of its FIFOs.
pub(super) struct Bridge {
    script: PathBuf,
    reply: PathBuf,
    /// Read end of the request FIFO, non-blocking: open before criu starts, so that the
    /// script's write never waits for a reader.
    request: File,
}

impl Bridge {
    /// Makes the script and FIFOs in `dir` (the container's state dir).
    pub(super) fn new(dir: &Path) -> Result<Bridge> {
        let request_path = dir.join(REQUEST);
        let reply = dir.join(REPLY);
        for p in [&request_path, &reply] {
            nix::unistd::mkfifo(p, Mode::from_bits_truncate(0o600)).map_err(|e| Error::sys(format!("mkfifo {}", p.display()), e))?;
        }
        let request = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&request_path)
            .map_err(|e| Error::io("open", &request_path, e))?;
        let script = dir.join(SCRIPT);
        let text = format!(
            "#!/bin/sh\n\
             # skiff: the hooks of a restore (see skiff-core's checkpoint/hooks.rs)\n\
             [ \"$CRTOOLS_SCRIPT_ACTION\" = setup-namespaces ] || exit 0\n\
             echo \"$CRTOOLS_INIT_PID\" > {} || exit 1\n\
             read -r verdict < {} || exit 1\n\
             exit \"$verdict\"\n",
            sh_quote(&request_path.to_string_lossy()),
            sh_quote(&reply.to_string_lossy()),
        );
        std::fs::write(&script, text).map_err(|e| Error::io("write", &script, e))?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).map_err(|e| Error::io("chmod", &script, e))?;
        Ok(Bridge { script, reply, request })
    }

    /// The script, for criu's `--action-script`.
    pub(super) fn script(&self) -> &Path {
        &self.script
    }

    /// Waits up to `wait` for the script's request; on one, runs the hooks with the state
    /// `state(pid)` makes and answers. `Ok(None)`: no request yet. `Ok(Some(Err))`: a hook
    /// failed (criu was told to abort).
    pub(super) fn serve(&mut self, wait: Duration, spec: &Spec, state: impl Fn(i32) -> String) -> Result<Option<Result<()>>> {
        let mut fds = [PollFd::new(self.request.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(Error::sys("poll the restore hooks' FIFO", e)),
        }
        let mut text = String::new();
        match self.request.read_to_string(&mut text) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(Error::Criu(format!("read the restore hooks' FIFO: {e}"))),
        }
        let Ok(pid) = text.trim().parse::<i32>() else {
            return Ok(None);
        };
        let s = state(pid);
        let outcome = hooks::run(spec, Kind::Prestart, s.as_bytes()).and_then(|()| hooks::run(spec, Kind::CreateRuntime, s.as_bytes()));
        self.answer(if outcome.is_ok() { b"0\n" } else { b"1\n" })?;
        Ok(Some(outcome))
    }

    /// Writes the verdict; the script opens the reply FIFO right after its request, so a
    /// missing reader is waited for (briefly: a script that died has no reader).
    fn answer(&self, verdict: &[u8]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&self.reply)
            {
                Ok(mut f) => return f.write_all(verdict).map_err(|e| Error::io("write", &self.reply, e)),
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(Error::io("open", &self.reply, e)),
            }
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let dir = self.script.parent().map(Path::to_path_buf).unwrap_or_default();
        for name in [SCRIPT, REQUEST, REPLY] {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sh_quote("/a b/c'd"), r"'/a b/c'\''d'");
    }

    fn spec_with(hooks: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "hooks": hooks})).expect("spec")
    }

    #[test]
    fn only_prestart_and_create_runtime_are_wanted() {
        assert!(!wanted(&spec_with(serde_json::json!({"poststart": [{"path": "/bin/true"}]}))));
        assert!(wanted(&spec_with(serde_json::json!({"prestart": [{"path": "/bin/true"}]}))));
        assert!(wanted(&spec_with(serde_json::json!({"createRuntime": [{"path": "/bin/true"}]}))));
    }

    /// The script, run as criu runs it, against a bridge: the hook sees the pid and state, the
    /// script exits with the verdict; other actions pass straight through.
    #[test]
    fn script_and_runtime_talk_through_the_fifos() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("hook.log");
        let spec = spec_with(serde_json::json!({
            "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat >> {}", log.display())]}],
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}],
        }));
        let mut bridge = Bridge::new(dir.path()).expect("bridge");
        let other = std::process::Command::new("sh")
            .args(["-c", &bridge.script().to_string_lossy()])
            .env("CRTOOLS_SCRIPT_ACTION", "post-restore")
            .status()
            .expect("script");
        assert!(other.success());
        let mut script = std::process::Command::new("sh")
            .args(["-c", &bridge.script().to_string_lossy()])
            .env("CRTOOLS_SCRIPT_ACTION", "setup-namespaces")
            .env("CRTOOLS_INIT_PID", "4242")
            .spawn()
            .expect("script");
        let deadline = Instant::now() + Duration::from_secs(10);
        let outcome = loop {
            if let Some(o) = bridge
                .serve(Duration::from_millis(50), &spec, |pid| format!("{{\"pid\":{pid}}}"))
                .expect("serve")
            {
                break o;
            }
            assert!(Instant::now() < deadline, "no request from the script");
        };
        let err = outcome.expect_err("createRuntime exits 3").to_string();
        assert!(err.contains("createRuntime[0]"), "{err}");
        assert_eq!(script.wait().expect("wait").code(), Some(1));
        assert_eq!(std::fs::read_to_string(&log).expect("log"), "{\"pid\":4242}");
        drop(bridge);
        assert!(!dir.path().join(SCRIPT).exists() && !dir.path().join(REQUEST).exists());
    }
}
