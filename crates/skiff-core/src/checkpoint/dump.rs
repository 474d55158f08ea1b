//! `checkpoint`: `criu dump` (or `pre-dump`) of a running container.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::criu::{self, Common, Dump};
use super::{bind_mounts, cgroup_binds, criu_failed, ensure_dir, freezer_dir, netns_path, CheckpointOptions, DESCRIPTORS};
use crate::container::Runtime;
use crate::error::{Error, Result};
use crate::state::Status;

/// Removes the directories a failed checkpoint made, unless disarmed.
struct MadeDirs(Vec<PathBuf>);

impl Drop for MadeDirs {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Runtime {
    /// Checkpoints container `id` into `opts.image_path` with criu. Without `leave_running`
    /// (and unless it is a pre-dump) the container is gone afterwards: its processes, cgroups
    /// and state, as after runc's checkpoint; `restore` makes it again.
    pub fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<()> {
        let c = self.load(id)?;
        match c.status() {
            Status::Running | Status::Paused => {}
            s => return Err(Error::State(format!("cannot checkpoint container {id}: it is {s}, not running"))),
        }
        let spec = &c.rec.spec;
        if spec.process().as_ref().and_then(|p| p.terminal()) == Some(true) {
            return Err(Error::Criu(
                "checkpointing a container with a terminal is not supported yet (its restore needs criu's RPC interface to hand back the pty master)".into(),
            ));
        }
        if let Some(p) = &opts.parent_path {
            if p.is_absolute() {
                return Err(Error::Criu(format!(
                    "--parent-path {}: must be relative to the image path (e.g. ../pre-dump)",
                    p.display()
                )));
            }
        }
        criu::version(&opts.criu)?;
        if (opts.pre_dump || opts.parent_path.is_some()) && !criu::has_feature(&opts.criu, "mem_dirty_track") {
            return Err(Error::Criu(format!(
                "--pre-dump and --parent-path need criu's memory tracking, which `{} check --feature mem_dirty_track` says this kernel lacks (no soft-dirty bits)",
                opts.criu.display()
            )));
        }

        let mut made = MadeDirs(Vec::new());
        if ensure_dir(&opts.image_path, "image directory")? {
            made.0.push(opts.image_path.clone());
        }
        let work = opts.work_path.clone().unwrap_or_else(|| opts.image_path.clone());
        if ensure_dir(&work, "work directory")? {
            made.0.push(work.clone());
        }
        if let Some(p) = &opts.parent_path {
            if !opts.image_path.join(p).is_dir() {
                return Err(Error::Criu(format!(
                    "--parent-path {}: no such directory next to {}",
                    p.display(),
                    opts.image_path.display()
                )));
            }
        }

        let pid = c.rec.pid;
        if !opts.pre_dump {
            write_descriptors(pid, &opts.image_path)?;
        }
        let mut ext_mounts: Vec<(String, String)> = bind_mounts(spec, &c.rec.bundle).into_iter().map(|(d, _)| (d.clone(), d)).collect();
        ext_mounts.extend(masked_files(spec, pid).into_iter().map(|p| (p.clone(), p)));
        ext_mounts.extend(cgroup_binds(spec, &c.rec.cgroup_paths)?.into_iter().map(|(d, _)| (d.clone(), d)));
        let mut external = Vec::new();
        if let Some(ns) = netns_path(spec) {
            let meta = std::fs::metadata(&ns).map_err(|e| Error::io("stat network namespace", &ns, e))?;
            external.push(format!("net[{}]:{}", std::os::unix::fs::MetadataExt::ino(&meta), criu::EXT_NETNS));
        }
        let dump = Dump {
            common: Common {
                images: opts.image_path.clone(),
                work: work.clone(),
                flags: opts.flags,
                ext_mounts,
            },
            pid,
            root: c.rec.rootfs.clone(),
            freezer: freezer_dir(&c.rec.cgroup_paths)?,
            external,
            leave_running: opts.leave_running,
            pre_dump: opts.pre_dump,
            parent: opts.parent_path.clone(),
        };
        let args = criu::dump_args(&dump);
        tracing::debug!("running {} {:?}", opts.criu.display(), args);
        let status = Command::new(&opts.criu)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| Error::Criu(format!("cannot run criu ({}): {e}", opts.criu.display())))?;
        if !status.success() {
            let what = if opts.pre_dump { "pre-dump" } else { "dump" };
            let e = criu_failed(what, status, &work.join(criu::DUMP_LOG));
            // A directory we made goes whole (on drop); from one of the caller's, our file.
            if !made.0.contains(&opts.image_path) {
                let _ = std::fs::remove_file(opts.image_path.join(DESCRIPTORS));
            }
            return Err(e);
        }
        made.0.clear();
        if opts.pre_dump || opts.leave_running {
            return Ok(());
        }
        // criu killed the processes: what is left is a stopped container.
        c.delete(true)
    }
}

/// Writes `descriptors.json`: what fds 0, 1 and 2 of the init point to.
fn write_descriptors(pid: i32, images: &Path) -> Result<()> {
    let fds: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let path = images.join(DESCRIPTORS);
    let data = serde_json::to_vec(&fds).map_err(|e| Error::Other(format!("encode {DESCRIPTORS}: {e}")))?;
    std::fs::write(&path, data).map_err(|e| Error::io("write", path, e))
}

/// The masked paths that are files (masked by a bind of /dev/null: external mounts for criu),
/// as the init sees them.
fn masked_files(spec: &oci_spec::runtime::Spec, pid: i32) -> Vec<String> {
    let masked = spec.linux().as_ref().and_then(|l| l.masked_paths().clone()).unwrap_or_default();
    masked
        .into_iter()
        .filter(|p| {
            let inside = format!("/proc/{pid}/root/{}", p.trim_start_matches('/'));
            std::fs::metadata(inside).is_ok_and(|m| !m.is_dir())
        })
        .collect()
}
