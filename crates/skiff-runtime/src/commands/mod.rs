//! One module per group of subcommands. Each takes the parsed arguments, calls `skiff_core`,
//! prints, and returns the process exit status.

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

use crate::cli::{Command, Global, DEFAULT_ROOT};

/// Runs a subcommand; `Ok(status)` is the exit status.
pub fn run(g: &Global, command: Command) -> Result<i32> {
    match command {
        Command::Spec(a) => info::spec(g, &a),
        Command::Features => info::features(),
        c @ (Command::Checkpoint(_) | Command::Restore(_)) => bail!("{}: not implemented yet", c.name()),
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
                _ => unreachable!("handled above"),
            }
        }
    }
}

/// The runtime for `--root` (absolute, as runc makes it) and `--systemd-cgroup`.
fn runtime(g: &Global) -> Result<Runtime> {
    let root = match &g.root {
        Some(r) => absolute(r)?,
        None => default_root(),
    };
    let mut rt = Runtime::new(root);
    rt.systemd_cgroup = g.systemd_cgroup;
    Ok(rt)
}

/// `/run/skiff`; for a non-root caller `$XDG_RUNTIME_DIR/skiff` when set (as runc does with
/// `$XDG_RUNTIME_DIR/runc`), since /run is not writable to them.
fn default_root() -> PathBuf {
    if !nix::unistd::geteuid().is_root() {
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("skiff");
        }
    }
    PathBuf::from(DEFAULT_ROOT)
}

/// Makes a path from the command line absolute against the current directory.
fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolve path {}", p.display()))
}

fn absolute_opt(p: &Option<PathBuf>) -> Result<Option<PathBuf>> {
    p.as_deref().map(absolute).transpose()
}
