//! The seam between logic and the kernel: a narrow `Syscall` trait with the real Linux
//! implementation and a recording double, so mount and rootfs logic is unit-tested without root.
//!
//! OWNER: rootfs helper (extend as needed).
//!
//! Paths inside the container's rootfs are never handed to the kernel as strings: they are
//! resolved with [`Syscall::open_in_root`] into a [`Target`] (an `O_PATH` fd), and operations use
//! [`Target::at`] (`/proc/self/fd/N`) or a name under it. The recording double hands out targets
//! without fds whose `at()` is the plain lexical path, so recorded calls read naturally.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::error::{Error, Result, SysContext};

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File,
    Symlink,
    /// Device nodes, fifos, sockets.
    Other,
}

/// What [`Syscall::open_in_root`] creates when the path (or part of it) is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Nothing: a missing path yields `None`.
    No,
    /// Missing components become directories.
    Dir,
    /// Missing parents become directories, the last component an empty file.
    File,
}

/// A resolved filesystem object: an `O_PATH` fd (real) plus the path it was reached by.
#[derive(Debug)]
pub struct Target {
    fd: Option<OwnedFd>,
    path: PathBuf,
    kind: FileKind,
}

impl Target {
    /// A target backed by an open fd.
    pub fn from_fd(fd: OwnedFd, path: PathBuf, kind: FileKind) -> Self {
        Target { fd: Some(fd), path, kind }
    }
    /// A target without an fd (test doubles): `at()` is the path itself.
    pub fn virtual_path(path: PathBuf, kind: FileKind) -> Self {
        Target { fd: None, path, kind }
    }
    /// The path to hand to the kernel: `/proc/self/fd/N` for an fd, else the path.
    pub fn at(&self) -> PathBuf {
        match &self.fd {
            Some(fd) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            None => self.path.clone(),
        }
    }
    /// The path this target was reached by (host view, for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn kind(&self) -> FileKind {
        self.kind
    }
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }
}

/// Kernel calls used by rootfs setup. Errors carry the errno (see [`Error::errno`]).
pub trait Syscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()>;
    /// `mount_setattr(target, AT_RECURSIVE?, {attr_set, attr_clr})` (crun's `r*` options).
    fn mount_setattr(&self, target: &Path, attr_set: u64, attr_clr: u64, recursive: bool) -> Result<()>;
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()>;
    fn chroot(&self, path: &Path) -> Result<()>;
    fn chdir(&self, path: &Path) -> Result<()>;
    fn fchdir(&self, dir: &Target) -> Result<()>;
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> Result<()>;
    /// Create `link` pointing at `target`.
    fn symlink(&self, target: &Path, link: &Path) -> Result<()>;
    /// Remove a non-directory; a missing path is not an error.
    fn unlink(&self, path: &Path) -> Result<()>;
    /// Change owner without following a final symlink.
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> Result<()>;
    fn umask(&self, mask: Mode) -> Mode;
    /// What `path` is (following symlinks), `None` if it does not exist.
    fn stat(&self, path: &Path) -> Result<Option<FileKind>>;
    /// The mount flags (`MS_RDONLY`, `MS_NOSUID`, ...) of the mount holding `path`.
    fn mount_flags(&self, path: &Path) -> Result<MsFlags>;
    /// The text of `/proc/self/mountinfo`.
    fn mountinfo(&self) -> Result<String>;
    /// Copy the contents of directory `from` into directory `to` (modes, owners, symlinks kept;
    /// device nodes, fifos and sockets skipped), for `tmpcopyup`.
    fn copy_tree(&self, from: &Path, to: &Path) -> Result<()>;
    /// Give `to` the permission bits of `from` (both followed): runc's chmod of a new tmpfs to
    /// the mode of the directory it covers.
    fn copy_mode(&self, from: &Path, to: &Path) -> Result<()>;
    /// Open a directory by host path (for `fchdir`).
    fn open_dir(&self, path: &Path) -> Result<Target>;
    /// Resolve `path` inside `root` as if `root` were `/` (symlinks and `..` cannot escape),
    /// creating what is missing per `create`. With `follow == false` a final symlink is
    /// returned as such (kind [`FileKind::Symlink`]). `Ok(None)` only with [`Create::No`].
    fn open_in_root(&self, root: &Path, path: &Path, create: Create, follow: bool) -> Result<Option<Target>>;
}

