//! One module per group of subcommands. Each takes the parsed arguments, calls `skiff_core`,
//! prints, and returns the process exit status.

mod checkpoint;
mod events;
mod exec;
mod info;
mod lifecycle;
mod list;
mod ps;
mod update;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use skiff_core::Runtime;

use crate::cli::{Command, Global, Rootless, DEFAULT_ROOT};

/// Runs a subcommand; `Ok(status)` is the exit status.
pub fn run(g: &Global, command: Command) -> Result<i32> {
    match command {
        Command::Spec(a) => info::spec(g, &a),
        Command::Features => info::features(),
        c => {
            let rt = runtime(g)?;
            match c {
                Command::Create(a) => lifecycle::create(&rt, &a),
                Command::Start(a) => lifecycle::start(&rt, &a.id),
                Command::Run(a) => lifecycle::run(&rt, &a),
                Command::State(a) => lifecycle::state(&rt, &a.id),
                Command::Kill(a) => lifecycle::kill(&rt, &a),
                Command::Delete(a) => lifecycle::delete(&rt, &a),
                Command::List(a) => list::list(&rt, &a),
                Command::Ps(a) => ps::ps(&rt, &a),
                Command::Exec(a) => exec::exec(&rt, &a),
                Command::Pause(a) => events::pause(&rt, &a.id),
                Command::Resume(a) => events::resume(&rt, &a.id),
                Command::Events(a) => events::events(&rt, &a),
                Command::Update(a) => update::update(&rt, &a),
                Command::Checkpoint(a) => checkpoint::checkpoint(g, &rt, &a),
                Command::Restore(a) => checkpoint::restore(g, &rt, &a),
                _ => unreachable!("handled above"),
            }
        }
    }
}

/// The runtime for `--root` (absolute, as runc makes it), `--systemd-cgroup` and
/// `--rootless`.
fn runtime(g: &Global) -> Result<Runtime> {
    let root = match &g.root {
        Some(r) => absolute(r)?,
        None => default_root(std::env::var_os("XDG_RUNTIME_DIR"))?,
    };
    let mut rt = Runtime::new(root);
    rt.systemd_cgroup = g.systemd_cgroup;
    rt.rootless = rootless(g.rootless);
    Ok(rt)
}

/// `--rootless`: true, false, or (auto, the default) when not root or inside a user namespace.
fn rootless(flag: Option<Rootless>) -> bool {
    match flag {
        Some(Rootless::True) => true,
        Some(Rootless::False) => false,
        Some(Rootless::Auto) | None => skiff_core::rootless::auto(),
    }
}

/// `/run/skiff` for root; for anyone else `$XDG_RUNTIME_DIR/skiff` (as runc does with
/// `$XDG_RUNTIME_DIR/runc`), since /run is not theirs: an error when it is unset or not a
/// writable directory.
fn default_root(xdg: Option<std::ffi::OsString>) -> Result<PathBuf> {
    if nix::unistd::geteuid().is_root() {
        return Ok(PathBuf::from(DEFAULT_ROOT));
    }
    let Some(dir) = xdg.filter(|d| !d.is_empty()).map(PathBuf::from) else {
        bail!("XDG_RUNTIME_DIR is not set: a non-root user needs it (state goes to $XDG_RUNTIME_DIR/skiff), or pass --root DIR");
    };
    let usable = dir.is_dir() && nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK).is_ok();
    if !usable {
        bail!("XDG_RUNTIME_DIR {}: not a writable directory (state goes to $XDG_RUNTIME_DIR/skiff); fix it or pass --root DIR", dir.display());
    }
    Ok(dir.join("skiff"))
}

/// Makes a path from the command line absolute against the current directory.
fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolve path {}", p.display()))
}

fn absolute_opt(p: &Option<PathBuf>) -> Result<Option<PathBuf>> {
    p.as_deref().map(absolute).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootless_flag_values() {
        assert!(rootless(Some(Rootless::True)));
        assert!(!rootless(Some(Rootless::False)));
        assert_eq!(rootless(None), skiff_core::rootless::auto());
        assert_eq!(rootless(Some(Rootless::Auto)), rootless(None));
    }

    #[test]
    fn root_keeps_run_skiff_whatever_xdg_says() {
        if nix::unistd::geteuid().is_root() {
            assert_eq!(default_root(Some("/tmp".into())).unwrap(), PathBuf::from(DEFAULT_ROOT));
        } else {
            assert!(default_root(None).unwrap_err().to_string().contains("XDG_RUNTIME_DIR is not set"));
        }
    }
}
