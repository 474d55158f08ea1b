//! The copying fallback where overlayfs is refused (`--storage-driver vfs`, or an overlay
//! mount that fails, e.g. a store on a filesystem overlay cannot use as its upper layer): the
//! image's layers are copied, bottom first, into the container's own `rootfs` dir, applying
//! their whiteouts (char 0:0 devices) and opaque dirs (`*.overlay.opaque`) as overlayfs would.
//! Owners, modes, times, symlinks, hardlinks within a layer, devices and xattrs are kept.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::{Error, Result};

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::Other(format!("{}: NUL in path", p.display())))
}

fn lgetxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let cp = cstr(p).ok()?;
    let cn = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: lgetxattr into a buffer we own, with its length.
    let n = unsafe { libc::lgetxattr(cp.as_ptr(), cn.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}

/// The xattrs worth copying (capabilities, ACLs, user data); overlay's own are not.
fn copy_xattrs(src: &Path, dst: &Path) {
    let (Ok(cs), Ok(cd)) = (cstr(src), cstr(dst)) else { return };
    let mut names = vec![0u8; 4096];
    // SAFETY: llistxattr into a buffer we own.
    let n = unsafe { libc::llistxattr(cs.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return;
    }
    for name in names[..n as usize].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let s = String::from_utf8_lossy(name);
        if s.contains(".overlay.") {
            continue;
        }
        if let (Some(v), Ok(cn)) = (lgetxattr(src, &s), CString::new(name)) {
            // SAFETY: lsetxattr with a value we own.
            unsafe { libc::lsetxattr(cd.as_ptr(), cn.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
        }
    }
}

fn is_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|n| lgetxattr(dir, n).as_deref() == Some(b"y"))
}

fn remove_any(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(p).map_err(|e| Error::io("remove", p, e)),
        Ok(_) => std::fs::remove_file(p).map_err(|e| Error::io("remove", p, e)),
        Err(_) => Ok(()),
    }
}

fn set_meta(dst: &Path, md: &std::fs::Metadata) -> Result<()> {
    let c = cstr(dst)?;
    // SAFETY: lchown/chmod/utimensat on a path we just made, with values from its source.
    unsafe {
        libc::lchown(c.as_ptr(), md.uid(), md.gid());
        if !md.file_type().is_symlink() {
            libc::chmod(c.as_ptr(), md.mode() & 0o7777);
        }
        let times = [
            libc::timespec {
                tv_sec: md.atime(),
                tv_nsec: md.atime_nsec(),
            },
            libc::timespec {
                tv_sec: md.mtime(),
                tv_nsec: md.mtime_nsec(),
            },
        ];
        libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW);
    }
    Ok(())
}

/// Applies one overlay-form layer `src` over `dst`.
fn apply(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), std::path::PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(src).map_err(|e| Error::io("read", src, e))?;
    for e in rd.flatten() {
        let s = e.path();
        let d = dst.join(e.file_name());
        let md = std::fs::symlink_metadata(&s).map_err(|e| Error::io("stat", &s, e))?;
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            remove_any(&d)?;
            continue;
        }
        if ft.is_dir() {
            let existing = std::fs::symlink_metadata(&d).ok();
            if existing.as_ref().is_some_and(|m| !m.is_dir()) || (existing.is_some() && is_opaque(&s)) {
                remove_any(&d)?;
            }
            if !d.is_dir() {
                std::fs::create_dir(&d).map_err(|e| Error::io("mkdir", &d, e))?;
            }
            apply(&s, &d, links)?;
            copy_xattrs(&s, &d);
            set_meta(&d, &md)?;
            continue;
        }
        remove_any(&d)?;
        if md.nlink() > 1 {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                std::fs::hard_link(first, &d).map_err(|e| Error::io("link", &d, e))?;
                continue;
            }
        }
        if ft.is_symlink() {
            let t = std::fs::read_link(&s).map_err(|e| Error::io("readlink", &s, e))?;
            std::os::unix::fs::symlink(&t, &d).map_err(|e| Error::io("symlink", &d, e))?;
        } else if ft.is_file() {
            std::fs::copy(&s, &d).map_err(|e| Error::io("copy to", &d, e))?;
        } else {
            let c = cstr(&d)?;
            // SAFETY: mknod of a device, fifo or socket node as the source had it.
            if unsafe { libc::mknod(c.as_ptr(), md.mode(), md.rdev()) } != 0 {
                return Err(Error::io("mknod", &d, std::io::Error::last_os_error()));
            }
        }
        copy_xattrs(&s, &d);
        set_meta(&d, &md)?;
        if md.nlink() > 1 {
            links.insert((md.dev(), md.ino()), d);
        }
    }
    Ok(())
}

