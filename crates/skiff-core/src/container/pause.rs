//! `pause` and `resume` (the cgroup freezer), and thawing after SIGKILL so that a kill reaches
//! a paused container.

use nix::sys::signal::Signal;

use super::Container;
use crate::cgroups::Manager;
use crate::error::{Error, Result};
use crate::state::Status;

impl Container {
    /// The container's cgroup across all hierarchies.
    pub(super) fn cgroup(&self) -> Result<Manager> {
        if self.rec.cgroup_paths.is_empty() {
            return Err(Error::Cgroup(format!("container {} has no cgroup", self.id())));
        }
        Ok(Manager { paths: self.rec.cgroup_paths.clone() })
    }

    /// Freezes every process of a running or created container (runc 1.1: "container not
    /// running" otherwise). A paused created container resumes as created.
    pub fn pause(&self) -> Result<()> {
        if !matches!(self.status(), Status::Running | Status::Created) {
            return Err(Error::State("container not running".into()));
        }
        self.cgroup()?.freeze()
    }

    /// Thaws a paused container (runc: "container not paused" otherwise).
    pub fn resume(&self) -> Result<()> {
        if self.status() != Status::Paused {
            return Err(Error::State("container not paused".into()));
        }
        self.cgroup()?.thaw()
    }

    /// After SIGKILL: a task in a frozen v1 cgroup only dies once thawed, so thaw (as runc).
    /// Other signals stay pending until `resume`.
    pub(super) fn thaw_after_kill(&self, sig: Signal) {
        if sig != Signal::SIGKILL || !crate::cgroups::is_frozen(&self.rec.cgroup_paths) {
            return;
        }
        if let Err(e) = self.cgroup().and_then(|m| m.thaw()) {
            tracing::warn!("thaw {} after SIGKILL: {e}", self.id());
        }
    }
}
