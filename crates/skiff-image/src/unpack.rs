//! Unpacks a layer tar into a directory in overlayfs format. This is an attack surface:
//! every parent directory is opened inside the layer root with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)`, so no entry can write through a symlink or outside the root.
//!
//! Rules:
//! - an absolute entry path has its leading `/` stripped (as Docker does); a `..` component is
//!   refused;
//! - writing through a symlink (a parent component that is a symlink) is refused; symlinks
//!   themselves may point anywhere;
//! - a hardlink's target must be an earlier entry of the same layer (no `..`, no symlinked
//!   parents);
//! - `.wh.NAME` becomes a char device 0:0 named NAME, `.wh..wh..opq` the `overlay.opaque=y`
//!   xattr (`trusted.` or, rootless, `user.`) on its directory; `.wh.`, `.wh..`, `.wh...` are
//!   refused; other `.wh..wh.*` (aufs metadata) are skipped;
//! - device nodes are refused in a rootless store; owners, modes (setuid included), mtimes and
//!   `SCHILY.xattr.*` attributes are restored, except `*.overlay.*` attributes, which a layer
//!   must not smuggle in.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::error::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const META_PREFIX: &str = ".wh..wh.";

/// How to unpack.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackOptions {
    /// Not root: no device nodes, no chown, `user.overlay.*` xattrs.
    pub rootless: bool,
}

/// What an unpack produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Bytes of regular file content.
    pub size: u64,
    pub entries: u64,
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
}

struct Unpacker<'a> {
    layer: &'a str,
    dest: &'a Path,
    root: OwnedFd,
    opts: UnpackOptions,
    dirs: HashMap<Vec<u8>, OwnedFd>,
    /// Directories whose mode and mtime are set at the end (children change the mtime).
    deferred: BTreeMap<Vec<u8>, Meta>,
    buf: Vec<u8>,
    stats: UnpackStats,
}

