//! `exec`: a new process in a running container, from `--process FILE` or from
//! `ID COMMAND [ARGS...]` plus flags applied over the container's own `process` (as runc does).

use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capability, LinuxCapabilities, Process};
use skiff_core::{ExecOptions, Runtime, Status};

use super::absolute_opt;
use crate::cli::ExecArgs;

/// `exec`: [`Runtime::load_for_exec`] (the container's exec record, not its whole config) +
/// [`skiff_core::container::ExecTarget::exec`]; exits with the process's status.
pub fn exec(rt: &Runtime, a: &ExecArgs) -> Result<i32> {
    if a.process.is_none() && a.command.is_empty() {
        bail!("exec: a COMMAND (or --process FILE) is required after the container id");
    }
    let container = rt.load_for_exec(&a.id)?;
    skiff_core::timing::mark("exec: load state");
    match container.status() {
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Paused if !a.ignore_paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        _ => {}
    }
    let process = match &a.process {
        Some(path) => read_process(path)?,
        None => process_from_args(container.process(), a)?,
    };
    let opts = ExecOptions {
        pid_file: absolute_opt(&a.pid_file)?,
        console_socket: absolute_opt(&a.console_socket)?,
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
    };
    Ok(container.exec(&process, &opts)?)
}

/// `--process FILE`: a process JSON, used as is (a missing `user` means root, as in runc).
pub fn read_process(path: &Path) -> Result<Process> {
    let text = std::fs::read(path).with_context(|| format!("read process file {}", path.display()))?;
    parse_process(&text).with_context(|| format!("process file {}", path.display()))
}

fn parse_process(text: &[u8]) -> Result<Process> {
    let mut v: serde_json::Value = serde_json::from_slice(text).context("invalid JSON")?;
    if let Some(obj) = v.as_object_mut() {
        obj.entry("user").or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
        obj.entry("cwd").or_insert_with(|| "/".into());
    }
    let p: Process = skiff_core::spec::parse_process(v).map_err(anyhow::Error::msg)?;
    validate(&p)?;
    Ok(p)
}

/// The process of `exec ID COMMAND...`: the container's process (env, user, capabilities,
/// cwd, rlimits...) with COMMAND as args, no terminal unless `-t`, and the flags applied.
pub fn process_from_args(base: Option<&Process>, a: &ExecArgs) -> Result<Process> {
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if !a.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_else(empty_caps);
        for (i, name) in a.caps.iter().enumerate() {
            let cap = parse_cap(name).with_context(|| format!("exec --cap[{i}]"))?;
            // runc adds to these four sets (not inheritable).
            let add = |set: Option<&std::collections::HashSet<Capability>>| {
                let mut s = set.cloned().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding().as_ref()));
            caps.set_effective(add(caps.effective().as_ref()));
            caps.set_permitted(add(caps.permitted().as_ref()));
            caps.set_ambient(add(caps.ambient().as_ref()));
        }
        p.set_capabilities(Some(caps));
    }
    if !a.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &a.env {
            set_env(&mut env, kv);
        }
        p.set_env(Some(env));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(u) = &a.user {
        let (uid, gid) = parse_user(u)?;
        p.user_mut().set_uid(uid);
        if let Some(gid) = gid {
            p.user_mut().set_gid(gid);
        }
    }
    if !a.additional_gids.is_empty() {
        p.user_mut().set_additional_gids(Some(a.additional_gids.clone()));
    }
    validate(&p)?;
    Ok(p)
}

fn empty_caps() -> LinuxCapabilities {
    serde_json::from_str("{}").expect("empty capabilities parse")
}

/// `CAP_SYS_ADMIN`, `SYS_ADMIN` or `sys_admin`.
fn parse_cap(name: &str) -> Result<Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| anyhow::anyhow!("unknown capability {name}"))
}

/// Sets `K=V`, replacing an earlier `K=` (the last one wins, as in runc's final environment).
fn set_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split_once('=').map_or(kv, |(k, _)| k);
    match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
        Some(e) => *e = kv.to_string(),
        None => env.push(kv.to_string()),
    }
}

/// `UID[:GID]`, numeric (as runc takes it).
fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u.parse().with_context(|| format!("parsing {u:?} as int for uid failed"))?;
    let gid = g
        .map(|g| g.parse().with_context(|| format!("parsing {g:?} as int for gid failed")))
        .transpose()?;
    Ok((uid, gid))
}

