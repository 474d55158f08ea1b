//! `tmpcopyup`: copy what was under a tmpfs destination into the fresh tmpfs.

use std::fs;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Copy the contents of `from` into `to` (both existing directories): regular files,
/// directories and symlinks, with modes and owners; other file types are skipped. Symlinks are
/// copied as symlinks, never followed. `to` itself is left as it is (as runc's copy-up does):
/// the mount code gives a tmpfs its mode.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    copy_dir(from, to)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).map_err(|e| Error::io("read dir", from, e))? {
        let entry = entry.map_err(|e| Error::io("read dir", from, e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let md = fs::symlink_metadata(&src).map_err(|e| Error::io("stat", &src, e))?;
        let ft = md.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| Error::io("readlink", &src, e))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(|e| Error::io("symlink", &dst, e))?;
        } else if ft.is_dir() {
            fs::create_dir(&dst).map_err(|e| Error::io("mkdir", &dst, e))?;
            copy_dir(&src, &dst)?;
            fs::set_permissions(&dst, fs::Permissions::from_mode(md.mode() & 0o7777))
                .map_err(|e| Error::io("chmod", &dst, e))?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).map_err(|e| Error::io("copy", &src, e))?;
        } else {
            tracing::debug!(path = %src.display(), "tmpcopyup: skipping special file");
            continue;
        }
        lchown(&dst, Some(md.uid()), Some(md.gid())).map_err(|e| Error::io("chown", &dst, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_dirs_symlinks_with_modes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::create_dir_all(a.join("sub")).unwrap();
        fs::write(a.join("sub/f"), b"data").unwrap();
        fs::set_permissions(a.join("sub/f"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::set_permissions(a.join("sub"), fs::Permissions::from_mode(0o710)).unwrap();
        fs::set_permissions(&a, fs::Permissions::from_mode(0o1777)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", a.join("link")).unwrap();
        fs::create_dir(&b).unwrap();
        fs::set_permissions(&b, fs::Permissions::from_mode(0o755)).unwrap();
        copy_tree(&a, &b).expect("copy");
        assert_eq!(fs::read(b.join("sub/f")).unwrap(), b"data");
        assert_eq!(fs::metadata(b.join("sub/f")).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(fs::metadata(b.join("sub")).unwrap().mode() & 0o7777, 0o710);
        assert_eq!(fs::metadata(&b).unwrap().mode() & 0o7777, 0o755, "the top is the caller's");
        assert_eq!(fs::read_link(b.join("link")).unwrap(), Path::new("/etc/passwd"));
    }

    /// As the mount code calls it: through `/proc/self/fd/N` of O_PATH fds (an lstat of such a
    /// link gives the fd's own mode, 000: that once became the tmpfs's mode).
    #[test]
    fn copies_through_fd_links_and_leaves_the_top_alone() {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::create_dir(&a).expect("mkdir");
        fs::create_dir(&b).expect("mkdir");
        fs::write(a.join("f"), b"x").expect("write");
        fs::set_permissions(&a, fs::Permissions::from_mode(0o1777)).expect("chmod");
        fs::set_permissions(&b, fs::Permissions::from_mode(0o700)).expect("chmod");
        let open = |p: &Path| fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_DIRECTORY).open(p).expect("open O_PATH");
        let (fa, fb) = (open(&a), open(&b));
        let link = |f: &fs::File| Path::new("/proc/self/fd").join(std::os::fd::AsRawFd::as_raw_fd(f).to_string());
        copy_tree(&link(&fa), &link(&fb)).expect("copy");
        assert_eq!(fs::read(b.join("f")).expect("copied file"), b"x");
        assert_eq!(fs::metadata(&b).expect("stat").mode() & 0o7777, 0o700);
    }
}