/// The real thing.
pub struct Linux;

fn p(path: &Path) -> String {
    path.display().to_string()
}

impl Syscall for Linux {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).ctx(|| {
            format!(
                "mount {} on {} (type {}, flags {:?}, data {:?})",
                source.map(p).unwrap_or_default(),
                p(target),
                fstype.unwrap_or(""),
                flags,
                data.unwrap_or("")
            )
        })
    }

    fn mount_setattr(&self, target: &Path, attr_set: u64, attr_clr: u64, recursive: bool) -> Result<()> {
        crate::rootfs::paths::mount_setattr(target, attr_set, attr_clr, recursive)
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()> {
        nix::mount::umount2(target, flags).ctx(|| format!("umount {}", p(target)))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
            .ctx(|| format!("pivot_root {} {}", p(new_root), p(put_old)))
    }

    fn chroot(&self, path: &Path) -> Result<()> {
        nix::unistd::chroot(path).ctx(|| format!("chroot {}", p(path)))
    }

    fn chdir(&self, path: &Path) -> Result<()> {
        nix::unistd::chdir(path).ctx(|| format!("chdir {}", p(path)))
    }

    fn fchdir(&self, dir: &Target) -> Result<()> {
        let fd = dir.fd().ok_or_else(|| Error::Rootfs(format!("fchdir {}: no fd", p(dir.path()))))?;
        nix::unistd::fchdir(fd).ctx(|| format!("fchdir {}", p(dir.path())))
    }

    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> Result<()> {
        nix::sys::stat::mknod(path, kind, perm, dev).ctx(|| format!("mknod {}", p(path)))
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        std::os::unix::fs::symlink(target, link).map_err(|e| io_to_sys(e, format!("symlink {} -> {}", p(link), p(target))))
    }

    fn unlink(&self, path: &Path) -> Result<()> {
        match nix::unistd::unlink(path) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(Error::sys(format!("unlink {}", p(path)), e)),
        }
    }

    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> Result<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|e| io_to_sys(e, format!("chown {}", p(path))))
    }

    fn umask(&self, mask: Mode) -> Mode {
        nix::sys::stat::umask(mask)
    }

    fn stat(&self, path: &Path) -> Result<Option<FileKind>> {
        match nix::sys::stat::stat(path) {
            Ok(st) => Ok(Some(kind_of_mode(st.st_mode))),
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(Error::sys(format!("stat {}", p(path)), e)),
        }
    }

    fn mount_flags(&self, path: &Path) -> Result<MsFlags> {
        let st = statvfs(path).ctx(|| format!("statfs {}", p(path)))?;
        Ok(fs_to_ms_flags(st.flags()))
    }

    fn mountinfo(&self) -> Result<String> {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::io("read", "/proc/self/mountinfo", e))
    }

    fn copy_tree(&self, from: &Path, to: &Path) -> Result<()> {
        crate::rootfs::copyup::copy_tree(from, to)
    }

    fn copy_mode(&self, from: &Path, to: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(from).map_err(|e| io_to_sys(e, format!("stat {}", p(from))))?.permissions().mode();
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| io_to_sys(e, format!("chmod {}", p(to))))
    }

    fn open_dir(&self, path: &Path) -> Result<Target> {
        let fd = open(path, OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .ctx(|| format!("open {}", p(path)))?;
        Ok(Target::from_fd(fd, path.to_path_buf(), FileKind::Dir))
    }

    fn open_in_root(&self, root: &Path, path: &Path, create: Create, follow: bool) -> Result<Option<Target>> {
        crate::rootfs::paths::open_in_root(root, path, create, follow)
    }
}

fn io_to_sys(e: std::io::Error, what: String) -> Error {
    let errno = e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO);
    Error::sys(what, errno)
}

