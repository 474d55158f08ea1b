//! A container's files from the host: `export` (a tar of the root filesystem), `cp` both
//! ways, `diff` (the upper dir read back against the image's layers).
//!
//! Paths inside the container are resolved as the container would (symlinks relative to its
//! root, `..` clamped at it), and a running container is paused while its files are copied,
//! so it cannot swap a path for a symlink between our check and our use (CVE-2018-15664).

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::record::Status;
use crate::{rootfs, Engine};

/// Joins `path` to `root` resolving every symlink inside `root` (never leaving it).
pub fn secure_join(root: &Path, path: &str) -> Result<PathBuf> {
    let mut out = root.to_path_buf();
    let mut todo: Vec<String> = path.split('/').filter(|c| !c.is_empty()).map(str::to_string).rev().collect();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                if out != root {
                    out.pop();
                }
                continue;
            }
            _ => {}
        }
        let next = out.join(&c);
        match std::fs::symlink_metadata(&next) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(Error::Invalid(format!("{path}: too many levels of symbolic links")));
                }
                let target = std::fs::read_link(&next).map_err(|e| Error::io("readlink", &next, e))?;
                let t = target.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    out = root.to_path_buf();
                }
                todo.extend(t.split('/').filter(|c| !c.is_empty()).map(str::to_string).rev());
            }
            _ => out = next,
        }
    }
    Ok(out)
}

/// Copies a tree without following symlinks; with `owner`, everything is chowned to it.
pub(crate) fn copy_tree(src: &Path, dst: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    let md = std::fs::symlink_metadata(src).map_err(|e| Error::io("stat", src, e))?;
    let ft = md.file_type();
    let (uid, gid) = owner.unwrap_or((md.uid(), md.gid()));
    if ft.is_symlink() {
        let t = std::fs::read_link(src).map_err(|e| Error::io("readlink", src, e))?;
        let _ = std::fs::remove_file(dst);
        std::os::unix::fs::symlink(&t, dst).map_err(|e| Error::io("symlink", dst, e))?;
    } else if ft.is_dir() {
        if !dst.is_dir() {
            std::fs::create_dir(dst).map_err(|e| Error::io("mkdir", dst, e))?;
        }
        for e in std::fs::read_dir(src).map_err(|e| Error::io("read", src, e))?.flatten() {
            copy_tree(&e.path(), &dst.join(e.file_name()), owner)?;
        }
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777)).map_err(|e| Error::io("chmod", dst, e))?;
    } else if ft.is_file() {
        let _ = std::fs::remove_file(dst);
        std::fs::copy(src, dst).map_err(|e| Error::io("copy to", dst, e))?;
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777)).map_err(|e| Error::io("chmod", dst, e))?;
    } else {
        // Devices, fifos and sockets are not copied, as `docker cp` without -a.
        return Ok(());
    }
    let _ = std::os::unix::fs::lchown(dst, Some(uid), Some(gid));
    Ok(())
}

impl Engine {
    /// Pauses a running container while its files are read or written; a rootless container
    /// without a cgroup of its own cannot be frozen and runs on (its processes can reach only
    /// the user's own files anyway).
    pub(crate) fn pause_for_files(&self, rec: &crate::record::ContainerRecord) -> Result<Option<skiff_core::Container>> {
        if rec.state.status != Status::Running {
            return Ok(None);
        }
        let Ok(c) = self.runtime.load(&rec.id) else { return Ok(None) };
        if c.rec.cgroup_paths.is_empty() && self.rootless {
            return Ok(None);
        }
        c.pause()?;
        Ok(Some(c))
    }

    /// Runs `f` with the container's root filesystem mounted and the container paused.
    fn with_rootfs<T>(&self, id: &str, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        let (_l, mut rec) = self.lock(id)?;
        let dir = self.layout.container(id);
        let mounted_here = !rec.is_vfs() && !rootfs::is_mounted(&dir.merged());
        if mounted_here || rec.is_vfs() {
            let image = self.images.resolve(&rec.image_id)?;
            rootfs::prepare(&mut rec, &dir, &self.images.layer_dirs(&image)?, self.rootless)?;
        }
        let root = self.rootfs_path(&rec);
        let c = self.pause_for_files(&rec)?;
        let r = f(&root);
        if let Some(c) = &c {
            let _ = c.resume();
        }
        if mounted_here {
            rootfs::unmount(&dir)?;
        }
        r
    }

