//! Safe resolution of container paths inside the rootfs (CVE-2021-30465, CVE-2019-16884 class).
//!
//! Every lookup is `openat2(rootfd, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: absolute
//! symlinks and `..` are resolved as if the rootfs were `/`, so nothing escapes it. Missing
//! components are created with `mkdirat` relative to the fd of their (already confined) parent,
//! and the result is re-resolved the same way, so a concurrent swap for a symlink stays confined.
//! Callers operate on the returned `O_PATH` fd through `/proc/self/fd/N`, never on a path string.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::{Error, Result};
use crate::syscall::{kind_of_mode, lexical_in_root, Create, FileKind, Target};

/// `struct open_how` (linux/openat2.h); libc's is `non_exhaustive`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `struct mount_attr` (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// The raw `openat2(2)`, retried on `EAGAIN`/`EINTR` (the kernel asks for a retry when a
/// rename raced with `RESOLVE_IN_ROOT`).
pub(crate) fn openat2(dirfd: BorrowedFd<'_>, path: &Path, flags: OFlag, resolve: u64) -> nix::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow { flags: (flags | OFlag::O_CLOEXEC).bits() as u64, mode: 0, resolve };
    for _ in 0..128 {
        // SAFETY: `c` is a valid NUL-terminated string and `how` a properly laid out open_how,
        // both alive for the duration of the call; the size passed is the struct's size.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            let fd = i32::try_from(r).map_err(|_| Errno::EBADF)?;
            // SAFETY: the kernel just returned this fd to us; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        match Errno::last() {
            Errno::EAGAIN | Errno::EINTR => continue,
            e => return Err(e),
        }
    }
    Err(Errno::EAGAIN)
}

/// `mount_setattr(2)` on `target` (typically `/proc/self/fd/N`).
pub(crate) fn mount_setattr(target: &Path, attr_set: u64, attr_clr: u64, recursive: bool) -> Result<()> {
    let what = || format!("mount_setattr {}", target.display());
    let c = CString::new(target.as_os_str().as_bytes()).map_err(|_| Error::sys(what(), Errno::EINVAL))?;
    let attr = MountAttr { attr_set, attr_clr, propagation: 0, userns_fd: 0 };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `c` is NUL-terminated and `attr` a correctly laid out mount_attr, both alive for
    // the call; the size passed is the struct's size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(Error::sys(what(), Errno::last()));
    }
    Ok(())
}

const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

fn kind_of(fd: &OwnedFd) -> nix::Result<FileKind> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok(kind_of_mode(st.st_mode))
}

/// How many dangling symlinks one lookup may follow (the kernel's own limit is 40).
const MAX_LINKS: u32 = 40;

/// See [`crate::syscall::Syscall::open_in_root`].
///
/// A dangling symlink on the way (e.g. `etc/resolv.conf -> ../run/x/resolv.conf`) is followed
/// inside the rootfs and its missing target created, as runc's securejoin `MkdirAll` does.
pub fn open_in_root(root: &Path, path: &Path, create: Create, follow: bool) -> Result<Option<Target>> {
    let rootfd = nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys(format!("open rootfs {}", root.display()), e))?;
    let display = lexical_in_root(root, path);
    let mut path = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match lookup(&rootfd, root, &path, create, follow)? {
            Step::Done(Some((fd, kind))) => return Ok(Some(Target::from_fd(fd, display, kind))),
            Step::Done(None) => return Ok(None),
            Step::Retry(next) => path = next,
        }
    }
    Err(Error::sys(format!("resolve {} in {}", display.display(), root.display()), Errno::ELOOP))
}

enum Step {
    Done(Option<(OwnedFd, FileKind)>),
    /// A dangling symlink was met: look this path up instead.
    Retry(PathBuf),
}

