//! Parsing of a mount's `options` into flags, propagation, recursive attributes and data.

use nix::mount::MsFlags;

/// `MS_NOSYMFOLLOW` (not in nix 0.32's `MsFlags`).
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

// linux/mount.h MOUNT_ATTR_*, for crun's recursive `r*` options.
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// A parsed `options` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount call itself (never propagation flags).
    pub flags: MsFlags,
    /// Propagation changes, each applied as its own mount call after the mount.
    pub propagation: Vec<MsFlags>,
    /// `mount_setattr` attributes set/cleared recursively after the mount (`rro`, `rnosuid`...).
    pub rec_set: u64,
    pub rec_clr: u64,
    /// Options the kernel flags do not know: passed to the filesystem, comma-joined.
    pub data: Vec<String>,
    /// `tmpcopyup` was asked for.
    pub tmpcopyup: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            rec_set: 0,
            rec_clr: 0,
            data: Vec::new(),
            tmpcopyup: false,
        }
    }
}

impl MountOptions {
    /// The mount data, `None` when empty.
    pub fn data(&self) -> Option<String> {
        if self.data.is_empty() {
            None
        } else {
            Some(self.data.join(","))
        }
    }
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
    pub fn readonly(&self) -> bool {
        self.flags.contains(MsFlags::MS_RDONLY)
    }
}

/// `(name, clear?, flag)`: runc's `mountFlags` table.
const FLAGS: &[(&str, bool, MsFlags)] = &[
    ("acl", false, MsFlags::MS_POSIXACL),
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("atime", true, MsFlags::MS_NOATIME),
    ("bind", false, MsFlags::MS_BIND),
    ("defaults", false, MsFlags::empty()),
    ("dev", true, MsFlags::MS_NODEV),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("iversion", false, MsFlags::MS_I_VERSION),
    ("lazytime", false, MsFlags::MS_LAZYTIME),
    ("loud", true, MsFlags::MS_SILENT),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("noacl", true, MsFlags::MS_POSIXACL),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("nodev", false, MsFlags::MS_NODEV),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("noiversion", true, MsFlags::MS_I_VERSION),
    ("nolazytime", true, MsFlags::MS_LAZYTIME),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("nosymfollow", false, MS_NOSYMFOLLOW),
    ("rbind", false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("silent", false, MsFlags::MS_SILENT),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("suid", true, MsFlags::MS_NOSUID),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
    ("symfollow", true, MS_NOSYMFOLLOW),
];

/// Propagation option -> flags (also used for `linux.rootfsPropagation`).
pub fn propagation(name: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    })
}

/// `(name, clear?, attr)`: crun's recursive options, applied with `mount_setattr(AT_RECURSIVE)`.
const REC_ATTRS: &[(&str, bool, u64)] = &[
    ("rro", false, MOUNT_ATTR_RDONLY),
    ("rrw", true, MOUNT_ATTR_RDONLY),
    ("rnosuid", false, MOUNT_ATTR_NOSUID),
    ("rsuid", true, MOUNT_ATTR_NOSUID),
    ("rnodev", false, MOUNT_ATTR_NODEV),
    ("rdev", true, MOUNT_ATTR_NODEV),
    ("rnoexec", false, MOUNT_ATTR_NOEXEC),
    ("rexec", true, MOUNT_ATTR_NOEXEC),
    ("rnodiratime", false, MOUNT_ATTR_NODIRATIME),
    ("rdiratime", true, MOUNT_ATTR_NODIRATIME),
    ("rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW),
];

/// Parse options in order (later ones win over earlier ones).
pub fn parse_options<S: AsRef<str>>(options: &[S]) -> MountOptions {
    let mut o = MountOptions::default();
    for opt in options {
        let opt = opt.as_ref();
        if let Some(&(_, clear, f)) = FLAGS.iter().find(|(n, _, _)| *n == opt) {
            if clear {
                o.flags.remove(f);
            } else {
                o.flags.insert(f);
            }
        } else if let Some(p) = propagation(opt) {
            o.propagation.push(p);
        } else if let Some(&(_, clear, a)) = REC_ATTRS.iter().find(|(n, _, _)| *n == opt) {
            if clear {
                o.rec_set &= !a;
                o.rec_clr |= a;
            } else {
                o.rec_set |= a;
                o.rec_clr &= !a;
            }
        } else if let Some(atime) = rec_atime(opt) {
            // The atime field is one value: clear the whole field, set the chosen one.
            o.rec_set = (o.rec_set & !MOUNT_ATTR_ATIME) | atime;
            o.rec_clr |= MOUNT_ATTR_ATIME;
        } else if opt == "tmpcopyup" {
            o.tmpcopyup = true;
        } else if !opt.is_empty() {
            o.data.push(opt.to_string());
        }
    }
    o
}

fn rec_atime(opt: &str) -> Option<u64> {
    match opt {
        "rrelatime" | "ratime" => Some(MOUNT_ATTR_RELATIME),
        "rnoatime" => Some(MOUNT_ATTR_NOATIME),
        "rstrictatime" => Some(MOUNT_ATTR_STRICTATIME),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_data() {
        let o = parse_options(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data(), Some("mode=755,size=65536k".to_string()));
        assert!(o.propagation.is_empty());
        assert!(!o.is_bind());
    }

    #[test]
    fn clear_flags_undo_earlier_ones() {
        let o = parse_options(&["ro", "nosuid", "nodev", "rw", "dev", "noexec"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        let o = parse_options(&["sync", "async", "noatime", "atime", "relatime", "norelatime"]);
        assert_eq!(o.flags, MsFlags::empty());
        let o = parse_options(&["mand", "dirsync", "lazytime", "nodiratime", "remount"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_MANDLOCK
                | MsFlags::MS_DIRSYNC
                | MsFlags::MS_LAZYTIME
                | MsFlags::MS_NODIRATIME
                | MsFlags::MS_REMOUNT
        );
        assert_eq!(parse_options(&["suid", "exec", "nomand", "diratime"]).flags, MsFlags::empty());
        assert_eq!(parse_options(&["nosymfollow"]).flags, MS_NOSYMFOLLOW);
    }

    #[test]
    fn bind_rbind_and_propagation() {
        let o = parse_options(&["rbind", "ro", "rprivate", "slave"]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY);
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC, MsFlags::MS_SLAVE]);
        assert!(o.is_bind() && o.readonly());
        assert_eq!(o.data(), None);
        let o = parse_options(&["bind", "shared", "runbindable", "rshared", "private", "unbindable", "rslave"]);
        assert_eq!(o.flags, MsFlags::MS_BIND);
        assert_eq!(o.propagation.len(), 6);
        assert_eq!(o.propagation[1], MsFlags::MS_UNBINDABLE | MsFlags::MS_REC);
    }

    #[test]
    fn recursive_attrs_and_tmpcopyup() {
        let o = parse_options(&["rbind", "rro", "rnosuid", "rnoatime", "tmpcopyup"]);
        assert_eq!(o.rec_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME);
        assert_eq!(o.rec_clr, MOUNT_ATTR_ATIME);
        assert!(o.tmpcopyup);
        assert!(o.data.is_empty(), "recursive options must not leak into data: {:?}", o.data);
        let o = parse_options(&["rro", "rrw"]);
        assert_eq!((o.rec_set, o.rec_clr), (0, MOUNT_ATTR_RDONLY));
        // Names that start with `r` but are plain flags stay plain flags.
        let o = parse_options(&["relatime", "remount", "rw", "rbind"]);
        assert_eq!(o.flags, MsFlags::MS_RELATIME | MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!((o.rec_set, o.rec_clr), (0, 0));
    }
}