fn validate(p: &Process) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("process args must not be empty");
    }
    if !p.cwd().is_absolute() {
        bail!("process cwd {} must be an absolute path", p.cwd().display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_from, Command};

    fn exec_args(args: &[&str]) -> ExecArgs {
        let cli = parse_from(["skiff-runtime", "exec"].iter().chain(args)).unwrap();
        match cli.command {
            Some(Command::Exec(a)) => *a,
            _ => panic!(),
        }
    }

    fn base() -> Process {
        let spec = skiff_core::template::default_spec(false);
        let mut p = spec.process().clone().unwrap();
        p.set_env(Some(vec!["PATH=/bin".into(), "HOME=/root".into()]));
        p.set_cwd("/work".into());
        p.user_mut().set_uid(5);
        p.user_mut().set_gid(6);
        p
    }

    #[test]
    fn args_form_starts_from_container_process() {
        let p = process_from_args(Some(&base()), &exec_args(&["c", "sh", "-c", "echo hi"])).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &vec!["sh", "-c", "echo hi"]);
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(p.cwd().to_str(), Some("/work"));
        assert_eq!((p.user().uid(), p.user().gid()), (5, 6));
        assert_eq!(p.env().as_ref().unwrap(), &vec!["PATH=/bin", "HOME=/root"]);
        assert_eq!(p.capabilities(), base().capabilities());
        assert_eq!(p.rlimits(), base().rlimits());
    }

    #[test]
    fn flags_override() {
        let a = exec_args(&[
            "-t",
            "--cwd",
            "/tmp",
            "-e",
            "HOME=/h",
            "-e",
            "X=1",
            "-u",
            "1000",
            "-g",
            "7,8",
            "--cap",
            "CAP_SYS_ADMIN",
            "-c",
            "net_raw",
            "--no-new-privs",
            "--apparmor",
            "prof",
            "--process-label",
            "lbl",
            "c",
            "id",
        ]);
        let p = process_from_args(Some(&base()), &a).unwrap();
        assert_eq!(p.terminal(), Some(true));
        assert_eq!(p.cwd().to_str(), Some("/tmp"));
        assert_eq!(p.env().as_ref().unwrap(), &vec!["PATH=/bin", "HOME=/h", "X=1"]);
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 6));
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &vec![7, 8]);
        let caps = p.capabilities().as_ref().unwrap();
        for set in [caps.bounding(), caps.effective(), caps.permitted(), caps.ambient()] {
            let set = set.as_ref().unwrap();
            assert!(set.contains(&Capability::SysAdmin) && set.contains(&Capability::NetRaw));
            assert!(set.contains(&Capability::Kill));
        }
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.apparmor_profile().as_deref(), Some("prof"));
        assert_eq!(p.selinux_label().as_deref(), Some("lbl"));

        let p = process_from_args(Some(&base()), &exec_args(&["-u", "1:2", "c", "id"])).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (1, 2));
        assert!(process_from_args(Some(&base()), &exec_args(&["-u", "bob", "c", "id"])).is_err());
        let err = process_from_args(Some(&base()), &exec_args(&["--cap", "CAP_KILL", "--cap", "CAP_NOPE", "c", "id"])).unwrap_err();
        assert_eq!(format!("{err:#}"), "exec --cap[1]: unknown capability CAP_NOPE");
        assert!(process_from_args(Some(&base()), &exec_args(&["--cwd", "rel", "c", "id"])).is_err());
    }

    #[test]
    fn process_file_unknown_capability_is_ignored() {
        let p = parse_process(br#"{"args":["ls"],"capabilities":{"effective":["CAP_KILL","CAP_FOO"]}}"#).unwrap();
        let eff = p.capabilities().as_ref().and_then(|c| c.effective().clone()).unwrap();
        assert_eq!(eff.into_iter().collect::<Vec<_>>(), [Capability::Kill]);
    }

    #[test]
    fn process_file() {
        let p = parse_process(br#"{"args":["ls","-l"],"env":["A=1"],"terminal":true}"#).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &vec!["ls", "-l"]);
        assert_eq!(p.cwd().to_str(), Some("/"));
        assert_eq!(p.user().uid(), 0);
        assert!(parse_process(br#"{"args":[]}"#).is_err());
        assert!(parse_process(b"not json").is_err());
    }
}
