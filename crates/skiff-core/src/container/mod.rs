//! The container lifecycle API: create, start, state, kill, delete, exec, run.
//!
//! One file per verb group: `create.rs` (create, run), `lifecycle.rs` (start, kill, delete),
//! `exec.rs`, `pause.rs` (pause, resume), `events.rs` (stats, events). The CLI and the engine
//! both call this API.

pub(crate) mod create;
mod events;
mod exec;
pub mod exec_record;
mod lifecycle;
mod pause;
mod update;

use std::path::PathBuf;

pub use events::Event;
pub use exec::ExecTarget;

use crate::error::{Error, Result};
use crate::state::{OciState, Record, Status, Store};

/// Where containers live and how they are made.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub store: Store,
    /// `--systemd-cgroup`: refused with a clear error while unsupported.
    pub systemd_cgroup: bool,
    /// Rootless mode (`--rootless`, see [`crate::rootless`]): user namespace required, cgroups
    /// only where delegated, id mappings checked against the caller's.
    pub rootless: bool,
}

/// Options of `create` / `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Pass fds 3 .. 3+N to the container process.
    pub preserve_fds: u32,
    /// The config itself, for a caller in the same process; `bundle/config.json` is then
    /// neither read nor needed.
    pub spec: Option<oci_spec::runtime::Spec>,
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
    /// Allow exec into a paused container (runc's `--ignore-paused`): the new process is
    /// frozen with the others until `resume`.
    pub ignore_paused: bool,
}

/// A container known to the store.
#[derive(Debug, Clone)]
pub struct Container {
    pub store: Store,
    pub rec: Record,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { store: Store::new(root), systemd_cgroup: false, rootless: false }
    }

    pub fn load(&self, id: &str) -> Result<Container> {
        let rec = self.store.load(id)?;
        Ok(Container { store: self.store.clone(), rec })
    }

    /// States of all containers, sorted by id. A create without a state file yet shows as
    /// `creating`, or `stopped` once its runtime died (`delete -f` undoes it); a dir without
    /// either is skipped, as runc does.
    pub fn list(&self) -> Result<Vec<OciState>> {
        let mut out = Vec::new();
        for id in self.store.ids()? {
            match self.load(&id) {
                Ok(c) => out.push(c.state()),
                Err(Error::NotExist(_)) => match self.store.intent(&id) {
                    Ok(Some(i)) => out.push(i.oci_state(&id)),
                    Ok(None) => {}
                    Err(e) => tracing::warn!("skipping {id}: {e}"),
                },
                Err(e) => tracing::warn!("skipping {id}: {e}"),
            }
        }
        Ok(out)
    }
}

impl Container {
    pub fn id(&self) -> &str {
        &self.rec.id
    }

    pub fn status(&self) -> Status {
        self.store.status(&self.rec)
    }

    pub fn state(&self) -> OciState {
        self.rec.oci_state(self.status())
    }

    /// Pids of every process in the container (its cgroup), or just the init without one.
    pub fn pids(&self) -> Result<Vec<i32>> {
        if self.rec.cgroup_paths.is_empty() {
            return Ok(if self.rec.init_alive() { vec![self.rec.pid] } else { Vec::new() });
        }
        crate::cgroups::Manager { paths: self.rec.cgroup_paths.clone() }.pids()
    }
}

/// Writes a pid file the way runc does (atomically, no newline).
pub(crate) fn write_pid_file(path: &std::path::Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("skiff-tmp");
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::io("write pid file", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("write pid file", path, e))
}
