//! `--user` resolved against the container's own `/etc/passwd` and `/etc/group`, read inside
//! the root filesystem (symlinks resolved within it, never on the host), as Docker does.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

/// Reads `path` (absolute inside the container) from `rootfs`, resolving symlinks as if
/// `rootfs` were `/` (openat2 RESOLVE_IN_ROOT). None if it does not exist.
pub fn read_in_root(rootfs: &Path, path: &str) -> Option<String> {
    let root = std::fs::File::open(rootfs).ok()?;
    let rel = std::ffi::CString::new(path.trim_start_matches('/')).ok()?;
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_IN_ROOT: u64 = 0x10;
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 with a valid dirfd, a NUL-terminated path and an open_how we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            std::os::fd::AsRawFd::as_raw_fd(&root),
            rel.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: openat2 returned a new fd that nothing else owns.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    let mut s = String::new();
    // Bounded: a hostile image could make /etc/passwd huge.
    f.by_ref().take(4 << 20).read_to_string(&mut s).ok()?;
    Some(s)
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`) with the given passwd and
/// group texts.
pub fn resolve(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<ExecUser> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entries: Vec<Vec<&str>> = passwd
        .unwrap_or("")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let by_name = entries.iter().find(|f| f[0] == u);
    let (uid, mut gid, home, name) = match (u.parse::<u32>(), by_name) {
        (_, Some(f)) => (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0), f[5].to_string(), Some(f[0])),
        (Ok(n), None) => match entries.iter().find(|f| f[2].parse::<u32>().ok() == Some(n)) {
            Some(f) => (n, f[3].parse().unwrap_or(0), f[5].to_string(), Some(f[0])),
            None => (n, 0, "/".to_string(), None),
        },
        (Err(_), None) => return Err(Error::Invalid(format!("unable to find user {u}: no matching entries in passwd file"))),
    };
    let groups: Vec<Vec<&str>> = group
        .unwrap_or("")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    if let Some(g) = g {
        gid = match (g.parse::<u32>(), groups.iter().find(|f| f[0] == g)) {
            (_, Some(f)) => f[2].parse().unwrap_or(0),
            (Ok(n), None) => n,
            (Err(_), None) => return Err(Error::Invalid(format!("unable to find group {g}: no matching entries in group file"))),
        };
    }
    let mut additional = Vec::new();
    if let (Some(name), None) = (name, g) {
        for f in &groups {
            if f[3].split(',').any(|m| m == name) {
                if let Ok(id) = f[2].parse::<u32>() {
                    if id != gid && !additional.contains(&id) {
                        additional.push(id);
                    }
                }
            }
        }
    }
    Ok(ExecUser {
        uid,
        gid,
        additional_gids: additional,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

/// Resolves `spec` against the files of `rootfs`.
pub fn lookup(rootfs: &Path, spec: &str) -> Result<ExecUser> {
    let passwd = read_in_root(rootfs, "/etc/passwd");
    let group = read_in_root(rootfs, "/etc/group");
    resolve(spec, passwd.as_deref(), group.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:alice\nalice:x:1000:\nstaff:x:50:bob,alice\n";

    #[test]
    fn resolves_like_docker() {
        assert_eq!(
            resolve("", Some(PASSWD), Some(GROUP)).unwrap(),
            ExecUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into()
            }
        );
        let a = resolve("alice", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!(
            (a.uid, a.gid, a.additional_gids.clone(), a.home.as_str()),
            (1000, 1000, vec![10, 50], "/home/alice")
        );
        assert_eq!(resolve("1000:50", Some(PASSWD), Some(GROUP)).unwrap().gid, 50);
        assert_eq!(
            resolve("4242", Some(PASSWD), None).unwrap(),
            ExecUser {
                uid: 4242,
                gid: 0,
                additional_gids: vec![],
                home: "/".into()
            }
        );
        assert_eq!(resolve("nobody:staff", Some(PASSWD), Some(GROUP)).unwrap().gid, 50);
        assert!(resolve("mallory", Some(PASSWD), None)
            .unwrap_err()
            .to_string()
            .contains("unable to find user mallory"));
        assert!(resolve("0:nogroup", Some(PASSWD), Some(GROUP)).is_err());
    }

    #[test]
    fn reads_stay_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        // An absolute symlink is resolved inside the root, not on the host.
        std::os::unix::fs::symlink("/etc/shadow-of-host", d.path().join("etc/passwd")).unwrap();
        std::fs::write(d.path().join("etc/shadow-of-host"), "x:x:7:7::/h:/bin/sh\n").unwrap();
        assert_eq!(read_in_root(d.path(), "/etc/passwd").unwrap(), "x:x:7:7::/h:/bin/sh\n");
        std::os::unix::fs::symlink("../../../../../../etc/hostname", d.path().join("etc/group")).unwrap();
        assert_eq!(read_in_root(d.path(), "/etc/group"), None);
    }
}