/// Unpacks the tar stream `reader` into the existing empty directory `dest`. `layer` names the
/// layer in errors. The caller reads the stream's remainder (padding) itself.
pub fn unpack<R: Read>(layer: &str, reader: R, dest: &Path, opts: UnpackOptions) -> Result<UnpackStats> {
    let root = nix::fcntl::open(dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| Error::Io {
        op: "opening layer dir",
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let mut u = Unpacker {
        layer,
        dest,
        root,
        opts,
        dirs: HashMap::new(),
        deferred: BTreeMap::new(),
        buf: vec![0; 64 * 1024],
        stats: UnpackStats::default(),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| u.read_err(e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| u.read_err(e))?;
        u.entry(&mut entry)?;
        u.stats.entries += 1;
    }
    u.finish()?;
    Ok(u.stats)
}

/// The cleaned components of an entry path: leading `/` and `.` components dropped, `..`
/// refused. Empty means the layer root itself.
pub fn clean_path(raw: &[u8]) -> std::result::Result<Vec<&[u8]>, &'static str> {
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path has a '..' component"),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Unpacker<'_> {
    fn read_err(&self, e: io::Error) -> Error {
        Error::LayerRead {
            layer: self.layer.to_string(),
            source: e,
        }
    }

    fn bad(&self, entry: &[u8], reason: impl Into<String>) -> Error {
        Error::BadEntry {
            layer: self.layer.to_string(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let comps = clean_path(&raw).map_err(|r| self.bad(&raw, r))?;
        let kind = entry.header().entry_type();
        let meta = self.meta(entry, &raw)?;
        let xattrs = self.xattrs(entry, &raw)?;

        let Some((last, parent)) = comps.split_last() else {
            // The layer root itself ("./"): only a directory makes sense.
            if !kind.is_dir() {
                return Err(self.bad(&raw, "the layer root must be a directory"));
            }
            self.deferred.insert(Vec::new(), meta);
            return Ok(());
        };
        let last: &[u8] = last;

        if let Some(name) = last.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&raw, parent, last, name);
        }

        let pfd = self.open_dir(&raw, parent, true)?;
        self.clear_existing(&raw, &pfd, parent, last, kind.is_dir())?;
        let name = last;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = openat(
                    &pfd,
                    name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| self.bad(&raw, format!("creating file: {e}")))?;
                let mut file = File::from(fd);
                let n = self.copy_data(entry, &mut file)?;
                self.stats.size += n;
                self.own(&raw, &file, &meta)?;
                fchmod(&file, Mode::from_bits_truncate(meta.mode)).map_err(|e| self.bad(&raw, format!("chmod: {e}")))?;
                self.set_xattrs(&raw, &file, &xattrs)?;
                futimens(&file, &meta.mtime, &meta.mtime).map_err(|e| self.bad(&raw, format!("setting mtime: {e}")))?;
            }
            tar::EntryType::Directory => {
                match mkdirat(&pfd, name, Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(self.bad(&raw, format!("creating directory: {e}"))),
                }
                let full: Vec<&[u8]> = comps.clone();
                let dfd = self.open_dir(&raw, &full, false)?;
                self.own(&raw, &dfd, &meta)?;
                self.set_xattrs(&raw, &dfd, &xattrs)?;
                self.deferred.insert(join(&full), meta);
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| self.bad(&raw, "symlink without a target"))?;
                symlinkat(&*target, &pfd, name).map_err(|e| self.bad(&raw, format!("creating symlink: {e}")))?;
                self.chown_at(&raw, &pfd, name, &meta)?;
                utimensat(&pfd, name, &meta.mtime, &meta.mtime, UtimensatFlags::NoFollowSymlink).map_err(|e| self.bad(&raw, format!("setting mtime: {e}")))?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| self.bad(&raw, "hardlink without a target"))?.into_owned();
                let tcomps = clean_path(&target).map_err(|r| self.bad(&raw, format!("hardlink target: {r}")))?;
                let Some((tlast, tparent)) = tcomps.split_last() else {
                    return Err(self.bad(&raw, "hardlink to the layer root"));
                };
                let tfd = self.open_dir(&raw, tparent, false)?;
                linkat(&tfd, *tlast, &pfd, name, AtFlags::empty())
                    .map_err(|e| self.bad(&raw, format!("hardlink to {:?}: {e}", String::from_utf8_lossy(&target))))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let sflag = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                if self.opts.rootless && sflag != SFlag::S_IFIFO {
                    return Err(self.bad(&raw, "device nodes are refused in a rootless store"));
                }
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let dev = nix::sys::stat::makedev(major.into(), minor.into());
                mknodat(&pfd, name, sflag, Mode::from_bits_truncate(0o600), dev).map_err(|e| self.bad(&raw, format!("mknod: {e}")))?;
                self.chown_at(&raw, &pfd, name, &meta)?;
                // Not a symlink (we just made it), so following is harmless.
                fchmodat(&pfd, name, Mode::from_bits_truncate(meta.mode), FchmodatFlags::FollowSymlink).map_err(|e| self.bad(&raw, format!("chmod: {e}")))?;
                utimensat(&pfd, name, &meta.mtime, &meta.mtime, UtimensatFlags::NoFollowSymlink).map_err(|e| self.bad(&raw, format!("setting mtime: {e}")))?;
            }
            tar::EntryType::XGlobalHeader => {}
            other => {
                return Err(self.bad(&raw, format!("unsupported entry type {other:?}")));
            }
        }
        Ok(())
    }

    fn whiteout(&mut self, raw: &[u8], parent: &[&[u8]], last: &[u8], name: &[u8]) -> Result<()> {
        if last == OPAQUE.as_bytes() {
            let dfd = self.open_dir(raw, parent, true)?;
            let attr: &[u8] = if self.opts.rootless {
                b"user.overlay.opaque"
            } else {
                b"trusted.overlay.opaque"
            };
            return crate::xattr::fset(&dfd, attr, b"y").map_err(|e| self.bad(raw, format!("marking directory opaque: {e}")));
        }
        if last.starts_with(META_PREFIX.as_bytes()) {
            tracing::debug!("layer {}: skipping {:?}", self.layer, String::from_utf8_lossy(raw));
            return Ok(());
        }
        if name.is_empty() || name == b"." || name == b".." {
            return Err(self.bad(raw, "invalid whiteout name"));
        }
        let pfd = self.open_dir(raw, parent, true)?;
        self.clear_existing(raw, &pfd, parent, name, false)?;
        mknodat(&pfd, name, SFlag::S_IFCHR, Mode::empty(), nix::sys::stat::makedev(0, 0))
            .map_err(|e| self.bad(raw, format!("creating whiteout (char 0:0): {e}")))
    }

    /// Removes whatever exists at `parent/name`, unless both it and the entry are directories.
    fn clear_existing(&mut self, raw: &[u8], pfd: &OwnedFd, parent: &[&[u8]], name: &[u8], entry_is_dir: bool) -> Result<()> {
        let st = match fstatat(pfd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(self.bad(raw, format!("stat: {e}"))),
        };
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir && entry_is_dir {
            return Ok(());
        }
        if is_dir {
            // Every component was opened without following symlinks, so this path is real.
            let mut full = parent.to_vec();
            full.push(name);
            let path = self.dest.join(bytes_path(&join(&full)));
            self.dirs.clear();
            crate::lock::remove_tree(&path)?;
        } else {
            unlinkat(pfd, name, UnlinkatFlags::NoRemoveDir).map_err(|e| self.bad(raw, format!("replacing existing entry: {e}")))?;
        }
        Ok(())
    }

    /// Opens the directory `comps` under the layer root without following any symlink,
    /// creating missing components (0755, root-owned) when `create`.
    fn open_dir(&mut self, raw: &[u8], comps: &[&[u8]], create: bool) -> Result<OwnedFd> {
        let key = join(comps);
        if let Some(fd) = self.dirs.get(&key) {
            return fd.try_clone().map_err(|e| self.bad(raw, format!("dup: {e}")));
        }
        let fd = match self.open_beneath(&self.root, &key) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create => {
                let mut cur = self.root.try_clone().map_err(|e| self.bad(raw, e.to_string()))?;
                for c in comps {
                    cur = match self.open_beneath(&cur, c) {
                        Ok(fd) => fd,
                        Err(Errno::ENOENT) => {
                            match mkdirat(&cur, *c, Mode::from_bits_truncate(0o755)) {
                                Ok(()) | Err(Errno::EEXIST) => {}
                                Err(e) => return Err(self.bad(raw, format!("creating parent: {e}"))),
                            }
                            self.open_beneath(&cur, c).map_err(|e| self.parent_err(raw, c, e))?
                        }
                        Err(e) => return Err(self.parent_err(raw, c, e)),
                    };
                }
                cur
            }
            Err(e) => return Err(self.parent_err(raw, &key, e)),
        };
        if self.dirs.len() > 4096 {
            self.dirs.clear();
        }
        let dup = fd.try_clone().map_err(|e| self.bad(raw, format!("dup: {e}")))?;
        self.dirs.insert(key, dup);
        Ok(fd)
    }

    fn parent_err(&self, raw: &[u8], comp: &[u8], e: Errno) -> Error {
        let what = String::from_utf8_lossy(comp);
        match e {
            Errno::ELOOP => self.bad(raw, format!("{what:?} is a symlink: writing through symlinks is refused")),
            Errno::ENOTDIR => self.bad(raw, format!("{what:?} is not a directory")),
            Errno::EXDEV => self.bad(raw, format!("{what:?} resolves outside the layer")),
            Errno::ENOENT => self.bad(raw, format!("{what:?} does not exist in the layer")),
            e => self.bad(raw, format!("opening {what:?}: {e}")),
        }
    }

    fn open_beneath(&self, dir: &OwnedFd, path: &[u8]) -> nix::Result<OwnedFd> {
        let path: &[u8] = if path.is_empty() { b"." } else { path };
        openat2(
            dir,
            path,
            OpenHow::new()
                .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS),
        )
    }

    fn copy_data<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, file: &mut File) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_err(e)),
            };
            file.write_all(&self.buf[..n]).map_err(|e| Error::Io {
                op: "writing layer file",
                path: self.dest.to_path_buf(),
                source: e,
            })?;
            total += n as u64;
        }
        Ok(total)
    }

    /// Sets the owner. Rootless, an id outside our user namespace's map cannot be set:
    /// the file then keeps ours (logged), as with any unprivileged unpacker.
    fn own(&self, raw: &[u8], fd: impl AsFd, meta: &Meta) -> Result<()> {
        let r = fchown(fd, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
        self.chown_result(raw, r)
    }

    fn chown_at(&self, raw: &[u8], dir: &OwnedFd, name: &[u8], meta: &Meta) -> Result<()> {
        let r = fchownat(
            dir,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        self.chown_result(raw, r)
    }

    fn chown_result(&self, raw: &[u8], r: nix::Result<()>) -> Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(e @ (Errno::EPERM | Errno::EINVAL)) if self.opts.rootless => {
                tracing::debug!(
                    "layer {}: entry {:?}: chown: {e} (rootless: owner not kept)",
                    self.layer,
                    String::from_utf8_lossy(raw)
                );
                Ok(())
            }
            Err(e) => Err(self.bad(raw, format!("chown: {e}"))),
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Meta> {
        let h = entry.header();
        let mode = h.mode().map_err(|e| self.bad(raw, format!("mode: {e}")))? & 0o7777;
        // An empty numeric field means 0 (as Go's archive/tar reads it).
        let blank = |f: &[u8]| f.iter().all(|&b| b == 0 || b == b' ');
        let mut uid = match h.uid() {
            Err(_) if blank(&h.as_old().uid) => 0,
            r => r.map_err(|e| self.bad(raw, format!("uid: {e}")))?,
        };
        let mut gid = match h.gid() {
            Err(_) if blank(&h.as_old().gid) => 0,
            r => r.map_err(|e| self.bad(raw, format!("gid: {e}")))?,
        };
        let mut mtime = TimeSpec::new(h.mtime().unwrap_or(0) as i64, 0);
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                let (Ok(k), Ok(v)) = (ext.key(), ext.value()) else {
                    continue;
                };
                match k {
                    "uid" => uid = v.parse().unwrap_or(uid),
                    "gid" => gid = v.parse().unwrap_or(gid),
                    "mtime" => mtime = parse_pax_time(v).unwrap_or(mtime),
                    _ => {}
                }
            }
        }
        let uid = u32::try_from(uid).map_err(|_| self.bad(raw, "uid out of range"))?;
        let gid = u32::try_from(gid).map_err(|_| self.bad(raw, "gid out of range"))?;
        Ok(Meta { mode, uid, gid, mtime })
    }

    fn xattrs<R: Read>(&self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let pax = entry.pax_extensions().map_err(|e| self.bad(raw, format!("pax header: {e}")))?;
        if let Some(pax) = pax {
            for ext in pax {
                let ext = ext.map_err(|e| self.bad(raw, format!("pax header: {e}")))?;
                let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                    continue;
                };
                if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
                    tracing::warn!(
                        "layer {}: entry {:?}: ignoring xattr {}",
                        self.layer,
                        String::from_utf8_lossy(raw),
                        String::from_utf8_lossy(name)
                    );
                    continue;
                }
                out.push((name.to_vec(), ext.value_bytes().to_vec()));
            }
        }
        Ok(out)
    }

    fn set_xattrs(&self, raw: &[u8], fd: impl AsFd, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        for (k, v) in xattrs {
            if let Err(e) = crate::xattr::fset(fd.as_fd(), k, v) {
                let name = String::from_utf8_lossy(k);
                if self.opts.rootless || e.raw_os_error() == Some(libc::ENOTSUP) {
                    tracing::warn!("layer {}: cannot set xattr {name}: {e}", self.layer);
                    continue;
                }
                return Err(self.bad(raw, format!("setting xattr {name}: {e}")));
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.dirs.clear();
        let deferred = std::mem::take(&mut self.deferred);
        for (path, meta) in deferred.iter().rev() {
            let fd = match self.open_beneath(&self.root, path) {
                Ok(fd) => fd,
                // Replaced by a later non-directory entry: nothing to do.
                Err(Errno::ENOTDIR) | Err(Errno::ENOENT) | Err(Errno::ELOOP) => continue,
                Err(e) => return Err(self.parent_err(path, path, e)),
            };
            fchmod(&fd, Mode::from_bits_truncate(meta.mode)).map_err(|e| self.bad(path, format!("chmod: {}", errno_io(e))))?;
            futimens(&fd, &meta.mtime, &meta.mtime).map_err(|e| self.bad(path, format!("setting mtime: {e}")))?;
        }
        Ok(())
    }
}

fn parse_pax_time(v: &str) -> Option<TimeSpec> {
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s.parse().ok()?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        let scale = 10i64.pow(9 - digits.len() as u32);
        nanos = digits.parse::<i64>().ok()? * scale;
        if secs < 0 {
            nanos = -nanos;
        }
    }
    Some(TimeSpec::new(secs, nanos))
}

fn bytes_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}
