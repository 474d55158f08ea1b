//! prepare()/finish() for real, as root, in a forked child with a mount namespace of its own.
//! Skipped (with a note) when not root or when namespaces are not allowed.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::ForkResult;

use super::{finish, prepare, CgroupMount, RootfsCtx};
use crate::syscall::Linux;

const SPEC: &str = r#"{
  "ociVersion": "1.0.2",
  "root": {"path": "rootfs", "readonly": true},
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    {"destination": "/seed", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=700"]},
    {"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
    {"destination": "/up/../../../../escape", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
    {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro"]}
  ],
  "linux": {
    "maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/nonexistent"],
    "readonlyPaths": ["/proc/sys"]
  }
}"#;

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn erofs(r: std::io::Result<impl Sized>) -> bool {
    matches!(r, Err(e) if e.raw_os_error() == Some(libc::EROFS))
}

/// Runs in the child, in its own mount namespace.
fn child(bundle: &Path, rootfs: &Path) -> Result<(), String> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("SKIP unshare: {e}"))?;
    nix::mount::mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| format!("rprivate /: {e}"))?;
    let spec: oci_spec::runtime::Spec = serde_json::from_str(SPEC).map_err(|e| e.to_string())?;
    // A v1-style plan over whatever is at /sys/fs/cgroup/cpu (any directory will do for a
    // bind); the combined name exercises the symlinks.
    let cgroups = [
        CgroupMount { name: "cpu,cpuacct".into(), host_dir: PathBuf::from("/sys/fs/cgroup/cpu"), v2: false },
        CgroupMount { name: "unified".into(), host_dir: PathBuf::from("/sys/fs/cgroup"), v2: true },
    ];
    let ctx = RootfsCtx {
        spec: &spec,
        rootfs,
        bundle,
        no_pivot: false,
        in_userns: false,
        cgroups: &cgroups,
        cgroupns: false,
        mount_label: None,
    };
    prepare(&Linux, &ctx).map_err(|e| format!("prepare: {e}"))?;
    finish(&Linux, &ctx).map_err(|e| format!("finish: {e}"))?;

    // Now inside the container's root.
    let mi = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let mountpoints: Vec<&str> = mi.lines().filter_map(|l| l.split(' ').nth(4)).collect();
    for mp in ["/seed", "/", "/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/etc/x", "/escape", "/data", "/proc/sys"] {
        check(mountpoints.contains(&mp), &format!("{mp} is not a mount point: {mountpoints:?}"))?;
    }
    check(fs::symlink_metadata("/evil").map(|m| m.file_type().is_symlink()).unwrap_or(false), "/evil symlink")?;
    check(erofs(fs::write("/newfile", b"x")), "root is not read-only")?;
    check(erofs(fs::write("/data/newfile", b"x")), "/data is not read-only")?;
    check(fs::read("/data/hello").map(|b| b == b"hi").unwrap_or(false), "/data/hello unreadable")?;
    check(fs::write("/dev/shm-test", b"x").is_ok(), "/dev should stay writable")?;
    let null = fs::metadata("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    check(null.file_type().is_char_device() && null.rdev() == nix::sys::stat::makedev(1, 3), "/dev/null device")?;
    check(null.mode() & 0o777 == 0o666, "/dev/null mode")?;
    check(fs::read_link("/dev/ptmx").ok() == Some(PathBuf::from("pts/ptmx")), "/dev/ptmx link")?;
    check(fs::read_link("/dev/fd").ok() == Some(PathBuf::from("/proc/self/fd")), "/dev/fd link")?;
    check(erofs(fs::OpenOptions::new().write(true).open("/proc/sys/kernel/hostname")), "/proc/sys writable")?;
    if Path::new("/proc/kcore").exists() {
        let mut b = Vec::new();
        fs::File::open("/proc/kcore").and_then(|mut f| f.read_to_end(&mut b)).map_err(|e| e.to_string())?;
        check(b.is_empty(), "/proc/kcore not masked")?;
    }
    if Path::new("/proc/acpi").exists() {
        check(fs::read_dir("/proc/acpi").map(|d| d.count() == 0).unwrap_or(false), "/proc/acpi not masked")?;
    }
    check(fs::read("/seed/sub/hello").map(|b| b == b"seeded").unwrap_or(false), "tmpcopyup did not copy")?;
    check(fs::write("/seed/new", b"x").is_ok(), "/seed is not a writable tmpfs")?;
    check(!Path::new("/proc/nonexistent").exists(), "missing masked path created")?;
    for mp in ["/sys/fs/cgroup", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/unified"] {
        check(mountpoints.contains(&mp), &format!("{mp} is not a mount point"))?;
    }
    check(fs::read_link("/sys/fs/cgroup/cpuacct").ok() == Some(PathBuf::from("cpu,cpuacct")), "cpuacct link")?;
    check(fs::read_link("/sys/fs/cgroup/cpu").ok() == Some(PathBuf::from("cpu,cpuacct")), "cpu link")?;
    check(erofs(fs::create_dir("/sys/fs/cgroup/new")), "cgroup tmpfs not read-only")?;
    Ok(())
}

#[test]
fn real_rootfs_in_a_private_mount_namespace() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let bundle = tmp.path().canonicalize().expect("canonicalize");
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("up")).expect("mkdir");
    std::os::unix::fs::symlink("/etc", rootfs.join("evil")).expect("symlink");
    fs::create_dir(bundle.join("data")).expect("mkdir data");
    fs::create_dir_all(rootfs.join("seed/sub")).expect("mkdir seed");
    fs::write(rootfs.join("seed/sub/hello"), b"seeded").expect("write");
    fs::write(bundle.join("data/hello"), b"hi").expect("write");
    let (rd, wr) = nix::unistd::pipe().expect("pipe");

    // SAFETY: the child only runs the rootfs code on its single thread and leaves with _exit;
    // glibc's fork makes malloc usable in the child.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        ForkResult::Child => {
            drop(rd);
            let r = std::panic::catch_unwind(|| child(&bundle, &rootfs))
                .unwrap_or_else(|_| Err("child panicked".to_string()));
            let code = match r {
                Ok(()) => 0,
                Err(msg) => {
                    let mut f = fs::File::from(wr);
                    let _ = f.write_all(msg.as_bytes());
                    1
                }
            };
            // SAFETY: _exit is async-signal-safe and skips the parent's atexit/test state.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let mut msg = String::new();
            let _ = fs::File::from(rd).read_to_string(&mut msg);
            let status = waitpid(child, None).expect("waitpid");
            let mi = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
            let t = bundle.to_string_lossy().to_string();
            assert!(!mi.contains(&t), "mounts leaked to the host:\n{mi}");
            assert!(!Path::new("/etc/x").exists(), "host /etc/x created");
            assert!(!bundle.join("escape").exists() && !Path::new("/escape").exists(), "escaped via ..");
            if msg.starts_with("SKIP") {
                eprintln!("skipped: {msg}");
                return;
            }
            assert_eq!(status, WaitStatus::Exited(child, 0), "child failed: {msg}");
            // The confined destinations were created inside the rootfs.
            assert!(rootfs.join("etc/x").is_dir());
            assert!(rootfs.join("escape").is_dir());
            // tmpcopyup wrote into the tmpfs, not into the image.
            assert!(!rootfs.join("seed/new").exists());
        }
    }
}