/// Copies `layers` (bottom first) into the empty dir `dst`.
pub fn populate(layers: &[std::path::PathBuf], dst: &Path) -> Result<()> {
    for l in layers {
        apply(l, dst, &mut HashMap::new())?;
    }
    Ok(())
}

/// Whether two entries differ as `diff` sees it (type, mode, owner, size, mtime, link target).
fn differs(a: &std::fs::Metadata, b: &std::fs::Metadata, pa: &Path, pb: &Path) -> bool {
    if a.file_type() != b.file_type() || a.mode() != b.mode() || a.uid() != b.uid() || a.gid() != b.gid() || a.rdev() != b.rdev() {
        return true;
    }
    if a.file_type().is_symlink() {
        return std::fs::read_link(pa).ok() != std::fs::read_link(pb).ok();
    }
    a.len() != b.len() || a.mtime() != b.mtime() || a.mtime_nsec() != b.mtime_nsec()
}

/// Changes of `rootfs` against `pristine` (the image's layers copied anew): ('A'|'C'|'D',
/// path relative to the root, is a directory).
pub fn changes(pristine: &Path, rootfs: &Path) -> Result<Vec<(char, std::path::PathBuf, bool)>> {
    let mut out = Vec::new();
    walk(pristine, rootfs, Path::new(""), &mut out)?;
    Ok(out)
}

fn walk(lower: &Path, upper: &Path, rel: &Path, out: &mut Vec<(char, std::path::PathBuf, bool)>) -> Result<()> {
    let (ld, ud) = (lower.join(rel), upper.join(rel));
    let mut seen = std::collections::HashSet::new();
    for e in std::fs::read_dir(&ud).map_err(|e| Error::io("read", &ud, e))?.flatten() {
        let name = e.file_name();
        seen.insert(name.clone());
        let r = rel.join(&name);
        let (pu, pl) = (upper.join(&r), lower.join(&r));
        let Ok(mu) = std::fs::symlink_metadata(&pu) else { continue };
        match std::fs::symlink_metadata(&pl) {
            Err(_) => {
                out.push(('A', r.clone(), mu.is_dir()));
                if mu.is_dir() {
                    added_tree(upper, &r, out)?;
                }
            }
            Ok(ml) => {
                if mu.is_dir() && ml.is_dir() {
                    let before = out.len();
                    walk(lower, upper, &r, out)?;
                    if out.len() > before || differs(&ml, &mu, &pl, &pu) {
                        out.insert(before, ('C', r.clone(), true));
                    }
                } else if differs(&ml, &mu, &pl, &pu) {
                    out.push(('C', r.clone(), mu.is_dir()));
                    if mu.is_dir() {
                        added_tree(upper, &r, out)?;
                    }
                }
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(&ld) {
        for e in rd.flatten() {
            if !seen.contains(&e.file_name()) {
                out.push(('D', rel.join(e.file_name()), false));
            }
        }
    }
    Ok(())
}

fn added_tree(upper: &Path, rel: &Path, out: &mut Vec<(char, std::path::PathBuf, bool)>) -> Result<()> {
    let d = upper.join(rel);
    for e in std::fs::read_dir(&d).map_err(|e| Error::io("read", &d, e))?.flatten() {
        let r = rel.join(e.file_name());
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push(('A', r.clone(), is_dir));
        if is_dir {
            added_tree(upper, &r, out)?;
        }
    }
    Ok(())
}

/// Builds an overlay-form upper dir of `changes` in the empty dir `dst`: changed and added
/// entries (files hardlinked from `rootfs`, read only by the commit), deletions as 0:0
/// whiteouts, for `skiff-image`'s commit.
pub fn upper_from(rootfs: &Path, changes: &[(char, std::path::PathBuf, bool)], dst: &Path) -> Result<()> {
    for (kind, rel, is_dir) in changes {
        let d = dst.join(rel);
        if let Some(parent) = d.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("mkdir", parent, e))?;
        }
        let s = rootfs.join(rel);
        match kind {
            'D' => {
                let c = cstr(&d)?;
                // SAFETY: mknod of a whiteout (char 0:0) in our own work dir.
                if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) } != 0 {
                    return Err(Error::io("whiteout", &d, std::io::Error::last_os_error()));
                }
            }
            _ if *is_dir => {
                if !d.is_dir() {
                    std::fs::create_dir(&d).map_err(|e| Error::io("mkdir", &d, e))?;
                }
                let md = std::fs::symlink_metadata(&s).map_err(|e| Error::io("stat", &s, e))?;
                copy_xattrs(&s, &d);
                set_meta(&d, &md)?;
            }
            _ => {
                let md = std::fs::symlink_metadata(&s).map_err(|e| Error::io("stat", &s, e))?;
                if md.is_file() {
                    std::fs::hard_link(&s, &d).map_err(|e| Error::io("link", &d, e))?;
                } else {
                    apply_one(&s, &d, &md)?;
                }
            }
        }
    }
    // Directories were made before their own metadata was known: fix their times last.
    for (kind, rel, is_dir) in changes.iter().rev() {
        if *is_dir && *kind != 'D' {
            if let Ok(md) = std::fs::symlink_metadata(rootfs.join(rel)) {
                set_meta(&dst.join(rel), &md)?;
            }
        }
    }
    Ok(())
}

