//! An overlay upper directory turned back into a layer tar: char 0:0 devices become
//! `.wh.NAME`, an `overlay.opaque=y` directory gets `.wh..wh..opq`; owners, modes, mtimes,
//! symlinks, hardlinks (within the layer) and xattrs (but overlay's own `*.overlay.*`) are
//! kept. Sockets are skipped (as Docker does). Entries are written in sorted order.
//!
//! The upper dir must come from a mount with `metacopy=off` (a metacopy file has no data in
//! the upper dir: it is refused) and should use `redirect_dir=off` (a redirect is logged).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::xattr;

/// What a diff contained.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DiffStats {
    pub entries: u64,
}

struct Differ<W: Write> {
    b: tar::Builder<W>,
    links: HashMap<(u64, u64), PathBuf>,
    stats: DiffStats,
}

fn tar_err(path: &Path, e: io::Error) -> Error {
    Error::Io {
        op: "writing layer tar entry",
        path: path.to_path_buf(),
        source: e,
    }
}

/// Writes the tar of `upper` into `w` and returns `w` and what was written.
pub fn write_diff<W: Write>(upper: &Path, w: W) -> Result<(W, DiffStats)> {
    let mut d = Differ {
        b: tar::Builder::new(w),
        links: HashMap::new(),
        stats: DiffStats::default(),
    };
    d.walk(upper, Path::new(""))?;
    let w = d.b.into_inner().map_err(|e| tar_err(upper, e))?;
    Ok((w, d.stats))
}

fn is_overlay_attr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

fn overlay_attr(path: &Path, suffix: &str) -> Result<Option<Vec<u8>>> {
    for ns in ["trusted", "user"] {
        let name = format!("{ns}.overlay.{suffix}");
        if let Some(v) = xattr::lget(path, name.as_bytes()).ctx("reading xattr of", path)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

impl<W: Write> Differ<W> {
    fn walk(&mut self, dir: &Path, rel: &Path) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .ctx("reading", dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .ctx("reading", dir)?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = rel.join(&name);
            self.entry(&path, &rel, &name)?;
        }
        Ok(())
    }

    fn header(&self, meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(meta.uid().into());
        h.set_gid(meta.gid().into());
        h.set_mtime(meta.mtime().max(0) as u64);
        h.set_size(0);
        h
    }

    fn pax_xattrs(&mut self, path: &Path) -> Result<()> {
        let mut recs: Vec<(String, Vec<u8>)> = Vec::new();
        for name in xattr::llist(path).ctx("listing xattrs of", path)? {
            if is_overlay_attr(&name) {
                continue;
            }
            let Ok(key) = std::str::from_utf8(&name) else {
                continue;
            };
            if let Some(v) = xattr::lget(path, &name).ctx("reading xattr of", path)? {
                recs.push((format!("SCHILY.xattr.{key}"), v));
            }
        }
        if !recs.is_empty() {
            recs.sort();
            self.b
                .append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(|e| tar_err(path, e))?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &Path, name: &std::ffi::OsStr) -> Result<()> {
        let meta = fs::symlink_metadata(path).ctx("stat", path)?;
        let ft = meta.file_type();
        self.stats.entries += 1;
        if ft.is_char_device() && meta.rdev() == 0 {
            // A whiteout: `.wh.NAME` in the same directory.
            let mut wh = rel.to_path_buf();
            let mut n = b".wh.".to_vec();
            n.extend_from_slice(name.as_bytes());
            wh.set_file_name(std::ffi::OsStr::from_bytes(&n));
            let mut h = self.header(&meta, tar::EntryType::Regular);
            h.set_mode(0o600);
            return self.b.append_data(&mut h, &wh, io::empty()).map_err(|e| tar_err(path, e));
        }
        if ft.is_socket() {
            self.stats.entries -= 1;
            return Ok(());
        }
        if ft.is_file() && overlay_attr(path, "metacopy")?.is_some() {
            return Err(Error::Other(format!(
                "{}: an overlay metacopy file (mount the container with metacopy=off)",
                path.display()
            )));
        }
        if ft.is_dir() && overlay_attr(path, "redirect")?.is_some() {
            tracing::warn!("{}: overlay redirect ignored (use redirect_dir=off)", path.display());
        }
        if !ft.is_dir() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                let first = first.clone();
                let mut h = self.header(&meta, tar::EntryType::Link);
                return self.b.append_link(&mut h, rel, &first).map_err(|e| tar_err(path, e));
            }
            self.links.insert(key, rel.to_path_buf());
        }
        self.pax_xattrs(path)?;
        if ft.is_dir() {
            let mut h = self.header(&meta, tar::EntryType::Directory);
            self.b.append_data(&mut h, rel, io::empty()).map_err(|e| tar_err(path, e))?;
            if overlay_attr(path, "opaque")?.as_deref() == Some(b"y") {
                let mut h = self.header(&meta, tar::EntryType::Regular);
                h.set_mode(0o600);
                self.b
                    .append_data(&mut h, rel.join(".wh..wh..opq"), io::empty())
                    .map_err(|e| tar_err(path, e))?;
            }
            return self.walk(path, rel);
        }
        if ft.is_symlink() {
            let target = fs::read_link(path).ctx("reading link", path)?;
            let mut h = self.header(&meta, tar::EntryType::Symlink);
            return self.b.append_link(&mut h, rel, &target).map_err(|e| tar_err(path, e));
        }
        if ft.is_file() {
            let f = File::open(path).ctx("opening", path)?;
            let mut h = self.header(&meta, tar::EntryType::Regular);
            h.set_size(meta.len());
            // A file that changes size while read would corrupt the tar: read exactly len.
            let mut data = ExactReader {
                r: f.take(meta.len()),
                left: meta.len(),
            };
            return self.b.append_data(&mut h, rel, &mut data).map_err(|e| tar_err(path, e));
        }
        let kind = if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            tar::EntryType::Fifo
        };
        let mut h = self.header(&meta, kind);
        if kind != tar::EntryType::Fifo {
            let rdev = meta.rdev();
            let major = nix::sys::stat::major(rdev) as u32;
            let minor = nix::sys::stat::minor(rdev) as u32;
            h.set_device_major(major).map_err(|e| tar_err(path, e))?;
            h.set_device_minor(minor).map_err(|e| tar_err(path, e))?;
        }
        self.b.append_data(&mut h, rel, io::empty()).map_err(|e| tar_err(path, e))
    }
}

/// Reads exactly `left` bytes, failing if the source ends early.
struct ExactReader<R> {
    r: R,
    left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.r.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being read"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
