//! A container's root filesystem: an overlay of the image's layers (read-only lowerdirs, top
//! first) with the container's own upper and work dirs, mounted at `merged`; and the files
//! Docker bind-mounts over `/etc` (hosts, hostname, resolv.conf).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::ContainerDir;

/// The container's root filesystem, ready: the overlay mounted, or (vfs) its copy made. An
/// overlay the kernel refuses (EINVAL, EPERM, ENODEV, EOPNOTSUPP: a store on a filesystem
/// overlay cannot stack on) switches the container to the copying driver for good.
pub fn prepare(rec: &mut crate::record::ContainerRecord, dir: &ContainerDir, layers: &[PathBuf], rootless: bool) -> Result<PathBuf> {
    if !rec.is_vfs() {
        match mount(dir, layers, rootless, rec.host_config.auto_remove) {
            Ok(p) => return Ok(p),
            Err(Error::Mount { errno, .. }) if [libc::EINVAL, libc::EPERM, libc::ENODEV, libc::EOPNOTSUPP].contains(&errno) => {
                tracing::warn!(
                    "overlay refused ({}); container {} falls back to copying its image (vfs)",
                    std::io::Error::from_raw_os_error(errno),
                    rec.id
                );
                rec.driver = crate::record::DRIVER_VFS.to_string();
                rec.save(&dir.record())?;
            }
            Err(e) => return Err(e),
        }
    }
    let root = dir.rootfs_copy();
    if root.is_dir() {
        return Ok(root);
    }
    let tmp = dir.path().join("rootfs.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io("remove", &tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| Error::io("mkdir", &tmp, e))?;
    crate::vfs::populate(&with_init(dir, layers)?, &tmp)?;
    std::fs::rename(&tmp, &root).map_err(|e| Error::io("rename", &root, e))?;
    Ok(root)
}

/// `layers` with the init layer on top (what the copying driver copies).
pub(crate) fn with_init(dir: &ContainerDir, layers: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut all = layers.to_vec();
    all.push(init_layer(dir)?);
    Ok(all)
}

/// Whether `path` is a mount point (its device differs from its parent's, or it is listed in
/// mountinfo for same-device binds).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.as_os_str().as_bytes();
    text.lines().any(|l| l.split(' ').nth(4).is_some_and(|mp| unescape(mp).as_slice() == want))
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Mounts the overlay (no-op if already mounted). `layers` are bottom first.
/// `volatile` (for `--rm` containers) skips overlayfs's sync of the upper filesystem at
/// unmount, which costs tens of ms; such a container's files need not survive a host crash.
pub fn mount(dir: &ContainerDir, layers: &[PathBuf], rootless: bool, volatile: bool) -> Result<PathBuf> {
    let merged = dir.merged();
    if is_mounted(&merged) {
        return Ok(merged);
    }
    for d in [dir.upper(), dir.work(), merged.clone()] {
        std::fs::create_dir_all(&d).map_err(|e| Error::io("mkdir", &d, e))?;
    }
    let mut lowers = vec![init_layer(dir)?];
    lowers.extend(layers.iter().rev().cloned());
    let lower = lowers.iter().map(|p| p.to_string_lossy().replace(':', "\\:")).collect::<Vec<_>>().join(":");
    // No redirects or metadata-only copies: the upper dir must hold whole files, so that
    // `commit` and `diff` can read it alone.
    let mut data = format!(
        "lowerdir={lower},upperdir={},workdir={},redirect_dir=nofollow,metacopy=off",
        dir.upper().display(),
        dir.work().display()
    );
    if rootless {
        data.push_str(",userxattr");
    }
    if volatile {
        data.push_str(",volatile");
    }
    // One page of mount data: past that, the new mount API takes the layers one at a time.
    let r = if data.len() < 4000 {
        mount_classic(&merged, &data)
    } else {
        mount_fsconfig(&merged, &lowers, dir, rootless, volatile)
    };
    r.map_err(|e| Error::Mount {
        target: merged.clone(),
        errno: e.raw_os_error().unwrap_or(0),
        source: e,
    })?;
    Ok(merged)
}

fn mount_classic(target: &Path, data: &str) -> std::io::Result<()> {
    let t = CString::new(target.as_os_str().as_bytes())?;
    let d = CString::new(data)?;
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
    let r = unsafe { libc::mount(c"overlay".as_ptr(), t.as_ptr(), c"overlay".as_ptr(), libc::MS_NODEV, d.as_ptr().cast()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// fsopen("overlay") + `lowerdir+` per layer (kernel ≥ 6.8): no limit on the layer count.
fn mount_fsconfig(target: &Path, lowers: &[PathBuf], dir: &ContainerDir, rootless: bool, volatile: bool) -> std::io::Result<()> {
    const FSCONFIG_SET_FLAG: libc::c_uint = 0;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    let check = |r: libc::c_long| if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(r as i32) };
    // SAFETY: the new mount API with NUL-terminated strings; the fds are closed below.
    unsafe {
        let fs = check(libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), 1 /* FSOPEN_CLOEXEC */))?;
        let set = |key: &str, val: &Path| -> std::io::Result<()> {
            let k = CString::new(key)?;
            let v = CString::new(val.as_os_str().as_bytes())?;
            check(libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_SET_STRING, k.as_ptr(), v.as_ptr(), 0)).map(|_| ())
        };
        let r = (|| {
            for l in lowers {
                set("lowerdir+", l)?;
            }
            set("upperdir", &dir.upper())?;
            set("workdir", &dir.work())?;
            set("redirect_dir", Path::new("nofollow"))?;
            set("metacopy", Path::new("off"))?;
            if rootless {
                check(libc::syscall(
                    libc::SYS_fsconfig,
                    fs,
                    FSCONFIG_SET_FLAG,
                    c"userxattr".as_ptr(),
                    std::ptr::null::<u8>(),
                    0,
                ))?;
            }
            if volatile {
                check(libc::syscall(
                    libc::SYS_fsconfig,
                    fs,
                    FSCONFIG_SET_FLAG,
                    c"volatile".as_ptr(),
                    std::ptr::null::<u8>(),
                    0,
                ))?;
            }
            check(libc::syscall(
                libc::SYS_fsconfig,
                fs,
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<u8>(),
                std::ptr::null::<u8>(),
                0,
            ))?;
            let mnt = check(libc::syscall(libc::SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */, libc::MOUNT_ATTR_NODEV))?;
            let t = CString::new(target.as_os_str().as_bytes())?;
            let r = check(libc::syscall(
                libc::SYS_move_mount,
                mnt,
                c"".as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                4, /* MOVE_MOUNT_F_EMPTY_PATH */
            ));
            libc::close(mnt);
            r.map(|_| ())
        })();
        libc::close(fs);
        r
    }
}

