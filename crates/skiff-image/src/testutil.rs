//! Helpers for the unit tests: tar streams crafted entry by entry, with raw names so that
//! hostile paths (`..`, absolute) can be written.

use std::io::Write;

/// A tar stream under construction.
pub struct TarMaker {
    b: tar::Builder<Vec<u8>>,
}

pub enum Kind<'a> {
    File(&'a [u8]),
    Dir,
    Symlink(&'a str),
    Hardlink(&'a str),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

impl Default for TarMaker {
    fn default() -> Self {
        Self::new()
    }
}

impl TarMaker {
    pub fn new() -> Self {
        TarMaker {
            b: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry whose name (and link name) bytes are written as given.
    pub fn entry(&mut self, name: &str, kind: Kind<'_>, mode: u32, uid: u64) -> &mut Self {
        self.entry_x(name, kind, mode, uid, &[])
    }

    /// Same, with `SCHILY.xattr.*` PAX records.
    pub fn entry_x(&mut self, name: &str, kind: Kind<'_>, mode: u32, uid: u64, xattrs: &[(&str, &[u8])]) -> &mut Self {
        if !xattrs.is_empty() {
            let keys: Vec<(String, &[u8])> = xattrs.iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v)).collect();
            self.b.append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v))).unwrap();
        }
        let mut h = tar::Header::new_ustar();
        let (t, data, link): (tar::EntryType, &[u8], Option<&str>) = match kind {
            Kind::File(d) => (tar::EntryType::Regular, d, None),
            Kind::Dir => (tar::EntryType::Directory, &[], None),
            Kind::Symlink(l) => (tar::EntryType::Symlink, &[], Some(l)),
            Kind::Hardlink(l) => (tar::EntryType::Link, &[], Some(l)),
            Kind::Char(ma, mi) | Kind::Block(ma, mi) => {
                h.set_device_major(ma).unwrap();
                h.set_device_minor(mi).unwrap();
                let t = if matches!(kind, Kind::Char(..)) {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                (t, &[], None)
            }
            Kind::Fifo => (tar::EntryType::Fifo, &[], None),
        };
        h.set_entry_type(t);
        let old = h.as_old_mut();
        old.name.fill(0);
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            old.linkname.fill(0);
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A small root filesystem: /bin/sh (a script), /etc/hostname, a symlink, a dir.
pub fn small_rootfs(marker: &str) -> Vec<u8> {
    let mut t = TarMaker::new();
    t.entry("bin/", Kind::Dir, 0o755, 0)
        .entry("bin/sh", Kind::File(b"#!/bin/true\n"), 0o755, 0)
        .entry("etc/", Kind::Dir, 0o755, 0)
        .entry("etc/hostname", Kind::File(marker.as_bytes()), 0o644, 0)
        .entry("usr/", Kind::Dir, 0o755, 0)
        .entry("usr/bin", Kind::Symlink("../bin"), 0o777, 0);
    t.finish()
}