/// `st_mode` -> kind.
pub(crate) fn kind_of_mode(mode: libc::mode_t) -> FileKind {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileKind::Dir,
        libc::S_IFREG => FileKind::File,
        libc::S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

/// statfs `ST_*` flags -> the matching `MS_*` mount flags.
pub(crate) fn fs_to_ms_flags(f: FsFlags) -> MsFlags {
    let map = [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_SYNCHRONOUS, MsFlags::MS_SYNCHRONOUS),
        (FsFlags::ST_MANDLOCK, MsFlags::MS_MANDLOCK),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    map.iter().filter(|(st, _)| f.contains(*st)).fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms)
}

/// One recorded call, comparable in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount { source: Option<PathBuf>, target: PathBuf, fstype: Option<String>, flags: MsFlags, data: Option<String> },
    MountSetattr { target: PathBuf, attr_set: u64, attr_clr: u64, recursive: bool },
    Umount2 { target: PathBuf, flags: MntFlags },
    PivotRoot { new_root: PathBuf, put_old: PathBuf },
    Chroot(PathBuf),
    Chdir(PathBuf),
    Fchdir(PathBuf),
    Mknod { path: PathBuf, kind: SFlag, perm: u32, dev: u64 },
    Symlink { target: PathBuf, link: PathBuf },
    Unlink(PathBuf),
    Lchown { path: PathBuf, uid: u32, gid: u32 },
    Umask(u32),
    CopyTree { from: PathBuf, to: PathBuf },
    CopyMode { from: PathBuf, to: PathBuf },
    /// `open_in_root` created a directory (and any missing parents).
    Mkdir(PathBuf),
    /// `open_in_root` created an empty file.
    CreateFile(PathBuf),
}

impl Call {
    /// Shorthand for building expected mounts in tests.
    pub fn mount(source: Option<&str>, target: &str, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> Call {
        Call::Mount {
            source: source.map(PathBuf::from),
            target: PathBuf::from(target),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        }
    }
}

/// Test double: records calls, answers queries from a small fake filesystem (absolute paths,
/// host and rootfs alike), and can fail chosen calls once.
#[derive(Default)]
pub struct RecordingSyscall {
    calls: RefCell<Vec<Call>>,
    files: RefCell<HashMap<PathBuf, FileKind>>,
    flags: RefCell<HashMap<PathBuf, MsFlags>>,
    mountinfo: RefCell<String>,
    /// (mount target or mknod path, errno): the next such call fails once.
    failures: RefCell<Vec<(PathBuf, Errno)>>,
    umask: RefCell<u32>,
}

impl RecordingSyscall {
    pub fn new() -> Self {
        let r = Self::default();
        *r.umask.borrow_mut() = 0o022;
        r
    }
    /// Pretend `path` exists as `kind`.
    pub fn add(&self, path: impl Into<PathBuf>, kind: FileKind) -> &Self {
        self.files.borrow_mut().insert(path.into(), kind);
        self
    }
    /// Flags `mount_flags(path)` reports.
    pub fn set_mount_flags(&self, path: impl Into<PathBuf>, flags: MsFlags) {
        self.flags.borrow_mut().insert(path.into(), flags);
    }
    pub fn set_mountinfo(&self, text: &str) {
        *self.mountinfo.borrow_mut() = text.to_string();
    }
    /// Make the next mount onto (or mknod at) `path` fail with `errno`.
    pub fn fail_once(&self, path: impl Into<PathBuf>, errno: Errno) {
        self.failures.borrow_mut().push((path.into(), errno));
    }
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }
    /// Only the `Mount` calls.
    pub fn mounts(&self) -> Vec<Call> {
        self.calls.borrow().iter().filter(|c| matches!(c, Call::Mount { .. })).cloned().collect()
    }
    fn record(&self, c: Call) {
        self.calls.borrow_mut().push(c);
    }
    fn injected(&self, path: &Path) -> Option<Errno> {
        let mut f = self.failures.borrow_mut();
        let i = f.iter().position(|(p, _)| p == path)?;
        Some(f.remove(i).1)
    }
}

/// `root` joined with `path`, `..` handled lexically and clamped at `root`.
pub(crate) fn lexical_in_root(root: &Path, path: &Path) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.iter().fold(root.to_path_buf(), |acc, n| acc.join(n))
}

impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        self.record(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        });
        match self.injected(target) {
            Some(e) => Err(Error::sys(format!("mount on {}", p(target)), e)),
            None => Ok(()),
        }
    }
    fn mount_setattr(&self, target: &Path, attr_set: u64, attr_clr: u64, recursive: bool) -> Result<()> {
        self.record(Call::MountSetattr { target: target.to_path_buf(), attr_set, attr_clr, recursive });
        Ok(())
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<()> {
        self.record(Call::Umount2 { target: target.to_path_buf(), flags });
        Ok(())
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        self.record(Call::PivotRoot { new_root: new_root.to_path_buf(), put_old: put_old.to_path_buf() });
        Ok(())
    }
    fn chroot(&self, path: &Path) -> Result<()> {
        self.record(Call::Chroot(path.to_path_buf()));
        Ok(())
    }
    fn chdir(&self, path: &Path) -> Result<()> {
        self.record(Call::Chdir(path.to_path_buf()));
        Ok(())
    }
    fn fchdir(&self, dir: &Target) -> Result<()> {
        self.record(Call::Fchdir(dir.path().to_path_buf()));
        Ok(())
    }
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> Result<()> {
        self.record(Call::Mknod { path: path.to_path_buf(), kind, perm: perm.bits(), dev });
        if let Some(e) = self.injected(path) {
            return Err(Error::sys(format!("mknod {}", p(path)), e));
        }
        let kind = if kind == SFlag::S_IFREG { FileKind::File } else { FileKind::Other };
        self.files.borrow_mut().insert(path.to_path_buf(), kind);
        Ok(())
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        self.record(Call::Symlink { target: target.to_path_buf(), link: link.to_path_buf() });
        self.files.borrow_mut().insert(link.to_path_buf(), FileKind::Symlink);
        Ok(())
    }
    fn unlink(&self, path: &Path) -> Result<()> {
        self.record(Call::Unlink(path.to_path_buf()));
        self.files.borrow_mut().remove(path);
        Ok(())
    }
    fn lchown(&self, path: &Path, uid: u32, gid: u32) -> Result<()> {
        self.record(Call::Lchown { path: path.to_path_buf(), uid, gid });
        Ok(())
    }
    fn umask(&self, mask: Mode) -> Mode {
        self.record(Call::Umask(mask.bits()));
        let old = self.umask.replace(mask.bits());
        Mode::from_bits_truncate(old)
    }
    fn stat(&self, path: &Path) -> Result<Option<FileKind>> {
        Ok(self.files.borrow().get(path).copied())
    }
    fn mount_flags(&self, path: &Path) -> Result<MsFlags> {
        Ok(self.flags.borrow().get(path).copied().unwrap_or(MsFlags::empty()))
    }
    fn mountinfo(&self) -> Result<String> {
        Ok(self.mountinfo.borrow().clone())
    }
    fn copy_tree(&self, from: &Path, to: &Path) -> Result<()> {
        self.record(Call::CopyTree { from: from.to_path_buf(), to: to.to_path_buf() });
        Ok(())
    }
    fn copy_mode(&self, from: &Path, to: &Path) -> Result<()> {
        self.record(Call::CopyMode { from: from.to_path_buf(), to: to.to_path_buf() });
        Ok(())
    }
    fn open_dir(&self, path: &Path) -> Result<Target> {
        Ok(Target::virtual_path(path.to_path_buf(), FileKind::Dir))
    }
    /// Lexical: `..` is clamped at `root`, symlinks are not followed (a `Symlink` entry is
    /// returned as such when `follow == false`, as a directory otherwise).
    fn open_in_root(&self, root: &Path, path: &Path, create: Create, follow: bool) -> Result<Option<Target>> {
        let full = lexical_in_root(root, path);
        let existing =
            if full == root { Some(FileKind::Dir) } else { self.files.borrow().get(&full).copied() };
        let kind = match (existing, create) {
            (Some(FileKind::Symlink), _) if follow => FileKind::Dir,
            (Some(k), _) => k,
            (None, Create::No) => return Ok(None),
            (None, Create::Dir) => {
                self.record(Call::Mkdir(full.clone()));
                FileKind::Dir
            }
            (None, Create::File) => {
                self.record(Call::CreateFile(full.clone()));
                FileKind::File
            }
        };
        self.files.borrow_mut().insert(full.clone(), kind);
        Ok(Some(Target::virtual_path(full, kind)))
    }
}
