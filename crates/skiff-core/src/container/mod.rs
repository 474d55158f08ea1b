//! The container lifecycle API: create, start, state, kill, delete, exec, run.
//!
//! OWNER: lead. Signatures here are the contract the CLI and the engine code against.

use std::path::PathBuf;

use nix::sys::signal::Signal;
use oci_spec::runtime::Process;

use crate::error::Result;
use crate::state::{OciState, Record, Status, Store};

/// Where containers live and how they are made.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub store: Store,
    /// `--systemd-cgroup`: refused with a clear error while unsupported.
    pub systemd_cgroup: bool,
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
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
}

/// A container known to the store.
#[derive(Debug, Clone)]
pub struct Container {
    pub store: Store,
    pub rec: Record,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { store: Store::new(root), systemd_cgroup: false }
    }
    /// Creates a container: it waits in `created` for `start`.
    pub fn create(&self, _id: &str, _opts: &CreateOptions) -> Result<Container> {
        todo!()
    }
    /// create + start + wait (foreground; a terminal config is wired to the caller's terminal)
    /// + delete. Returns the exit status as a shell would (128+N for a signal). With `detach`,
    /// returns 0 once started.
    pub fn run(&self, _id: &str, _opts: &CreateOptions, _detach: bool) -> Result<i32> {
        todo!()
    }
    pub fn load(&self, _id: &str) -> Result<Container> {
        todo!()
    }
    /// States of all containers, sorted by id.
    pub fn list(&self) -> Result<Vec<OciState>> {
        todo!()
    }
    /// `delete --force` of an id that has no state: removes any leftover dir, succeeds.
    pub fn delete(&self, _id: &str, _force: bool) -> Result<()> {
        todo!()
    }
}

impl Container {
    pub fn status(&self) -> Status {
        todo!()
    }
    pub fn state(&self) -> OciState {
        todo!()
    }
    pub fn start(&self) -> Result<()> {
        todo!()
    }
    pub fn kill(&self, _sig: Signal, _all: bool) -> Result<()> {
        todo!()
    }
    pub fn pids(&self) -> Result<Vec<i32>> {
        todo!()
    }
    /// Runs `process` in the container; returns its exit status, or 0 when detached.
    pub fn exec(&self, _process: &Process, _opts: &ExecOptions) -> Result<i32> {
        todo!()
    }
}
