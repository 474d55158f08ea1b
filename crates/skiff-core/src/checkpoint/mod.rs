//! Checkpoint and restore of a running container with CRIU, as runc's `checkpoint` and
//! `restore` do them.
//!
//! [`Runtime::checkpoint`](crate::Runtime::checkpoint) (`dump.rs`) freezes the container's
//! cgroup and has criu write its process tree into an image directory (`criu pre-dump` for a
//! memory-only pass that leaves it running); without `leave_running` the container is gone
//! afterwards, state and cgroups too, as with runc. [`Runtime::restore`](crate::Runtime::restore)
//! (`restore.rs`) makes the container again from a bundle and such an image: cgroups, the
//! rootfs bound at a temporary criu root, `criu restore`, and a state like `create`'s, so that
//! `state`, `ps`, `kill`, `exec` and `delete` work on it. `criu.rs` builds criu's command lines.
//!
//! Files in the image directory besides criu's: `descriptors.json`, what fds 0-2 of the init
//! pointed to (runc's name and format), so that a restore can hand the init its own stdio pipes.

mod criu;
mod dump;
mod hooks;
mod restore;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

pub use criu::{parse_version, MIN_VERSION};

use crate::error::{Error, Result};

/// The stdio record in the image directory.
pub const DESCRIPTORS: &str = "descriptors.json";

/// criu's `--manage-cgroups` mode (runc's `--manage-cgroups-mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CgroupMode {
    /// Restore cgroup properties only of cgroups criu makes (runc's default).
    #[default]
    Soft,
    /// Restore all cgroup properties.
    Full,
    /// Fail when a cgroup is missing or differs.
    Strict,
    /// Leave cgroups alone.
    Ignore,
}

impl CgroupMode {
    /// The value of criu's `--manage-cgroups=`.
    fn criu_value(self) -> &'static str {
        match self {
            CgroupMode::Soft => "soft",
            CgroupMode::Full => "full",
            CgroupMode::Strict => "strict",
            CgroupMode::Ignore => "ignore",
        }
    }
}

impl std::str::FromStr for CgroupMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<CgroupMode> {
        match s {
            "soft" => Ok(CgroupMode::Soft),
            "full" => Ok(CgroupMode::Full),
            "strict" => Ok(CgroupMode::Strict),
            "ignore" => Ok(CgroupMode::Ignore),
            _ => Err(Error::Criu(format!("invalid --manage-cgroups-mode {s:?}: one of soft, full, strict, ignore"))),
        }
    }
}

/// The criu options `checkpoint` and `restore` share (runc's flags of the same names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CriuFlags {
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: CgroupMode,
}

/// Options of `checkpoint`.
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    /// The criu binary (a name is looked up in PATH).
    pub criu: PathBuf,
    /// Where the images go (made if missing).
    pub image_path: PathBuf,
    /// Where criu works and logs (`dump.log`); the image directory when None.
    pub work_path: Option<PathBuf>,
    /// Images of a previous pre-dump, relative to `image_path` (`../pre`).
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    /// Memory only; the container keeps running.
    pub pre_dump: bool,
    pub flags: CriuFlags,
}

/// Options of `restore`.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub criu: PathBuf,
    pub image_path: PathBuf,
    /// Where criu works and logs (`restore.log`); the image directory when None.
    pub work_path: Option<PathBuf>,
    /// The bundle to restore into (its config.json and rootfs).
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    /// Return once restored; else wait for the init and return its exit status.
    pub detach: bool,
    pub flags: CriuFlags,
}

/// In a container's init, after pivot_root: stdio fds that are the host's /dev/null (an engine
/// starting a detached container passes it) are replaced by the container's own, as runc's
/// `reOpenDevNull` does. criu cannot dump a file of a mount outside the container ("Can't
/// lookup mount"), so without this such a container could not be checkpointed. Best effort: a
/// container without a /dev/null keeps the host's.
pub(crate) fn reopen_dev_null() {
    let null = nix::sys::stat::makedev(1, 3);
    for fd in 0..3 {
        // SAFETY: fstat into a zeroed stat we own.
        let is_null = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == null
        };
        if !is_null {
            continue;
        }
        let Ok(own) = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) else {
            return;
        };
        // SAFETY: dup3 onto a stdio fd; `own` stays owned and is closed on drop.
        unsafe { libc::dup3(std::os::fd::AsRawFd::as_raw_fd(&own), fd, 0) };
    }
}

/// Whether a config mount is a bind mount.
fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind") || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind")
}

