//! create, start, run, state, kill, delete.

use anyhow::{bail, Context, Result};
use skiff_core::{CreateOptions, Runtime};

use super::{absolute, absolute_opt};
use crate::cli::{CreateArgs, DeleteArgs, KillArgs, RunArgs};

fn create_options(a: &CreateArgs) -> Result<CreateOptions> {
    Ok(CreateOptions {
        bundle: absolute(&a.bundle)?,
        pid_file: absolute_opt(&a.pid_file)?,
        console_socket: absolute_opt(&a.console_socket)?,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        spec: None,
    })
}

/// `create`: [`Runtime::create`]; the container waits in `created`.
pub fn create(rt: &Runtime, a: &CreateArgs) -> Result<i32> {
    rt.create(&a.id, &create_options(a)?)?;
    Ok(0)
}

/// `start`: [`Runtime::load`] + [`skiff_core::Container::start`].
pub fn start(rt: &Runtime, id: &str) -> Result<i32> {
    let c = rt.load(id)?;
    skiff_core::timing::mark("start: load state");
    c.start()?;
    Ok(0)
}

/// `run`: [`Runtime::run`]; exits with the container's status.
pub fn run(rt: &Runtime, a: &RunArgs) -> Result<i32> {
    if a.keep {
        bail!("run --keep is not supported yet");
    }
    Ok(rt.run(&a.create.id, &create_options(&a.create)?, a.detach)?)
}

/// `state`: the OCI state document, indented by two spaces and without a final newline,
/// byte for byte like runc's.
pub fn state(rt: &Runtime, id: &str) -> Result<i32> {
    let st = rt.load(id)?.state();
    let text = serde_json::to_string_pretty(&st).context("encode state")?;
    print!("{text}");
    Ok(0)
}

/// `kill`: [`skiff_core::Container::kill`] with the parsed signal (default SIGTERM).
pub fn kill(rt: &Runtime, a: &KillArgs) -> Result<i32> {
    let sig = skiff_core::signal::parse(&a.signal)?;
    rt.load(&a.id)?.kill(sig, a.all)?;
    Ok(0)
}

/// `delete`: [`Runtime::delete`].
pub fn delete(rt: &Runtime, a: &DeleteArgs) -> Result<i32> {
    rt.delete(&a.id, a.force)?;
    Ok(0)
}