    /// Writes the container's root filesystem as a tar archive.
    pub fn export(&self, id: &str, w: impl std::io::Write) -> Result<()> {
        self.with_rootfs(id, |root| {
            let mut b = tar::Builder::new(w);
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Complete);
            for e in std::fs::read_dir(root).map_err(|e| Error::io("read", root, e))?.flatten() {
                let name = e.file_name();
                let p = e.path();
                let r = if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    b.append_dir_all(&name, &p)
                } else {
                    b.append_path_with_name(&p, &name)
                };
                r.map_err(|x| Error::io("export", &p, x))?;
            }
            b.finish().map_err(|x| Error::io("export", root, x))
        })
    }

    /// `cp CONTAINER:SRC DST`.
    pub fn copy_out(&self, id: &str, src: &str, dst: &str) -> Result<()> {
        self.with_rootfs(id, |root| {
            let from = secure_join(root, src)?;
            if std::fs::symlink_metadata(&from).is_err() {
                return Err(Error::Invalid(format!("Could not find the file {src} in container {id}")));
            }
            let base = from.file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
            let to = if Path::new(dst).is_dir() {
                Path::new(dst).join(base)
            } else {
                PathBuf::from(dst)
            };
            copy_tree(&from, &to, None)
        })
    }

    /// `cp SRC CONTAINER:DST` (files become root's, as Docker's cp without -a).
    pub fn copy_in(&self, id: &str, src: &str, dst: &str) -> Result<()> {
        let src_p = Path::new(src);
        if std::fs::symlink_metadata(src_p).is_err() {
            return Err(Error::Invalid(format!("could not find the file {src} on the host")));
        }
        self.with_rootfs(id, |root| {
            let target = secure_join(root, dst)?;
            let to = if target.is_dir() && !dst.ends_with("/.") {
                let base = src_p.file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
                // The base name itself may be a symlink in the container: resolve again.
                secure_join(root, &format!("{}/{}", dst.trim_end_matches('/'), base.to_string_lossy()))?
            } else {
                target
            };
            if !to.starts_with(root) {
                return Err(Error::Invalid(format!("{dst}: outside the container")));
            }
            copy_tree(src_p, &to, Some((0, 0)))
        })
    }

    /// Changes since the image: ("A"|"C"|"D", path), sorted by path.
    pub fn diff(&self, id: &str) -> Result<Vec<(char, String)>> {
        let rec = self.load(id)?;
        let image = self.images.resolve(&rec.image_id)?;
        let layers = self.images.layer_dirs(&image)?;
        if rec.is_vfs() {
            let mut out: Vec<(char, String)> = self
                .vfs_changes(&rec, &layers)?
                .into_iter()
                .map(|(k, p, _)| (k, format!("/{}", p.display())))
                .collect();
            out.sort_by(|a, b| a.1.cmp(&b.1));
            return Ok(out);
        }
        let upper = self.layout.container(id).upper();
        let mut out = Vec::new();
        walk(&upper, &upper, &layers, &mut out)?;
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// A vfs container's changes against a fresh copy of its image.
    pub(crate) fn vfs_changes(&self, rec: &crate::record::ContainerRecord, layers: &[PathBuf]) -> Result<Vec<(char, PathBuf, bool)>> {
        let dir = self.layout.container(&rec.id);
        let pristine = dir.path().join("pristine.tmp");
        let _ = std::fs::remove_dir_all(&pristine);
        std::fs::create_dir(&pristine).map_err(|e| Error::io("mkdir", &pristine, e))?;
        let r = crate::rootfs::with_init(&dir, layers)
            .and_then(|all| crate::vfs::populate(&all, &pristine))
            .and_then(|()| crate::vfs::changes(&pristine, &dir.rootfs_copy()));
        let _ = std::fs::remove_dir_all(&pristine);
        r
    }

    /// Removes every stopped container; returns their ids.
    pub fn prune_containers(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for r in self.list()? {
            if !r.state.status.is_active() && self.remove(&r.id, false, false).is_ok() {
                out.push(r.id);
            }
        }
        self.sweep();
        Ok(out)
    }
}

fn in_lower(layers: &[PathBuf], rel: &Path) -> bool {
    layers.iter().any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok())
}

fn walk(upper: &Path, dir: &Path, layers: &[PathBuf], out: &mut Vec<(char, String)>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(upper).unwrap_or(&p).to_path_buf();
        let shown = format!(
            "/{}",
            rel.components()
                .filter_map(|c| if let Component::Normal(n) = c {
                    Some(n.to_string_lossy().into_owned())
                } else {
                    None
                })
                .collect::<Vec<_>>()
                .join("/")
        );
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        if md.file_type().is_char_device() && md.rdev() == 0 {
            out.push(('D', shown));
            continue;
        }
        let existed = in_lower(layers, &rel);
        out.push((if existed { 'C' } else { 'A' }, shown));
        if md.is_dir() {
            walk(upper, &p, layers, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("b", root.join("a/rel")).unwrap();
        assert_eq!(secure_join(root, "/abs/passwd").unwrap(), root.join("etc/passwd"));
        assert_eq!(secure_join(root, "/a/up/etc/shadow").unwrap(), root.join("etc/shadow"));
        assert_eq!(secure_join(root, "../../x").unwrap(), root.join("x"));
        assert_eq!(secure_join(root, "/a/rel/f").unwrap(), root.join("a/b/f"));
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(secure_join(root, "/loop").is_err());
    }
}