/// The bind mounts of a config as (destination, host source): criu sees them as external
/// mounts. A relative source is relative to the bundle.
fn bind_mounts(spec: &Spec, bundle: &Path) -> Vec<(String, PathBuf)> {
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| is_bind(m))
        .filter_map(|m| {
            let src = m.source().as_ref()?;
            Some((m.destination().to_string_lossy().into_owned(), bundle.join(src)))
        })
        .collect()
}

/// The `cgroup` mounts of a config, where they are binds of the host's hierarchies (v1 and
/// hybrid; v2 without a cgroup namespace), as (mount point in the container, host directory)
/// for the container's cgroup directories `paths`.
fn cgroup_binds(spec: &Spec, paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>> {
    let dests: Vec<PathBuf> = spec
        .mounts()
        .iter()
        .flatten()
        .filter(|m| m.typ().as_deref() == Some("cgroup"))
        .map(|m| m.destination().clone())
        .collect();
    if dests.is_empty() || paths.is_empty() {
        return Ok(Vec::new());
    }
    let cgroups = crate::cgroups::Cgroups::detect()?;
    let mounts = cgroups.mounts_for(&crate::cgroups::Manager { paths: paths.to_vec() });
    let cgroupns = crate::spec::namespaces(spec).iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup);
    let mut out = Vec::new();
    for dest in dests {
        for m in &mounts {
            if m.name.is_empty() {
                if !cgroupns {
                    out.push((dest.to_string_lossy().into_owned(), m.host_dir.clone()));
                }
            } else {
                out.push((dest.join(&m.name).to_string_lossy().into_owned(), m.host_dir.clone()));
            }
        }
    }
    Ok(out)
}

/// The path of the config's network namespace, when it joins one.
fn netns_path(spec: &Spec) -> Option<PathBuf> {
    crate::spec::namespaces(spec)
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .and_then(|n| n.path().clone())
}

/// The container's freezer: its v1 freezer directory, else its cgroup2 directory.
fn freezer_dir(paths: &[PathBuf]) -> Result<Option<PathBuf>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let cgroups = crate::cgroups::Cgroups::detect()?;
    let of = |want_v2: bool| {
        paths.iter().find(|p| {
            cgroups
                .hierarchy_of(p)
                .is_some_and(|h| if want_v2 { h.v2 } else { h.controllers.iter().any(|c| c == "freezer") })
        })
    };
    Ok(of(false).or_else(|| of(true)).cloned())
}

/// Makes `dir` (and its parents) when missing; true if it was made.
fn ensure_dir(dir: &Path, what: &str) -> Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Criu(format!("cannot make the {what} {}: {e}", dir.display())))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    Ok(true)
}

/// A criu failure: its exit status and the tail of its log.
fn criu_failed(what: &str, status: std::process::ExitStatus, log: &Path) -> Error {
    let tail = criu::log_errors(log, 8);
    let tail = if tail.is_empty() {
        format!("(no log at {})", log.display())
    } else {
        format!("from {}:\n{tail}", log.display())
    };
    Error::Criu(format!("criu {what} failed ({status}); {tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manage_cgroups_modes() {
        assert_eq!("soft".parse::<CgroupMode>().unwrap(), CgroupMode::Soft);
        assert_eq!("full".parse::<CgroupMode>().unwrap(), CgroupMode::Full);
        assert_eq!("strict".parse::<CgroupMode>().unwrap(), CgroupMode::Strict);
        assert_eq!("ignore".parse::<CgroupMode>().unwrap(), CgroupMode::Ignore);
        let e = "hard".parse::<CgroupMode>().unwrap_err().to_string();
        assert!(e.contains("invalid --manage-cgroups-mode \"hard\""), "{e}");
        assert_eq!(CgroupMode::default(), CgroupMode::Soft);
    }

    #[test]
    fn binds_and_netns_from_the_config() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "rw"]},
                {"destination": "/etc/hosts", "source": "hosts", "options": ["bind", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
            ],
            "linux": {"namespaces": [{"type": "mount"}, {"type": "network", "path": "/run/netns/n1"}]}
        }))
        .unwrap();
        assert_eq!(
            bind_mounts(&spec, Path::new("/b")),
            vec![
                ("/data".to_string(), PathBuf::from("/srv/data")),
                ("/etc/hosts".to_string(), PathBuf::from("/b/hosts"))
            ]
        );
        assert_eq!(netns_path(&spec), Some(PathBuf::from("/run/netns/n1")));
        // No cgroup mount: nothing to map, and the host's layout is not even looked at.
        assert!(cgroup_binds(&spec, &[PathBuf::from("/sys/fs/cgroup/memory/x")]).unwrap().is_empty());
    }
}