fn lookup(rootfd: &OwnedFd, root: &Path, path: &Path, create: Create, follow: bool) -> Result<Step> {
    let fail = |what: &str, e: Errno| Error::sys(format!("{what} {} in {}", path.display(), root.display()), e);
    let comps: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(OsStr::new("..")),
            _ => None,
        })
        .collect();
    if comps.is_empty() {
        if create == Create::File {
            return Err(Error::Rootfs(format!("{}: is the rootfs itself, not a file", path.display())));
        }
        let fd = rootfd.try_clone().map_err(|e| Error::io("dup", root, e))?;
        return Ok(Step::Done(Some((fd, FileKind::Dir))));
    }

    let mut last_flags = OFlag::O_PATH;
    if !follow {
        last_flags |= OFlag::O_NOFOLLOW;
    }
    let rel: PathBuf = comps.iter().collect();

    // Fast path: the whole thing exists.
    match openat2(rootfd.as_fd(), &rel, last_flags, IN_ROOT) {
        Ok(fd) => {
            let kind = kind_of(&fd).map_err(|e| fail("stat", e))?;
            return Ok(Step::Done(Some((fd, kind))));
        }
        Err(Errno::ENOENT) if create == Create::No => return Ok(Step::Done(None)),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(fail("resolve", e)),
    }

    // Slow path: walk prefixes, creating what is missing.
    let mut dir: OwnedFd = rootfd.try_clone().map_err(|e| Error::io("dup", root, e))?;
    for (i, name) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let prefix: PathBuf = comps[..=i].iter().collect();
        let flags = if last { last_flags } else { OFlag::O_PATH | OFlag::O_DIRECTORY };
        match openat2(rootfd.as_fd(), &prefix, flags, IN_ROOT) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(fail("resolve", e)),
        }
        // `dir` is the confined resolution of comps[..i]; `name` is missing in it, or is a
        // dangling symlink.
        if let Ok(link) = nix::fcntl::readlinkat(&dir, *name) {
            let link = PathBuf::from(link);
            let rest = comps[i + 1..].iter();
            let next: PathBuf = if link.is_absolute() {
                std::iter::once(link.as_os_str()).chain(rest.copied()).collect()
            } else {
                comps[..i].iter().copied().chain(std::iter::once(link.as_os_str())).chain(rest.copied()).collect()
            };
            return Ok(Step::Retry(next));
        }
        if last && create == Create::File {
            let fd = nix::fcntl::openat(
                &dir,
                *name,
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            );
            match fd {
                Ok(fd) => drop(fd),
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(fail("create file", e)),
            }
        } else {
            match nix::sys::stat::mkdirat(&dir, *name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(fail("mkdir", e)),
            }
        }
        // Re-resolve from the root: whatever raced with us, the result stays confined.
        dir = openat2(rootfd.as_fd(), &prefix, flags, IN_ROOT).map_err(|e| fail("resolve", e))?;
    }
    let kind = kind_of(&dir).map_err(|e| fail("stat", e))?;
    Ok(Step::Done(Some((dir, kind))))
}