/// Docker's "init layer": the mount points the engine always uses, as the topmost read-only
/// layer, so that the runtime never creates them in the upper dir and they never show in
/// `diff` or `commit`.
pub(crate) fn init_layer(dir: &ContainerDir) -> Result<PathBuf> {
    let init = dir.path().join("init");
    if init.join("etc/hosts").exists() {
        return Ok(init);
    }
    for d in ["etc", "proc", "sys", "dev"] {
        let p = init.join(d);
        std::fs::create_dir_all(&p).map_err(|e| Error::io("mkdir", &p, e))?;
    }
    for f in ["etc/resolv.conf", "etc/hostname", "etc/hosts"] {
        let p = init.join(f);
        std::fs::write(&p, b"").map_err(|e| Error::io("create", &p, e))?;
    }
    Ok(init)
}

/// Unmounts the overlay if mounted (lazily if busy).
pub fn unmount(dir: &ContainerDir) -> Result<()> {
    let merged = dir.merged();
    if !is_mounted(&merged) {
        return Ok(());
    }
    let t = CString::new(merged.as_os_str().as_bytes()).map_err(|e| Error::Other(e.to_string()))?;
    // SAFETY: umount2 with a NUL-terminated path.
    let r = unsafe { libc::umount2(t.as_ptr(), 0) };
    if r != 0 {
        // SAFETY: as above; MNT_DETACH finishes once the last user lets go.
        if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(Error::io("unmount", merged, std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Writes `hostname`, `hosts` and `resolv.conf` into the container's dir.
pub fn write_etc_files(dir: &ContainerDir, hostname: &str, host_network: bool) -> Result<()> {
    let w = |p: PathBuf, text: String| std::fs::write(&p, text).map_err(|e| Error::io("write", p, e));
    w(dir.hostname(), format!("{hostname}\n"))?;
    let hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n")
    };
    w(dir.hosts(), hosts)?;
    w(dir.resolv(), std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
}