fn apply_one(s: &Path, d: &Path, md: &std::fs::Metadata) -> Result<()> {
    if md.file_type().is_symlink() {
        let t = std::fs::read_link(s).map_err(|e| Error::io("readlink", s, e))?;
        std::os::unix::fs::symlink(&t, d).map_err(|e| Error::io("symlink", d, e))?;
    } else {
        let c = cstr(d)?;
        // SAFETY: mknod of a device, fifo or socket node as the source had it.
        if unsafe { libc::mknod(c.as_ptr(), md.mode(), md.rdev()) } != 0 {
            return Err(Error::io("mknod", d, std::io::Error::last_os_error()));
        }
    }
    set_meta(d, md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_with_whiteouts_and_opaque_dirs() {
        let t = tempfile::tempdir().unwrap();
        let (l1, l2, out) = (t.path().join("l1"), t.path().join("l2"), t.path().join("out"));
        for d in [&l1, &l2, &out] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::create_dir_all(l1.join("etc/keep")).unwrap();
        std::fs::write(l1.join("etc/gone"), "x").unwrap();
        std::fs::write(l1.join("etc/keep/old"), "old").unwrap();
        std::fs::write(l1.join("etc/file"), "v1").unwrap();
        std::os::unix::fs::symlink("file", l1.join("etc/link")).unwrap();
        std::fs::create_dir_all(l2.join("etc/keep")).unwrap();
        std::fs::write(l2.join("etc/keep/new"), "new").unwrap();
        std::fs::write(l2.join("etc/file"), "v2").unwrap();
        let wh = cstr(&l2.join("etc/gone")).unwrap();
        // A whiteout needs CAP_MKNOD; without it (unprivileged test run) skip that part.
        // SAFETY: mknod of a 0:0 char device in our temp dir.
        let have_wh = unsafe { libc::mknod(wh.as_ptr(), libc::S_IFCHR | 0o600, 0) } == 0;
        let k = cstr(&l2.join("etc/keep")).unwrap();
        // SAFETY: setxattr on our temp dir.
        let have_opq = unsafe { libc::setxattr(k.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) } == 0;
        populate(&[l1, l2], &out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("etc/file")).unwrap(), "v2");
        assert_eq!(std::fs::read_link(out.join("etc/link")).unwrap(), Path::new("file"));
        assert_eq!(std::fs::read_to_string(out.join("etc/keep/new")).unwrap(), "new");
        if have_wh {
            assert!(!out.join("etc/gone").exists());
        }
        if have_opq {
            assert!(!out.join("etc/keep/old").exists(), "an opaque dir hides the lower one's files");
            assert!(lgetxattr(&out.join("etc/keep"), "trusted.overlay.opaque").is_none());
        }
    }
}
