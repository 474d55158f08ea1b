//! OCI hooks: run with the container state on stdin, their own args and env, and a timeout.
//!
//! Failure handling follows the spec: a failing prestart, createRuntime, createContainer or
//! startContainer hook fails the operation (the container is torn down); a failing poststart
//! or poststop hook is logged as a warning and the lifecycle goes on.

use std::io::{Read, Seek, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Duration;

use oci_spec::runtime::{Hook, Spec};

use crate::error::{Error, Result};

/// The lifecycle points at which hooks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    /// Whether a failure aborts the operation (true) or is only a warning.
    pub fn fatal(self) -> bool {
        !matches!(self, Kind::Poststart | Kind::Poststop)
    }
}

/// The hooks of one kind in a spec.
pub fn of(spec: &Spec, kind: Kind) -> &[Hook] {
    let Some(h) = spec.hooks() else { return &[] };
    let list = match kind {
        Kind::Prestart => h.prestart(),
        Kind::CreateRuntime => h.create_runtime(),
        Kind::CreateContainer => h.create_container(),
        Kind::StartContainer => h.start_container(),
        Kind::Poststart => h.poststart(),
        Kind::Poststop => h.poststop(),
    };
    list.as_deref().unwrap_or(&[])
}

/// Runs every hook of `kind` in order with `state` (OCI state JSON) on stdin. Fatal kinds stop
/// at the first failure and return it; the others log a warning per failure and succeed.
pub fn run(spec: &Spec, kind: Kind, state: &[u8]) -> Result<()> {
    for (i, hook) in of(spec, kind).iter().enumerate() {
        if let Err(e) = run_one(hook, inherited_env(spec, kind), state) {
            let err = Error::Hook { name: format!("{}[{i}]", kind.name()), path: hook.path().clone(), msg: e };
            if kind.fatal() {
                return Err(err);
            }
            tracing::warn!("{err}");
        }
    }
    Ok(())
}

/// The environment of a hook without `env`, as in runc 1.1 (whose hooks are Go commands with
/// a nil `Env`): the hooks run by the container's init (createContainer, startContainer) get
/// `process.env`, the ones run by the runtime inherit the runtime's environment. `None` means
/// the runtime's own.
fn inherited_env(spec: &Spec, kind: Kind) -> Option<&[String]> {
    match kind {
        Kind::CreateContainer | Kind::StartContainer => Some(spec.process().as_ref().and_then(|p| p.env().as_deref()).unwrap_or(&[])),
        _ => None,
    }
}

fn run_one(hook: &Hook, inherited: Option<&[String]>, state: &[u8]) -> std::result::Result<(), String> {
    let out = nix::sys::memfd::memfd_create(c"skiff-hook-output", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("memfd: {e}"))?;
    let out = std::fs::File::from(out);
    let mut cmd = Command::new(hook.path());
    let args = hook.args().as_deref().unwrap_or(&[]);
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    let env = match hook.env() {
        Some(env) => Some(env.as_slice()),
        None => inherited,
    };
    if let Some(env) = env {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    let err_file = out.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::piped()).stdout(Stdio::from(out.try_clone().map_err(|e| e.to_string())?)).stderr(Stdio::from(err_file));
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its stdin is fine (EPIPE is ignored).
        let _ = stdin.write_all(state);
    }
    let timeout = hook.timeout().filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64));
    let pid = child.id() as i32;
    let status = match timeout {
        Some(t) if !crate::process::wait_exit_timeout(pid, t) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", t.as_secs()));
        }
        _ => child.wait().map_err(|e| format!("wait: {e}"))?,
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let mut out = out;
    let _ = out.rewind();
    let _ = (&mut out).take(4096).read_to_string(&mut text);
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    };
    let text = text.trim();
    Err(if text.is_empty() { how } else { format!("{how}: {text}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(hooks: &str) -> Spec {
        crate::spec::parse(format!(r#"{{"ociVersion":"1.0.2","hooks":{hooks}}}"#).as_bytes()).expect("spec")
    }

    #[test]
    fn hook_gets_state_args_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let s = spec_with(&format!(
            r#"{{"createRuntime":[{{"path":"/bin/sh","args":["sh","-c","cat > {o}; echo \"$0 $FOO\" >> {o}","arg1"],"env":["FOO=bar"]}}]}}"#,
            o = out.display()
        ));
        run(&s, Kind::CreateRuntime, br#"{"id":"x"}"#).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"x\"}arg1 bar\n");
    }

    #[test]
    fn fatal_failure_reports_output() {
        let s = spec_with(r#"{"prestart":[{"path":"/bin/sh","args":["sh","-c","echo boom >&2; exit 3"]}]}"#);
        let e = run(&s, Kind::Prestart, b"{}").unwrap_err().to_string();
        assert!(e.contains("prestart[0]") && e.contains("exit status 3") && e.contains("boom"), "{e}");
    }

    #[test]
    fn poststop_failure_is_only_a_warning() {
        let s = spec_with(r#"{"poststop":[{"path":"/bin/false"}]}"#);
        assert!(run(&s, Kind::Poststop, b"{}").is_ok());
    }

    #[test]
    fn timeout_kills_the_hook() {
        let s = spec_with(r#"{"startContainer":[{"path":"/bin/sleep","args":["sleep","5"],"timeout":1}]}"#);
        let e = run(&s, Kind::StartContainer, b"{}").unwrap_err().to_string();
        assert!(e.contains("timed out"), "{e}");
    }

    #[test]
    fn missing_hook_binary() {
        let s = spec_with(r#"{"createRuntime":[{"path":"/nonexistent/hook"}]}"#);
        let e = run(&s, Kind::CreateRuntime, b"{}").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/hook") && e.contains("cannot start"), "{e}");
    }
}
