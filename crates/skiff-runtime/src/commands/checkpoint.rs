//! checkpoint, restore (criu).

use std::path::PathBuf;

use anyhow::{bail, Result};
use skiff_core::checkpoint::{CgroupMode, CheckpointOptions, CriuFlags, RestoreOptions};
use skiff_core::Runtime;

use super::{absolute, absolute_opt};
use crate::cli::{CheckpointArgs, CriuArgs, Global, RestoreArgs};

/// The criu to run: `--criu`, else `$SKIFF_CRIU`, else `criu` from PATH.
fn criu(g: &Global) -> PathBuf {
    g.criu
        .clone()
        .or_else(|| std::env::var_os("SKIFF_CRIU").filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("criu"))
}

/// runc's default image path: `checkpoint` in the current directory.
fn image_path(a: &CriuArgs) -> Result<PathBuf> {
    absolute(a.image_path.as_deref().unwrap_or(std::path::Path::new("checkpoint")))
}

/// The flags `checkpoint` and `restore` share.
fn criu_flags(a: &CriuArgs) -> Result<CriuFlags> {
    Ok(CriuFlags {
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        manage_cgroups_mode: match &a.manage_cgroups_mode {
            Some(m) => m.parse()?,
            None => CgroupMode::default(),
        },
    })
}

/// The runc flags criu's command line does not do here.
fn unsupported(a: &CriuArgs) -> Result<()> {
    if a.lazy_pages {
        bail!("--lazy-pages is not supported");
    }
    if a.auto_dedup {
        bail!("--auto-dedup is not supported");
    }
    if !a.empty_ns.is_empty() {
        bail!("--empty-ns is not supported");
    }
    Ok(())
}

/// `checkpoint`: [`Runtime::checkpoint`].
pub fn checkpoint(g: &Global, rt: &Runtime, a: &CheckpointArgs) -> Result<i32> {
    unsupported(&a.criu)?;
    if a.page_server.is_some() {
        bail!("--page-server is not supported");
    }
    if a.status_fd.is_some() {
        bail!("--status-fd is not supported");
    }
    let opts = CheckpointOptions {
        criu: criu(g),
        image_path: image_path(&a.criu)?,
        work_path: absolute_opt(&a.criu.work_path)?,
        // Relative to the image path, as criu wants it: left as given.
        parent_path: a.parent_path.clone(),
        leave_running: a.leave_running,
        pre_dump: a.pre_dump,
        flags: criu_flags(&a.criu)?,
    };
    rt.checkpoint(&a.id, &opts)?;
    Ok(0)
}

/// `restore`: [`Runtime::restore`]; without `--detach`, exits with the container's status.
pub fn restore(g: &Global, rt: &Runtime, a: &RestoreArgs) -> Result<i32> {
    unsupported(&a.criu)?;
    if a.lsm_profile.is_some() || a.lsm_mount_context.is_some() {
        bail!("--lsm-profile and --lsm-mount-context are not supported (no LSM on this runtime's restore path)");
    }
    let opts = RestoreOptions {
        criu: criu(g),
        image_path: image_path(&a.criu)?,
        work_path: absolute_opt(&a.criu.work_path)?,
        bundle: absolute(&a.bundle)?,
        console_socket: absolute_opt(&a.console_socket)?,
        pid_file: absolute_opt(&a.pid_file)?,
        detach: a.detach,
        flags: criu_flags(&a.criu)?,
    };
    Ok(rt.restore(&a.id, &opts)?)
}