/// The host path an fd really points at (`readlink /proc/self/fd/N`), for checks and tests.
pub fn real_path(t: &Target) -> Result<PathBuf> {
    let at = t.at();
    std::fs::read_link(&at).map_err(|e| Error::io("readlink", at, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn rootfs() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("rootfs");
        fs::create_dir(&root).expect("mkdir rootfs");
        let root = root.canonicalize().expect("canonicalize");
        (tmp, root)
    }

    #[test]
    fn existing_path_resolves_inside() {
        let (_t, root) = rootfs();
        fs::create_dir_all(root.join("a/b")).unwrap();
        let t = open_in_root(&root, Path::new("/a/b"), Create::No, true).unwrap().unwrap();
        assert_eq!(t.kind(), FileKind::Dir);
        assert_eq!(real_path(&t).unwrap(), root.join("a/b"));
        assert!(open_in_root(&root, Path::new("/nope"), Create::No, true).unwrap().is_none());
    }

    #[test]
    fn absolute_symlink_is_confined() {
        let (_t, root) = rootfs();
        std::os::unix::fs::symlink("/etc", root.join("evil")).unwrap();
        let name = format!("skiff-test-{}", std::process::id());
        let t = open_in_root(&root, &Path::new("/evil").join(&name), Create::Dir, true).unwrap().unwrap();
        assert_eq!(real_path(&t).unwrap(), root.join("etc").join(&name));
        assert!(root.join("etc").join(&name).is_dir());
        assert!(!Path::new("/etc").join(&name).exists(), "host /etc was touched");

        let t = open_in_root(&root, &Path::new("/evil/f").join(&name), Create::File, true).unwrap().unwrap();
        assert_eq!(t.kind(), FileKind::File);
        assert_eq!(real_path(&t).unwrap(), root.join("etc/f").join(&name));
        assert!(!Path::new("/etc/f").join(&name).exists(), "host /etc was touched");
    }

    #[test]
    fn dotdot_is_confined() {
        let (tmp, root) = rootfs();
        let t = open_in_root(&root, Path::new("/../../../outside/x"), Create::Dir, true).unwrap().unwrap();
        assert_eq!(real_path(&t).unwrap(), root.join("outside/x"));
        assert!(!tmp.path().join("outside").exists());

        // `..` after a created component and through a relative symlink climbing out.
        fs::create_dir(root.join("d")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("d/up")).unwrap();
        let t = open_in_root(&root, Path::new("d/up/escaped"), Create::File, true).unwrap().unwrap();
        assert_eq!(real_path(&t).unwrap(), root.join("escaped"));
        assert!(!tmp.path().join("escaped").exists());
    }

    #[test]
    fn symlink_chain_and_magic_links() {
        let (_t, root) = rootfs();
        fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("l1")).unwrap();
        std::os::unix::fs::symlink("/l1/../../../real", root.join("l2")).unwrap();
        let t = open_in_root(&root, Path::new("/l2/x"), Create::Dir, true).unwrap().unwrap();
        assert_eq!(real_path(&t).unwrap(), root.join("real/x"));

        // A symlink to the host's /proc/self/root is rebased into the rootfs, where it is not
        // there: it must not reach the host's /etc.
        std::os::unix::fs::symlink("/proc/self/root", root.join("magic")).unwrap();
        fs::create_dir_all(root.join("proc/self")).unwrap();
        let r = open_in_root(&root, Path::new("/magic/etc"), Create::No, true);
        assert!(matches!(r, Ok(None)), "{r:?}");
    }

    #[test]
    fn nofollow_reports_symlink() {
        let (_t, root) = rootfs();
        std::os::unix::fs::symlink("/etc", root.join("proc")).unwrap();
        let t = open_in_root(&root, Path::new("/proc"), Create::Dir, false).unwrap().unwrap();
        assert_eq!(t.kind(), FileKind::Symlink);
        let t = open_in_root(&root, Path::new("/proc"), Create::Dir, true).unwrap().unwrap();
        assert_eq!(real_path(&t).unwrap(), root.join("etc"));
        assert!(!Path::new("/etc").join(root.file_name().unwrap()).exists());
    }

    #[test]
    fn dangling_symlink_target_is_created_inside() {
        let (tmp, root) = rootfs();
        let outside = tmp.path().join("victim");
        std::os::unix::fs::symlink(&outside, root.join("dangle")).unwrap();
        let t = open_in_root(&root, Path::new("/dangle"), Create::Dir, true).unwrap().unwrap();
        let inside = lexical_in_root(&root, &outside);
        assert_eq!(real_path(&t).unwrap(), inside);
        assert!(inside.is_dir());
        assert!(!outside.exists(), "created outside the rootfs");

        // The resolv.conf case: a relative dangling link to a file under a missing directory.
        fs::create_dir(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("../run/resolve/stub.conf", root.join("etc/resolv.conf")).unwrap();
        let t = open_in_root(&root, Path::new("/etc/resolv.conf"), Create::File, true).unwrap().unwrap();
        assert_eq!(t.kind(), FileKind::File);
        assert_eq!(real_path(&t).unwrap(), root.join("run/resolve/stub.conf"));
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let (_t, root) = rootfs();
        std::os::unix::fs::symlink("/b", root.join("a")).unwrap();
        std::os::unix::fs::symlink("/a", root.join("b")).unwrap();
        assert!(open_in_root(&root, Path::new("/a/x"), Create::Dir, true).is_err());
    }
}
