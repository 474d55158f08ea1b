//! Creating, joining, listing and removing a container's cgroup directories.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{v1, Manager};
use crate::error::{Error, Result};

/// How long `remove` keeps retrying a cgroup that is busy because its tasks are still exiting.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);
const BUSY_STEP: Duration = Duration::from_millis(10);

/// `mkdir -p dir`, pushing each directory it made (parents first) onto `created`.
fn mkdir_p(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    if !dir.is_absolute() {
        return Err(Error::Cgroup(format!(
            "{}: cgroup path is not absolute",
            dir.display()
        )));
    }
    // Another container's delete may remove an empty shared parent (/skiff) between our check
    // and our mkdir below it (ENOENT): look again and retry.
    let mut attempts = 0;
    'again: loop {
        // What vanished is not ours any more (and a later pass may make it again).
        created.retain(|c| c.exists());
        let mut missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
        missing.reverse();
        for d in missing {
            match fs::create_dir(d) {
                Ok(()) => {
                    created.push(d.to_path_buf());
                    // A shared parent removed by a concurrent delete before its cpuset
                    // values were in: go again.
                    if !v1::init_cpuset(d)? && attempts < 1000 {
                        attempts += 1;
                        continue 'again;
                    }
                }
                // Made concurrently by someone else: theirs, not ours.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
                // ENOENT: a parent vanished; EEXIST but gone now: it vanished right after.
                Err(e)
                    if (e.kind() == io::ErrorKind::NotFound
                        || (e.kind() == io::ErrorKind::AlreadyExists && !d.exists()))
                        && attempts < 1000 =>
                {
                    attempts += 1;
                    continue 'again;
                }
                Err(e) => return Err(Error::io("create cgroup", d, e)),
            }
        }
        break;
    }
    if !dir.is_dir() {
        return Err(Error::Cgroup(format!(
            "{}: exists and is not a directory",
            dir.display()
        )));
    }
    Ok(())
}

pub(super) fn create(m: &Manager) -> Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    for p in &m.paths {
        if let Err(e) = mkdir_p(p, &mut created) {
            // Leave nothing behind; the original error is what matters.
            if let Err(re) = remove(&created) {
                tracing::warn!("cleaning up after failed cgroup create: {re}");
            }
            return Err(e);
        }
    }
    Ok(created)
}

pub(super) fn add(m: &Manager, pid: i32) -> Result<()> {
    if pid <= 0 {
        return Err(Error::Cgroup(format!("cannot add pid {pid} to a cgroup")));
    }
    for p in &m.paths {
        let procs = p.join("cgroup.procs");
        if let Err(e) = fs::write(&procs, pid.to_string()) {
            if e.raw_os_error() == Some(libc::ENOSPC) {
                return Err(Error::Cgroup(format!(
                    "add pid {pid} to {}: {e} (empty cpuset.cpus or cpuset.mems?)",
                    procs.display()
                )));
            }
            return Err(Error::io("add pid to", &procs, e));
        }
    }
    Ok(())
}

pub(super) fn self_join(m: &Manager, cgroups: &super::Cgroups) -> Result<(super::SelfJoin, Manager)> {
    let mut tasks = Vec::new();
    let mut v2 = Vec::new();
    for p in &m.paths {
        let file = p.join("tasks");
        match cgroups.hierarchy_of(p) {
            Some(h) if !h.v2 && file.exists() => {
                let fd = nix::fcntl::open(&file, nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                    .map_err(|e| Error::io("open", &file, std::io::Error::from(e)))?;
                tasks.push((file, fd));
            }
            _ => v2.push(p.clone()),
        }
    }
    Ok((super::SelfJoin { tasks }, Manager { paths: v2 }))
}

pub(super) fn join_self(j: &super::SelfJoin) -> Result<()> {
    for (file, fd) in &j.tasks {
        if let Err(e) = nix::unistd::write(fd, b"0") {
            if e == nix::errno::Errno::ENOSPC {
                return Err(Error::Cgroup(format!("join {}: {e} (empty cpuset.cpus or cpuset.mems?)", file.display())));
            }
            return Err(Error::io("join", file, std::io::Error::from(e)));
        }
    }
    Ok(())
}

/// Pids listed in `dir/cgroup.procs`.
fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    let procs = dir.join("cgroup.procs");
    let text = fs::read_to_string(&procs).map_err(|e| Error::io("read", &procs, e))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse::<i32>()
                .map_err(|_| Error::Cgroup(format!("{}: not a pid: {l:?}", procs.display())))
        })
        .collect()
}

/// The union over all hierarchies: a task moved out of one hierarchy still belongs to us.
pub(super) fn pids(m: &Manager) -> Result<Vec<i32>> {
    let mut all = Vec::new();
    for p in &m.paths {
        all.extend(read_procs(p)?);
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

fn has_subdirs(dir: &Path) -> bool {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .any(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false)),
        Err(_) => false,
    }
}

/// rmdir one cgroup. `Ok(())` also when it is gone already or holds another cgroup (a shared
/// parent such as /skiff that another container still uses).
fn rmdir(dir: &Path, deadline: &mut Option<Instant>) -> Result<()> {
    let mut looked_again = 0;
    loop {
        let err = match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match err.raw_os_error() {
            Some(libc::ENOENT) => return Ok(()),
            // cgroupfs says EBUSY both for child cgroups and for live tasks; a plain fs says
            // ENOTEMPTY. Child cgroups are someone else's: leave the parent.
            Some(libc::EBUSY) | Some(libc::ENOTEMPTY) if has_subdirs(dir) => {
                tracing::debug!(
                    "cgroup {} still has child cgroups; left in place",
                    dir.display()
                );
                return Ok(());
            }
            // The child cgroup that made it non-empty went away since: look again.
            Some(libc::ENOTEMPTY) if looked_again < 1000 => looked_again += 1,
            Some(libc::EBUSY) => {
                let until = *deadline.get_or_insert_with(|| Instant::now() + BUSY_TIMEOUT);
                if Instant::now() >= until {
                    return Err(Error::io("remove cgroup (tasks still in it)", dir, err));
                }
                std::thread::sleep(BUSY_STEP);
            }
            _ => return Err(Error::io("remove cgroup", dir, err)),
        }
    }
}

pub(super) fn remove(created: &[PathBuf]) -> Result<()> {
    let mut dirs: Vec<&PathBuf> = created.iter().collect();
    // Deepest first; among equals keep the given order reversed (children were pushed last).
    dirs.reverse();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let mut deadline = None;
    let mut first_err = None;
    for d in dirs {
        if let Err(e) = rmdir(d, &mut deadline) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}
