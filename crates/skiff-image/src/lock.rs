//! Locks and work areas: the store-wide `flock` on `<root>/lock`, and per-operation work
//! directories in `<root>/tmp` that are locked while in use so a later `Store::open` can
//! remove what a killed process left behind without touching a live writer's files.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{IoContext, Result};

/// A held `flock` on the store's lock file; released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _lock: Flock<File>,
}

impl StoreLock {
    /// Blocks until the lock is held; `exclusive` for writers, shared for readers.
    pub fn acquire(root: &Path, exclusive: bool) -> Result<StoreLock> {
        let path = root.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .ctx("opening lock file", &path)?;
        let arg = if exclusive { FlockArg::LockExclusive } else { FlockArg::LockShared };
        let lock = Flock::lock(file, arg).map_err(|(_, e)| e).ctx("locking", &path)?;
        Ok(StoreLock { _lock: lock })
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other live process or thread uses: pid, time and a counter.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A directory in `<root>/tmp` held under an exclusive `flock` for its whole life and removed
/// on drop. A killed owner's lock goes with it, which is how stale ones are recognized.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    _lock: Flock<File>,
}

impl WorkDir {
    pub fn new(tmp: &Path) -> Result<WorkDir> {
        loop {
            let path = tmp.join(unique_name("w"));
            fs::create_dir(&path).ctx("creating work dir", &path)?;
            // A concurrent cleaner (another process's `Store::open`) may remove the new,
            // not yet locked, directory at any point until our lock is taken: start again.
            let dir = match File::open(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                r => r.ctx("opening work dir", &path)?,
            };
            let lock = Flock::lock(dir, FlockArg::LockExclusive).map_err(|(_, e)| e).ctx("locking work dir", &path)?;
            // A concurrent cleaner may have taken the lock between our mkdir and flock and
            // removed the directory: then it is not ours any more, start again.
            let ours = fs::symlink_metadata(&path)
                .ok()
                .zip(lock.metadata().ok())
                .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
            if ours {
                return Ok(WorkDir { path, _lock: lock });
            }
        }
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh path inside the work dir (nothing is created).
    pub fn child(&self, prefix: &str) -> PathBuf {
        self.path.join(unique_name(prefix))
    }

    /// Writes `data` to `dest` atomically: a file in the work dir renamed over `dest`.
    pub fn write_atomic(&self, dest: &Path, data: &[u8]) -> Result<()> {
        let tmp = self.child("f");
        let mut f = File::create(&tmp).ctx("creating", &tmp)?;
        f.write_all(data).ctx("writing", &tmp)?;
        drop(f);
        fs::rename(&tmp, dest).ctx("renaming into place", dest)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = remove_tree(&self.path) {
            tracing::warn!("removing work dir {}: {e}", self.path.display());
        }
    }
}

/// Removes every entry of `tmp` that no live process holds: unlocked work dirs and loose files.
pub fn clean_stale(tmp: &Path) -> Result<()> {
    let entries = fs::read_dir(tmp).ctx("reading", tmp)?;
    for entry in entries {
        let entry = entry.ctx("reading", tmp)?;
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir {
            let _ = fs::remove_file(&path);
            continue;
        }
        let Ok(dir) = File::open(&path) else { continue };
        // Non-blocking: a held lock means a live owner.
        if let Ok(lock) = Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            tracing::debug!("removing stale work dir {}", path.display());
            if let Err(e) = remove_tree(&path) {
                tracing::warn!("removing stale work dir {}: {e}", path.display());
            }
            drop(lock);
        }
    }
    Ok(())
}

/// `remove_dir_all` that also copes with directories whose mode forbids writing (a layer may
/// contain 0555 dirs; this matters when we are not root).
pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            make_writable(path);
            fs::remove_dir_all(path).ctx("removing", path)
        }
        Err(e) => Err(e).ctx("removing", path),
    }
}

fn make_writable(path: &Path) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
    if let Ok(rd) = fs::read_dir(path) {
        for e in rd.flatten() {
            make_writable(&e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_work_dirs_are_removed_live_ones_kept() {
        let t = tempfile::tempdir().unwrap();
        let live = WorkDir::new(t.path()).unwrap();
        fs::write(live.path().join("x"), b"x").unwrap();
        // A stale one: a dir nobody locks, with content; and a loose file.
        let stale = t.path().join("w-stale");
        fs::create_dir_all(stale.join("a/b")).unwrap();
        fs::set_permissions(stale.join("a"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::write(t.path().join("loose"), b"").unwrap();
        clean_stale(t.path()).unwrap();
        assert!(live.path().join("x").exists());
        assert!(!stale.exists());
        assert!(!t.path().join("loose").exists());
        let p = live.path().to_path_buf();
        drop(live);
        assert!(!p.exists());
    }

    #[test]
    fn atomic_write_replaces() {
        let t = tempfile::tempdir().unwrap();
        let w = WorkDir::new(t.path()).unwrap();
        let dest = t.path().join("doc.json");
        w.write_atomic(&dest, b"one").unwrap();
        w.write_atomic(&dest, b"two").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
    }
}

#[cfg(test)]
mod race_tests {
    use super::*;

    #[test]
    fn work_dirs_survive_cleaners_running_at_the_same_time() {
        let t = tempfile::tempdir().unwrap();
        let tmp = t.path().to_path_buf();
        let stop = std::sync::atomic::AtomicBool::new(false);
        // Stops the cleaners even when an assertion fails (else the scope never ends).
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = clean_stale(&tmp);
                    }
                });
            }
            let _stop = Stop(&stop);
            for _ in 0..2000 {
                let w = WorkDir::new(&tmp).unwrap();
                fs::write(w.path().join("f"), b"x").unwrap();
                assert!(w.path().join("f").exists(), "a cleaner removed a live work dir");
            }
        });
    }
}
